package tests

// End-to-end tests of the steady-state bounds (issue 10) with the real websocket-server: a
// tunnel whose peer stops reading is cut after -stall-timeout and its -max-conns slot comes
// back; a tunnel whose other direction does not end is cut after -half-close-timeout; a peer's
// clean Close is answered within the close timeout (2 s) while tor keeps its end open. The
// Linux-only tests (socket options set before connect, /proc) are in steady_linux_test.go.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

// closeTimeout is ws.Options.CloseTimeout's default, which both programs use: the longest a
// closing handshake waits for a silent peer before the TCP connection is closed.
const closeTimeout = 2 * time.Second

// plainORPort is a plain ORPort (websocket-server -orport) that hands every connection to the
// test on conns, which holds n before the ORPort's handlers block.
func plainORPort(t *testing.T, n int) (addr string, conns chan *net.TCPConn) {
	conns = make(chan *net.TCPConn, n)
	ln := serveLoopback(t, func(c net.Conn) { conns <- c.(*net.TCPConn) })
	return ln.Addr().String(), conns
}

// nextOR returns the ORPort's next connection, closed when the test ends.
func nextOR(t *testing.T, conns chan *net.TCPConn) *net.TCPConn {
	t.Helper()
	select {
	case c := <-conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(waitLong):
		t.Fatal("no connection reached the ORPort")
		return nil
	}
}

// patternLen is a multiple of 251, so that writes of a pattern buffer continue the sequence
// "byte i is i%251" (a prime, so that a lost or repeated 2^k-sized block shows).
const patternLen = 251 << 7

func pattern() []byte {
	b := make([]byte, patternLen)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// download is the ORPort's side of a tunnel whose peer may not read: it writes the pattern until
// a write fails or limit bytes are out, then keeps its connection open; and it reads, so that it
// sees the server close the connection (the peers of these tests send nothing once the download
// starts, so a read that returns is an EOF or a reset).
type download struct {
	written atomic.Int64
	closed  chan struct{} // the server closed the connection
	at      time.Time     // when closed was closed
}

func startDownload(c *net.TCPConn, limit int64) *download {
	d := &download{closed: make(chan struct{})}
	go func() {
		io.Copy(io.Discard, c)
		d.at = time.Now()
		close(d.closed)
	}()
	go func() {
		buf := pattern()
		for d.written.Load() < limit {
			n, err := c.Write(buf)
			d.written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	return d
}

// waitClosed waits until the server has closed the download's connection.
func (d *download) waitClosed(t *testing.T, what string) {
	t.Helper()
	select {
	case <-d.closed:
	case <-time.After(waitLong):
		t.Fatalf("%s: the server did not close the ORPort connection within %v (%d bytes written)",
			what, waitLong, d.written.Load())
	}
}

// smallBufferPeer opens a WebSocket to addr over a TCP connection whose receive buffer is
// set to rcvbuf before any data crosses, and returns it with that connection.
func smallBufferPeer(addr string, rcvbuf int) (*ws.Conn, net.Conn, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if err := conn.(*net.TCPConn).SetReadBuffer(rcvbuf); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return upgradeOver(conn, addr)
}

// upgradeOver opens a WebSocket to addr over conn, which it closes on failure.
func upgradeOver(conn net.Conn, addr string) (*ws.Conn, net.Conn, error) {
	c, err := ws.Client(conn, &url.URL{Scheme: "ws", Host: addr, Path: "/"}, nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return c, conn, nil
}

// countLines counts the lines of s that match re.
func countLines(s string, re *regexp.Regexp) int {
	n := 0
	for _, line := range strings.Split(s, "\n") {
		if re.MatchString(line) {
			n++
		}
	}
	return n
}

// waitLines waits until n lines of p's output match re, and returns false if they do not
// within waitLong.
func waitLines(p *proc, re *regexp.Regexp, n int) bool {
	for deadline := time.Now().Add(waitLong); countLines(p.output(), re) < n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

var (
	stallClosed     = regexp.MustCompile(`tunnel \d+ closed after .*: .*\(stall timeout\)`)
	halfCloseClosed = regexp.MustCompile(`tunnel \d+ closed after .*: .*\(half-close timeout\)`)
)

// echoOnce checks that a new tunnel through c carries data both ways: oc echoes what the
// peer sends.
func echoOnce(t *testing.T, c *ws.Conn, oc *net.TCPConn) {
	t.Helper()
	go io.Copy(oc, oc)
	c.SetDeadline(time.Now().Add(waitLong))
	msg := bytes.Repeat([]byte("both ways "), 6553) // 64 KiB less 6 bytes: two frames
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("writing through the new tunnel: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through the new tunnel: %v (equal: %v)", err, bytes.Equal(got, msg))
	}
}

// TestStalledReaderCut fills -max-conns with two WebSocket peers that download and stop
// reading: the server must cut both after -stall-timeout (the ORPort sees its connections
// closed, the log names the stall timeout), and a third peer must then get a working tunnel.
func TestStalledReaderCut(t *testing.T) {
	orAddr, conns := plainORPort(t, 4)
	addr := closedAddr(t)
	const stall = time.Second
	server := startStandalone(t, "websocket-server", addr, "-listen", addr, "-orport", orAddr,
		"-max-conns", "2", "-stall-timeout", stall.String())

	var ors [2]*net.TCPConn
	for i := range ors {
		// A 4 KiB receive buffer (set before the handshake) keeps what the kernels buffer small.
		_, raw, err := smallBufferPeer(addr, 4<<10)
		if err != nil {
			t.Fatalf("peer %d: %v", i, err)
		}
		defer raw.Close() // never read: the peer holds its end open and takes nothing
		ors[i] = nextOR(t, conns)
	}
	// Both slots are taken: a third peer is refused (before any download, so before any bound).
	if _, err := tryWS(addr, "/", nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("third WebSocket while two tunnels hold: %v, want a 503 error", err)
	}

	// Each ORPort connection sends far more than the buffers between it and the peer hold (the
	// server's send buffer grows to 4 MiB on Linux): the server's writes to the peers block.
	start := time.Now()
	var downloads [2]*download
	for i, oc := range ors {
		downloads[i] = startDownload(oc, 64<<20)
	}
	for i, d := range downloads {
		d.waitClosed(t, fmt.Sprintf("peer %d", i))
		if took := d.at.Sub(start); took < stall {
			t.Errorf("peer %d cut %v after its download began, before the stall bound %v", i, took, stall)
		} else {
			t.Logf("peer %d: the ORPort connection was closed %v after the download began (%d bytes written)",
				i, took.Round(time.Millisecond), d.written.Load())
		}
	}
	if !waitLines(server, stallClosed, 2) {
		t.Fatalf("want two \"tunnel N closed ... (stall timeout)\" lines in the log:\n%s", server.output())
	}

	// The slots come back: poll until a handshake succeeds (the server frees a slot just after
	// logging the tunnel's end), then check that the tunnel works.
	var c *ws.Conn
	for deadline := time.Now().Add(waitLong); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if c, err = tryWS(addr, "/", nil); err == nil {
			defer c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot came back after the stalled tunnels were cut: %v", err)
		}
	}
	echoOnce(t, c, nextOR(t, conns))
}

// TestSilentPeerHalfClose: a peer upgrades and then goes silent (it reads nothing and never
// answers a Close) while tor closes its ORPort connection. The server sends its Close at once,
// and must close the TCP connection after -half-close-timeout plus at most the close timeout,
// logging the tunnel's end with the half-close cause.
func TestSilentPeerHalfClose(t *testing.T) {
	orAddr, conns := plainORPort(t, 1)
	addr := closedAddr(t)
	const halfClose = time.Second
	server := startStandalone(t, "websocket-server", addr, "-listen", addr, "-orport", orAddr,
		"-half-close-timeout", halfClose.String())
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// ws.Client has read nothing past the 101 answer: the server sends nothing before tor does.
	if _, _, err := upgradeOver(conn, addr); err != nil {
		t.Fatal(err)
	}
	oc := nextOR(t, conns)

	start := time.Now()
	oc.Close() // tor's side ends
	// From now on the peer reads the raw TCP stream (a ws.Conn's Read would answer the Close).
	conn.SetReadDeadline(time.Now().Add(waitLong))
	got, err := io.ReadAll(conn)
	took := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server did not close the connection within %v; read % x", waitLong, got)
	}
	// err is nil for a FIN, or a reset: both end the connection.
	// Close frame, unmasked (from the server): FIN+opcode 8, length 2, status 1000 (03 e8).
	if want := []byte{0x88, 0x02, 0x03, 0xe8}; !bytes.Equal(got, want) {
		t.Errorf("the silent peer received % x, want the server's Close % x", got, want)
	}
	if limit := halfClose + closeTimeout + 2*time.Second; took < halfClose || took > limit {
		t.Errorf("connection closed %v after tor's side ended (%v), want between the half-close bound %v and %v",
			took.Round(time.Millisecond), err, halfClose, limit)
	} else {
		t.Logf("connection closed %v after tor's side ended (%v)", took.Round(time.Millisecond), err)
	}
	if !waitLines(server, halfCloseClosed, 1) {
		t.Errorf("no \"tunnel N closed ... (half-close timeout)\" line in the log:\n%s", server.output())
	}
}

// TestCloseAnsweredPromptly: a peer sends a clean Close while tor keeps its ORPort connection
// open and idle. The server must pass the end on to tor, and answer the Close within the close
// timeout (2 s) whatever tor does (RFC 6455 section 5.5.1: "as soon as practical").
func TestCloseAnsweredPromptly(t *testing.T) {
	orAddr, conns := plainORPort(t, 1)
	addr := closedAddr(t)
	startStandalone(t, "websocket-server", addr, "-listen", addr, "-orport", orAddr) // default bounds
	c := dialWS(t, addr, "/", nil)
	oc := nextOR(t, conns)
	c.Write([]byte("last words"))
	start := time.Now()
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// tor reads the data and the end of the peer's direction, and keeps its own end open.
	oc.SetReadDeadline(time.Now().Add(waitLong))
	if b, err := io.ReadAll(oc); err != nil || string(b) != "last words" {
		t.Fatalf("ORPort read %q, %v; want the data then EOF", b, err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	took := time.Since(start)
	if n != 0 || err != io.EOF {
		t.Fatalf("peer read %d bytes, %v after %v; want the server's clean Close (io.EOF)", n, err, took)
	}
	if limit := closeTimeout + time.Second; took > limit {
		t.Errorf("the server answered the Close %v after it was sent, want at most %v",
			took.Round(time.Millisecond), limit)
	} else {
		t.Logf("the server answered the Close %v after it was sent", took.Round(time.Millisecond))
	}
}
