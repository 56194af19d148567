package ws

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// stream writes n pseudo-random bytes in writes of random sizes, then
// CloseWrite, and returns their SHA-256.
func stream(c *Conn, n int, seed int64) ([32]byte, error) {
	rng := rand.New(rand.NewSource(seed))
	h := sha256.New()
	buf := make([]byte, 100<<10)
	for n > 0 {
		m := min(n, 1+rng.Intn(len(buf)))
		rng.Read(buf[:m])
		h.Write(buf[:m])
		if _, err := c.Write(buf[:m]); err != nil {
			return [32]byte{}, err
		}
		n -= m
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, c.CloseWrite()
}

// drain reads c to io.EOF and returns the SHA-256 of what it read.
func drain(c *Conn) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, c)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, n, err
}

// Both directions at once, then each side half-closes after writing and
// goes on reading: TCP half-close carried over WebSocket. The side that
// finishes first may wait for the other's data only for the close timeout,
// which is set long here: under the race detector one direction may lag
// the other by more than the default 2 s.
func TestStreamBothWays(t *testing.T) {
	for _, tc := range []struct {
		name string
		b64  bool
		size int
	}{{"binary", false, 64 << 20}, {"base64", true, 8 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			opt := &Options{Base64: tc.b64, CloseTimeout: time.Minute}
			client, server := pair(t, opt, opt)
			if got := client.Subprotocol() + "|" + server.Subprotocol(); (got == "base64|base64") != tc.b64 {
				t.Fatalf("subprotocols %q", got)
			}
			type result struct {
				sum [32]byte
				n   int64
				err error
			}
			var wg sync.WaitGroup
			var sent [2][32]byte
			var got [2]result
			var werr [2]error
			for i, c := range []*Conn{client, server} {
				wg.Add(2)
				go func() { defer wg.Done(); sent[i], werr[i] = stream(c, tc.size, int64(i)) }()
				go func() { defer wg.Done(); got[i].sum, got[i].n, got[i].err = drain(c) }()
			}
			wg.Wait()
			t.Logf("read %d and %d bytes", got[0].n, got[1].n)
			for i := range 2 {
				if werr[i] != nil || got[1-i].err != nil || got[1-i].n != int64(tc.size) || got[1-i].sum != sent[i] {
					t.Errorf("direction %d: write %v, read %d bytes, %v, hash equal %v",
						i, werr[i], got[1-i].n, got[1-i].err, got[1-i].sum == sent[i])
				}
			}
			if err := client.Close(); err != nil {
				t.Errorf("client Close: %v", err)
			}
			if err := server.Close(); err != nil {
				t.Errorf("server Close: %v", err)
			}
		})
	}
}

// A half-closed side still reads; the other still writes.
func TestHalfClose(t *testing.T) {
	for _, clientFirst := range []bool{true, false} {
		a, b := pair(t, nil, nil)
		if !clientFirst {
			a, b = b, a
		}
		if _, err := a.Write([]byte("request")); err != nil {
			t.Fatal(err)
		}
		if err := a.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(b); string(got) != "request" || err != nil {
			t.Fatalf("b read %q, %v", got, err)
		}
		if _, err := b.Write([]byte("response")); err != nil { // after a's CloseWrite
			t.Fatalf("b write: %v", err)
		}
		b.CloseWrite()
		if got, err := io.ReadAll(a); string(got) != "response" || err != nil {
			t.Fatalf("a read %q, %v", got, err)
		}
		if _, err := a.Write([]byte("x")); err == nil {
			t.Fatal("write after CloseWrite succeeded")
		}
	}
}

// A Ping between two fragments of a message gets exactly one Pong, and the
// message arrives whole.
func TestPingBetweenFragmentsTCP(t *testing.T) {
	client, server := pair(t, nil, nil)
	raw := client.conn // write the client's frames by hand
	k := []byte{1, 2, 3, 4}
	masked := func(b0 byte, p string) []byte {
		b := append([]byte{b0, 0x80 | byte(len(p))}, k...)
		pl := []byte(p)
		mask([4]byte(k), 0, pl)
		return append(b, pl...)
	}
	in := cat(masked(0x02, "ab"), // Binary, no FIN
		masked(0x89, "ping!"), // FIN|Ping
		masked(0x80, "cd"))    // FIN|Continuation
	if _, err := raw.Write(in); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "abcd" {
		t.Fatalf("server read %q, %v", buf, err)
	}
	server.CloseWrite()
	raw.SetDeadline(time.Now().Add(20 * time.Second))
	want := cat([]byte{0x8A, 0x05}, []byte("ping!"), // FIN|Pong len 5, same payload
		[]byte{0x88, 0x02, 0x03, 0xE8}) // FIN|Close len 2, 1000
	got := make([]byte, len(want))
	if _, err := io.ReadFull(raw, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("client received % x, %v; want % x", got, err, want)
	}
	// The client's Close completes the handshake: the server closes TCP.
	if _, err := raw.Write(masked(0x88, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Read(buf); err != io.EOF {
		t.Fatalf("server read %v, want io.EOF", err)
	}
	if n, err := raw.Read(got); err != io.EOF {
		t.Fatalf("client read %d bytes, %v; want io.EOF", n, err)
	}
}

func TestCloseHandshake(t *testing.T) {
	client, server := pair(t, nil, nil)
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(server); server.Close(); done <- err }()
	if err := client.Close(); err != nil {
		t.Fatalf("client Close: %v", err)
	}
	if err := received(t, done); err != nil {
		t.Fatalf("server read: %v", err)
	}
	if err := client.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// Close does not hang on a blocked Read nor on a peer that never answers.
func TestCloseWithBlockedRead(t *testing.T) {
	client, _ := pair(t, nil, nil) // the server never reads
	readErr := make(chan error, 1)
	go func() { _, err := client.Read(make([]byte, 10)); readErr <- err }()
	readRunning(t, client)
	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("Read succeeded")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
}

func TestCloseWithStatus(t *testing.T) {
	client, server := pair(t, nil, nil)
	done := make(chan error, 1)
	go func() { done <- server.CloseWithStatus(CloseInternalError, "ORPort down") }()
	_, err := io.ReadAll(client)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CloseInternalError || ce.Reason != "ORPort down" {
		t.Fatalf("client read: %v", err)
	}
	if err := received(t, done); err != nil {
		t.Fatalf("CloseWithStatus: %v", err)
	}
	if _, err := client.Write([]byte("x")); err == nil {
		t.Error("client write after the echoed Close succeeded")
	}
	client.Close()
}

func TestDeadlines(t *testing.T) {
	client, server := pair(t, nil, nil)
	client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var ne net.Error
	if _, err := client.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read: %v, want a timeout", err)
	}
	client.SetReadDeadline(time.Time{})
	server.Write([]byte("x")) // a timeout is not sticky
	if b := make([]byte, 1); func() error { _, err := io.ReadFull(client, b); return err }() != nil || b[0] != 'x' {
		t.Fatal("read after a timeout failed")
	}
	// Nobody reads the server: the client's writes block, then time out.
	client.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	big := make([]byte, 1<<20)
	var err error
	for i := 0; i < 256 && err == nil; i++ {
		_, err = client.Write(big)
	}
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("write: %v, want a timeout", err)
	}
	if _, err := client.Write([]byte("y")); err == nil {
		t.Fatal("write after a cut frame succeeded")
	}
}

// A code that may not go on the wire becomes 1000; a long reason is cut at
// a character boundary to fit the control frame.
func TestCloseWithStatusArguments(t *testing.T) {
	var out bytes.Buffer
	c := newConn(&fakeConn{r: bytes.NewReader(nil), w: &out}, false, false, nil, nil)
	reason := strings.Repeat("é", 100) // 200 bytes
	if err := c.CloseWithStatus(1005, reason); err != nil {
		t.Fatal(err)
	}
	fs := parseFrames(t, out.Bytes())
	if len(fs) != 1 || fs[0].op != 0x88 || closeCode(fs[0].payload) != CloseNormal {
		t.Fatalf("sent %v", fs)
	}
	if r := fs[0].payload[2:]; len(r) != 122 || !utf8.Valid(r) {
		t.Fatalf("reason of %d bytes, valid %v", len(r), utf8.Valid(r))
	}
}

// maskedFrame is a client frame: b0 (FIN and opcode) then payload masked
// with the key 1 2 3 4, its length in 64 bits when over 65535.
func maskedFrame(b0 byte, payload []byte) []byte {
	b := make([]byte, maxHeader+len(payload))
	h := putHeader(b, b0&0x0F, b0&0x80 != 0, len(payload), true)
	b[0] = b0
	copy(b[h-4:h], []byte{1, 2, 3, 4})
	copy(b[h:], payload)
	mask([4]byte{1, 2, 3, 4}, 0, b[h:h+len(payload)])
	return b[:h+len(payload)]
}

// A message the server refuses, sent in one large write: the server's
// Close with the failure's status arrives whole, then EOF, never a TCP
// reset (which makes browsers report 1006 instead of the status). The
// server reads and closes as a relay does: Read until error, then Close
// (or Close while a Read is still running). Repeated, to show a race.
func TestFailureCloseNoReset(t *testing.T) {
	big := bytes.Repeat([]byte("!"), 1<<20)
	for _, tc := range []struct {
		name       string
		opt        *Options
		b0         byte // FIN and opcode of the frame the client sends
		closeFirst bool // the server calls Close while its Read runs
		want       []byte
	}{
		{"too big", &Options{MaxMessage: 16 << 10}, 0x82, false, // FIN|Binary
			cat([]byte{0x88, 0x11, 0x03, 0xF1}, []byte("message too big"))}, // FIN|Close len 17, 1009
		{"protocol error", nil, 0xC2, false, // FIN|RSV1|Binary
			cat([]byte{0x88, 0x13, 0x03, 0xEA}, []byte("reserved bits set"))}, // FIN|Close len 19, 1002
		{"bad base64", &Options{Base64: true}, 0x81, false, // FIN|Text, "!" is not base64
			cat([]byte{0x88, 0x20, 0x03, 0xEF}, []byte("invalid base64 in text message"))}, // FIN|Close len 32, 1007
		{"too big while closing", &Options{MaxMessage: 16 << 10}, 0x82, true,
			[]byte{0x88, 0x02, 0x03, 0xE8}}, // FIN|Close len 2, 1000: sent by Close first
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 10 {
				client, server := pair(t, tc.opt, tc.opt)
				raw := client.conn
				raw.SetDeadline(time.Now().Add(20 * time.Second))
				closed := make(chan error, 1)
				go func() {
					if tc.closeFirst {
						go func() { readRunning(t, server); closed <- server.Close() }()
					}
					io.Copy(io.Discard, server)
					if !tc.closeFirst {
						closed <- server.Close()
					}
				}()
				wrote := make(chan error, 1)
				send := func() { go func() { _, err := raw.Write(maskedFrame(tc.b0, big)); wrote <- err }() }
				if !tc.closeFirst {
					send()
				}
				got := make([]byte, len(tc.want))
				if _, err := io.ReadFull(raw, got); err != nil || !bytes.Equal(got, tc.want) {
					t.Fatalf("run %d: client read %q, %v; want %q", i, got, err, tc.want)
				}
				if tc.closeFirst {
					send()
				}
				if rest, err := io.ReadAll(raw); len(rest) > 0 || err != nil {
					t.Fatalf("run %d: after the Close the client read % x, %v; want EOF", i, rest, err)
				}
				if err := received(t, wrote); err != nil {
					t.Fatalf("run %d: client write: %v", i, err)
				}
				raw.Close()
				if err := received(t, closed); err != nil {
					t.Fatalf("run %d: server Close: %v", i, err)
				}
			}
		})
	}
}

// A frame's payload comes out of one Read, though its first bytes were
// read ahead with the header: a relay then forwards one write per frame.
func TestReadWholeFrame(t *testing.T) {
	payload := make([]byte, 5000)
	rand.New(rand.NewSource(5)).Read(payload)
	wire := maskedFrame(0x82, payload) // FIN, binary
	c := newConn(&fakeConn{r: bytes.NewReader(wire), w: io.Discard}, false, false, nil, nil)
	got := make([]byte, 8192)
	if n, err := c.Read(got); n != len(payload) || err != nil || !bytes.Equal(got[:n], payload) {
		t.Fatalf("Read: %d, %v; want the whole %d-byte frame", n, err, len(payload))
	}
}

// Pings flood the server while it writes large messages: each Pong goes
// out between frames (the client's Read would fail on a Pong inside a data
// frame), and the race detector sees Read's Pongs and Write share the
// writer safely.
func TestPingFloodDuringWrite(t *testing.T) {
	client, server := pair(t, nil, nil)
	msg := make([]byte, 1<<20)
	rand.New(rand.NewSource(7)).Read(msg)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // the server sends 8 messages, then its Close
		defer wg.Done()
		for i := 0; i < 8; i++ {
			server.Write(msg)
		}
		server.CloseWrite()
	}()
	go func() { // the server reads, which answers the Pings
		defer wg.Done()
		io.Copy(io.Discard, server)
	}()
	ping := maskedFrame(0x89, []byte("ping")) // FIN|Ping
	go func() {
		defer wg.Done()
		for i := 0; i < 2000; i++ {
			if _, err := client.conn.Write(ping); err != nil {
				return
			}
		}
	}()
	got, err := io.ReadAll(client)
	if err != nil || len(got) != 8*len(msg) {
		t.Fatalf("client read %d bytes, %v; want %d", len(got), err, 8*len(msg))
	}
	for i := 0; i < 8; i++ {
		if !bytes.Equal(got[i*len(msg):(i+1)*len(msg)], msg) {
			t.Fatalf("message %d differs", i)
		}
	}
	client.conn.Close() // the ping writer and the server's reader end
	wg.Wait()
}

// thenWait yields its bytes, then waits until done is closed: a peer that has sent what it has.
type thenWait struct {
	b    []byte
	done chan struct{}
}

func (r *thenWait) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		<-r.done
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// Given room for a frame, Read returns the payload of the data frames that have arrived,
// several at once; past the first it never waits for more (for the rest of a frame), and it
// stops at a control frame, which the next Read answers. Then the read-ahead buffer goes back.
func TestReadAhead(t *testing.T) {
	a, b := bytes.Repeat([]byte{'a'}, 40000), bytes.Repeat([]byte{'b'}, 300)
	e, d := bytes.Repeat([]byte{'e'}, 2000), bytes.Repeat([]byte{'d'}, 5000)
	c100 := bytes.Repeat([]byte{'c'}, 100)
	var wire []byte
	wire = append(append(wire, 0x82, 0x7E, 0x9C, 0x40), a...)        // FIN|binary, 16-bit length 40000
	wire = append(append(wire, 0x82, 0x64), c100...)                 // FIN|binary, 100: a message ends
	wire = append(append(wire, 0x02, 0x7E, 0x01, 0x2C), b...)        // binary, not FIN, 300
	wire = append(wire, 0x80, 0x00, 0x89, 0x01, 'p')                 // FIN|continuation, empty; FIN|Ping "p"
	wire = append(append(wire, 0x82, 0x7E, 0x07, 0xD0), e...)        // FIN|binary, 2000
	wire = append(append(wire, 0x82, 0x7E, 0x13, 0x88), d[:1000]...) // FIN|binary, 5000: 1000 so far
	src := &thenWait{b: wire, done: make(chan struct{})}
	defer close(src.done)
	var out bytes.Buffer
	c := newConn(&fakeConn{r: src, w: &out}, true, false, nil, nil)
	buf := make([]byte, 64<<10)
	for i, want := range [][]byte{append(append(a, c100...), b...), append(e, d[:1000]...)} {
		got := make(chan []byte, 1)
		go func() {
			n, err := c.Read(buf)
			if err != nil {
				t.Error(err)
			}
			got <- buf[:n]
		}()
		select {
		case g := <-got:
			if !bytes.Equal(g, want) {
				t.Fatalf("Read %d: %d bytes, want %d", i, len(g), len(want))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Read %d waits for more", i)
		}
		if pong := []byte{0x8A, 0x81}; i == 1 && !bytes.HasPrefix(out.Bytes(), pong) { // FIN|Pong, masked, 1
			t.Errorf("after the Ping: % x, want a Pong", out.Bytes())
		}
	}
	if c.br != c.small {
		t.Error("the read-ahead buffer was kept, empty")
	}
}

// gate blocks its reader until open is closed, then reads r.
type gate struct {
	open chan struct{}
	r    io.Reader
}

func (g *gate) Read(p []byte) (int, error) {
	<-g.open
	return g.r.Read(p)
}

// WaitRead waits for a frame to begin without borrowing the read-ahead buffer, and what it took
// from the wire the next Read returns; within a frame it returns at once, since the rest is on
// its way; an error it meets, the next Read returns too.
func TestWaitRead(t *testing.T) {
	a, d := bytes.Repeat([]byte{'a'}, 40000), bytes.Repeat([]byte{'d'}, 1000)
	var wire []byte
	wire = append(append(wire, 0x82, 0x7E, 0x9C, 0x40), a...) // FIN|binary, 16-bit length 40000
	wire = append(append(wire, 0x82, 0x7E, 0x13, 0x88), d...) // FIN|binary, 5000: 1000 so far
	src := &thenWait{b: wire, done: make(chan struct{})}
	defer close(src.done)
	g := &gate{open: make(chan struct{}), r: src}
	c := newConn(&fakeConn{r: g, w: io.Discard}, true, false, nil, nil)
	waited := make(chan error, 1)
	go func() { waited <- c.WaitRead() }()
	stillWaiting(t, waited, "before any byte came")
	close(g.open)
	if err := received(t, waited); err != nil {
		t.Fatal(err)
	}
	if c.br != c.small {
		t.Error("WaitRead borrowed the read-ahead buffer")
	}
	buf := make([]byte, 64<<10)
	if n, err := c.Read(buf); err != nil || !bytes.Equal(buf[:n], append(a, d...)) {
		t.Fatalf("Read after WaitRead: %d bytes, %v; want %d", n, err, len(a)+len(d))
	}
	go func() { waited <- c.WaitRead() }() // within the second frame: no waiting
	if err := received(t, waited); err != nil {
		t.Fatal(err)
	}

	c = newConn(&fakeConn{r: bytes.NewReader(nil), w: io.Discard}, true, false, nil, nil)
	if err := c.WaitRead(); err != io.ErrUnexpectedEOF {
		t.Errorf("WaitRead at the end of the stream: %v, want %v", err, io.ErrUnexpectedEOF)
	}
	if _, err := c.Read(buf); err != io.ErrUnexpectedEOF {
		t.Errorf("Read after it: %v, want %v", err, io.ErrUnexpectedEOF)
	}
}

// A Ping that comes while WaitRead waits is answered, and the wait goes on until data comes.
func TestWaitReadAnswersPing(t *testing.T) {
	data := []byte{0x82, 0x03, 'a', 'b', 'c'} // FIN|binary, 3: "abc"
	g := &gate{open: make(chan struct{}), r: bytes.NewReader(data)}
	var out bytes.Buffer
	ping := bytes.NewReader([]byte{0x89, 0x01, 'p'}) // FIN|Ping "p"
	c := newConn(&fakeConn{r: io.MultiReader(ping, g), w: &out}, true, false, nil, nil)
	waited := make(chan error, 1)
	go func() { waited <- c.WaitRead() }()
	stillWaiting(t, waited, "after a Ping, before any data")
	close(g.open)
	if err := received(t, waited); err != nil {
		t.Fatal(err)
	}
	if pong := []byte{0x8A, 0x81}; !bytes.HasPrefix(out.Bytes(), pong) { // FIN|Pong, masked, 1
		t.Errorf("after the Ping: % x, want a Pong", out.Bytes())
	}
	buf := make([]byte, 64<<10)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "abc" {
		t.Errorf("Read after WaitRead: %q, %v", buf[:n], err)
	}
}

// stillWaiting fails the test if WaitRead, sending to waited, returns within 100 ms.
func stillWaiting(t *testing.T, waited <-chan error, when string) {
	t.Helper()
	select {
	case err := <-waited:
		t.Fatalf("WaitRead returned (%v) %s", err, when)
	case <-time.After(100 * time.Millisecond):
	}
}
