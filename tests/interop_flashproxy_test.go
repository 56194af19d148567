//go:build interop

package tests

// The whole flash-proxy system (issue 11) with real tor and a real browser: a tor client whose
// bridge is "flashproxy 0.0.1.0:1" runs websocket-client, headless Chromium runs
// proxy/proxy.html, and the bridge of the private Tor network runs websocket-server.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

// TestInteropFlashProxy bootstraps a tor client to 100 % through Chromium running the proxy page
// and fetches the test file intact: with client= and relay= in the page's address (loaded from
// file://, binary), the same with ratelimit=, and with the page polling a facilitator to which
// websocket-client registered with -register (served over HTTP, in an iframe of another page
// that requires the visitor's consent with optin=1, base64).
func TestInteropFlashProxy(t *testing.T) {
	if !torInNetns(t) {
		return
	}
	chromium := lookPath(t, "chromium")
	logs := t.TempDir()
	torDumpOnFailure(t, logs)
	ptPort := torFreePort(t)
	tn := torStartNetwork(t,
		fmt.Sprintf("ServerTransportPlugin websocket exec %s -log-level info", program("websocket-server")),
		fmt.Sprintf("ServerTransportListenAddr websocket 127.0.0.1:%d", ptPort))
	registered := fmt.Sprintf("Registered server transport 'websocket' at '127.0.0.1:%d'", ptPort)
	if !torWaitFor(20*time.Second, func() bool { return torCount(tn.bridge.noticeLog(), registered) > 0 }) {
		t.Fatalf("the bridge did not log %q", registered)
	}
	relay := fmt.Sprintf("127.0.0.1:%d", ptPort)
	cdp, _ := startChromium(t, chromium)
	pageDir, err := filepath.Abs("../proxy")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, query string
		rate        float64 // ratelimit= in bytes/s, 0 if none
	}{{"direct", "", 0}, {"ratelimit", "&ratelimit=2m&max_clients=3", 2 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			proxyPort := torFreePort(t)
			page := (&url.URL{Scheme: "file", Path: filepath.Join(pageDir, "proxy.html"),
				RawQuery: fmt.Sprintf("client=127.0.0.1:%d&relay=%s&debug%s", proxyPort, relay, tc.query)}).String()
			session := cdp.open(t, page)
			secs := flashTorClient(t, tn, cdp, session, "document", tc.name, fmt.Sprintf("-flashproxy-listen 127.0.0.1:%d", proxyPort))
			// The page's bucket holds one second's worth: the rest of the file waits for it.
			if least := (float64(tn.file.size) - tc.rate) / tc.rate; tc.rate > 0 && secs < least {
				t.Errorf("the file came in %.1f s through a page limited to %.0f bytes/s: want at least %.1f s", secs, tc.rate, least)
			}
		})
	}

	t.Run("facilitator", func(t *testing.T) {
		fac := newTestFacilitator(t, relay)
		static := listen(t)
		mux := http.NewServeMux()
		mux.Handle("/", http.FileServer(http.Dir(pageDir)))
		mux.HandleFunc("/embed.html", func(w http.ResponseWriter, r *http.Request) { // a site that embeds the proxy
			fmt.Fprintf(w, "<!DOCTYPE html><title>a blog</title><p>Some text.</p>"+
				"<iframe src=\"proxy.html?%s\" width=300 height=40></iframe>", r.URL.RawQuery)
		})
		hs := &http.Server{Handler: mux}
		go hs.Serve(static)
		t.Cleanup(func() { hs.Close() })
		// The embedding site requires consent (optin=1): the visitor switches the proxy on.
		page := fmt.Sprintf("http://%s/embed.html?facilitator=%s&base64&debug&optin=1", static.Addr(),
			url.QueryEscape(fac.url+"/"))
		session := cdp.open(t, page)
		consent := `(function (f) { var s = f && f.contentDocument && f.contentDocument.getElementById("switch");
			if (!s || f.contentDocument.body.getAttribute("data-state") !== "off") return false;
			s.click(); return true; })(document.querySelector("iframe"))`
		var switched bool
		for deadline := time.Now().Add(interopTimeout); !switched && time.Now().Before(deadline); {
			if cdp.eval(t, session, consent, &switched); !switched {
				time.Sleep(100 * time.Millisecond) // polling the page until it is loaded, with a deadline
			}
		}
		if !switched {
			t.Fatal("the embedded page never showed its switch, off")
		}
		proxyPort := torFreePort(t)
		flashTorClient(t, tn, cdp, session, "document.querySelector('iframe').contentDocument", "facilitator",
			fmt.Sprintf("-flashproxy-listen 127.0.0.1:%d -register %s/register", proxyPort, fac.url))
		want := fmt.Sprintf("client=%%3A%d&client-transport=websocket", proxyPort)
		if bodies := fac.registrations(); len(bodies) == 0 || bodies[0] != want {
			t.Errorf("registrations %q, want the first to be %q", bodies, want)
		} else {
			t.Logf("the facilitator received %d registration(s), the first %q; it handed out %d", len(bodies), bodies[0], fac.handedOut())
		}
	})
}

// flashTorClient starts a tor client whose bridge is reached through the proxy page open in
// session (its document is doc, a JavaScript expression), waits for Bootstrapped 100 %,
// fetches the test file and checks the page's badge. It returns the seconds the fetch took.
func flashTorClient(t *testing.T, tn *torNetwork, cdp *cdpConn, session, doc, name, ptArgs string) float64 {
	t.Cleanup(func() {
		if t.Failed() {
			var log string
			cdp.eval(t, session, fmt.Sprintf("(function (d) { return d.getElementById('badge').textContent + '\\n' + "+
				"d.getElementById('log').textContent; })(%s)", doc), &log)
			t.Logf("the proxy page shows:\n%s", tail(log, 4000))
		}
	})
	client := program("websocket-client")
	c := tn.torStartClient(t, name, "UseBridges 1",
		fmt.Sprintf("ClientTransportPlugin flashproxy exec %s -log-level info %s", client, ptArgs),
		"Bridge flashproxy 0.0.1.0:1")
	t.Logf("%s: tor bootstrapped to 100%% through the browser proxy in %.1f s", name, c.bootstrap.Seconds())
	secs := torFetchOK(t, c, tn.file, name)
	var badge struct {
		State, Text string
		Bytes       int64
	}
	cdp.eval(t, session, `(function (d) { var b = d.getElementById("badge");
		return {State: b.className, Text: b.textContent, Bytes: +b.getAttribute("data-bytes")}; })(`+doc+`)`, &badge)
	if badge.State != "active" || badge.Bytes < int64(tn.file.size) {
		t.Errorf("the page's badge: %+v, want active with at least the file's %d bytes", badge, tn.file.size)
	}
	t.Logf("%s: the page's badge says %q", name, badge.Text)
	if torCount(c.infoLog(), "Successfully registered transport flashproxy") == 0 {
		t.Error(`the client's tor did not log "Successfully registered transport flashproxy"`)
	}
	torCheckTransport(t, c.infoLog(), client)
	c.proc.stop()
	return secs
}

// testFacilitator is the facilitator of the flash-proxy system, reduced to what the test
// needs: POST /register queues a client (an empty host means the request's address); GET
// ?r=1&transport=websocket hands the oldest one to a proxy, with the relay, and check-back-in.
type testFacilitator struct {
	url   string
	mu    sync.Mutex
	regs  []string // request bodies
	queue []string // client HOST:PORT
	given int
}

func newTestFacilitator(t *testing.T, relay string) *testFacilitator {
	f := &testFacilitator{}
	ln := listen(t)
	f.url = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Access-Control-Allow-Origin", "*") // the page comes from another origin
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/register":
			b, _ := io.ReadAll(io.LimitReader(r.Body, 1024))
			f.regs = append(f.regs, string(b))
			q, err := url.ParseQuery(string(b))
			host, port, err2 := net.SplitHostPort(q.Get("client"))
			if err != nil || err2 != nil || q.Get("client-transport") != "websocket" {
				http.Error(w, "bad registration", http.StatusBadRequest)
				return
			}
			if host == "" {
				host, _, _ = net.SplitHostPort(r.RemoteAddr)
			}
			f.queue = append(f.queue, net.JoinHostPort(host, port))
		case r.Method == http.MethodGet && r.URL.Query().Get("r") == "1" && r.URL.Query().Get("transport") == "websocket":
			v := url.Values{"client": {""}, "relay": {relay}, "check-back-in": {"10"}}
			if len(f.queue) > 0 {
				v.Set("client", f.queue[0])
				f.queue = f.queue[1:]
				f.given++
			}
			io.WriteString(w, v.Encode())
		default:
			http.Error(w, "unknown request "+strings.ReplaceAll(r.URL.String(), "\n", " "), http.StatusBadRequest)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return f
}

func (f *testFacilitator) registrations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.regs...)
}

func (f *testFacilitator) handedOut() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.given
}

// TestInteropFlashProxyBacklog checks the page's bound on what it holds for a slow side: the
// "client" sends without pause, the "relay" never reads. Chromium cannot stop reading the
// client, so the page must close the pair once its backlog passes 16 MiB (MAX_PENDING in
// proxy.js), not buffer without end.
func TestInteropFlashProxyBacklog(t *testing.T) {
	chromium := lookPath(t, "chromium")
	var sent atomic.Int64
	ended := make(chan error, 2)
	var first atomic.Bool
	client := listen(t)
	go (&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Upgrade(w, r, nil)
		if err != nil || first.Swap(true) {
			return // later pairs get an idle client: the test is about the first
		}
		go func() { // the page's Close arrives here, not as a write error
			_, err := io.Copy(io.Discard, c)
			ended <- fmt.Errorf("closed by the page: %v", err)
			c.Close()
		}()
		msg := make([]byte, 64<<10)
		c.SetWriteDeadline(time.Now().Add(interopTimeout))
		for {
			n, err := c.Write(msg)
			if sent.Add(int64(n)); err != nil {
				return
			}
		}
	})}).Serve(client)
	relay := listen(t)
	go (&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := ws.Upgrade(w, r, nil); err == nil {
			t.Cleanup(func() { c.Close() }) // never read: its TCP window fills
		}
	})}).Serve(relay)

	cdp, _ := startChromium(t, chromium)
	pageDir, err := filepath.Abs("../proxy")
	if err != nil {
		t.Fatal(err)
	}
	session := cdp.open(t, (&url.URL{Scheme: "file", Path: filepath.Join(pageDir, "proxy.html"),
		RawQuery: fmt.Sprintf("client=%s&relay=%s&debug", client.Addr(), relay.Addr())}).String())
	select {
	case err := <-ended:
		var log string
		cdp.eval(t, session, "document.getElementById('log').textContent", &log)
		if !strings.Contains(log, "pending") {
			t.Errorf("the page's log does not say why it closed:\n%s", tail(log, 2000))
		}
		if sent.Load() > 64<<20 {
			t.Errorf("the page took %d MiB before closing, want the 16 MiB bound plus socket buffers", sent.Load()>>20)
		}
		t.Logf("the page closed the fast client after %.1f MiB (%v); its log: %q", float64(sent.Load())/(1<<20), err,
			lastLine(strings.TrimSpace(log)))
	case <-time.After(interopTimeout):
		t.Fatalf("the page still takes data after %d MiB", sent.Load()>>20)
	}
}
