package pt

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The copy loop's buffers, small for a direction that waits and large while data flows (see
// pump): thousands of idle tunnels cost little memory.
const smallBufSize, largeBufSize = 2 << 10, 256 << 10

var (
	smallBufs = sync.Pool{New: func() any { b := make([]byte, smallBufSize); return &b }}
	largeBufs = sync.Pool{New: func() any { b := make([]byte, largeBufSize); return &b }}
)

// RelayOptions bound and count a Relay.
type RelayOptions struct {
	// HalfClose bounds how long one direction goes on once the other has ended (see Relay); 0: none.
	HalfClose time.Duration
	// Unless nil, CountAToB and CountBToA count the bytes of every write as it starts (taken
	// back if it fails), so that totals include tunnels still open and a peer that has received
	// bytes finds them counted.
	CountAToB, CountBToA *atomic.Int64
}

// Relay copies a→b and b→a until both directions end. When one direction reaches EOF it
// half-closes the destination (CloseWrite) and the other direction goes on, for opt.HalfClose
// at most. An error in either direction (a read error other than io.EOF, a write error, the
// half-close bound) closes both: a conn with a CloseWithError method (a *ws.Conn) with it, so
// that its peer learns of the failure, the others with Abort, so that theirs does too.
// Returns bytes copied each way and the first error that is not io.EOF (an error caused by
// Relay's own closing is not reported). Both connections are closed when Relay returns. Writes
// are bounded by the conns themselves (see StallConn).
func Relay(a, b net.Conn, opt RelayOptions) (aToB, bToA int64, err error) {
	var mu sync.Mutex
	closed := false // both conns closed, or one closed fully because it has no CloseWrite
	var halfClosed *time.Timer
	fail := func(e error) { // mu held
		if !closed {
			err = e
			closeAfter(e, a, b)
		}
		closed = true
	}
	run := func(dst, src net.Conn, n *int64, count *atomic.Int64) {
		var rerr error
		*n, rerr = pump(dst, src, cmp.Or(count, new(atomic.Int64)))
		mu.Lock()
		defer mu.Unlock()
		if !errors.Is(rerr, io.EOF) {
			fail(rerr)
		} else {
			_, canCloseWrite := dst.(interface{ CloseWrite() error })
			_ = CloseWrite(dst)
			closed = closed || !canCloseWrite
		}
		if halfClosed == nil && opt.HalfClose > 0 && !closed {
			halfClosed = time.AfterFunc(opt.HalfClose, func() {
				mu.Lock()
				defer mu.Unlock()
				fail(fmt.Errorf("one direction ended and the other did not within %v (half-close timeout)", opt.HalfClose))
			})
		}
	}
	done := make(chan struct{})
	go func() {
		run(b, a, &aToB, opt.CountAToB)
		close(done)
	}()
	run(a, b, &bToA, opt.CountBToA)
	<-done
	mu.Lock()
	closed = true // a half-close timer that fires now does nothing
	mu.Unlock()
	if halfClosed != nil {
		halfClosed.Stop()
	}
	_ = a.Close()
	_ = b.Close()
	return aToB, bToA, err
}

// closeAfter closes the conns as Relay's doc says, CloseWithError last: it may wait for its peer.
func closeAfter(err error, conns ...net.Conn) {
	type failer interface{ CloseWithError(error) error }
	for _, c := range conns {
		if _, ok := c.(failer); !ok {
			_ = Abort(c)
		}
	}
	for _, c := range conns {
		if f, ok := c.(failer); ok {
			_ = f.CloseWithError(err)
		}
	}
}

// CloseWrite half-closes c if it can (a *net.TCPConn, a *ws.Conn, a StallConn over them), else
// closes it.
func CloseWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// Abort closes c abortively if it can (SO_LINGER 0, under TLS too), else closes it: the peer gets
// a reset, not a clean end, and the kernel frees c's memory at once, whatever the peer does.
func Abort(c net.Conn) error {
	if t, ok := c.(interface{ NetConn() net.Conn }); ok { // a *tls.Conn, or a wrapper
		c = t.NetConn() // for TLS, no close_notify: that would say the stream ended cleanly
	}
	if l, ok := c.(interface{ SetLinger(sec int) error }); ok {
		_ = l.SetLinger(0)
	}
	return c.Close()
}

// pump copies src to dst until an error (io.EOF at the end of src), writing every byte read
// before acting on a read error, and counts each read before its write (see RelayOptions). It
// reads into a small pooled buffer; a read that fills at least half of it means data is flowing
// (a base64 WebSocket fills only three quarters), so the next reads take a large one, of
// 256 KiB (a WebSocket returns eight frames in one Read), until a read of less than 16 KiB. It
// takes the large buffer only once src has data (see waiter) and gives it back after each
// write, so that a direction that waits holds none. While data flows into a dst that is an
// io.ReaderFrom (a *ws.Conn), dst reads src into its own buffer instead, one Read per call, so
// that pump copies nothing.
func pump(dst, src net.Conn, count *atomic.Int64) (int64, error) {
	rf, _ := dst.(io.ReaderFrom)
	if _, ok := dst.(*net.TCPConn); ok {
		rf = nil // its ReadFrom splices, or copies through a buffer of its own per call
	}
	var total int64
	one, size := &oneRead{}, smallBufSize // size: of the next read's buffer
	wait := waiter(src)
	for {
		*one = oneRead{src: src, count: count}
		var w int64
		var werr error
		if size == largeBufSize && wait != nil {
			wait()
		}
		if size == largeBufSize && rf != nil {
			w, werr = rf.ReadFrom(one)
		} else {
			pool := &smallBufs
			if size == largeBufSize {
				pool = &largeBufs
			}
			buf := pool.Get().(*[]byte)
			if n, _ := one.Read(*buf); n > 0 {
				m, err := dst.Write((*buf)[:n])
				w, werr = int64(m), err
			}
			pool.Put(buf)
		}
		if total += w; w < int64(one.n) {
			count.Add(w - int64(one.n))
			return total, cmp.Or(werr, io.ErrShortWrite)
		}
		if one.err != nil {
			return total, one.err
		}
		if one.n < min(size/2, 16<<10) {
			size = smallBufSize
		} else {
			size = largeBufSize
		}
	}
}

// waiter returns a function that waits until src has bytes to read, or an error that its next
// Read returns too, where that can be known without a buffer: a conn with a WaitRead method (a
// *ws.Conn), or, except on Windows, a TCP conn (under a StallConn too); nil elsewhere. Built once
// per direction, so that waiting allocates nothing.
func waiter(src net.Conn) func() {
	if s, ok := src.(*stallConn); ok {
		src = s.Conn
	}
	if w, ok := src.(interface{ WaitRead() error }); ok {
		return func() { _ = w.WaitRead() }
	}
	if s, ok := src.(syscall.Conn); ok {
		return readable(s)
	}
	return nil
}

// oneRead is a single Read of src, counted, then io.EOF: the source of one ReadFrom.
type oneRead struct {
	src   io.Reader
	count *atomic.Int64
	n     int
	err   error
	done  bool
}

func (o *oneRead) Read(p []byte) (int, error) {
	if o.done {
		return 0, io.EOF
	}
	o.done = true
	o.n, o.err = o.src.Read(p)
	o.count.Add(int64(o.n))
	return o.n, o.err
}

// Stats are a program's traffic figures for its summaries, seen from its WebSocket side.
type Stats struct {
	Active, Conns  atomic.Int64 // tunnels open now; tunnels opened in all
	Sent, Received atomic.Int64 // bytes written to WebSockets; bytes read from them
}

// Tunnel counts a tunnel in s, logs its opening, and relays tor and ws, the WebSocket, in a
// goroutine of its own, whose stack has not grown in the handshakes (see Relay). At the end it
// logs how long the tunnel lived, the bytes each way as seen from the WebSocket side and Relay's
// error, at warning level when warn (unless nil) says so, and calls done.
func (s *Stats) Tunnel(log *Logger, tor, ws net.Conn, halfClose time.Duration, warn func(error) bool, done func()) {
	id := s.Conns.Add(1)
	log.Infof("tunnel %d opened", id)
	go func() {
		defer done()
		start := time.Now()
		sent, received, err := Relay(tor, ws, RelayOptions{HalfClose: halfClose,
			CountAToB: &s.Sent, CountBToA: &s.Received})
		msg := fmt.Sprintf("tunnel %d closed after %v: %d bytes received, %d sent", id,
			time.Since(start).Round(time.Millisecond), received, sent)
		if err != nil {
			msg += ": " + err.Error()
		}
		logf := log.Infof
		if warn != nil && warn(err) {
			logf = log.Warnf
		}
		logf("%s", msg)
	}()
}

// Report logs the figures (never an address) and sends them to tor as a STATUS line too.
func (s *Stats) Report(log *Logger, status *Output, method string) {
	conns, sent, recv := s.Conns.Load(), s.Sent.Load(), s.Received.Load()
	log.Noticef("summary: %d connections, %d bytes sent, %d bytes received", conns, sent, recv)
	status.Status(method, "CONNECTIONS", strconv.FormatInt(conns, 10),
		"BYTES_SENT", strconv.FormatInt(sent, 10), "BYTES_RECEIVED", strconv.FormatInt(recv, 10))
}
