//go:build interop

package tests

// Interop with real third-party peers (project issue 5, items 2, 3 and 5):
// headless Chromium as a WebSocket client of websocket-server; nginx with TLS
// as a reverse proxy between websocket-client and websocket-server, with
// X-Forwarded-For reaching the Extended ORPort; node's "ws" package in both
// roles; websockify as a server for websocket-client. Run by "make interop".

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

// startServer runs websocket-server standalone on a free loopback port with
// the given options; it returns the listening address.
func startServer(t *testing.T, args ...string) (string, *child) {
	t.Helper()
	return startProgram(t, "websocket-server", nil, args)
}

// startClient runs websocket-client standalone on a free loopback port with
// the given options and environment; it returns the SOCKS address.
func startClient(t *testing.T, env []string, args ...string) (string, *child) {
	t.Helper()
	return startProgram(t, "websocket-client", env, args)
}

// startProgram runs one of our programs with debug logs on a free port. At
// the end of the test it checks that no address but its own listener's
// reached the logs.
func startProgram(t *testing.T, name string, env, args []string) (string, *child) {
	t.Helper()
	addr := closedAddr(t)
	p := startChild(t, env, program(name), append([]string{"-listen", addr, "-log-level", "debug"}, args...)...)
	t.Cleanup(func() {
		p.Stop()
		if out := ownAddr.ReplaceAllString(p.Output(), ""); strings.Contains(out, "127.0.0.") || strings.Contains(out, "[::1]") {
			t.Errorf("an address appears in the logs of %s (its output follows)", name)
		}
	})
	waitTCP(t, addr, p)
	return addr, p
}

// pageResult is what runOne in www/index.html, and node/client.js, report
// for one socket.
type pageResult struct {
	Protocol, Extensions *string
	Pong                 bool // node/client.js: our server answered its Ping
	Sizes                []int
	OK                   bool
	Error                string
	Sent, Text, Binary   int
}

// TestInteropChromium: Chromium's WebSocket client against websocket-server,
// a binary socket and a base64 one, data of 1 B to 1 MiB echoed identical.
func TestInteropChromium(t *testing.T) {
	chromium := lookPath(t, "chromium")
	srvAddr, _ := startServer(t, "-orport", echoServer(t), "-base64=true")

	page := listen(t)
	hs := &http.Server{Handler: http.FileServer(http.Dir("www"))}
	go hs.Serve(page)
	t.Cleanup(func() { hs.Close() })

	cdp, devtools := startChromium(t, chromium)

	t.Run("devtools-handshake", func(t *testing.T) {
		// Chromium's own WebSocket server (DevTools) accepts our client's
		// opening handshake. CDP itself cannot go over ws.Conn: DevTools
		// accepts text frames only, which ws sends only as base64.
		u, err := url.Parse(devtools)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.DialTimeout("tcp", u.Host, interopTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c, err := ws.Client(conn, u, nil)
		if err != nil {
			t.Fatalf("ws.Client with Chromium's DevTools server: %v", err)
		}
		if c.Subprotocol() != "" {
			t.Errorf("subprotocol %q, none offered", c.Subprotocol())
		}
		t.Logf("ws.Client completed the opening handshake with Chromium's DevTools server at %s", u.Redacted())
	})

	attached := cdp.open(t, "http://"+page.Addr().String()+"/index.html")
	for deadline := time.Now().Add(interopTimeout); ; {
		var kind string
		if cdp.eval(t, attached, "typeof runAll", &kind); kind == "function" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the page's runAll never appeared")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var res map[string]pageResult
	start := time.Now()
	cdp.eval(t, attached, fmt.Sprintf("runAll(%q)", "ws://"+srvAddr+"/"), &res)
	var title string
	cdp.eval(t, attached, "document.title", &title)
	t.Logf("page ran in %v, title %q", time.Since(start).Round(time.Millisecond), title)

	t.Run("too-big", func(t *testing.T) {
		// A message over -max-message: the server closes with 1009, and
		// Chromium must see that status (not 1006, a connection reset).
		small, _ := startServer(t, "-orport", echoServer(t), "-max-message", "16384")
		for _, n := range []int{16385, 1 << 20} {
			var r struct {
				Code     int
				Reason   string
				WasClean bool
			}
			cdp.eval(t, attached, fmt.Sprintf("tooBig(%q, %d)", "ws://"+small+"/", n), &r)
			if r.Code != ws.CloseTooBig {
				t.Errorf("message of %d bytes over a 16384 limit: Chromium saw close code %d (%q), want 1009", n, r.Code, r.Reason)
			}
			t.Logf("message of %d bytes over a 16384-byte limit: Chromium saw close %d %q, clean %v", n, r.Code, r.Reason, r.WasClean)
		}
	})

	for _, mode := range []string{"binary", "base64"} {
		t.Run(mode, func(t *testing.T) {
			r, ok := res[mode]
			if !ok {
				t.Fatalf("no result for %s in %v", mode, res)
			}
			want := map[string]string{"binary": "", "base64": "base64"}[mode]
			if r.Protocol == nil || *r.Protocol != want {
				t.Errorf("socket opened with protocol %v, want %q", r.Protocol, want)
			}
			if r.Extensions == nil || *r.Extensions != "" {
				t.Errorf("socket opened with extensions %v, want none", r.Extensions)
			}
			if !r.OK || r.Error != "" {
				t.Fatalf("page reports failure: %q (sizes echoed: %v)", r.Error, r.Sizes)
			}
			if fmt.Sprint(r.Sizes) != "[1 1024 65536 1048576]" {
				t.Errorf("sizes echoed: %v", r.Sizes)
			}
			if (mode == "base64") != (r.Text > 0) || (mode == "base64") == (r.Binary > 0) {
				t.Errorf("received %d text and %d binary messages in %s mode", r.Text, r.Binary, mode)
			}
			t.Logf("Chromium %s socket: protocol %q accepted by Chromium, no extension (permessage-deflate declined); %d messages sent, %d binary + %d text received; sizes %v echoed identical",
				mode, *r.Protocol, r.Sent, r.Binary, r.Text, r.Sizes)
		})
	}
}

// startChromium runs headless Chromium with the DevTools protocol on a pipe; it returns that
// connection and the URL of Chromium's DevTools WebSocket server.
func startChromium(t *testing.T, chromium string) (*cdpConn, string) {
	t.Helper()
	// CDP goes over --remote-debugging-pipe: fd 3 carries commands to
	// Chromium, fd 4 its answers, each a JSON text ending in a NUL byte.
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	profile := t.TempDir()
	p := startChildFiles(t, nil, []*os.File{cmdR, outW}, chromium, "--headless", "--no-sandbox",
		"--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--user-data-dir="+profile,
		"--remote-debugging-port=0", "--remote-debugging-pipe", "about:blank")
	cmdR.Close()
	outW.Close()
	t.Cleanup(func() { cmdW.Close(); outR.Close() })
	devtools := regexp.MustCompile(`DevTools listening on (ws://\S+)`).FindStringSubmatch(p.waitOutput(t, "DevTools listening on ws://"))
	return &cdpConn{w: cmdW, r: bufio.NewReader(outR), rf: outR}, devtools[1]
}

// open loads url in a new tab and returns the session attached to it.
func (c *cdpConn) open(t *testing.T, url string) string {
	t.Helper()
	var target struct{ TargetID string }
	c.call(t, "", "Target.createTarget", map[string]any{"url": url}, &target)
	var attached struct{ SessionID string }
	c.call(t, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	return attached.SessionID
}

// cdpConn speaks the Chrome DevTools Protocol over Chromium's debugging pipe.
type cdpConn struct {
	w  *os.File
	r  *bufio.Reader
	rf *os.File
	id int
}

// call sends one command (to the browser, or to sessionID) and decodes its
// result into out; events and other answers are skipped. Errors fail t.
func (c *cdpConn) call(t *testing.T, sessionID, method string, params, out any) {
	t.Helper()
	c.id++
	msg := map[string]any{"id": c.id, "method": method, "params": params}
	if sessionID != "" {
		msg["sessionId"] = sessionID
	}
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.w.Write(append(b, 0)); err != nil {
		t.Fatalf("CDP %s: %v", method, err)
	}
	c.rf.SetReadDeadline(time.Now().Add(2 * interopTimeout))
	for {
		line, err := c.r.ReadBytes(0)
		if err != nil {
			t.Fatalf("CDP %s: reading the answer: %v", method, err)
		}
		var ans struct {
			ID     int
			Result json.RawMessage
			Error  *struct{ Message string }
		}
		if err := json.Unmarshal(line[:len(line)-1], &ans); err != nil {
			t.Fatalf("CDP %s: %v in %q", method, err, line)
		}
		if ans.ID != c.id {
			continue
		}
		if ans.Error != nil {
			t.Fatalf("CDP %s: %s", method, ans.Error.Message)
		}
		if err := json.Unmarshal(ans.Result, out); err != nil {
			t.Fatalf("CDP %s: %v in %s", method, err, ans.Result)
		}
		return
	}
}

// eval runs Runtime.evaluate on expr in the page, awaiting a promise, and
// decodes the value into out; an exception fails t.
func (c *cdpConn) eval(t *testing.T, sessionID, expr string, out any) {
	t.Helper()
	var r struct {
		Result           struct{ Value json.RawMessage }
		ExceptionDetails *struct {
			Text      string
			Exception struct{ Description string }
		}
	}
	c.call(t, sessionID, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &r)
	if r.ExceptionDetails != nil {
		t.Fatalf("%s threw: %s %s", expr, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if err := json.Unmarshal(r.Result.Value, out); err != nil {
		t.Fatalf("%s gave %s: %v", expr, r.Result.Value, err)
	}
}

// TestInteropNginx: websocket-client → nginx (TLS, /secret-path) →
// websocket-server → fake Extended ORPort, which must see the client's
// address from X-Forwarded-For.
func TestInteropNginx(t *testing.T) {
	nginx := lookPath(t, "nginx")
	const name = "websocket-bridge.test" // never resolved: the client dials the SOCKS target
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, cert, key, name) // self-signed: it is its own CA in SSL_CERT_FILE
	ext := newExtOR(t)
	extAddr := ext.ln.Addr().String()
	// nginx reaches websocket-server from 127.0.0.2 (proxy_bind), the only
	// trusted proxy, so that the client's 127.0.0.1 in X-Forwarded-For can be
	// told apart from the proxy's address.
	srvAddr, _ := startServer(t, "-path", "/secret-path", "-trusted-proxy", "127.0.0.2/32",
		"-extorport", extAddr, "-auth-cookie", ext.cookieFile)
	nginxAddr := closedAddr(t)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers must read the files in our 0700 temp dir
	}
	// The server block is doc/nginx-websocket.conf, the one in BRIDGE.md, with two changes for
	// the X-Forwarded-For check: proxy_bind added, and the access log (below) left on.
	site := fillTemplate(t, "../doc/nginx-websocket.conf", map[string]string{"LISTEN": nginxAddr,
		"HOST": name, "CERT": cert, "KEY": key, "PATH": "/secret-path", "BACKEND": srvAddr})
	for _, edit := range [][2]string{
		{"\tproxy_http_version 1.1;\n", "\tproxy_http_version 1.1;\n\t\tproxy_bind 127.0.0.2;\n"},
		{"\taccess_log off;\n", ""},
	} {
		if strings.Count(site, edit[0]) != 1 {
			t.Fatalf("doc/nginx-websocket.conf has no single line %q", edit[0])
		}
		site = strings.Replace(site, edit[0], edit[1], 1)
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
events { worker_connections 64; }
http {
	log_format client '$remote_addr:$remote_port "$request" $status';
	access_log %[2]s/access.log client;
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
%[3]s}
`, user, dir, site)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ng := startChild(t, nil, nginx, "-e", "stderr", "-p", dir, "-c", confFile,
		"-g", "daemon off; pid "+dir+"/nginx.pid; error_log stderr;")
	waitTCP(t, nginxAddr, ng)
	sock, _ := startClient(t, []string{"SSL_CERT_FILE=" + cert}, "-url", "wss://"+name+":"+port(nginxAddr)+"/secret-path")

	t.Run("data", func(t *testing.T) {
		c := socksOK(t, sock, nginxAddr)
		s := ext.next(t)
		go echo(s)
		const n = 4 << 20
		sum := roundTrip(t, c, n)
		t.Logf("%d bytes each way through nginx (TLS) and /secret-path, SHA-256 %s... identical", n, sum)
		if s.transport != "websocket" {
			t.Errorf("TRANSPORT %q", s.transport)
		}
		host, port := s.userAddr, ""
		if h, p, err := net.SplitHostPort(s.userAddr); err == nil {
			host, port = h, p
		}
		if host != "127.0.0.1" {
			t.Fatalf("USERADDR %q: want the client's 127.0.0.1 (X-Forwarded-For), not nginx's 127.0.0.2", s.userAddr)
		}
		// The client's source port as nginx saw it, from nginx's access log
		// (written when the request ends, so close first).
		c.Close()
		var clientPort string
		for deadline := time.Now().Add(interopTimeout); clientPort == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
			if m := regexp.MustCompile(`127\.0\.0\.1:(\d+) "GET /secret-path HTTP/1.1" 101`).FindSubmatch(b); m != nil {
				clientPort = string(m[1])
			}
		}
		if port != "" && port != clientPort {
			t.Errorf("USERADDR %q has a port that is not the client's source port %s", s.userAddr, clientPort)
		}
		t.Logf("Extended ORPort: TRANSPORT %q, USERADDR %q: the client's IP from X-Forwarded-For; port %q (client's source port at nginx: %s; X-Forwarded-For carries no port)",
			s.transport, s.userAddr, port, clientPort)
	})

	t.Run("untrusted-x-forwarded-for", func(t *testing.T) {
		// Straight to websocket-server from 127.0.0.1, which is no trusted
		// proxy: a forged X-Forwarded-For must not reach USERADDR.
		conn, err := net.DialTimeout("tcp", srvAddr, interopTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		u := &url.URL{Scheme: "ws", Host: srvAddr, Path: "/secret-path"}
		c, err := ws.Client(conn, u, &ws.Options{Header: http.Header{"X-Forwarded-For": {"127.0.0.9"}}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s := ext.next(t)
		if s.userAddr != conn.LocalAddr().String() {
			t.Fatalf("USERADDR %q, want the peer's own address %s", s.userAddr, conn.LocalAddr())
		}
		t.Logf("forged X-Forwarded-For from an untrusted peer ignored: USERADDR %q", s.userAddr)
	})

	t.Run("selftest-recipe", func(t *testing.T) { nginxSelftest(t, nginxAddr, name, cert) })

	t.Run("other-paths-404", func(t *testing.T) {
		// Only /secret-path itself goes to websocket-server (an exact
		// location): everything else is nginx's ordinary 404.
		for _, path := range []string{"/elsewhere", "/secret-path/x", "/secret-pathx"} {
			status, body := upgradeStatus(t, nginxAddr, name, cert, path)
			if status != http.StatusNotFound {
				t.Errorf("%s: status %d, want 404", path, status)
			}
			t.Logf("WebSocket request for %s: %d (%q)", path, status, firstLine(body))
		}
		status, _ := upgradeStatus(t, nginxAddr, name, cert, "/secret-path")
		if status != http.StatusSwitchingProtocols {
			t.Errorf("/secret-path: status %d, want 101", status)
		}
	})
}

// nginxSelftest runs doc/bridge-selftest.sh, BRIDGE.md's reachability recipe, against the
// nginx of TestInteropNginx: it must pass for the secret path and fail for another.
func nginxSelftest(t *testing.T, nginxAddr, name, cert string) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{{"/secret-path", true}, {"/other-path", false}} {
		url := "wss://" + name + ":" + port(nginxAddr) + tc.path
		cmd := exec.Command("sh", "../doc/bridge-selftest.sh", url, nginxAddr)
		cmd.Env = append(os.Environ(), "CURL_CA_BUNDLE="+cert)
		out, err := cmd.CombinedOutput()
		if (err == nil) != tc.ok || !strings.HasPrefix(string(out), map[bool]string{true: "OK:", false: "FAIL:"}[tc.ok]) {
			t.Errorf("bridge-selftest.sh %s %s: %v\n%s", url, nginxAddr, err, out)
		}
		t.Logf("bridge-selftest.sh %s %s: %s", url, nginxAddr, firstLine(string(out)))
	}
}

// socksOK asks websocket-client's SOCKS server at sock for target and
// fails the test unless it is granted.
func socksOK(t *testing.T, sock, target string) net.Conn {
	t.Helper()
	c, code := socks5(t, sock, target, "")
	if code != 0 {
		t.Fatalf("SOCKS request for %s refused with code %d", target, code)
	}
	return c
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// upgradeStatus sends a WebSocket opening request for path over TLS to addr
// and returns the answer's status and the start of its body.
func upgradeStatus(t *testing.T, addr, name, certFile, path string) (int, string) {
	t.Helper()
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: interopTimeout}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(interopTimeout))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, name)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	body := make([]byte, 200)
	n, _ := io.ReadFull(resp.Body, body)
	return resp.StatusCode, string(body[:n])
}

// TestInteropNodeClient: node's ws as a client of websocket-server.
func TestInteropNodeClient(t *testing.T) {
	node := lookPath(t, "node")
	srvAddr, _ := startServer(t, "-orport", echoServer(t), "-base64=true")
	for _, mode := range []string{"binary", "base64"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*interopTimeout)
			defer cancel()
			out, err := exec.CommandContext(ctx, node, "node/client.js", "ws://"+srvAddr+"/", mode).CombinedOutput()
			var r pageResult
			if jerr := json.Unmarshal([]byte(lastLine(string(out))), &r); jerr != nil || err != nil {
				t.Fatalf("node client.js: %v %v\n%s", err, jerr, out)
			}
			want := map[string]string{"binary": "", "base64": "base64"}[mode]
			if !r.OK || !r.Pong || r.Protocol == nil || *r.Protocol != want || r.Extensions == nil || *r.Extensions != "" ||
				fmt.Sprint(r.Sizes) != "[1 1024 65536 1048576]" {
				t.Fatalf("node client.js: %s", out)
			}
			if (mode == "base64") != (r.Text > 0) || (mode == "base64") == (r.Binary > 0) {
				t.Errorf("node received %d text and %d binary messages in %s mode", r.Text, r.Binary, mode)
			}
			t.Logf("node ws client, %s: protocol %q, no extension (permessage-deflate declined), Ping answered; %d messages sent, %d binary + %d text received; sizes %v echoed identical",
				mode, *r.Protocol, r.Sent, r.Binary, r.Text, r.Sizes)
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// nodeClose is what node/server.js prints when a connection closes.
type nodeClose struct {
	Event, Protocol, Offered, Error  string
	Text, Binary, Bytes, Pongs, Code int
}

// TestInteropNodeServer: websocket-client against node's ws as a server.
func TestInteropNodeServer(t *testing.T) {
	node := lookPath(t, "node")
	addr := closedAddr(t)
	ns := startChild(t, nil, node, "node/server.js", port(addr))
	ns.waitOutput(t, `"listening"`)
	for _, mode := range []string{"binary", "base64"} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"-url", "ws://" + addr + "/"}
			if mode == "base64" {
				args = append(args, "-protocol", "base64")
			}
			sock, _ := startClient(t, nil, args...)
			before := strings.Count(ns.Output(), `"close"`)
			c := socksOK(t, sock, addr)
			const n = 2 << 20
			sum := roundTrip(t, c, n)
			c.Close()
			// node prints the connection's record when our client closes it.
			var r nodeClose
			for deadline := time.Now().Add(interopTimeout); ; time.Sleep(100 * time.Millisecond) {
				if out := ns.Output(); strings.Count(out, `"close"`) > before {
					if err := json.Unmarshal([]byte(lastLine(out)), &r); err != nil {
						t.Fatal(err)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("node server saw no close")
				}
			}
			want := map[string]string{"binary": "", "base64": "base64"}[mode]
			if r.Protocol != want || r.Error != "" || r.Bytes != n {
				t.Fatalf("node server: %+v", r)
			}
			if (mode == "base64") != (r.Text > 0) || (mode == "base64") == (r.Binary > 0) {
				t.Errorf("node received %d text and %d binary messages in %s mode", r.Text, r.Binary, mode)
			}
			if r.Pongs != 1 {
				t.Errorf("node's Ping got %d Pongs, want 1", r.Pongs)
			}
			if r.Code != ws.CloseNormal {
				t.Errorf("our client closed with %d, want 1000", r.Code)
			}
			t.Logf("websocket-client → node ws server, %s: offered %q, negotiated %q; %d bytes each way, SHA-256 %s... identical; node got %d binary + %d text messages, %d Pong; close %d",
				mode, r.Offered, r.Protocol, n, sum, r.Binary, r.Text, r.Pongs, r.Code)
		})
	}
}

// TestInteropWebsockify: websocket-client through websockify to a TCP echo.
func TestInteropWebsockify(t *testing.T) {
	websockify := lookPath(t, "websockify")
	addr := closedAddr(t)
	wp := startChild(t, nil, websockify, addr, echoServer(t))
	waitTCP(t, addr, wp)
	t.Run("binary", func(t *testing.T) {
		sock, _ := startClient(t, nil, "-url", "ws://"+addr+"/")
		c := socksOK(t, sock, addr)
		const n = 2 << 20
		t.Logf("websocket-client → websockify → TCP echo: %d bytes each way, SHA-256 %s... identical", n, roundTrip(t, c, n))
	})
	t.Run("base64-refused", func(t *testing.T) {
		// websockify 0.10 only ever selects the "binary" subprotocol and
		// fails a handshake that offers others: our client must refuse the
		// SOCKS request rather than carry data.
		sock, cp := startClient(t, nil, "-url", "ws://"+addr+"/", "-protocol", "base64")
		if _, code := socks5(t, sock, addr, ""); code == 0 {
			t.Fatal("SOCKS request granted though websockify refuses the base64 subprotocol")
		} else {
			t.Logf("offering base64 to websockify: SOCKS reply code %d; client log: %s", code, lastLine(cp.Output()))
		}
	})
}
