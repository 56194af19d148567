//go:build interop

package tests

// The proxy page (proxy/proxy.html) in headless Chromium against hostile or broken peers on
// loopback: a facilitator that asks for a poll every 2^31 ms, that never answers or answers
// without end, that hands out an impossible relay port; clients that flood the page or whose
// pairs fail. Each test measures what the page does in a time window and fails on the page of
// before issue 17. TestInteropFlashProxyPageStates checks the volunteer's switch and opt-in and,
// with WEBSOCKET_SCREENSHOTS=DIR, saves a PNG of each state there (doc/ holds them).

import (
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

// proxyPage returns the file:// address of proxy.html with query.
func proxyPage(t *testing.T, query string) string {
	t.Helper()
	dir, err := filepath.Abs("../proxy")
	if err != nil {
		t.Fatal(err)
	}
	return (&url.URL{Scheme: "file", Path: filepath.Join(dir, "proxy.html"), RawQuery: query}).String()
}

// serveHTTP serves handler on a loopback port until the test ends and returns its address.
func serveHTTP(t *testing.T, handler http.HandlerFunc) string {
	ln := listen(t)
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// facilitatorFunc serves the facilitator's GET ?r=1&transport=websocket: answer gets the poll's
// number (1 for the first) and the request.
func facilitatorFunc(t *testing.T, answer func(n int64, w http.ResponseWriter, r *http.Request)) (addr string, polls *atomic.Int64) {
	polls = new(atomic.Int64)
	addr = serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.URL.Query().Get("r") != "1" || r.URL.Query().Get("transport") != "websocket" {
			http.Error(w, "unknown request", http.StatusBadRequest)
			return
		}
		answer(polls.Add(1), w, r)
	})
	return addr, polls
}

// wsPeer counts the WebSocket connections a page opens to it: all of them, those open now
// (while handle runs), and the most open at once.
type wsPeer struct {
	addr                 string
	total, open, maxOpen atomic.Int64
	first                chan struct{} // closed at the first connection
}

func newWSPeer(t *testing.T, handle func(c *ws.Conn)) *wsPeer {
	p := &wsPeer{first: make(chan struct{})}
	p.addr = serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Upgrade(w, r, &ws.Options{Base64: true})
		if err != nil {
			return
		}
		if p.total.Add(1) == 1 {
			close(p.first)
		}
		n := p.open.Add(1)
		for m := p.maxOpen.Load(); n > m && !p.maxOpen.CompareAndSwap(m, n); m = p.maxOpen.Load() {
		}
		defer p.open.Add(-1)
		c.SetDeadline(time.Now().Add(2 * interopTimeout))
		handle(c)
	})
	return p
}

// waitFirst fails t unless the page connects to p within d.
func (p *wsPeer) waitFirst(t *testing.T, d time.Duration, what string) {
	t.Helper()
	select {
	case <-p.first:
	case <-time.After(d):
		t.Fatalf("%s: no connection from the page within %v", what, d)
	}
}

// idle keeps a connection open, reading until the page closes it.
func idle(c *ws.Conn) { io.Copy(io.Discard, c); c.Close() }

// pageState returns the page's state (off, idle, active, error) and the badge's text.
func pageState(t *testing.T, cdp *cdpConn, session string) (state, text string) {
	var s struct{ State, Text string }
	cdp.eval(t, session, `(function (b) { // b is null while the page loads
		return {State: b && document.body.getAttribute("data-state") || "", Text: b ? b.textContent : ""};
	})(document.getElementById("badge"))`, &s)
	return s.State, s.Text
}

// waitState polls the page until its state is want, and fails t after d.
func waitState(t *testing.T, cdp *cdpConn, session, want string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		state, text := pageState(t, cdp, session)
		if state == want {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page is %q (%q) after %v, want %q", state, text, d, want)
		}
		time.Sleep(100 * time.Millisecond) // polling the page, with a deadline
	}
}

// TestInteropFlashProxyPageCheckBackIn: a facilitator that says check-back-in=2147484 (over
// 2^31 ms, where setTimeout wraps around) must get no more polls than one that says one hour.
func TestInteropFlashProxyPageCheckBackIn(t *testing.T) {
	chromium := lookPath(t, "chromium")
	fac, polls := facilitatorFunc(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "client=&relay=127.0.0.1:9&check-back-in=2147484")
	})
	cdp, _ := startChromium(t, chromium)
	cdp.open(t, proxyPage(t, "facilitator=http://"+fac+"/"))
	deadline := time.Now().Add(interopTimeout)
	for polls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // polling the counter, with a deadline
	}
	if polls.Load() == 0 {
		t.Fatal("the page never polled the facilitator")
	}
	const window = 5 * time.Second
	before := polls.Load()
	time.Sleep(window) // the measurement: polls in a fixed window
	n := polls.Load() - before
	t.Logf("check-back-in=2147484: %d polls in the %v after the first (%.1f a second)", n, window, float64(n)/window.Seconds())
	if n > 0 {
		t.Errorf("%d polls in %v after a check-back-in of 2147484 s, want none (at most one an hour)", n, window)
	}
}

// TestInteropFlashProxyPageFacilitatorStall: the first poll never gets an answer, the second
// gets an endless one, the third hands out a client. The page must give up on the first two
// (a timeout, a cap on the answer's size), say so, and serve the client of the third.
func TestInteropFlashProxyPageFacilitatorStall(t *testing.T) {
	chromium := lookPath(t, "chromium")
	client := newWSPeer(t, idle)
	relay := newWSPeer(t, idle)
	var aborted atomic.Int64 // seconds the page waited on the first poll
	var flooded atomic.Int64 // bytes of the second answer written before the page hung up
	fac, _ := facilitatorFunc(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1:
			start := time.Now()
			select {
			case <-r.Context().Done():
				aborted.Store(int64(time.Since(start).Seconds() + 0.5))
			case <-time.After(3 * interopTimeout):
			}
		case 2:
			w.Header().Set("Content-Type", "text/plain")
			chunk := []byte("client=" + strings.Repeat("a", 64<<10-7))
			for written := 0; written < 100<<20; written += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					break
				}
				flooded.Add(int64(len(chunk)))
				chunk = []byte(strings.Repeat("a", 64<<10))
			}
		default:
			fmt.Fprintf(w, "client=%s&relay=%s&check-back-in=3600", client.addr, relay.addr)
		}
	})
	cdp, _ := startChromium(t, chromium)
	session := cdp.open(t, proxyPage(t, "facilitator=http://"+fac+"/&debug"))
	relay.waitFirst(t, 2*interopTimeout, "after a stalled and an endless answer")
	if aborted.Load() == 0 {
		t.Error("the page did not abort the poll that got no answer")
	}
	if flooded.Load() > 16<<20 {
		t.Errorf("the page read %d MiB of the facilitator's endless answer, want at most a few KiB plus socket buffers", flooded.Load()>>20)
	}
	var log string
	cdp.eval(t, session, "document.getElementById('log').textContent", &log)
	if !strings.Contains(log, "no answer within") || !strings.Contains(log, "answer over") {
		t.Errorf("the page's log does not say why it gave up on the facilitator:\n%s", tail(log, 2000))
	}
	t.Logf("first poll aborted by the page after about %d s; %.1f MiB of the endless answer written before the page hung up; the third answer served (client %d, relay %d connections)",
		aborted.Load(), float64(flooded.Load())/(1<<20), client.total.Load(), relay.total.Load())
}

// TestInteropFlashProxyPageBadRelay: the facilitator first hands out relay=127.0.0.1:99999.
// With max_clients=1 the page must turn that answer down before it opens any WebSocket and
// serve the next answer.
func TestInteropFlashProxyPageBadRelay(t *testing.T) {
	chromium := lookPath(t, "chromium")
	client := newWSPeer(t, idle)
	relay := newWSPeer(t, idle)
	fac, polls := facilitatorFunc(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
		bad := map[int64]string{1: "127.0.0.1:99999"}[n]
		if bad == "" {
			bad = relay.addr
		}
		fmt.Fprintf(w, "client=%s&relay=%s&check-back-in=10", client.addr, bad)
	})
	cdp, _ := startChromium(t, chromium)
	cdp.open(t, proxyPage(t, "facilitator=http://"+fac+"/&max_clients=1"))
	relay.waitFirst(t, interopTimeout, "after an answer with relay=127.0.0.1:99999")
	if n := client.total.Load(); n != 1 {
		t.Errorf("the client got %d connections for 1 usable answer: the page connected before checking the relay", n)
	}
	t.Logf("after relay=127.0.0.1:99999 the page polled again and served the next answer: %d polls, %d client and %d relay connections",
		polls.Load(), client.total.Load(), relay.total.Load())

	// The same check in client= mode, for addresses the page must refuse before connecting.
	before := client.total.Load()
	for _, bad := range []string{"127.0.0.1:99999", "127.0.0.1:0", "bad_name.example:80", "[::1:80",
		"ws://user:pw@127.0.0.1:1/", "http://127.0.0.1:1/", "javascript:alert(1)"} {
		session := cdp.open(t, proxyPage(t, "client="+client.addr+"&relay="+url.QueryEscape(bad)))
		text := waitState(t, cdp, session, "error", interopTimeout)
		if !strings.Contains(text, "relay: want HOST:PORT") {
			t.Errorf("relay=%s: the page says %q, want it to say what the relay must be", bad, text)
		}
	}
	if n := client.total.Load() - before; n != 0 {
		t.Errorf("the page opened %d client connections for relays it cannot use", n)
	}
}

// TestInteropFlashProxyPageGuard: an exception inside a pair's handler (WebSocket's send made to
// throw once, before the page's own script runs) must close that pair, both its sockets, rather
// than leave it half open and counted against max_clients for good: with max_clients=1 the next
// pair opens and relays the client's byte.
func TestInteropFlashProxyPageGuard(t *testing.T) {
	chromium := lookPath(t, "chromium")
	client := newWSPeer(t, func(c *ws.Conn) {
		c.Write([]byte{7})
		idle(c)
	})
	got := make(chan byte, 8)
	relay := newWSPeer(t, func(c *ws.Conn) {
		b := make([]byte, 1)
		if n, _ := c.Read(b); n == 1 {
			got <- b[0]
		}
		idle(c)
	})
	cdp, _ := startChromium(t, chromium)
	session := cdp.open(t, "about:blank")
	cdp.call(t, session, "Page.enable", map[string]any{}, &struct{}{})
	cdp.call(t, session, "Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": `
		WebSocket.prototype.send = (function (send) {
			var thrown = false;
			return function (data) {
				if (!thrown) {
					thrown = true;
					throw new Error("injected by the test");
				}
				return send.call(this, data);
			};
		})(WebSocket.prototype.send);`}, &struct{}{})
	cdp.call(t, session, "Page.navigate", map[string]any{
		"url": proxyPage(t, fmt.Sprintf("client=%s&relay=%s&max_clients=1", client.addr, relay.addr))}, &struct{}{})
	select {
	case b := <-got:
		if b != 7 {
			t.Fatalf("the relay got %d, want 7", b)
		}
	case <-time.After(interopTimeout):
		t.Fatalf("no byte relayed within %v after the injected exception: %d client and %d relay connections, %d open",
			interopTimeout, client.total.Load(), relay.total.Load(), relay.open.Load())
	}
	if n := client.total.Load(); n < 2 {
		t.Errorf("the byte came through the first pair (%d client connections): the exception was not injected", n)
	}
	t.Logf("after the exception the page closed the pair and served the next: %d client and %d relay connections",
		client.total.Load(), relay.total.Load())
}

// TestInteropFlashProxyPageBackoff: each pair is used (the client sends a byte) and then fails
// (the relay closes with 1011). With max_clients=1 the page must wait longer after each failure
// instead of opening the next pair at once.
func TestInteropFlashProxyPageBackoff(t *testing.T) {
	chromium := lookPath(t, "chromium")
	client := newWSPeer(t, func(c *ws.Conn) {
		c.Write([]byte{1})
		idle(c)
	})
	relay := newWSPeer(t, func(c *ws.Conn) {
		c.Read(make([]byte, 1))
		c.CloseWithStatus(ws.CloseInternalError, "")
	})
	cdp, _ := startChromium(t, chromium)
	cdp.open(t, proxyPage(t, fmt.Sprintf("client=%s&relay=%s&max_clients=1", client.addr, relay.addr)))
	relay.waitFirst(t, interopTimeout, "the first pair")
	const window = 10 * time.Second
	time.Sleep(window) // the measurement: pairs in a fixed window
	n := relay.total.Load()
	t.Logf("pairs used and failed in the %v after the first: %d (%d client connections)", window, n-1, client.total.Load())
	if n > 6 { // 1 + 2 + 4 s: the 5th pair is due at 15 s
		t.Errorf("%d failed pairs in %v with max_clients=1: want an exponential back-off (about 4)", n, window)
	}
	if n < 2 {
		t.Errorf("%d pairs in %v: the page did not try again", n, window)
	}
}

// TestInteropFlashProxyPageFlood: the client floods the page, the relay never reads, so the
// page closes each pair at its 16 MiB backlog bound; Chromium then goes on reading the closing
// socket. With max_clients=1 no second client socket may be open while the first is closing.
func TestInteropFlashProxyPageFlood(t *testing.T) {
	chromium := lookPath(t, "chromium")
	var bytes atomic.Int64
	client := newWSPeer(t, func(c *ws.Conn) {
		msg := make([]byte, 64<<10)
		for {
			n, err := c.Write(msg)
			if bytes.Add(int64(n)); err != nil {
				return
			}
		}
	})
	relay := newWSPeer(t, func(c *ws.Conn) {
		time.Sleep(2 * interopTimeout) // never reads: the page's backlog grows; ends with the test's deadline
	})
	cdp, _ := startChromium(t, chromium)
	cdp.open(t, proxyPage(t, fmt.Sprintf("client=%s&relay=%s&max_clients=1", client.addr, relay.addr)))
	client.waitFirst(t, interopTimeout, "the flooding client")
	const window = 15 * time.Second
	time.Sleep(window) // the measurement: sockets open at once in a fixed window
	t.Logf("in %v: %d client connections, at most %d open at once, %.1f GiB written by the client",
		window, client.total.Load(), client.maxOpen.Load(), float64(bytes.Load())/(1<<30))
	if client.maxOpen.Load() > 1 {
		t.Errorf("%d client sockets open at once with max_clients=1: closing sockets must count", client.maxOpen.Load())
	}
}

// TestInteropFlashProxyPageStates drives the page through its states: off until the visitor
// switches it on (optin=1), on after a reload (remembered), idle (waiting for the client),
// active (bytes relayed, a history), and error (no relay). Screenshots with
// WEBSOCKET_SCREENSHOTS=DIR.
func TestInteropFlashProxyPageStates(t *testing.T) {
	chromium := lookPath(t, "chromium")
	shots := os.Getenv("WEBSOCKET_SCREENSHOTS")
	var talk, speaking atomic.Bool // one client connection sends, at a rate that varies, while talk is set
	client := newWSPeer(t, func(c *ws.Conn) {
		done := make(chan struct{})
		go func() { io.Copy(io.Discard, c); close(done) }()
		speaker := false
		for {
			select {
			case <-done:
				c.Close()
				return
			case <-time.After(20 * time.Millisecond): // the pace of the traffic
			}
			speaker = speaker || talk.Load() && speaking.CompareAndSwap(false, true)
			if !speaker || !talk.Load() {
				continue
			}
			if _, err := c.Write(make([]byte, 2<<10+int(22<<10*(1+math.Sin(float64(time.Now().Unix())/8))/2))); err != nil {
				return
			}
		}
	})
	relay := newWSPeer(t, func(c *ws.Conn) { io.Copy(c, c); c.Close() }) // an echo
	cdp, _ := startChromium(t, chromium)
	query := fmt.Sprintf("client=%s&relay=%s&ratelimit=2m&optin=1", client.addr, relay.addr)
	session := cdp.open(t, proxyPage(t, query))
	cdp.call(t, session, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": 480, "height": 250, "deviceScaleFactor": 1, "mobile": false}, &struct{}{})
	screenshot := func(name string) {
		if shots == "" {
			return
		}
		var shot struct{ Data string }
		cdp.call(t, session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
		png, err := base64.StdEncoding.DecodeString(shot.Data)
		if err == nil {
			err = os.WriteFile(filepath.Join(shots, name), png, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	text := waitState(t, cdp, session, "off", interopTimeout)
	const quiet = 2 * time.Second
	time.Sleep(quiet) // the measurement: no connection while off
	if n := client.total.Load(); n != 0 {
		t.Fatalf("optin=1 and not switched on: the page opened %d connections", n)
	}
	t.Logf("optin=1: the page says %q and opened no connection in %v", text, quiet)
	screenshot("proxy-off.png")

	var ok bool
	cdp.eval(t, session, `document.getElementById("switch").click(), true`, &ok)
	text = waitState(t, cdp, session, "idle", interopTimeout)
	client.waitFirst(t, interopTimeout, "after the switch")
	var served string // a waiting pair has served no one: the old badge said "idle (1 served, 0 B)"
	cdp.eval(t, session, `document.getElementById("served").textContent`, &served)
	if served != "0" || strings.Contains(text, "served") {
		t.Errorf("waiting for a client, the page says %q and served %q, want 0", text, served)
	}
	t.Logf("switched on: %q, served %s", text, served)
	screenshot("proxy-idle.png")

	cdp.call(t, session, "Page.reload", map[string]any{}, &struct{}{})
	text = waitState(t, cdp, session, "idle", interopTimeout)
	t.Logf("after a reload (the choice remembered): %q", text)

	talk.Store(true)
	text = waitState(t, cdp, session, "active", interopTimeout)
	if shots != "" {
		time.Sleep(45 * time.Second) // for the screenshot: a few bars of history
	}
	var stats struct{ Now, Total, Bars string }
	cdp.eval(t, session, `({Now: document.getElementById("now").textContent, Total: document.getElementById("total").textContent,
		Bars: String(document.getElementById("history").children.length)})`, &stats)
	if stats.Now != "1" || stats.Total == "0 B" {
		t.Errorf("active page shows %+v, want 1 pair and bytes relayed", stats)
	}
	t.Logf("active: %q, numbers %+v", text, stats)
	screenshot("proxy-active.png")
	talk.Store(false)

	// The switch off closes the pairs; an unusable relay is an error.
	cdp.eval(t, session, `document.getElementById("switch").click(), true`, &ok)
	waitState(t, cdp, session, "off", interopTimeout)
	deadline := time.Now().Add(interopTimeout)
	for client.open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // polling the counter, with a deadline
	}
	if n := client.open.Load(); n > 0 {
		t.Errorf("switched off: %d connections still open", n)
	}
	closed := closedAddr(t)
	cdp.call(t, session, "Page.navigate", map[string]any{"url": proxyPage(t, fmt.Sprintf("client=%s&relay=%s", client.addr, closed))}, &struct{}{})
	waitState(t, cdp, session, "off", interopTimeout) // still off: remembered
	cdp.eval(t, session, `document.getElementById("switch").click(), true`, &ok)
	text = waitState(t, cdp, session, "error", interopTimeout)
	t.Logf("relay refused: %q", text)
	screenshot("proxy-error.png")
}
