package ws

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// pipeConn returns a server Conn over net.Pipe, with close timeout wait, and the peer's end.
// Nothing is buffered in a pipe: a Write blocks until the peer reads.
func pipeConn(t *testing.T, wait time.Duration) (*Conn, net.Conn) {
	srv, peer := net.Pipe()
	c := newConn(srv, false, false, 0, nil)
	c.wait = wait
	t.Cleanup(func() { srv.Close(); peer.Close() })
	return c, peer
}

// within runs f in a goroutine and fails the test if it has not returned after d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still blocked after %v", what, d)
	}
}

// TestPingDuringStalledWrite: a Write that the peer does not read holds the writer's lock; a
// Ping must not stop Read, which delivers the data after it (the Pong is dropped after the
// close timeout).
func TestPingDuringStalledWrite(t *testing.T) {
	c, peer := pipeConn(t, 100*time.Millisecond)
	writeErr := make(chan error, 1)
	go func() { _, err := c.Write(make([]byte, 1<<16)); writeErr <- err }()
	for deadline := time.Now().Add(5 * time.Second); len(c.wlock) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the Write never took the lock")
		}
	}
	go peer.Write(cat(
		maskedFrame(0x89, []byte("are you there")), // Ping
		maskedFrame(0x82, []byte("data")),          // binary, FIN
	))
	buf := make([]byte, 16)
	var n int
	var err error
	within(t, 2*time.Second, "Read after a Ping during a stalled Write", func() { n, err = c.Read(buf) })
	if err != nil || string(buf[:n]) != "data" {
		t.Fatalf("Read = %q, %v; want \"data\"", buf[:n], err)
	}
	peer.Close()
	if err := <-writeErr; err == nil {
		t.Error("the stalled Write succeeded after the peer closed")
	}
}

// readClose reads what the peer receives until EOF and returns the frames.
func readAllFrames(t *testing.T, peer net.Conn, limit time.Duration) []frame {
	t.Helper()
	peer.SetReadDeadline(time.Now().Add(limit))
	b, err := io.ReadAll(peer)
	if err != nil {
		t.Fatalf("peer read: %v after %d bytes", err, len(b))
	}
	return parseFrames(t, b)
}

// TestCloseAnswered: the peer's clean Close is answered by CloseWrite when the local side calls
// it within the close timeout, else by the Conn itself once the timeout has passed; either way
// exactly one Close goes out, and the server then closes the connection. A Write after the
// answer fails.
func TestCloseAnswered(t *testing.T) {
	const wait = 200 * time.Millisecond
	for _, closeWrite := range []bool{true, false} {
		c, peer := pipeConn(t, wait)
		go peer.Write(maskedFrame(0x88, []byte{0x03, 0xE8})) // Close 1000
		if _, err := c.Read(make([]byte, 8)); err != io.EOF {
			t.Fatalf("Read = %v, want io.EOF", err)
		}
		start := time.Now()
		if closeWrite {
			go c.CloseWrite()
		}
		fs := readAllFrames(t, peer, 5*time.Second)
		took := time.Since(start)
		if len(fs) != 1 || fs[0].op != 0x88 || closeCode(fs[0].payload) != CloseNormal {
			t.Fatalf("closeWrite %v: the peer received %v, want one Close 1000", closeWrite, fs)
		}
		if !closeWrite && (took < wait*9/10 || took > wait+2*time.Second) {
			t.Errorf("answered after %v, want the close timeout, %v", took, wait)
		}
		if closeWrite && took > wait*9/10 {
			t.Errorf("CloseWrite's answer took %v", took)
		}
		if _, err := c.Write([]byte("late")); err == nil {
			t.Error("Write after the answer succeeded")
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken") }

// TestCloseWriteAfterWriteError: when a write error ended writing, CloseWrite must not report
// that a Close was sent.
func TestCloseWriteAfterWriteError(t *testing.T) {
	c := newConn(&fakeConn{r: bytes.NewReader(nil), w: failWriter{}}, false, false, 0, nil)
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("Write succeeded")
	}
	if err := c.CloseWrite(); err == nil {
		t.Error("CloseWrite returned nil, but no Close could be sent")
	}
	var out bytes.Buffer
	c = newConn(&fakeConn{r: bytes.NewReader(nil), w: &out}, false, false, 0, nil)
	if err := c.CloseWrite(); err != nil {
		t.Errorf("first CloseWrite: %v", err)
	}
	if err := c.CloseWrite(); err != nil || len(parseFrames(t, out.Bytes())) != 1 {
		t.Errorf("second CloseWrite: %v, %d frames sent; want nil and one Close", err, len(parseFrames(t, out.Bytes())))
	}
}

// TestCloseWithError: an error gives the peer status 1011, nil a clean 1000.
func TestCloseWithError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{{errors.New("ORPort reset"), CloseInternalError}, {nil, CloseNormal}} {
		c, peer := pipeConn(t, 100*time.Millisecond)
		go c.CloseWithError(tc.err)
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		var h [4]byte
		if _, err := io.ReadFull(peer, h[:]); err != nil {
			t.Fatal(err)
		}
		if h[0] != 0x88 || h[1] != 2 || closeCode(h[2:]) != tc.code {
			t.Errorf("CloseWithError(%v) sent % x, want a Close with status %d", tc.err, h, tc.code)
		}
	}
}
