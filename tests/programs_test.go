package tests

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

// sendAndHash writes n random bytes to w and returns their SHA-256.
func sendAndHash(w io.Writer, n int64) ([]byte, error) {
	h := sha256.New()
	_, err := io.Copy(w, io.TeeReader(io.LimitReader(rand.Reader, n), h))
	return h.Sum(nil), err
}

// readHash reads r to EOF and returns the byte count and SHA-256.
func readHash(r io.Reader) (int64, []byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return n, h.Sum(nil), err
}

// closeWrite half-closes a TCP connection.
func closeWrite(t *testing.T, c net.Conn) {
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Error(err)
	}
}

// TestTunnel sends 64 MiB of random bytes each way at once through websocket-client and
// websocket-server to an echoing Extended ORPort, as tor runs them.
func TestTunnel(t *testing.T) {
	for _, tc := range []struct {
		name, args string
		size       int64
	}{
		{"binary", "", 64 << 20},
		{"base64", "url=ws://SERVER/;protocol=base64", 8 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			or, server, client := tunnel(t)
			conn, code := socks5(t, client.addr, server.addr, strings.ReplaceAll(tc.args, "SERVER", server.addr))
			if code != 0 {
				t.Fatalf("SOCKS reply %d, want 0", code)
			}
			oc := or.next(t)
			if oc.transport != "websocket" {
				t.Errorf("TRANSPORT %q, want websocket", oc.transport)
			}
			if host, port, err := net.SplitHostPort(oc.userAddr); err != nil || host != "127.0.0.1" || port == "0" {
				t.Errorf("USERADDR %q, want 127.0.0.1:PORT", oc.userAddr)
			}
			echoThrough(t, conn, oc, tc.size)
		})
	}
}

// echoThrough makes oc echo, sends size random bytes on conn while reading them back, and
// checks count and SHA-256.
func echoThrough(t *testing.T, conn net.Conn, oc *orConn, size int64) {
	t.Helper()
	go func() { io.Copy(oc, oc); oc.CloseWrite() }()

	start := time.Now()
	sent := make(chan []byte, 1)
	go func() {
		sum, err := sendAndHash(conn, size)
		if err != nil {
			t.Error(err)
		}
		closeWrite(t, conn)
		sent <- sum
	}()
	n, got, err := readHash(conn)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if want := <-sent; n != size || !bytes.Equal(got, want) {
		t.Fatalf("echo: %d bytes, SHA-256 %x; want %d bytes, %x", n, got, size, want)
	}
	t.Logf("%d MiB each way in %v: %.1f MiB/s each way", size>>20, elapsed.Round(time.Millisecond),
		float64(size>>20)/elapsed.Seconds())
}

// TestHalfClose checks that an end of stream crosses the tunnel in each direction while the
// other direction goes on.
func TestHalfClose(t *testing.T) {
	or, server, client := tunnel(t)

	// tor's side ends first: the ORPort sees EOF, then still answers.
	conn, code := socks5(t, client.addr, server.addr, "")
	if code != 0 {
		t.Fatalf("SOCKS reply %d", code)
	}
	oc := or.next(t)
	conn.Write([]byte("request"))
	closeWrite(t, conn)
	if b, err := io.ReadAll(oc); err != nil || string(b) != "request" {
		t.Fatalf("ORPort read %q, %v; want request then EOF", b, err)
	}
	oc.Write([]byte("answer after EOF"))
	oc.CloseWrite()
	if b, err := io.ReadAll(conn); err != nil || string(b) != "answer after EOF" {
		t.Fatalf("SOCKS side read %q, %v", b, err)
	}

	// The bridge's side ends first: tor's side sees EOF, then still sends.
	conn, _ = socks5(t, client.addr, server.addr, "")
	oc = or.next(t)
	oc.Write([]byte("from the bridge"))
	oc.CloseWrite()
	if b, err := io.ReadAll(conn); err != nil || string(b) != "from the bridge" {
		t.Fatalf("SOCKS side read %q, %v", b, err)
	}
	conn.Write([]byte("late data"))
	closeWrite(t, conn)
	if b, err := io.ReadAll(oc); err != nil || string(b) != "late data" {
		t.Fatalf("ORPort read %q, %v", b, err)
	}
}

// TestSocksFailures checks the SOCKS reply for each way a connection to a bridge can fail.
func TestSocksFailures(t *testing.T) {
	_, server, client := tunnel(t)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("an ordinary web page"))
	}))
	defer plain.Close()
	redirect := httptest.NewServer(http.RedirectHandler("ws://"+server.addr+"/", http.StatusMovedPermanently))
	defer redirect.Close()
	for _, tc := range []struct {
		name, target, args string
		code               byte
		log                string
	}{
		{"port closed", closedAddr(t), "", 5, "refused"},
		{"not 101", plain.Listener.Addr().String(), "", 1, "200"},
		{"redirect", redirect.Listener.Addr().String(), "", 1, "301"},
		{"bad url scheme", server.addr, "url=http://bridge.example/", 1, "bad url"},
		{"bad url", server.addr, "url=ws://%zz/", 1, "bad url"},
		{"unknown argument", server.addr, "colour=blue", 1, "unknown argument"},
		{"unknown protocol", server.addr, "protocol=base32", 1, "unknown protocol"},
		{"front without wss", server.addr, "front=cdn.example", 1, "wss"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, code := socks5(t, client.addr, tc.target, tc.args)
			if code != tc.code {
				t.Errorf("SOCKS reply %d, want %d", code, tc.code)
			}
			if _, err := conn.Read(make([]byte, 1)); err == nil {
				t.Error("connection still open after a failure reply")
			}
			if !client.waitOutput(tc.log) {
				t.Errorf("no log line mentioning %q:\n%s", tc.log, client.output())
			}
		})
	}
}

// TestMalformedArguments checks that per-bridge arguments that cannot be parsed fail the
// RFC 1929 step (goptlib does the same) with a warning that names the fault, and that text put
// where a key belongs (here a bridge URL without "url=") never reaches the log: the proc's
// cleanup fails the test if ".example" appears there.
func TestMalformedArguments(t *testing.T) {
	_, _, client := tunnel(t)
	for _, args := range []string{"wss://bridge.example/ws", "url=ws://bridge.example/;x\\"} {
		conn, err := net.Dial("tcp", client.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(waitLong))
		// Greeting: version 5, one method, 2 (username/password); then RFC 1929: version 1,
		// ULEN, UNAME (the arguments), PLEN 1, PASSWD "\x00".
		req := append([]byte{5, 1, 2, 1, byte(len(args))}, args...)
		conn.Write(append(req, 1, 0))
		got, err := io.ReadAll(conn)
		// Method choice 5 2, then auth status 1 0x01 (failure), then the connection closes.
		if err != nil || !bytes.Equal(got, []byte{5, 2, 1, 1}) {
			t.Errorf("%q: got % x, %v; want 05 02 01 01 and EOF", args, got, err)
		}
	}
	for _, want := range []string{
		`LOG SEVERITY=warning MESSAGE="pt: socks handshake: client arguments: missing '=' after key (23 bytes, not shown)"`,
		`LOG SEVERITY=warning MESSAGE="pt: socks handshake: client arguments: trailing backslash"`,
	} {
		if !client.waitOutput(want) {
			t.Errorf("no %q in the log:\n%s", want, client.output())
		}
	}
}

// TestORPortDown checks that when the ORPort cannot be reached the server refuses the WebSocket
// handshake with 502 before answering 101, so that the client's SOCKS reply is a failure; that
// the warning, which any remote client can cause, is written once and then counted; and that
// the server keeps serving.
func TestORPortDown(t *testing.T) {
	or := newExtOR(t)
	env := serverEnv(t, or)
	for i, e := range env {
		if strings.HasPrefix(e, "TOR_PT_EXTENDED_SERVER_PORT=") {
			env[i] = "TOR_PT_EXTENDED_SERVER_PORT=" + closedAddr(t)
		}
	}
	server := startProc(t, "websocket-server", env, "-log-level", "debug")
	client := startProc(t, "websocket-client", clientEnv(t), "-log-level", "debug")
	for i := 0; i < 3; i++ {
		if _, err := tryWS(server.addr, "/", nil); err == nil || !strings.Contains(err.Error(), "502") {
			t.Fatalf("handshake: %v, want a refusal with status 502", err)
		}
	}
	conn, code := socks5(t, client.addr, server.addr, "")
	if code == 0 {
		conn.Close()
		t.Fatal("SOCKS reply 0, want a failure: the bridge's tor is down")
	}
	if !server.waitOutput("connecting to the ORPort") {
		t.Fatalf("no warning about the ORPort:\n%s", server.output())
	}
	if n := strings.Count(server.output(), "connecting to the ORPort"); n != 1 {
		t.Errorf("%d warnings about the ORPort within a minute, want 1 (rate-limited):\n%s", n, server.output())
	}
}

// TestORPortFailsMidStream: when tor's connection breaks (a reset) in the middle of a tunnel,
// the bridge closes the WebSocket with 1011, not with the 1000 of a clean end, and the client
// warns. Each side logs the tunnel's opening and end at info, without an address.
func TestORPortFailsMidStream(t *testing.T) {
	or, server, client := tunnel(t)
	conn, code := socks5(t, client.addr, server.addr, "")
	if code != 0 {
		t.Fatalf("SOCKS reply %d", code)
	}
	oc := or.next(t)
	conn.Write([]byte("hello"))
	if _, err := io.ReadFull(oc, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	oc.SetLinger(0)
	oc.Close() // a reset, as when tor is killed
	conn.SetReadDeadline(time.Now().Add(waitLong))
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes, want the SOCKS connection closed", n)
	}
	want := `LOG SEVERITY=warning MESSAGE="tunnel 1 closed after `
	if !client.waitOutput(want) || !strings.Contains(client.output(), "websocket: close 1011") {
		t.Errorf("no warning with status 1011 from the client:\n%s", client.output())
	}
	for _, p := range []*proc{client, server} {
		if !p.waitOutput(`LOG SEVERITY=info MESSAGE="tunnel 1 opened"`) || !p.waitOutput(`MESSAGE="tunnel 1 closed after `) {
			t.Errorf("no tunnel open and close lines:\n%s", p.output())
		}
	}
}

// dialWS opens a WebSocket to addr with ws.Client.
func dialWS(t *testing.T, addr, path string, header http.Header) *ws.Conn {
	t.Helper()
	c, err := tryWS(addr, path, header)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func tryWS(addr, path string, header http.Header) (*ws.Conn, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c, err := ws.Client(conn, &url.URL{Scheme: "ws", Host: addr, Path: path}, &ws.Options{Header: header})
	if err != nil {
		conn.Close()
	}
	return c, err
}

// TestBadEnvironment checks the error line and exit status for environments tor should never
// give. (A bad server transport option is an SMETHOD-ERROR: see TestSmethodErrorStaysUp.)
func TestBadEnvironment(t *testing.T) {
	or := newExtOR(t)
	without := func(env []string, name string) []string {
		var out []string
		for _, e := range env {
			if !strings.HasPrefix(e, name+"=") {
				out = append(out, e)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name, program string
		env           []string
		line          string
	}{
		{"client no state", "websocket-client", without(clientEnv(t), "TOR_PT_STATE_LOCATION"), "ENV-ERROR TOR_PT_STATE_LOCATION must be set to an absolute path"},
		{"client version 2", "websocket-client", clientEnv(t, "TOR_PT_MANAGED_TRANSPORT_VER=2"), "VERSION-ERROR no-version"},
		{"client bad proxy", "websocket-client", clientEnv(t, "TOR_PT_PROXY=ftp://127.0.0.1:21"), `PROXY-ERROR TOR_PT_PROXY: unsupported proxy scheme "ftp" (want socks5, socks4a or http)`},
		{"server no state", "websocket-server", without(serverEnv(t, or), "TOR_PT_STATE_LOCATION"), "ENV-ERROR TOR_PT_STATE_LOCATION must be set to an absolute path"},
		{"server version 2", "websocket-server", serverEnv(t, or, "TOR_PT_MANAGED_TRANSPORT_VER=2"), "VERSION-ERROR no-version"},
		{"server no ORPort", "websocket-server", without(without(serverEnv(t, or), "TOR_PT_ORPORT"), "TOR_PT_EXTENDED_SERVER_PORT"), "ENV-ERROR neither TOR_PT_ORPORT nor TOR_PT_EXTENDED_SERVER_PORT is set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// "client version 2" sets the variable twice; the last one wins in exec.
			p := startProc(t, tc.program, tc.env)
			code, err := p.wait(waitLong)
			if err != nil || code != 1 {
				t.Errorf("exit status %d (%v), want 1", code, err)
			}
			if out := "\n" + p.output(); !strings.Contains(out, "\n"+tc.line+"\n") { // the whole line
				t.Errorf("output lacks %q:\n%s", tc.line, out)
			}
		})
	}
}

// TestTermination checks that closing stdin (with TOR_PT_EXIT_ON_STDIN_CLOSE=1) and SIGTERM
// end each program promptly, with status 0.
func TestTermination(t *testing.T) {
	or := newExtOR(t)
	for _, program := range []string{"websocket-client", "websocket-server"} {
		for _, how := range []string{"stdin", "SIGTERM"} {
			t.Run(program+" "+how, func(t *testing.T) {
				env := clientEnv(t)
				if program == "websocket-server" {
					env = serverEnv(t, or)
				}
				p := startProc(t, program, env)
				start := time.Now()
				if how == "stdin" {
					p.stdin.Close()
				} else {
					p.cmd.Process.Signal(syscall.SIGTERM)
				}
				code, err := p.wait(time.Second) // the bound; exits take a few ms here
				if err != nil || code != 0 {
					t.Fatalf("exit status %d (%v), want 0 within 1 s", code, err)
				}
				t.Logf("exited %v after %s", time.Since(start).Round(time.Millisecond), how)
			})
		}
	}
}

// TestInterruptDrains checks the first SIGINT: the listener closes, an open connection goes on,
// and the program exits when it ends.
func TestInterruptDrains(t *testing.T) {
	or, server, client := tunnel(t)
	conn, _ := socks5(t, client.addr, server.addr, "")
	oc := or.next(t)
	client.cmd.Process.Signal(syscall.SIGINT)
	server.cmd.Process.Signal(syscall.SIGINT)
	for deadline := time.Now().Add(waitLong); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", client.addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("client still accepts after SIGINT")
		}
	}
	if _, err := conn.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("still here"))
	if _, err := io.ReadFull(oc, buf); err != nil || string(buf) != "still here" {
		t.Fatalf("ORPort read %q, %v", buf, err)
	}
	select {
	case <-server.done:
		t.Fatal("server exited with a connection open")
	default:
	}
	conn.Close()
	oc.Close()
	for _, p := range []*proc{client, server} {
		if code, err := p.wait(waitLong); err != nil || code != 0 {
			t.Errorf("exit status %d (%v), want 0", code, err)
		}
	}
}

// TestUnsafeLogging checks that addresses appear in logs with -unsafe-logging (the cleanup of
// every other test checks that they do not appear without it), in LOG lines and in a -log file.
func TestUnsafeLogging(t *testing.T) {
	for _, unsafe := range []bool{false, true} {
		logFile := filepath.Join(t.TempDir(), "client.log")
		args := []string{"-log-level", "debug", "-log", logFile}
		if unsafe {
			args = append(args, "-unsafe-logging")
		}
		or, server, _ := tunnel(t)
		client := startProc(t, "websocket-client", clientEnv(t), args...)
		conn, _ := socks5(t, client.addr, server.addr, "")
		or.next(t)
		conn.Close()
		socks5(t, client.addr, closedAddr(t), "") // logs "connection refused" with the address
		p := startProc(t, "websocket-server", serverEnv(t, or), "-unsafe-logging")
		p.stdin.Close()
		p.wait(waitLong)
		client.stdin.Close()
		client.wait(waitLong)
		b, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(ownAddr.ReplaceAllString(string(b), ""), "127.0.0.1"); got != unsafe {
			t.Errorf("-unsafe-logging=%v: address in the log file: %v\n%s", unsafe, got, b)
		}
		if strings.Contains(client.output(), "LOG ") {
			t.Errorf("LOG lines on stdout despite -log:\n%s", client.output())
		}
		if !strings.Contains(ownAddr.ReplaceAllString(p.output(), ""), "127.0.0.1") {
			t.Errorf("no address in the server's LOG lines with -unsafe-logging:\n%s", p.output())
		}
	}
}

// startStandalone runs a program in standalone mode and waits until addr accepts connections.
func startStandalone(t *testing.T, name, addr string, args ...string) *proc {
	p := startProc(t, name, nil, append([]string{"-log-level", "debug"}, args...)...)
	for deadline := time.Now().Add(waitLong); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening:\n%s", name, p.output())
		}
	}
	p.addr = addr
	return p
}

// echoServer is a plain TCP echo server: an ORPort without the extended protocol.
func echoServer(t *testing.T) string {
	return serveLoopback(t, func(c net.Conn) { io.Copy(c, c); c.Close() }).Addr().String()
}

// TestStandalone runs both programs without tor: websocket-server in front of a plain ORPort
// with -path and -max-conns, websocket-client with -url.
func TestStandalone(t *testing.T) {
	serverAddr, clientAddr := closedAddr(t), closedAddr(t)
	startStandalone(t, "websocket-server", serverAddr, "-listen", serverAddr, "-orport", echoServer(t),
		"-path", "/ws", "-max-conns", "2")
	startStandalone(t, "websocket-client", clientAddr, "-listen", clientAddr, "-url", "ws://bridge.example/ws")

	conn, code := socks5(t, clientAddr, serverAddr, "")
	if code != 0 {
		t.Fatalf("SOCKS reply %d", code)
	}
	conn.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo %q, %v", buf, err)
	}

	// -path: anything else is an ordinary 404.
	resp, err := http.Get("http://" + serverAddr + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /other: %s, want 404", resp.Status)
	}
	if _, err := tryWS(serverAddr, "/", nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("WebSocket to /: %v, want a 404 error", err)
	}

	// -max-conns 2: the SOCKS connection and one more; a third gets 503.
	second := dialWS(t, serverAddr, "/ws", nil)
	if _, err := tryWS(serverAddr, "/ws", nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("third WebSocket: %v, want a 503 error", err)
	}
	second.Close()
	for deadline := time.Now().Add(waitLong); ; time.Sleep(50 * time.Millisecond) {
		c, err := tryWS(serverAddr, "/ws", nil)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after a connection closed: %v", err)
		}
	}
}

// TestTrustedProxy checks USERADDR behind a reverse proxy: X-Forwarded-For is believed only from
// a trusted proxy, and only up to the right-most untrusted address.
func TestTrustedProxy(t *testing.T) {
	or := newExtOR(t)
	for _, tc := range []struct {
		name, trusted, xff, want string
	}{
		{"untrusted peer", "", "198.51.100.7", "127.0.0.1:"},
		{"trusted peer", "127.0.0.0/8", "203.0.113.9, 198.51.100.7", "198.51.100.7"},
		{"trusted chain", "127.0.0.0/8,198.51.100.0/24", "203.0.113.9, 198.51.100.7", "203.0.113.9"},
		{"garbage", "127.0.0.0/8", "203.0.113.9, not-an-ip", "127.0.0.1:"},
		{"IPv6", "127.0.0.0/8", "2001:db8::7", "2001:db8::7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := closedAddr(t)
			args := []string{"-listen", addr, "-extorport", or.ln.Addr().String(), "-auth-cookie", or.cookieFile}
			if tc.trusted != "" {
				args = append(args, "-trusted-proxy", tc.trusted)
			}
			startStandalone(t, "websocket-server", addr, args...)
			dialWS(t, addr, "/", http.Header{"X-Forwarded-For": {tc.xff}})
			oc := or.next(t)
			if !strings.HasPrefix(oc.userAddr, tc.want) || (strings.HasSuffix(tc.want, ":") && strings.HasSuffix(oc.userAddr, ":0")) {
				t.Errorf("USERADDR %q, want %q...", oc.userAddr, tc.want)
			}
		})
	}
}

// TestWSS runs the tunnel over TLS: the server's certificate names only front.example; the
// client verifies it against SSL_CERT_FILE, with front= setting the TLS name apart from the
// URL's host (which is never resolved: the connection goes to the Bridge line's address).
func TestWSS(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, cert, key, "front.example")
	or := newExtOR(t)
	server := startProc(t, "websocket-server", serverEnv(t, or,
		"TOR_PT_SERVER_TRANSPORT_OPTIONS=websocket:tls-cert="+cert+";websocket:tls-key="+key))
	client := startProc(t, "websocket-client", clientEnv(t, "SSL_CERT_FILE="+cert), "-log-level", "debug")
	for _, tc := range []struct {
		args string
		code byte
	}{
		{"url=wss://front.example/", 0},
		{"url=wss://bridge.example/;front=front.example", 0},
		{"url=wss://bridge.example/", 1}, // the certificate does not name bridge.example
		{"url=ws://front.example/", 1},   // plain HTTP to a TLS server
	} {
		conn, code := socks5(t, client.addr, server.addr, tc.args)
		if code != tc.code {
			t.Errorf("%s: SOCKS reply %d, want %d", tc.args, code, tc.code)
		}
		if code == 0 {
			oc := or.next(t)
			conn.Write([]byte("over TLS"))
			buf := make([]byte, 8)
			if _, err := io.ReadFull(oc, buf); err != nil || string(buf) != "over TLS" {
				t.Errorf("%s: ORPort read %q, %v", tc.args, buf, err)
			}
		}
	}
	// The log says what failed without the names (the cleanup checks that none appears).
	if want := "TLS: the bridge's certificate is not valid for the url= host"; !client.waitOutput(want) {
		t.Errorf("no %q in the log:\n%s", want, client.output())
	}
}

// writeCert writes a self-signed certificate for name, valid for an hour either side of now,
// and its key.
func writeCert(t *testing.T, certFile, keyFile, name string) {
	writeCertDates(t, certFile, keyFile, name, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// TestCommandLine checks -version, -help and usage errors.
func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		program string
		args    []string
		code    int
		out     string
	}{
		{"websocket-client", []string{"-version"}, 0, "websocket-client dev\n"},
		{"websocket-server", []string{"-version"}, 0, "websocket-server dev\n"},
		{"websocket-client", []string{"-help"}, 0, ""},
		{"websocket-server", []string{"-h"}, 0, ""},
		{"websocket-client", []string{"-no-such-flag"}, 2, ""},
		{"websocket-client", []string{"-url", "http://bridge.example/"}, 2, ""},
		{"websocket-client", []string{"-log-level", "chatty"}, 2, ""},
		{"websocket-client", []string{"-proxy", "garbage"}, 2, ""},
		{"websocket-client", []string{"-proxy", "socks5://proxy.example:1080"}, 2, ""}, // a name: DNS outside the proxy
		{"websocket-server", []string{"-orport", "127.0.0.1:9"}, 2, ""},                // no -listen
		{"websocket-server", []string{"-listen", "127.0.0.1:0", "-extorport", "127.0.0.1:9"}, 2, ""},
		{"websocket-server", []string{"extra"}, 2, ""},
	} {
		cmd := exec.Command(program(tc.program), tc.args...)
		cmd.Env = []string{}
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || (tc.out != "" && stdout.String() != tc.out) {
			t.Errorf("%s %v: exit %d, stdout %q; want %d, %q", tc.program, tc.args, code, stdout.String(), tc.code, tc.out)
		}
		if tc.code != 0 && stdout.Len() > 0 {
			t.Errorf("%s %v: a usage error writes to stdout: %q", tc.program, tc.args, stdout.String())
		}
	}
}

// TestProxy checks TOR_PT_PROXY: websocket-client answers PROXY DONE and reaches the bridge
// through the proxy.
func TestProxy(t *testing.T) {
	proxy, targets := socksProxy(t)
	or, server, _ := tunnel(t)
	client := startProc(t, "websocket-client", clientEnv(t, "TOR_PT_PROXY=socks5://"+proxy), "-log-level", "debug")
	if !strings.Contains(client.output(), "\nPROXY DONE\n") {
		t.Errorf("no PROXY DONE line:\n%s", client.output())
	}
	conn, code := socks5(t, client.addr, server.addr, "")
	if code != 0 {
		t.Fatalf("SOCKS reply %d", code)
	}
	select {
	case target := <-targets:
		if target != server.addr {
			t.Errorf("the proxy was asked for %s, want %s", target, server.addr)
		}
	case <-time.After(waitLong):
		t.Fatal("the proxy saw no request")
	}
	oc := or.next(t)
	conn.Write([]byte("via proxy"))
	buf := make([]byte, 9)
	if _, err := io.ReadFull(oc, buf); err != nil || string(buf) != "via proxy" {
		t.Errorf("ORPort read %q, %v", buf, err)
	}
}

// socksProxy is a minimal SOCKS5 proxy (no authentication, CONNECT to an IPv4 address) standing
// for tor's TOR_PT_PROXY. It sends each target it is asked for on targets.
func socksProxy(t *testing.T) (addr string, targets chan string) {
	targets = make(chan string, 4)
	return serveLoopback(t, func(c net.Conn) {
		defer c.Close()
		// Greeting: version 5, NMETHODS, METHODS; answer version 5, method 0 (none).
		b := make([]byte, 255)
		if _, err := io.ReadFull(c, b[:2]); err != nil || b[0] != 5 {
			return
		}
		if _, err := io.ReadFull(c, b[:b[1]]); err != nil {
			return
		}
		c.Write([]byte{5, 0})
		// Request: version 5, CONNECT 1, reserved, ATYP 1, IPv4 address, port.
		if _, err := io.ReadFull(c, b[:10]); err != nil || !bytes.Equal(b[:4], []byte{5, 1, 0, 1}) {
			t.Errorf("proxy request % x", b[:10])
			return
		}
		target := net.JoinHostPort(net.IP(b[4:8]).String(), fmt.Sprint(int(b[8])<<8|int(b[9])))
		targets <- target
		d, err := net.Dial("tcp", target)
		if err != nil {
			c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
			return
		}
		defer d.Close()
		// Reply: version 5, succeeded, reserved, ATYP 1, bound address 0.0.0.0:0.
		c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
		go io.Copy(d, c)
		io.Copy(c, d)
	}).Addr().String(), targets
}

// TestHandshakeTimeout checks that websocket-server drops a connection that does not finish its
// request in time (idle connections once exhausted an earlier server's file descriptors).
func TestHandshakeTimeout(t *testing.T) {
	addr := closedAddr(t)
	startStandalone(t, "websocket-server", addr, "-listen", addr, "-orport", echoServer(t), "-handshake-timeout", "300ms")
	for _, sent := range []string{"", "GET / HTTP/1.1\r\nHost: bridge.example\r\n"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(sent))
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(waitLong))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Errorf("after %q: %v, want the server to close the connection", sent, err)
		}
		t.Logf("after %q: closed in %v, having sent %q", sent, time.Since(start).Round(time.Millisecond), b)
	}
}

// TestParentExit starts the programs from a shell that then exits, as "nohup websocket-server
// ... &" does. In standalone mode the program goes on; in managed mode the parent is tor, and
// the program exits with it.
func TestParentExit(t *testing.T) {
	or := newExtOR(t)
	for _, tc := range []struct {
		program string
		managed bool
	}{{"websocket-server", false}, {"websocket-client", false}, {"websocket-server", true}, {"websocket-client", true}} {
		t.Run(fmt.Sprintf("%s managed=%v", tc.program, tc.managed), func(t *testing.T) {
			addr := closedAddr(t)
			args := []string{"-listen", addr, "-orport", echoServer(t)}
			out := filepath.Join(t.TempDir(), "stdout")
			env := []string{"PT_OUT=" + out}
			switch {
			case tc.managed && tc.program == "websocket-server":
				args = nil
				env = serverEnv(t, or, "TOR_PT_SERVER_BINDADDR=websocket-"+addr, "TOR_PT_EXIT_ON_STDIN_CLOSE=0", env[0])
			case tc.managed: // the client listens where it likes: its CMETHOD line says where
				args = nil
				env = clientEnv(t, "TOR_PT_EXIT_ON_STDIN_CLOSE=0", env[0])
			case tc.program == "websocket-client":
				args = args[:2]
			}
			// The shell starts the program in the background, prints its pid, and exits when
			// its standard input closes.
			script := `"$0" "$@" </dev/null >"$PT_OUT" 2>&1 & echo $!; read x; exit 0`
			sh := exec.Command("sh", append([]string{"-c", script, program(tc.program)}, args...)...)
			sh.Env = env
			stdin, _ := sh.StdinPipe()
			stdout, _ := sh.StdoutPipe()
			if err := sh.Start(); err != nil {
				t.Fatal(err)
			}
			var pid int
			if _, err := fmt.Fscan(stdout, &pid); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if p, err := os.FindProcess(pid); err == nil {
					p.Kill()
				}
			})
			for deadline := time.Now().Add(waitLong); tc.managed && tc.program == "websocket-client"; time.Sleep(20 * time.Millisecond) {
				b, _ := os.ReadFile(out)
				if _, a, ok := strings.Cut(string(b), "CMETHOD websocket socks5 "); ok && strings.Contains(a, "\n") {
					addr, _, _ = strings.Cut(a, "\n")
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("no CMETHOD line:\n%s", b)
				}
			}
			listening := func() bool {
				c, err := net.Dial("tcp", addr)
				if err == nil {
					c.Close()
				}
				return err == nil
			}
			for deadline := time.Now().Add(waitLong); !listening(); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("not listening")
				}
			}
			stdin.Close()
			if err := sh.Wait(); err != nil {
				t.Fatal(err)
			}
			if !tc.managed {
				time.Sleep(3 * time.Second) // the parent is polled every second
				if !listening() {
					t.Fatal("exited with its parent in standalone mode")
				}
				return
			}
			for deadline := time.Now().Add(waitLong); listening(); time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("still running after its parent (tor) exited")
				}
			}
		})
	}
}

// TestSummaryOpenTunnel checks that the summary logged at SIGTERM counts the bytes of a tunnel
// still open (tor's connections last hours; they were once counted only when they ended).
func TestSummaryOpenTunnel(t *testing.T) {
	for _, program := range []string{"websocket-client", "websocket-server"} {
		t.Run(program, func(t *testing.T) {
			or, server, client := tunnel(t)
			conn, code := socks5(t, client.addr, server.addr, "")
			if code != 0 {
				t.Fatalf("SOCKS reply %d", code)
			}
			oc := or.next(t)
			conn.Write([]byte("12345"))
			if _, err := io.ReadFull(oc, make([]byte, 5)); err != nil {
				t.Fatal(err)
			}
			oc.Write([]byte("1234567"))
			if _, err := io.ReadFull(conn, make([]byte, 7)); err != nil {
				t.Fatal(err)
			}
			// Only one program ends: the other keeps the tunnel open until then.
			p, want := client, "summary: 1 connections, 5 bytes sent, 7 bytes received"
			if program == "websocket-server" {
				p, want = server, "summary: 1 connections, 7 bytes sent, 5 bytes received"
			}
			p.cmd.Process.Signal(syscall.SIGTERM)
			if code, err := p.wait(waitLong); err != nil || code != 0 {
				t.Errorf("exit status %d (%v), want 0", code, err)
			}
			if !strings.Contains(p.output(), want) {
				t.Errorf("no %q in the output:\n%s", want, p.output())
			}
			// The same figures reach tor as a STATUS line (managed mode).
			status := "STATUS TRANSPORT=websocket CONNECTIONS=1 BYTES_SENT=5 BYTES_RECEIVED=7"
			if program == "websocket-server" {
				status = "STATUS TRANSPORT=websocket CONNECTIONS=1 BYTES_SENT=7 BYTES_RECEIVED=5"
			}
			if !strings.Contains(p.output(), status+"\n") {
				t.Errorf("no %q in the output:\n%s", status, p.output())
			}
		})
	}
}

// TestServerOptionsFromTor checks two options tor passes in TOR_PT_SERVER_TRANSPORT_OPTIONS:
// max-message (a larger message is closed with 1009, and the server goes on serving) and
// base64=false (an offer of base64 gets no subprotocol).
func TestServerOptionsFromTor(t *testing.T) {
	or := newExtOR(t)
	server := startProc(t, "websocket-server", serverEnv(t, or,
		"TOR_PT_SERVER_TRANSPORT_OPTIONS=websocket:max-message=1024;websocket:base64=false"))
	c := dialWS(t, server.addr, "/", nil)
	c.SetDeadline(time.Now().Add(waitLong))
	oc := or.next(t)
	if _, err := c.Write(make([]byte, 1024)); err != nil { // at the limit: carried
		t.Fatal(err)
	}
	if _, err := io.ReadFull(oc, make([]byte, 1024)); err != nil {
		t.Fatalf("a message of max-message bytes: %v", err)
	}
	c.Write(make([]byte, 1025))
	_, err := c.Read(make([]byte, 1))
	var ce *ws.CloseError
	if !errors.As(err, &ce) || ce.Code != ws.CloseTooBig {
		t.Fatalf("after a message over max-message: %v, want close 1009", err)
	}
	conn, err := net.Dial("tcp", server.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b64, err := ws.Client(conn, &url.URL{Scheme: "ws", Host: server.addr, Path: "/"}, &ws.Options{Base64: true})
	if err != nil {
		t.Fatal(err)
	}
	if p := b64.Subprotocol(); p != "" {
		t.Fatalf("base64 offered to base64=false: protocol %q; want none", p)
	}
	or.next(t) // the tunnel is up: the test may end
	b64.Close()
}

// TestStalledPeers checks that a SOCKS client or a WebSocket client that connects and then
// sends nothing does not hold up anyone else: each handshake has its own goroutine and deadline.
func TestStalledPeers(t *testing.T) {
	or, server, client := tunnel(t)
	for _, addr := range []string{client.addr, server.addr} {
		for i := 0; i < 3; i++ {
			idle, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
		}
	}
	conn, code := socks5(t, client.addr, server.addr, "")
	if code != 0 {
		t.Fatalf("SOCKS reply %d while other peers stall", code)
	}
	oc := or.next(t)
	conn.Write([]byte("through"))
	if _, err := io.ReadFull(oc, make([]byte, 7)); err != nil {
		t.Fatal(err)
	}
}
