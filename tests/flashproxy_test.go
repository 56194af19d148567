package tests

// The flashproxy method of websocket-client: SOCKS requests paired with WebSockets from browser
// proxies, here proxies written in Go.

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/pt"
	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

// flashTarget is what tor asks for with "Bridge flashproxy 0.0.1.0:1": the method ignores it.
const flashTarget = "0.0.1.0:1"

// flashClient runs websocket-client standalone with the flashproxy method: SOCKS on socks,
// proxies connect to proxies.
func flashClient(t *testing.T, args ...string) (p *proc, socks, proxies string) {
	socks, proxies = closedAddr(t), closedAddr(t)
	p = startStandalone(t, "websocket-client", socks, append([]string{"-listen", socks, "-flashproxy-listen", proxies}, args...)...)
	return p, socks, proxies
}

// proxyConn is a test proxy's WebSocket to websocket-client, and the TCP connection under it.
type proxyConn struct {
	*ws.Conn
	tcp net.Conn
}

// dialProxy connects as a browser proxy does, to the client or to the bridge, offering base64
// if b64, and checks the answer.
func dialProxy(t *testing.T, addr string, b64 bool) proxyConn {
	t.Helper()
	tcp, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ws.Client(tcp, &url.URL{Scheme: "ws", Host: addr, Path: "/any/path"}, &ws.Options{Base64: b64})
	if err != nil {
		t.Fatal(err)
	}
	if b64 != (c.Subprotocol() == "base64") {
		t.Fatalf("subprotocol %q, offered base64: %v", c.Subprotocol(), b64)
	}
	t.Cleanup(func() { c.Close() })
	return proxyConn{c, tcp}
}

// synced sends a Ping and waits for its Pong: websocket-client has then read every frame sent
// before it.
func (p proxyConn) synced(t *testing.T) {
	t.Helper()
	// Ping: FIN + opcode 9, MASK bit + length 0, masking key 00 00 00 00.
	if _, err := p.tcp.Write([]byte{0x89, 0x80, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	// Pong: FIN + opcode 0xA, length 0, unmasked (read below the ws.Conn, which reads nothing now).
	pong := make([]byte, 2)
	p.tcp.SetReadDeadline(time.Now().Add(waitLong))
	defer p.tcp.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(p.tcp, pong); err != nil || !bytes.Equal(pong, []byte{0x8a, 0}) {
		t.Fatalf("Pong: % x, %v", pong, err)
	}
}

// relayProxy is a whole proxy: connected to the client, then to the bridge, copying both ways.
func relayProxy(t *testing.T, proxies, bridge string, b64 bool) {
	a, b := dialProxy(t, proxies, b64), dialProxy(t, bridge, b64) // the same WebSocket client
	go pt.Relay(a.Conn, b.Conn, pt.RelayOptions{})
}

// waitCount waits until s appears n times in p's output.
func waitCount(t *testing.T, p *proc, s string, n int) {
	t.Helper()
	for deadline := time.Now().Add(waitLong); strings.Count(p.output(), s) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%q logged %d times, want %d:\n%s", s, strings.Count(p.output(), s), n, p.output())
		}
	}
}

// readExactly reads len(want) bytes from c and compares them.
func readExactly(t *testing.T, c net.Conn, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(waitLong))
	defer c.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %q (%v), want %q", got[:min(len(got), 32)], err, want[:min(len(want), 32)])
	}
}

// TestFlashProxy carries 16 MiB each way from tor's SOCKS request through websocket-client, a
// proxy and websocket-server to an echoing Extended ORPort, as tor runs both programs.
func TestFlashProxy(t *testing.T) {
	for _, b64 := range []bool{false, true} {
		t.Run(map[bool]string{false: "binary", true: "base64"}[b64], func(t *testing.T) {
			or := newExtOR(t)
			server := startProc(t, "websocket-server", serverEnv(t, or), "-log-level", "debug")
			proxies := closedAddr(t)
			client := startProc(t, "websocket-client", clientEnv(t, "TOR_PT_CLIENT_TRANSPORTS=flashproxy"),
				"-log-level", "debug", "-flashproxy-listen", proxies)
			if !strings.Contains(client.output(), "CMETHOD flashproxy socks5 127.0.0.1:") {
				t.Fatalf("no flashproxy CMETHOD line:\n%s", client.output())
			}
			conn, answer := socks5Send(t, client.addr, flashTarget, "")
			waitCount(t, client, "a SOCKS request waits for a proxy", 1) // tor asks first: no reply yet
			relayProxy(t, proxies, server.addr, b64)
			if code := socks5Reply(t, conn, answer); code != 0 {
				t.Fatalf("SOCKS reply %d", code)
			}
			oc := or.next(t)
			if oc.transport != "websocket" {
				t.Errorf("TRANSPORT %q", oc.transport)
			}
			echoThrough(t, conn, oc, 16<<20)
		})
	}
}

// TestFlashProxyMethods checks the CMETHOD lines: both methods for "*", each on its own port,
// and no proxy listener unless flashproxy is asked for.
func TestFlashProxyMethods(t *testing.T) {
	proxies := closedAddr(t)
	both := startProc(t, "websocket-client", clientEnv(t, "TOR_PT_CLIENT_TRANSPORTS=*"), "-flashproxy-listen", proxies)
	lines := map[string]string{}
	for _, l := range strings.Split(both.output(), "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[0] == "CMETHOD" && f[2] == "socks5" {
			lines[f[1]] = f[3]
		}
	}
	if len(lines) != 2 || lines["websocket"] == lines["flashproxy"] || !strings.HasPrefix(lines["flashproxy"], "127.0.0.1:") {
		t.Errorf("CMETHOD lines %v, want websocket and flashproxy on two ports:\n%s", lines, both.output())
	}
	dialProxy(t, proxies, false) // the proxy listener is up

	other := closedAddr(t)
	one := startProc(t, "websocket-client", clientEnv(t), "-flashproxy-listen", other)
	if strings.Contains(one.output(), "flashproxy") {
		t.Errorf("flashproxy announced though tor asked for websocket only:\n%s", one.output())
	}
	if c, err := net.Dial("tcp", other); err == nil {
		c.Close()
		t.Error("a proxy listener without the flashproxy method")
	}
}

// TestFlashProxyFIFO pairs three SOCKS requests with three proxies, first in first out, when
// the requests come first and when the proxies do.
func TestFlashProxyFIFO(t *testing.T) {
	client, socks, proxies := flashClient(t, "-max-proxies-per-address", "3")
	paired := 0
	t.Run("requests first", func(t *testing.T) {
		var conns []net.Conn
		var answers [][]byte
		for i := range 3 {
			c, a := socks5Send(t, socks, flashTarget, "")
			conns, answers = append(conns, c), append(answers, a)
			waitCount(t, client, "a SOCKS request waits for a proxy", i+1)
		}
		var pcs []proxyConn
		for i := range 3 {
			pc := dialProxy(t, proxies, i == 1)
			pc.Write([]byte{'A' + byte(i)})
			paired++
			waitCount(t, client, "paired a proxy", paired)
			pcs = append(pcs, pc)
		}
		for i, c := range conns {
			if code := socks5Reply(t, c, answers[i]); code != 0 {
				t.Fatalf("request %d: SOCKS reply %d", i, code)
			}
			readExactly(t, c, []byte{'A' + byte(i)})
			c.Write([]byte{'a' + byte(i)})
			readExactly(t, pcs[i], []byte{'a' + byte(i)})
			c.Close() // tor's end first: the proxy's Close is then answered at once
		}
	})
	t.Run("proxies first", func(t *testing.T) {
		var pcs []proxyConn
		for i := range 3 {
			pc := dialProxy(t, proxies, i == 2)
			pc.Write([]byte{'X' + byte(i)})
			waitCount(t, client, "a proxy came (", 3+i+1)
			pcs = append(pcs, pc)
		}
		for i := range 3 {
			c, code := socks5(t, socks, flashTarget, "")
			if code != 0 {
				t.Fatalf("request %d: SOCKS reply %d", i, code)
			}
			readExactly(t, c, []byte{'X' + byte(i)})
			c.Write([]byte{'x' + byte(i)})
			readExactly(t, pcs[i], []byte{'x' + byte(i)})
			c.Close()
		}
	})
}

// closedWith waits for the client to close c and returns the status of its Close frame.
func closedWith(t *testing.T, c proxyConn) int {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitLong))
	_, err := io.ReadAll(c)
	var ce *ws.CloseError
	switch {
	case err == nil:
		return ws.CloseNormal
	case errors.As(err, &ce):
		return ce.Code
	}
	t.Fatalf("not closed: %v", err)
	return 0
}

// TestFlashProxyBounds hits each bound on what is unpaired, and checks that the client goes
// on pairing afterwards.
func TestFlashProxyBounds(t *testing.T) {
	t.Run("waiting proxies", func(t *testing.T) {
		client, socks, proxies := flashClient(t, "-max-waiting-proxies", "2")
		first := dialProxy(t, proxies, false)
		second := dialProxy(t, proxies, false)
		second.Write([]byte("second"))
		waitCount(t, client, "a proxy came (", 2)
		if code := closedWith(t, dialProxy(t, proxies, false)); code != 1013 {
			t.Errorf("third proxy closed with %d, want 1013 (try again later)", code)
		}
		waitCount(t, client, "a proxy was turned away: 2 proxies are already waiting", 1)
		first.Close()
		waitCount(t, client, "left before it was paired", 1)
		fourth := dialProxy(t, proxies, false)
		fourth.Write([]byte("fourth"))
		waitCount(t, client, "a proxy came (2 waiting)", 2)
		for _, want := range []string{"second", "fourth"} {
			c, code := socks5(t, socks, flashTarget, "")
			if code != 0 {
				t.Fatalf("SOCKS reply %d", code)
			}
			readExactly(t, c, []byte(want))
		}
	})
	t.Run("proxy wait", func(t *testing.T) {
		client, socks, proxies := flashClient(t, "-proxy-wait", "300ms")
		if code := closedWith(t, dialProxy(t, proxies, false)); code != ws.CloseNormal {
			t.Errorf("closed with %d", code)
		}
		waitCount(t, client, "a proxy waited 300ms unpaired (-proxy-wait)", 1)
		c, answer := socks5Send(t, socks, flashTarget, "")
		waitCount(t, client, "a SOCKS request waits", 1)
		pc := dialProxy(t, proxies, false)
		if code := socks5Reply(t, c, answer); code != 0 {
			t.Fatalf("SOCKS reply %d", code)
		}
		// A later proxy's wait ends, so more than 300 ms have passed: the paired one is not bound.
		closedWith(t, dialProxy(t, proxies, false))
		waitCount(t, client, "unpaired (-proxy-wait)", 2)
		pc.Write([]byte("still paired"))
		readExactly(t, c, []byte("still paired"))
	})
	t.Run("unpaired bytes", func(t *testing.T) {
		client, socks, proxies := flashClient(t, "-proxy-unpaired-bytes", "1000")
		over := dialProxy(t, proxies, true)
		over.Write(make([]byte, 600))
		over.Write(make([]byte, 401))
		if code := closedWith(t, over); code != ws.ClosePolicy {
			t.Errorf("closed with %d, want 1008 (policy violation)", code)
		}
		waitCount(t, client, "a proxy sent more than 1000 bytes before it was paired", 1)

		// 1000 bytes in three messages, all read while unpaired, reach tor after the reply.
		pre := make([]byte, 1000)
		rand.Read(pre)
		pc := dialProxy(t, proxies, true)
		for _, part := range [][]byte{pre[:1], pre[1:600], pre[600:]} {
			pc.Write(part)
		}
		pc.synced(t)
		c, code := socks5(t, socks, flashTarget, "")
		if code != 0 {
			t.Fatalf("SOCKS reply %d", code)
		}
		waitCount(t, client, "paired a proxy (1000 bytes it sent while waiting", 1)
		pc.Write([]byte("after"))
		readExactly(t, c, append(pre, "after"...))
	})
	t.Run("socks wait", func(t *testing.T) {
		client, socks, proxies := flashClient(t, "-socks-wait", "300ms")
		c, code := socks5(t, socks, flashTarget, "")
		if code != 6 { // TTL expired: what the SOCKS5 reply has for a timeout
			t.Errorf("SOCKS reply %d, want 6", code)
		}
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("connection open after a failure reply")
		}
		waitCount(t, client, "no proxy came within 300ms (-socks-wait)", 1)
		pc := dialProxy(t, proxies, false)
		pc.Write([]byte("late proxy"))
		c, code = socks5(t, socks, flashTarget, "")
		if code != 0 {
			t.Fatalf("SOCKS reply %d after a proxy came", code)
		}
		readExactly(t, c, []byte("late proxy"))
	})
}

// facilitator is a test facilitator: it sends each registration's body on bodies and answers
// with status.
func facilitator(t *testing.T, status int) (string, chan string) {
	bodies := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("registration: %s with %q", r.Method, r.Header.Get("Content-Type"))
		}
		bodies <- string(b)
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/register", bodies
}

func nextBody(t *testing.T, bodies chan string) string {
	t.Helper()
	select {
	case b := <-bodies:
		return b
	case <-time.After(waitLong):
		t.Fatal("no registration")
		return ""
	}
}

// TestFlashProxyRegister checks the registrations a facilitator receives: at start and when tor
// asks while few proxies wait, through the outgoing proxy, with exactly the historical body.
func TestFlashProxyRegister(t *testing.T) {
	fac, bodies := facilitator(t, http.StatusOK)
	socksProxyAddr, targets := socksProxy(t)
	client, socks, proxies := flashClient(t, "-register", fac, "-register-interval", "100ms",
		"-proxy", "socks5://"+socksProxyAddr)
	_, port, _ := net.SplitHostPort(proxies)
	want := "client=%3A" + port + "&client-transport=websocket"
	if b := nextBody(t, bodies); b != want {
		t.Errorf("registration %q, want %q", b, want)
	}
	if target := <-targets; "http://"+target+"/register" != fac {
		t.Errorf("the outgoing proxy was asked for %s, facilitator %s", target, fac)
	}
	// tor asks and no proxy waits: register again, once the interval has passed.
	for deadline := time.Now().Add(waitLong); len(bodies) == 0; time.Sleep(150 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no registration when tor asked:\n%s", client.output())
		}
		socks5Send(t, socks, flashTarget, "")
	}
	if b := nextBody(t, bodies); b != want {
		t.Errorf("second registration %q", b)
	}

	// -register-addr: the address the facilitator gives proxies, e.g. that of a port forward.
	_, _, _ = flashClient(t, "-register", fac, "-register-addr", "127.0.0.2:7000")
	if b := nextBody(t, bodies); b != "client=127.0.0.2%3A7000&client-transport=websocket" {
		t.Errorf("registration %q with -register-addr", b)
	}

	// A facilitator that fails is a warning; pairing goes on.
	bad, badBodies := facilitator(t, http.StatusServiceUnavailable)
	client, socks, proxies = flashClient(t, "-register", bad)
	nextBody(t, badBodies)
	waitCount(t, client, "[warning] registering with the facilitator: 503", 1)
	dialProxy(t, proxies, false).Write([]byte("ok"))
	c, code := socks5(t, socks, flashTarget, "")
	if code != 0 {
		t.Fatalf("SOCKS reply %d", code)
	}
	readExactly(t, c, []byte("ok"))
}

// TestFlashProxyInterrupt checks that a first SIGINT stops accepting proxies too, while a
// paired one goes on.
func TestFlashProxyInterrupt(t *testing.T) {
	client, socks, proxies := flashClient(t)
	pc := dialProxy(t, proxies, false)
	c, code := socks5(t, socks, flashTarget, "")
	if code != 0 {
		t.Fatalf("SOCKS reply %d", code)
	}
	client.cmd.Process.Signal(os.Interrupt)
	for deadline := time.Now().Add(waitLong); ; time.Sleep(20 * time.Millisecond) {
		conn, err := net.Dial("tcp", proxies)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting proxies after SIGINT")
		}
	}
	pc.Write([]byte("draining"))
	readExactly(t, c, []byte("draining"))
}

// TestFlashProxySetupErrors checks that bad flashproxy settings stop the program with advice.
func TestFlashProxySetupErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"-max-waiting-proxies", "0"}, "-max-waiting-proxies, -max-proxies-per-address, -max-proxy-conns, -proxy-wait, -proxy-answer-wait and -socks-wait must be positive"},
		{[]string{"-socks-wait", "-1s"}, "-socks-wait must be positive"},
		{[]string{"-max-proxies-per-address", "0"}, "-max-proxies-per-address, -max-proxy-conns"},
		{[]string{"-max-proxy-conns", "-1"}, "-max-proxy-conns, -proxy-wait"},
		{[]string{"-proxy-answer-wait", "0s"}, "-proxy-answer-wait and"},
		{[]string{"-register", "facilitator.example/register"}, "-register wants an http:// or https:// URL"},
	} {
		p := startProc(t, "websocket-client", nil, append([]string{"-listen", closedAddr(t),
			"-flashproxy-listen", closedAddr(t)}, tc.args...)...)
		if code, err := p.wait(waitLong); code != 1 || err != nil || !strings.Contains(p.output(), tc.says) {
			t.Errorf("%v: exit %d (%v), want 1 and a line saying %q:\n%s", tc.args, code, err, tc.says, p.output())
		}
	}
}

// dialProxyFrom connects a test proxy from the loopback address ip (127.0.0.2: another host).
func dialProxyFrom(ip, addr string) (*ws.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: waitLong}
	tcp, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c, err := ws.Client(tcp, &url.URL{Scheme: "ws", Host: addr, Path: "/"}, &ws.Options{})
	if err != nil {
		tcp.Close()
	}
	return c, err
}

// socksRequest is tor's SOCKS5 request without the test's helpers (which stop the test: not
// from a goroutine); it returns the connection once granted.
func socksRequest(socks string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", socks, waitLong)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(waitLong))
	c.Write([]byte{5, 1, 0, 5, 1, 0, 1, 0, 0, 1, 0, 0, 1}) // no auth; CONNECT 0.0.1.0:1
	reply := make([]byte, 12)
	if _, err = io.ReadFull(c, reply); err == nil && reply[3] != 0 {
		err = fmt.Errorf("SOCKS reply %d", reply[3])
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// TestFlashProxySquatters runs 10 hostile proxies from 127.0.0.2 that reconnect as soon as they
// are turned away or closed, and relay nothing, against one real proxy from 127.0.0.1 that keeps
// one connection waiting; tor's 3 requests, each retried as soon as it fails, must all be served
// (an answer from the bridge) within 2 minutes.
func TestFlashProxySquatters(t *testing.T) {
	if testing.Short() {
		t.Skip("takes several -proxy-answer-wait periods")
	}
	client, socks, proxies := flashClient(t, "-proxy-answer-wait", "3s", "-log-level", "info")
	stop := make(chan struct{})
	defer close(stop)
	var squats, squatPaired atomic.Int64
	for range 10 {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := dialProxyFrom("127.0.0.2", proxies)
				if err != nil {
					continue
				}
				squats.Add(1)
				if n, _ := io.Copy(io.Discard, c); n > 0 {
					squatPaired.Add(1) // it read tor's bytes, and relayed nothing
				}
				c.Close()
			}
		}()
	}
	// The real proxy echoes, as a bridge answers; once paired, it connects again at once.
	var real func()
	real = func() {
		c, err := dialProxyFrom("127.0.0.1", proxies)
		if err != nil {
			select {
			case <-stop:
			default:
				time.AfterFunc(100*time.Millisecond, real) // turned away: try again, as proxy.js does
			}
			return
		}
		defer c.Close()
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			go real()
			return
		}
		go real()
		c.Write(buf[:n])
		io.Copy(c, c)
	}
	go real()

	start := time.Now()
	served, tries := make(chan time.Duration, 3), atomic.Int64{}
	for i := range 3 {
		go func() {
			hello := []byte(fmt.Sprintf("tor %d", i))
			for time.Since(start) < 2*time.Minute {
				tries.Add(1)
				c, err := socksRequest(socks)
				if err != nil {
					continue
				}
				c.Write(hello)
				got := make([]byte, len(hello))
				c.SetReadDeadline(time.Now().Add(waitLong))
				_, err = io.ReadFull(c, got)
				c.Close()
				if err == nil && bytes.Equal(got, hello) {
					served <- time.Since(start)
					return
				}
			}
		}()
	}
	for i := range 3 {
		select {
		case d := <-served:
			t.Logf("request %d served after %v", i+1, d.Round(time.Millisecond))
		case <-time.After(2*time.Minute - time.Since(start)):
			t.Fatalf("%d of 3 requests served within 2 minutes (%d SOCKS requests, %d squatter connections):\n%s",
				i, tries.Load(), squats.Load(), client.output())
		}
	}
	t.Logf("%d SOCKS requests; %d squatter connections, %d of them paired", tries.Load(), squats.Load(), squatPaired.Load())
}

// TestFlashProxyPerAddress checks -max-proxies-per-address: it counts proxies waiting and
// proxies paired that have not yet relayed from the bridge (-proxy-answer-wait closes those).
func TestFlashProxyPerAddress(t *testing.T) {
	client, socks, proxies := flashClient(t, "-proxy-answer-wait", "500ms")
	silent := dialProxy(t, proxies, false)
	c, code := socks5(t, socks, flashTarget, "")
	if code != 0 {
		t.Fatalf("SOCKS reply %d", code)
	}
	answering := dialProxy(t, proxies, false)
	waitCount(t, client, "a proxy came (1 waiting)", 2)
	if code := closedWith(t, dialProxy(t, proxies, false)); code != 1013 {
		t.Errorf("third proxy of 127.0.0.1 closed with %d, want 1013 (try again later)", code)
	}
	waitCount(t, client, "2 proxies of its address wait or have not relayed from the bridge yet (-max-proxies-per-address)", 1)
	other, err := dialProxyFrom("127.0.0.2", proxies)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	waitCount(t, client, "a proxy came (2 waiting)", 1)

	// The silent proxy is closed with 1008 and tor's connection with it; its place is free.
	if code := closedWith(t, silent); code != ws.ClosePolicy {
		t.Errorf("a silent proxy closed with %d, want 1008", code)
	}
	c.SetReadDeadline(time.Now().Add(waitLong))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("tor's connection still open (read %d bytes)", n)
	}
	waitCount(t, client, "a paired proxy relayed nothing from the bridge within 500ms (-proxy-answer-wait)", 1)
	dialProxy(t, proxies, false)
	waitCount(t, client, "a proxy came (3 waiting)", 1)

	// A proxy that answered is not bound, however long the tunnel then stays idle: here longer
	// than it takes to close the next silent one.
	c, code = socks5(t, socks, flashTarget, "")
	if code != 0 {
		t.Fatalf("SOCKS reply %d", code)
	}
	answering.Write([]byte("answer"))
	readExactly(t, c, []byte("answer"))
	if _, code := socks5(t, socks, flashTarget, ""); code != 0 { // paired with the silent other
		t.Fatalf("SOCKS reply %d", code)
	}
	waitCount(t, client, "a paired proxy relayed nothing from the bridge within 500ms (-proxy-answer-wait)", 2)
	answering.Write([]byte("still paired"))
	readExactly(t, c, []byte("still paired"))
}

// TestFlashProxyConnLimit floods the proxy port with 5,000 sockets that send nothing while the
// client may open 1,024 descriptors: -max-proxy-conns (default 256) leaves tor's SOCKS request
// the descriptors it needs, and it is paired with the proxy that waited before the flood.
func TestFlashProxyConnLimit(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("prlimit and /proc are Linux's")
	}
	client, socks, proxies := flashClient(t)
	if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(client.cmd.Process.Pid), "--nofile=1024:1024").CombinedOutput(); err != nil {
		t.Skipf("prlimit: %v %s", err, out)
	}
	pc := dialProxy(t, proxies, false)
	pc.Write([]byte("through the flood"))
	waitCount(t, client, "a proxy came (1 waiting)", 1)
	start := time.Now()
	flood := make(chan net.Conn, 5000)
	for range cap(flood) {
		go func() {
			c, _ := net.DialTimeout("tcp", proxies, 5*time.Second) // beyond the kernel's backlog: nil
			flood <- c
		}()
	}
	opened := 0
	for range cap(flood) {
		if c := <-flood; c != nil {
			opened++
			defer c.Close()
		}
	}
	fds := func() int { d, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", client.cmd.Process.Pid)); return len(d) }
	for deadline := time.Now().Add(waitLong); fds() < 256; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the client holds %d descriptors", fds())
		}
	}
	t.Logf("%d idle sockets of 5000 opened in %v; the client holds %d descriptors", opened, time.Since(start).Round(time.Millisecond), fds())
	start = time.Now()
	c, answer := socks5Send(t, socks, flashTarget, "")
	if code := socks5Reply(t, c, answer); code != 0 {
		t.Fatalf("SOCKS reply %d", code)
	}
	readExactly(t, c, []byte("through the flood"))
	took := time.Since(start)
	t.Logf("tor's request served in %v during the flood, %d descriptors", took.Round(time.Millisecond), fds())
	if took > 5*time.Second { // the flood is cut after 10 s (handshake timeout)
		t.Errorf("tor's request waited %v", took)
	}
	if strings.Contains(client.output(), "too many open files") {
		t.Errorf("the client ran out of descriptors:\n%s", client.output())
	}
}

// TestFlashProxyAbandoned checks that SOCKS requests that tor gave up on while they waited are
// dropped, and the next proxy goes to the next live request.
func TestFlashProxyAbandoned(t *testing.T) {
	client, socks, proxies := flashClient(t)
	for i := range 3 {
		c, _ := socks5Send(t, socks, flashTarget, "")
		waitCount(t, client, "a SOCKS request waits for a proxy", i+1)
		c.Close()
	}
	waitCount(t, client, "tor closed the SOCKS connection while it waited for a proxy", 3)
	for _, want := range []string{"first", "second"} {
		dialProxy(t, proxies, false).Write([]byte(want))
		c, code := socks5(t, socks, flashTarget, "")
		if code != 0 {
			t.Fatalf("SOCKS reply %d", code)
		}
		readExactly(t, c, []byte(want))
	}
}

// TestFlashProxySocksWaitRace sends proxies that leave as they come (the request after the
// WebSocket handshake, then a Close) around the time -socks-wait runs out: however the
// expiry and an unusable proxy meet, tor's request gets its failure reply in time.
func TestFlashProxySocksWaitRace(t *testing.T) {
	_, socks, proxies := flashClient(t, "-socks-wait", "100ms", "-max-waiting-proxies", "1000",
		"-max-proxies-per-address", "1000", "-log-level", "info")
	leaving := []byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" +
		"\x88\x80\x00\x00\x00\x00") // Close, masked with a zero key
	for round := range 5 {
		start, came := time.Now(), atomic.Int64{}
		c, answer := socks5Send(t, socks, flashTarget, "")
		burst := time.Now().Add(400 * time.Millisecond)
		done := make(chan struct{})
		for range 20 {
			go func() {
				defer func() { done <- struct{}{} }()
				for time.Now().Before(burst) {
					if pc, err := net.Dial("tcp", proxies); err == nil {
						came.Add(1)
						pc.Write(leaving)
						defer pc.Close()
					}
				}
			}()
		}
		for range 20 {
			<-done
		}
		if code := socks5Reply(t, c, answer); code != 6 || time.Since(start) > 3*time.Second {
			t.Fatalf("round %d: SOCKS reply %d after %v, want 6 once the leaving proxies stop", round, code, time.Since(start))
		}
		t.Logf("round %d: %d leaving proxies in 400 ms; the failure reply read %v after the request", round, came.Load(), time.Since(start).Round(time.Millisecond))
	}
}

// TestFlashProxyRegisterRedirect checks that a registration carries nothing but what the
// facilitator needs, and that a redirect is not followed but logged as a warning.
func TestFlashProxyRegisterRedirect(t *testing.T) {
	elsewhere := make(chan string, 16)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere <- r.Method
	}))
	defer other.Close()
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusFound} {
		headers := make(chan http.Header, 16)
		fac := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			r.Header.Set("Body", string(b))
			headers <- r.Header
			http.Redirect(w, r, other.URL+"/register", status)
		}))
		defer fac.Close()
		client, _, proxies := flashClient(t, "-register", fac.URL+"/register")
		var h http.Header
		select {
		case h = <-headers:
		case <-time.After(waitLong):
			t.Fatal("no registration")
		}
		_, port, _ := net.SplitHostPort(proxies)
		if b := h.Get("Body"); b != "client=%3A"+port+"&client-transport=websocket" {
			t.Errorf("body %q", b)
		}
		h.Del("Body")
		for k := range h {
			if k != "Content-Type" && k != "Content-Length" && k != "Connection" { // close: one request a connection
				t.Errorf("header %s: %q", k, h.Get(k))
			}
		}
		waitCount(t, client, fmt.Sprintf("[warning] registering with the facilitator: %d", status), 1)
		select {
		case m := <-elsewhere:
			t.Errorf("a %d was followed: %s to the other host", status, m)
		default:
		}
	}
}

// TestFlashProxyTornMessage: a proxy that disconnects in the middle of a frame leaves tor with a
// reset after the partial message, never the clean EOF that would pass it for a whole stream.
func TestFlashProxyTornMessage(t *testing.T) {
	_, socks, proxies := flashClient(t)
	p := dialProxy(t, proxies, false)
	conn, err := socksRequest(socks)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// FIN + binary, MASK bit + length 100, masking key 00 00 00 00, then 10 of the 100 bytes.
	p.tcp.Write(append([]byte{0x82, 0x80 | 100, 0, 0, 0, 0}, "0123456789"...))
	p.tcp.Close() // a FIN after the partial frame
	conn.SetReadDeadline(time.Now().Add(waitLong))
	got, err := io.ReadAll(conn)
	if !errors.Is(err, syscall.ECONNRESET) || !strings.HasPrefix("0123456789", string(got)) {
		t.Fatalf("after the torn message tor read %q, %v; want at most its first bytes, then a reset", got, err)
	}
}
