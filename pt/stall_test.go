package pt

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

type writeResult struct {
	n   int
	err error
	at  time.Duration
}

// stallWrite writes n bytes through StallConn(a, stall) in a goroutine, a and b being the ends
// of a net.Pipe (nothing is buffered: a write progresses only as b is read).
func stallWrite(t *testing.T, stall time.Duration, n int) (net.Conn, net.Conn, <-chan writeResult) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	s := StallConn(a, stall)
	ch := make(chan writeResult, 1)
	start := time.Now()
	go func() {
		m, err := s.Write(make([]byte, n))
		ch <- writeResult{m, err, time.Since(start)}
	}()
	return s, b, ch
}

func waitWrite(t *testing.T, ch <-chan writeResult) writeResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("Write did not return")
		return writeResult{}
	}
}

// TestStallConnSlowReader: a reader at 1 KiB/s (32 bytes every 30 ms) for 3.5 times the stall
// bound is never cut: progress is bytes taken, not whole writes.
func TestStallConnSlowReader(t *testing.T) {
	const stall = 200 * time.Millisecond
	_, b, ch := stallWrite(t, stall, 24*32)
	buf := make([]byte, 32)
	got := 0
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	for got < 24*32 {
		time.Sleep(30 * time.Millisecond) // the pace of the slow reader under test
		n, err := b.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got, err)
		}
		got += n
	}
	if r := waitWrite(t, ch); r.err != nil || r.n != 24*32 || r.at < 3*stall {
		t.Errorf("Write = %d, %v after %v; want all %d bytes, no error, after more than %v", r.n, r.err, r.at, 24*32, 3*stall)
	}
}

// TestStallConnStalled: a reader that stops cuts the write after the stall bound, with what it
// took counted and an error that is a timeout.
func TestStallConnStalled(t *testing.T) {
	const stall = 150 * time.Millisecond
	_, b, ch := stallWrite(t, stall, 1000)
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(b, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	r := waitWrite(t, ch)
	var ne net.Error
	if r.n != 100 || !errors.As(r.err, &ne) || !ne.Timeout() || !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write = %d, %v; want 100 and a timeout", r.n, r.err)
	}
	if r.at < stall || r.at > stall+2*time.Second {
		t.Errorf("cut after %v, want about %v", r.at, stall)
	}
	if !strings.Contains(r.err.Error(), "stall timeout") {
		t.Errorf("error %q does not name the bound", r.err)
	}
}

// TestStallConnDeadline: a deadline set by the caller, before or during a write, still ends it
// with a plain timeout.
func TestStallConnDeadline(t *testing.T) {
	s, _, ch := stallWrite(t, time.Hour, 10)
	s.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	r := waitWrite(t, ch)
	if !errors.Is(r.err, os.ErrDeadlineExceeded) || strings.Contains(r.err.Error(), "stall") || r.at > 5*time.Second {
		t.Errorf("Write = %v after %v; want the caller's deadline", r.err, r.at)
	}
	s.SetDeadline(time.Time{})
	if StallConn(s, 0) != s {
		t.Error("StallConn with no bound wraps")
	}
}

// TestRelayHalfCloseBound: once one direction has ended, the other must end within HalfClose;
// a tunnel that closes both ways in time is not touched.
func TestRelayHalfCloseBound(t *testing.T) {
	const bound = 200 * time.Millisecond
	for _, silent := range []bool{true, false} {
		left, a := loopbackPair(t)
		b, right := loopbackPair(t)
		start := time.Now()
		ch := startRelay(a, b, RelayOptions{HalfClose: bound})
		left.CloseWrite()
		if _, err := io.ReadAll(right); err != nil { // the EOF went through
			t.Fatal(err)
		}
		if !silent {
			right.CloseWrite()
		}
		r := waitRelay(t, ch)
		took := time.Since(start)
		switch {
		case silent && (r.err == nil || !strings.Contains(r.err.Error(), "half-close") || took < bound):
			t.Errorf("silent peer: Relay returned %v after %v; want the half-close error after %v", r.err, took, bound)
		case !silent && (r.err != nil || took >= bound):
			t.Errorf("both closed: Relay returned %v after %v; want nil at once", r.err, took)
		}
		left.Close()
		right.Close()
	}
}

// closeRecorder is a net.Conn whose CloseWithError records the error.
type closeRecorder struct {
	net.Conn
	got chan error
}

func (c closeRecorder) CloseWithError(err error) error { c.got <- err; return c.Conn.Close() }

// TestRelayCloseWithError: when one side fails, a conn that can say so is closed with the error.
func TestRelayCloseWithError(t *testing.T) {
	left, a := loopbackPair(t)
	b, right := loopbackPair(t)
	rec := closeRecorder{b, make(chan error, 2)}
	done := startRelay(a, rec, RelayOptions{})
	left.SetLinger(0)
	left.Close() // a reset: the left side fails
	r := waitRelay(t, done)
	select {
	case err := <-rec.got:
		if err == nil || r.err == nil {
			t.Errorf("CloseWithError(%v), Relay error %v; want both non-nil", err, r.err)
		}
	default:
		t.Errorf("the WebSocket side was not closed with an error (Relay: %v)", r.err)
	}
	right.Close()
}
