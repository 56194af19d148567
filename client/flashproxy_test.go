package main

import (
	"flag"
	"io"
	"net"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/pt"
	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

// startFlash starts the flashproxy method's proxy listener on loopback with args, dialing the
// bridge with dialer.
func startFlash(t *testing.T, dialer *pt.Dialer, args ...string) *flash {
	log, err := pt.NewLogger(nil, io.Discard, "error", false)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{dialer: dialer, log: log}
	c.flash = &flash{c: c}
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	c.flash.flags(fs)
	if err := fs.Parse(append([]string{"-flashproxy-listen", "127.0.0.1:0"}, args...)); err != nil {
		t.Fatal(err)
	}
	if err := c.flash.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.flash.server.Close() })
	return c.flash
}

// poll calls cond until it holds, for 10 s at most.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
	}
}

// A proxy handed to a SOCKS request whose tor has just closed it is not spent on that request:
// it goes back, first in line, still waiting, and the next request gets it. The race is made
// certain: the request's wait has ended (tor left) and it is blocked on the lock when the proxy
// is handed to it, as match does.
func TestPairTorLeftAsProxyCame(t *testing.T) {
	f := startFlash(t, &pt.Dialer{})
	addr := "127.0.0.1" + f.regAddr // ":PORT" of the proxy listener
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := ws.Client(conn, &url.URL{Scheme: "ws", Host: addr, Path: "/"}, &ws.Options{Base64: true}); err != nil {
		t.Fatal(err)
	}
	var p *proxy
	poll(t, "the proxy queued", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.proxies) == 1 {
			p, f.proxies = f.proxies[0], nil // kept from the request until the race is set up
		}
		return p != nil
	})

	tor, local := tcpPair(t)
	type result struct {
		conn *ws.Conn
		err  error
	}
	paired := make(chan result, 1)
	go func() {
		c, err := f.pair(&pt.SocksConn{Conn: local})
		paired <- result{c, err}
	}()
	poll(t, "the request queued", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.requests) == 1
	})
	f.mu.Lock()
	tor.Close()
	poll(t, "the request's wait ended by tor's close", func() bool {
		return blockedIn("client.dequeue[", "client.(*flash).pair(")
	})
	f.requests[0] <- p // what match does
	f.silent = append(f.silent, p)
	f.requests = f.requests[1:]
	f.mu.Unlock()

	select {
	case r := <-paired:
		if r.err == nil || r.conn != nil {
			t.Fatalf("pair after tor left: a proxy %v, error %v; want no proxy and an error", r.conn != nil, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pair did not return within 10 s")
	}
	f.mu.Lock()
	first := len(f.proxies) > 0 && f.proxies[0] == p
	f.mu.Unlock()
	if !first {
		t.Fatal("the proxy is not back first in line")
	}
	_, local2 := tcpPair(t)
	go func() {
		c, err := f.pair(&pt.SocksConn{Conn: local2})
		paired <- result{c, err}
	}()
	select {
	case r := <-paired:
		if r.err != nil || r.conn != p.conn {
			t.Fatalf("the next request got the proxy: %v, error %v; want it", r.conn == p.conn, r.err)
		}
		conn.Close() // the proxy's end first, so that the Close below need not wait for an answer
		r.conn.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the next request got no proxy within 10 s")
	}
}

// blockedIn reports whether a goroutine is waiting for a lock in a call to fn from caller.
func blockedIn(fn, caller string) bool {
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "sync.(*Mutex).Lock") && strings.Contains(g, fn) && strings.Contains(g, caller) {
			return true
		}
	}
	return false
}

// tcpPair returns both ends of a loopback TCP connection, closed at the end of the test.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}
