package pt

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	mrand "math/rand"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type relayResult struct {
	aToB, bToA int64
	err        error
}

// startRelay runs Relay(a, b, opt) and returns the channel of its result.
func startRelay(a, b net.Conn, opt RelayOptions) <-chan relayResult {
	ch := make(chan relayResult, 1)
	go func() {
		var r relayResult
		r.aToB, r.bToA, r.err = Relay(a, b, opt)
		ch <- r
	}()
	return ch
}

func waitRelay(t *testing.T, ch <-chan relayResult) relayResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("Relay did not return")
		return relayResult{}
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// writeChunks writes data in chunks of random sizes up to 70000 bytes.
func writeChunks(w io.Writer, data []byte) error {
	for len(data) > 0 {
		n := 1 + mrand.Intn(70000)
		if n > len(data) {
			n = len(data)
		}
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// TestRelayPipe relays random data both ways at once over net.Pipe (no CloseWrite).
func TestRelayPipe(t *testing.T) {
	left, a := net.Pipe()
	b, right := net.Pipe()
	done := startRelay(a, b, RelayOptions{})
	up, down := randomBytes(t, 1<<20+7), randomBytes(t, 3<<19+1)
	var wg sync.WaitGroup
	var gotUp, gotDown []byte
	var errs [4]error
	wg.Add(4)
	go func() { defer wg.Done(); errs[0] = writeChunks(left, up) }()
	go func() { defer wg.Done(); errs[1] = writeChunks(right, down) }()
	go func() { defer wg.Done(); gotUp = make([]byte, len(up)); _, errs[2] = io.ReadFull(right, gotUp) }()
	go func() { defer wg.Done(); gotDown = make([]byte, len(down)); _, errs[3] = io.ReadFull(left, gotDown) }()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("endpoint %d: %v", i, err)
		}
	}
	if sha256.Sum256(gotUp) != sha256.Sum256(up) || sha256.Sum256(gotDown) != sha256.Sum256(down) {
		t.Fatal("relayed data differ")
	}
	left.Close()
	right.Close()
	r := waitRelay(t, done)
	if r.err != nil || r.aToB != int64(len(up)) || r.bToA != int64(len(down)) {
		t.Errorf("Relay = %d, %d, %v; want %d, %d, nil", r.aToB, r.bToA, r.err, len(up), len(down))
	}
}

// loopbackPair returns the two ends of a loopback TCP connection.
func loopbackPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return c1.(*net.TCPConn), c2.(*net.TCPConn)
}

// TestRelayTCPHalfClose: the left end sends and half-closes; the right end reads to EOF, and
// only then sends its own data, which must still flow back; then it half-closes too.
func TestRelayTCPHalfClose(t *testing.T) {
	left, a := loopbackPair(t)
	b, right := loopbackPair(t)
	done := startRelay(a, b, RelayOptions{})
	up, down := randomBytes(t, 5<<20+3), randomBytes(t, 2<<20+5)

	leftErr := make(chan error, 1)
	var gotDown []byte
	go func() {
		err := writeChunks(left, up)
		if err == nil {
			err = left.CloseWrite()
		}
		if err == nil {
			gotDown, err = io.ReadAll(left)
		}
		leftErr <- err
	}()
	gotUp, err := io.ReadAll(right) // returns at the EOF relayed from left.CloseWrite
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotUp, up) {
		t.Fatalf("right got %d bytes, want %d equal bytes", len(gotUp), len(up))
	}
	if err := writeChunks(right, down); err != nil {
		t.Fatalf("right write after EOF: %v", err)
	}
	right.CloseWrite()
	if err := received(t, leftErr); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(gotDown) != sha256.Sum256(down) {
		t.Fatalf("left got %d bytes, want %d equal bytes", len(gotDown), len(down))
	}
	r := waitRelay(t, done)
	if r.err != nil || r.aToB != int64(len(up)) || r.bToA != int64(len(down)) {
		t.Errorf("Relay = %d, %d, %v; want %d, %d, nil", r.aToB, r.bToA, r.err, len(up), len(down))
	}
	left.Close()
	right.Close()
}

// failConn returns data, then err, from Read; Write and the rest go to the embedded Conn.
type failConn struct {
	net.Conn
	data []byte
	err  error
}

func (c *failConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, c.err
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	if len(c.data) == 0 {
		return n, c.err // data and error together: the data must still be written
	}
	return n, nil
}

// TestRelayReadError: a read error after data closes both sides, after the data was written,
// and is the error returned (not the errors of the other direction caused by closing).
func TestRelayReadError(t *testing.T) {
	for i := 0; i < 20; i++ {
		boom := errors.New("boom")
		leftPeer, leftRelay := net.Pipe()
		b, right := net.Pipe()
		data := randomBytes(t, 5000)
		a := &failConn{Conn: leftRelay, data: data, err: boom}
		done := startRelay(a, b, RelayOptions{})
		got, err := io.ReadAll(right) // ends when Relay closes b
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("right got %d bytes, %v", len(got), err)
		}
		r := waitRelay(t, done)
		if r.err != boom || r.aToB != int64(len(data)) || r.bToA != 0 {
			t.Fatalf("Relay = %d, %d, %v; want %d, 0, boom", r.aToB, r.bToA, r.err, len(data))
		}
		// Relay closed a: the left peer sees the end.
		if _, err := leftPeer.Read(make([]byte, 1)); err == nil {
			t.Fatal("left peer still open")
		}
		leftPeer.Close()
		right.Close()
	}
}

// failWriteConn fails every Write; Read and the rest go to the embedded Conn.
type failWriteConn struct {
	net.Conn
	err error
}

func (c failWriteConn) Write([]byte) (int, error) { return 0, c.err }

// TestRelayWriteError: the destination refuses writes; that error is returned, both conns are
// closed, and the other direction, blocked in Read, ends without adding its own error.
func TestRelayWriteError(t *testing.T) {
	full := errors.New("disk full")
	left, a := net.Pipe()
	pb, right := net.Pipe()
	done := startRelay(a, failWriteConn{pb, full}, RelayOptions{})
	go left.Write([]byte("hello")) // fails once Relay closes a; no one checks
	r := waitRelay(t, done)
	if r.err != full || r.aToB != 0 || r.bToA != 0 {
		t.Errorf("Relay = %d, %d, %v; want 0, 0, disk full", r.aToB, r.bToA, r.err)
	}
	if _, err := left.Read(make([]byte, 1)); err == nil {
		t.Error("left still open")
	}
	if _, err := right.Read(make([]byte, 1)); err == nil {
		t.Error("right still open")
	}
	left.Close()
	right.Close()
}

// scriptConn serves Read from a list of chunk sizes and records the buffer size of each call.
type scriptConn struct {
	net.Conn
	chunks []int
	sizes  []int
}

func (c *scriptConn) Read(p []byte) (int, error) {
	c.sizes = append(c.sizes, len(p))
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := c.chunks[0]
	if n > len(p) {
		n = len(p)
	}
	c.chunks = c.chunks[1:]
	return n, nil
}

// TestRelayLiveCounts checks that the counters show the bytes of a connection still open.
func TestRelayLiveCounts(t *testing.T) {
	left, a := loopbackPair(t)
	b, right := loopbackPair(t)
	var up, down atomic.Int64
	up.Store(100) // a total from earlier connections
	done := startRelay(a, b, RelayOptions{CountAToB: &up, CountBToA: &down})
	for _, d := range []struct {
		from, to net.Conn
		msg      string
	}{{left, right, "hello"}, {right, left, "a longer answer"}} {
		if _, err := d.from.Write([]byte(d.msg)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(d.to, make([]byte, len(d.msg))); err != nil {
			t.Fatal(err)
		}
	}
	// The counter is added to just after the write that the reader has seen: wait a little.
	for deadline := time.Now().Add(generous); up.Load() != 105 || down.Load() != 15; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("counters %d, %d while open; want 105, 15", up.Load(), down.Load())
		}
	}
	left.Close()
	right.Close()
	if r := waitRelay(t, done); r.aToB != 5 || r.bToA != 15 || up.Load() != 105 || down.Load() != 15 {
		t.Errorf("Relay = %d, %d, counters %d, %d; want 5, 15, 105, 15", r.aToB, r.bToA, up.Load(), down.Load())
	}
}

// discardConn accepts all writes.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

// TestPumpBuffers checks the buffer policy: small buffer until a read fills it, then the
// large one until a read does not fill it.
func TestPumpBuffers(t *testing.T) {
	src := &scriptConn{chunks: []int{10, smallBufSize, largeBufSize, largeBufSize, 100, 5, smallBufSize, 7}}
	var count atomic.Int64
	n, err := pump(discardConn{}, src, &count)
	if count.Load() != n {
		t.Errorf("count %d, want %d as returned", count.Load(), n)
	}
	// 10: short, stay small; 2048 fills: go large; 32768 twice: stay large; 100: short, back to
	// small; 5: stay; 2048 fills: large; 7: short, small; then EOF.
	want := []int{smallBufSize, smallBufSize, largeBufSize, largeBufSize, largeBufSize, smallBufSize, smallBufSize, largeBufSize, smallBufSize}
	if err != io.EOF || n != int64(10+2*smallBufSize+2*largeBufSize+100+5+7) {
		t.Errorf("pump = %d, %v", n, err)
	}
	if len(src.sizes) != len(want) {
		t.Fatalf("read sizes %v, want %v", src.sizes, want)
	}
	for i := range want {
		if src.sizes[i] != want[i] {
			t.Fatalf("read sizes %v, want %v", src.sizes, want)
		}
	}
}

// frameConn is a destination with ReadFrom, as a *ws.Conn has: ReadFrom reads its source
// into a buffer of its own, one write per Read, until EOF. Each write (by Write or ReadFrom)
// records how, its size and the count it finds; writes after the first ok ones fail.
type frameConn struct {
	discardConn
	count  *atomic.Int64
	ok     int
	buf    [largeBufSize]byte
	writes []string
}

var errFrame = errors.New("frame write failed")

func (c *frameConn) write(how string, n int) (int, error) {
	if c.ok == 0 {
		return 0, errFrame
	}
	c.ok--
	c.writes = append(c.writes, fmt.Sprintf("%s %d count %d", how, n, c.count.Load()))
	return n, nil
}

func (c *frameConn) Write(p []byte) (int, error) { return c.write("Write", len(p)) }

func (c *frameConn) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		n, rerr := r.Read(c.buf[:])
		if n > 0 {
			if _, err := c.write("ReadFrom", n); err != nil {
				return total, err
			}
			total += int64(n)
		}
		if rerr == io.EOF {
			return total, nil
		} else if rerr != nil {
			return total, rerr
		}
	}
}

// TestPumpReadFrom: while data flows into a destination with ReadFrom, pump lets it read the
// source into its own buffer, one Read per call; small reads still go through pump's small
// buffer and Write. Every byte is counted before its write, and a failed write's bytes are
// taken back.
func TestPumpReadFrom(t *testing.T) {
	chunks := []int{10, smallBufSize, largeBufSize, largeBufSize, 100, 5, smallBufSize, 7}
	src := &scriptConn{chunks: chunks}
	var count atomic.Int64
	dst := &frameConn{count: &count, ok: -1}
	n, err := pump(dst, src, &count)
	if err != io.EOF || n != int64(10+2*smallBufSize+2*largeBufSize+100+5+7) || count.Load() != n {
		t.Errorf("pump = %d, %v; count %d", n, err, count.Load())
	}
	var want []string
	how, total := []string{"Write", "Write", "ReadFrom", "ReadFrom", "ReadFrom", "Write", "Write", "ReadFrom"}, 0
	for i, n := range chunks { // e.g. "ReadFrom 131072 count 133130": 10 + 2048 + 131072 read by then
		total += n
		want = append(want, fmt.Sprintf("%s %d count %d", how[i], n, total))
	}
	if fmt.Sprint(dst.writes) != fmt.Sprint(want) {
		t.Errorf("writes\n%q, want\n%q", dst.writes, want)
	}
	sizes := []int{smallBufSize, smallBufSize, largeBufSize, largeBufSize, largeBufSize, smallBufSize, smallBufSize, largeBufSize, smallBufSize}
	if fmt.Sprint(src.sizes) != fmt.Sprint(sizes) {
		t.Errorf("read sizes %v, want %v", src.sizes, sizes)
	}

	// The third write, the first by ReadFrom, fails: its bytes are not counted.
	src = &scriptConn{chunks: chunks}
	count.Store(0)
	dst = &frameConn{count: &count, ok: 2}
	if n, err := pump(dst, src, &count); n != 10+smallBufSize || err != errFrame || count.Load() != n {
		t.Errorf("pump with a failing ReadFrom = %d, %v; count %d", n, err, count.Load())
	}
}

func BenchmarkRelayTCP(b *testing.B) {
	left, a := loopbackPair(b)
	c, right := loopbackPair(b)
	done := startRelay(a, c, RelayOptions{})
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			left.Write(buf)
		}
		left.CloseWrite()
	}()
	io.Copy(io.Discard, right)
	b.StopTimer()
	right.Close()
	left.Close()
	received(b, done)
}

// BenchmarkRelayIdle measures the memory an idle tunnel holds: two goroutines waiting in Read
// with their small buffers. It reports heap and stack bytes per tunnel.
func BenchmarkRelayIdle(b *testing.B) {
	const tunnels = 1000
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.GC() // the second GC empties the pools' victim caches
		runtime.ReadMemStats(&before)
		var ends []net.Conn
		var dones []<-chan relayResult
		for j := 0; j < tunnels; j++ {
			l, a := net.Pipe()
			c, r := net.Pipe()
			ends = append(ends, l, r)
			dones = append(dones, startRelay(a, c, RelayOptions{}))
		}
		// One byte each way through every tunnel: net.Pipe is unbuffered, so when it has
		// arrived both directions have their buffers and are back in (or on their way to) Read.
		one := make([]byte, 1)
		for j := 0; j < len(ends); j += 2 {
			for _, p := range [][2]net.Conn{{ends[j], ends[j+1]}, {ends[j+1], ends[j]}} {
				p[0].SetDeadline(time.Now().Add(10 * time.Second))
				p[1].SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := p[0].Write(one); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(p[1], one); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perTunnel := float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse) / tunnels
		b.ReportMetric(perTunnel, "B/idle-tunnel")
		for _, e := range ends {
			e.Close()
		}
		for _, d := range dones {
			received(b, d)
		}
	}
}

// readEnd reads c until an error, within 10 s, and returns that error (io.EOF for a clean end).
func readEnd(t *testing.T, c net.Conn) error {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		return io.EOF
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("no end within 10 s")
	}
	return err
}

// TestRelayCutResets: when an error or a bound ends a tunnel, the TCP peers on both sides read a
// reset, not the EOF of a clean end (which would pass truncated data for a whole stream); the
// conns are aborted under a StallConn too.
func TestRelayCutResets(t *testing.T) {
	for _, cut := range []string{"peer reset", "torn WebSocket", "half-close bound", "stall"} {
		left, a := loopbackPair(t)
		b, right := loopbackPair(t)
		var ra, rb net.Conn = a, StallConn(b, 300*time.Millisecond)
		opt := RelayOptions{HalfClose: 300 * time.Millisecond}
		switch cut {
		case "peer reset":
			left.SetLinger(0)
			left.Close()
		case "torn WebSocket": // what a *ws.Conn returns at a TCP end without a Close frame
			ra = &failConn{Conn: a, data: []byte("some"), err: io.ErrUnexpectedEOF}
		case "half-close bound":
			left.CloseWrite()
		case "stall": // right never reads; b's buffers are small
			b.SetWriteBuffer(4 << 10)
			right.SetReadBuffer(4 << 10)
			go left.Write(make([]byte, 8<<20)) // fails once Relay aborts a; no one checks
		}
		done := startRelay(ra, rb, opt)
		r := waitRelay(t, done)
		if r.err == nil {
			t.Errorf("%s: Relay returned no error", cut)
		}
		// The peers whose direction was cut: not the one that reset, whose conn has no SetLinger
		// (a *ws.Conn is closed with CloseWithError instead), that read the half-close's EOF, or
		// whose reset its writing goroutine may have taken (the kernel reports it once).
		ends := map[string]net.Conn{"left": left, "right": right}
		switch cut {
		case "peer reset", "torn WebSocket", "stall":
			delete(ends, "left")
		case "half-close bound":
			delete(ends, "right")
		}
		for name, c := range ends {
			if err := readEnd(t, c); errors.Is(err, io.EOF) {
				t.Errorf("%s: the %s peer read a clean EOF, want a reset", cut, name)
			}
		}
		left.Close()
		right.Close()
	}
}
