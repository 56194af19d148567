package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// pipeConn returns a server Conn over net.Pipe, with close timeout wait, and the peer's end.
// Nothing is buffered in a pipe: a Write blocks until the peer reads.
func pipeConn(t *testing.T, wait time.Duration) (*Conn, net.Conn) {
	srv, peer := net.Pipe()
	c := newConn(srv, false, false, nil, nil)
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
// Ping must not stop Read, which delivers the data after it (the Pong waits for the writer).
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
	c := newConn(&fakeConn{r: bytes.NewReader(nil), w: failWriter{}}, false, false, nil, nil)
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("Write succeeded")
	}
	if err := c.CloseWrite(); err == nil {
		t.Error("CloseWrite returned nil, but no Close could be sent")
	}
	var out bytes.Buffer
	c = newConn(&fakeConn{r: bytes.NewReader(nil), w: &out}, false, false, nil, nil)
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

// tcpConn returns a server Conn over loopback TCP, with close timeout wait, and the peer's
// raw end, whose receive buffer is small so that a Write to a peer that does not read blocks
// soon.
func tcpConn(t *testing.T, wait time.Duration) (*Conn, *net.TCPConn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	peer.SetReadBuffer(4 << 10)
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	srv.(*net.TCPConn).SetWriteBuffer(4 << 10)
	c := newConn(srv, false, false, nil, nil)
	c.wait = wait
	t.Cleanup(func() { srv.Close(); peer.Close() })
	return c, peer
}

// readToEnd reads what the peer receives until an error, within limit, and returns the frames
// that came whole, the bytes of a torn one, and the error that ended it (io.EOF: an orderly end).
func readToEnd(t *testing.T, peer net.Conn, limit time.Duration) (fs []frame, torn int, err error) {
	t.Helper()
	peer.SetReadDeadline(time.Now().Add(limit))
	var b []byte
	buf := make([]byte, 64<<10)
	for err == nil {
		var n int
		n, err = peer.Read(buf)
		b = append(b, buf[:n]...)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the peer read neither an end nor a reset within %v", limit)
	}
	for len(b) >= 2 { // whole frames; the header of a torn one may be cut too
		h, n := 2, int(b[1]&0x7F)
		switch n {
		case 126:
			h += 2
		case 127:
			h += 8
		}
		if len(b) < h {
			break
		}
		switch n {
		case 126:
			n = int(binary.BigEndian.Uint16(b[2:]))
		case 127:
			n = int(binary.BigEndian.Uint64(b[2:]))
		}
		if len(b) < h+n {
			break
		}
		fs = append(fs, parseFrames(t, b[:h+n])...)
		b = b[h+n:]
	}
	return fs, len(b), err
}

// TestCloseAfterTornFrame: a Write whose deadline passes in the middle of a frame tears it;
// Close then resets the connection, so that the peer never reads an orderly end after a torn
// frame (the old code closed with a FIN).
func TestCloseAfterTornFrame(t *testing.T) {
	c, peer := tcpConn(t, 200*time.Millisecond)
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Write(make([]byte, 1<<20)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write to a peer that does not read: %v, want a timeout", err)
	}
	within(t, 5*time.Second, "Close", func() { c.Close() })
	fs, torn, err := readToEnd(t, peer, 5*time.Second)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("after %d frames and %d bytes of a torn one the peer read %v, want a reset", len(fs), torn, err)
	}
	for _, f := range fs {
		if f.op == 0x88 {
			t.Error("a Close frame followed a torn frame")
		}
	}
}

// TestCloseEnds: how the TCP connection ends, seen by the peer: orderly after a clean closing
// handshake; after a violation, our Close, then a FIN at once (the lingering close's
// half-close), not after the close timeout.
func TestCloseEnds(t *testing.T) {
	const wait = 2 * time.Second
	t.Run("clean", func(t *testing.T) {
		c, peer := tcpConn(t, wait)
		peer.Write(maskedFrame(0x88, []byte{0x03, 0xE8})) // Close 1000
		if _, err := c.Read(make([]byte, 8)); err != io.EOF {
			t.Fatalf("Read = %v, want io.EOF", err)
		}
		c.Close()
		fs, torn, err := readToEnd(t, peer, 5*time.Second)
		if err != io.EOF || torn != 0 || len(fs) != 1 || closeCode(fs[0].payload) != CloseNormal {
			t.Errorf("the peer read %v, %d torn bytes, then %v; want one Close 1000 then EOF", fs, torn, err)
		}
	})
	t.Run("violation", func(t *testing.T) {
		c, peer := tcpConn(t, wait)
		peer.Write(maskedFrame(0xC2, nil)) // FIN|RSV1|Binary: 1002
		var ce *CloseError
		if _, err := c.Read(make([]byte, 8)); !errors.As(err, &ce) || ce.Code != CloseProtocolError {
			t.Fatalf("Read = %v, want a close 1002", err)
		}
		closed := make(chan struct{})
		go func() { c.Close(); close(closed) }()
		start := time.Now()
		fs, torn, err := readToEnd(t, peer, 5*time.Second)
		if took := time.Since(start); err != io.EOF || took > wait/2 || torn != 0 || len(fs) != 1 || closeCode(fs[0].payload) != CloseProtocolError {
			t.Fatalf("the peer read %v, %d torn bytes, then %v after %v; want a Close 1002 then EOF at once", fs, torn, err, took)
		}
		peer.CloseWrite() // as a peer answers our FIN
		received(t, closed)
	})
}

// deadlineConn reports each SetWriteDeadline on a channel.
type deadlineConn struct {
	net.Conn
	set chan time.Time
}

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	err := d.Conn.SetWriteDeadline(t)
	select {
	case d.set <- t:
	default:
	}
	return err
}

// TestCloseDeadlineKept: a Pong being written when Close sets its deadline must not restore
// the caller's deadline after it (the old code did, and the Close that followed, to a peer
// that stopped reading, waited for ever).
func TestCloseDeadlineKept(t *testing.T) {
	srv, peer := net.Pipe()
	t.Cleanup(func() { srv.Close(); peer.Close() })
	dc := &deadlineConn{Conn: srv, set: make(chan time.Time, 16)}
	c := newConn(dc, false, false, nil, nil)
	c.wait = 500 * time.Millisecond
	go io.Copy(io.Discard, c)                  // answers the Ping
	peer.Write(maskedFrame(0x89, []byte("x"))) // FIN|Ping: its Pong blocks in the pipe
	for received(t, dc.set).IsZero() {         // the Pong's bound
	}
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	received(t, dc.set) // Close's deadline, set while the Pong is written
	pong := make([]byte, 3)
	if _, err := io.ReadFull(peer, pong); err != nil || pong[0] != 0x8A {
		t.Fatalf("read % x, %v; want the Pong", pong, err)
	}
	// The peer reads nothing more: Close must end by its own deadline.
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close still blocked 5 s after its 500 ms deadline")
	}
}

// TestCloseStuckWrite: Close sets a deadline that fails a Write stuck in the middle of a
// message, so that a peer that stopped reading cannot hold Close.
func TestCloseStuckWrite(t *testing.T) {
	c, _ := pipeConn(t, 200*time.Millisecond)
	go c.Write(make([]byte, 1<<16))
	for deadline := time.Now().Add(5 * time.Second); len(c.wlock) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the Write never took the lock")
		}
	}
	within(t, 5*time.Second, "Close with a Write stuck", func() { c.Close() })
}

// TestPongWithoutWriterBounded: with no Write running, Read sends a Pong itself, within the
// close timeout: a peer that does not read cannot stop Read.
func TestPongWithoutWriterBounded(t *testing.T) {
	c, peer := pipeConn(t, 100*time.Millisecond)
	go peer.Write(cat(maskedFrame(0x89, []byte("ping")), maskedFrame(0x82, []byte("data"))))
	buf := make([]byte, 16)
	var n int
	var err error
	within(t, 5*time.Second, "Read after a Ping to a peer that does not read", func() { n, err = c.Read(buf) })
	if err != nil || string(buf[:n]) != "data" {
		t.Fatalf("Read = %q, %v; want \"data\"", buf[:n], err)
	}
}

// TestPongToSlowReader: a Pong reaches a peer that reads slowly during a long Write: it goes
// between two data frames (the old code dropped it after the close timeout).
func TestPongToSlowReader(t *testing.T) {
	c, peer := pipeConn(t, 50*time.Millisecond)
	go io.Copy(io.Discard, c)   // answers the Ping
	msg := make([]byte, 96<<10) // three frames
	go c.Write(msg)
	for deadline := time.Now().Add(5 * time.Second); len(c.wlock) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the Write never took the lock")
		}
	}
	peer.Write(maskedFrame(0x89, []byte("live?"))) // FIN|Ping
	var wire []byte
	buf := make([]byte, 1<<10)
	tick := time.NewTicker(2 * time.Millisecond) // 1 KiB every 2 ms: a frame takes 64 ms
	defer tick.Stop()
	peer.SetReadDeadline(time.Now().Add(20 * time.Second))
	for data := 0; data < len(msg); <-tick.C {
		n, err := peer.Read(buf)
		if err != nil {
			t.Fatalf("peer read: %v", err)
		}
		wire = append(wire, buf[:n]...)
		data = 0
		for _, f := range partialFrames(wire) {
			data += len(f.payload)
		}
	}
	fs := partialFrames(wire)
	var ops []byte
	for _, f := range fs {
		ops = append(ops, f.op)
	}
	if !bytes.Contains(ops, []byte{0x8A}) || ops[len(ops)-1] != 0x80 {
		t.Errorf("the slow reader got frames % x, want a Pong (8a) between the data frames", ops)
	}
}

// partialFrames parses the whole server frames at the start of b.
func partialFrames(b []byte) []frame {
	var fs []frame
	for len(b) >= 2 {
		h, n := 2, int(b[1]&0x7F)
		if n == 126 {
			if len(b) < 4 {
				break
			}
			h, n = 4, int(binary.BigEndian.Uint16(b[2:]))
		}
		if len(b) < h+n {
			break
		}
		fs = append(fs, frame{b[0], b[h : h+n]})
		b = b[h+n:]
	}
	return fs
}

// TestCloseAnswerAfterCloseWrite: the close timeout's answer to the peer's Close, when
// CloseWrite has answered already, does nothing (the old code closed TCP).
func TestCloseAnswerAfterCloseWrite(t *testing.T) {
	var out bytes.Buffer
	c := newConn(&fakeConn{r: bytes.NewReader(nil), w: &out}, true, false, nil, nil)
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := c.reply(opClose, closePayload(CloseNormal, "")); err != nil {
		t.Errorf("the answer after CloseWrite: %v, want nil", err)
	}
	if fs := parseFrames(t, out.Bytes()); len(fs) != 1 {
		t.Errorf("%d frames sent, want one Close", len(fs))
	}
}

// TestCloseAfterReadTimeout: Close waits for the peer's Close even when a concurrent Read
// would have returned on its own deadline meanwhile (the old code then waited the whole close
// timeout, as nobody read the peer's answer).
func TestCloseAfterReadTimeout(t *testing.T) {
	c, peer := pipeConn(t, 3*time.Second)
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	readDone := make(chan struct{})
	go func() { c.Read(make([]byte, 8)); close(readDone) }()
	readRunning(t, c)
	closed := make(chan struct{})
	start := time.Now()
	go func() { c.Close(); close(closed) }()
	if f := parseFrames(t, readFrame(t, peer)); f[0].op != 0x88 {
		t.Fatalf("the peer read %v, want our Close", f)
	}
	select { // answer once the Read has ended, or would have on its deadline
	case <-readDone:
	case <-time.After(300 * time.Millisecond):
	}
	peer.Write(maskedFrame(0x88, []byte{0x03, 0xE8}))
	received(t, closed)
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v, want the peer's answer (about 300 ms), not the close timeout", took)
	}
}

// readFrame reads one short unmasked frame from peer.
func readFrame(t *testing.T, peer net.Conn) []byte {
	t.Helper()
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	h := make([]byte, 2)
	if _, err := io.ReadFull(peer, h); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, h[1]&0x7F)
	if _, err := io.ReadFull(peer, p); err != nil {
		t.Fatal(err)
	}
	return append(h, p...)
}

// readRunning returns once a Read holds c's reader lock, or fails the test after 10 s.
func readRunning(t testing.TB, c *Conn) {
	for deadline := time.Now().Add(10 * time.Second); c.rmu.TryLock(); time.Sleep(time.Millisecond) {
		c.rmu.Unlock()
		if time.Now().After(deadline) {
			t.Error("no Read started within 10 s")
			return
		}
	}
}
