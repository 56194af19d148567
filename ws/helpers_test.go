package ws

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		var left []string
		for i := 0; i < 50; i++ { // grace period for goroutines that are ending
			if left = leftGoroutines(); len(left) == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(left) > 0 {
			fmt.Fprintf(os.Stderr, "goroutine leak:\n%s\n", strings.Join(left, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// leftGoroutines returns the stacks of goroutines other than this one and
// those the runtime or the testing package keep.
func leftGoroutines() []string {
	buf := make([]byte, 1<<20)
	var left []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if !strings.Contains(g, "TestMain") && !strings.Contains(g, "os/signal.") &&
			!strings.Contains(g, "testing.(*F).Fuzz") {
			left = append(left, g)
		}
	}
	return left
}

// fakeConn is a net.Conn reading from r and writing to w; the rest is inert.
type fakeConn struct {
	r io.Reader
	w io.Writer
}

type fakeAddr struct{}

func (fakeAddr) Network() string { return "fake" }
func (fakeAddr) String() string  { return "fake" }

func (f *fakeConn) Read(p []byte) (int, error)       { return f.r.Read(p) }
func (f *fakeConn) Write(p []byte) (int, error)      { return f.w.Write(p) }
func (f *fakeConn) Close() error                     { return nil }
func (f *fakeConn) LocalAddr() net.Addr              { return fakeAddr{} }
func (f *fakeConn) RemoteAddr() net.Addr             { return fakeAddr{} }
func (f *fakeConn) SetDeadline(time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// readers wraps wire bytes the ways every parser is tested with.
var readers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"onebyte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
}

// frame is one frame as a peer sees it, unmasked.
type frame struct {
	op      byte // opcode with the FIN bit (0x80)
	payload []byte
}

// parseFrames splits wire bytes into frames, unmasking; a test helper
// independent of the package's reader.
func parseFrames(t testing.TB, b []byte) []frame {
	t.Helper()
	var fs []frame
	for len(b) > 0 {
		if len(b) < 2 {
			t.Fatalf("truncated frame header % x", b)
		}
		op, n, masked := b[0], int(b[1]&0x7F), b[1]&0x80 != 0
		b = b[2:]
		switch n {
		case 126:
			n, b = int(binary.BigEndian.Uint16(b)), b[2:]
		case 127:
			n, b = int(binary.BigEndian.Uint64(b)), b[8:]
		}
		var key []byte
		if masked {
			key, b = b[:4], b[4:]
		}
		if len(b) < n {
			t.Fatalf("truncated payload: want %d, have %d", n, len(b))
		}
		p := bytes.Clone(b[:n])
		for i := range p {
			if key != nil {
				p[i] ^= key[i%4]
			}
		}
		fs = append(fs, frame{op, p})
		b = b[n:]
	}
	return fs
}

// closeCode returns the status in a Close frame payload (1005 if none).
func closeCode(p []byte) int {
	if len(p) < 2 {
		return CloseNoStatus
	}
	return int(binary.BigEndian.Uint16(p))
}

// pair returns a client and a server Conn connected over loopback TCP
// through net/http's server.
func pair(t testing.TB, copt, sopt *Options) (client, server *Conn) {
	t.Helper()
	ch := make(chan *Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, sopt)
		if err != nil {
			t.Errorf("Upgrade: %v", err)
		}
		ch <- c
	}))
	t.Cleanup(srv.Close)
	client = dial(t, srv.URL, copt)
	server = received(t, ch)
	if server == nil {
		t.FailNow()
	}
	t.Cleanup(func() { client.conn.Close(); server.conn.Close() })
	return client, server
}

// dial connects to an http:// test server URL and runs the client handshake.
func dial(t testing.TB, rawURL string, opt *Options) *Conn {
	t.Helper()
	u := mustURL(t, strings.Replace(rawURL, "http://", "ws://", 1)+"/ws?x=1")
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Client(nc, u, opt)
	if err != nil {
		nc.Close()
		t.Fatalf("Client: %v", err)
	}
	return c
}

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// hijackRecorder is a ResponseWriter that can be hijacked, like net/http's:
// the request was read through br from under; the hijacked conn reads the
// rest of under and records what the server writes.
type hijackRecorder struct {
	*httptest.ResponseRecorder
	br       *bufio.Reader
	under    io.Reader
	out      bytes.Buffer
	hijacked bool
}

// newHijackRecorder parses raw as net/http's server would, reading it
// through wrap.
func newHijackRecorder(raw []byte, wrap func(io.Reader) io.Reader) (*hijackRecorder, *http.Request, error) {
	h := &hijackRecorder{ResponseRecorder: httptest.NewRecorder(), under: wrap(bytes.NewReader(raw))}
	h.br = bufio.NewReader(h.under)
	r, err := http.ReadRequest(h.br)
	return h, r, err
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.hijacked = true
	return &fakeConn{r: h.under, w: &h.out}, bufio.NewReadWriter(h.br, bufio.NewWriter(&h.out)), nil
}

// received returns the next value from ch, or fails the test after a generous wait: a peer that
// never answers (when loopback is down, say) must fail the test on its own deadline, not hang it.
func received[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("nothing received from the peer within 10 s")
	}
	var zero T
	return zero
}
