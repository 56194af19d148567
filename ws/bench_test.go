package ws

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"testing"
)

func BenchmarkMask(b *testing.B) {
	for _, n := range []int{16, 1 << 10, 16 << 10} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			buf := make([]byte, n)
			key := [4]byte{1, 2, 3, 4}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				mask(key, i&3, buf)
			}
		})
	}
}

// roles: who writes (and so who reads the other side's frames).
var benchRoles = []struct {
	name   string
	client bool
	b64    bool
}{{"server-binary", false, false}, {"client-binary", true, false},
	{"server-base64", false, true}, {"client-base64", true, true}}

const benchMsg = 16 << 10

// writeCounter counts the writes it is given.
type writeCounter struct{ n int }

func (w *writeCounter) Write(p []byte) (int, error) { w.n++; return len(p), nil }

// What the benchmarks show, asserted: in steady state a message costs no
// allocation either way, and each frame leaves in one write (header and
// payload together), or, from ReadFrom, each read's binary frames together.
func TestAllocsAndWrites(t *testing.T) {
	msg := make([]byte, 100000)
	for _, r := range benchRoles {
		chunk := maxBinaryData
		if r.b64 {
			chunk = maxBase64Data
		}
		frames := (len(msg) + chunk - 1) / chunk
		w := &writeCounter{}
		c := newConn(&fakeConn{w: w}, r.client, r.b64, nil, nil)
		wAllocs := testing.AllocsPerRun(20, func() { c.Write(msg) })
		if w.n != 21*frames { // AllocsPerRun runs once more to warm up
			t.Errorf("%s: %d writes for %d messages of %d frames", r.name, w.n, 21, frames)
		}
		w.n = 0
		src := bytes.NewReader(msg) // ReadFrom: one write per Read, of four binary frames' data
		fAllocs := testing.AllocsPerRun(20, func() { src.Reset(msg); c.ReadFrom(src) })
		if reads := (len(msg) + chunk*readFrames - 1) / (chunk * readFrames); r.b64 && w.n != 21*frames ||
			!r.b64 && w.n != 21*reads {
			t.Errorf("%s: ReadFrom: %d writes for %d sources of %d frames' data", r.name, w.n, 21, frames)
		}
		var wire bytes.Buffer
		newConn(&fakeConn{w: &wire}, !r.client, r.b64, nil, nil).Write(msg)
		rc := newConn(&fakeConn{r: &loopReader{b: wire.Bytes()}}, r.client, r.b64, nil, nil)
		buf := make([]byte, len(msg))
		rAllocs := testing.AllocsPerRun(20, func() {
			if _, err := io.ReadFull(rc, buf); err != nil {
				t.Fatal(err)
			}
		})
		if !raceEnabled && (wAllocs != 0 || rAllocs != 0 || fAllocs != 0) {
			t.Errorf("%s: %.1f allocations per Write, %.1f per message read, %.1f per ReadFrom", r.name, wAllocs, rAllocs, fAllocs)
		}
	}
}

// randomMsg is like Tor's traffic: encrypted, so random-looking.
func randomMsg() []byte {
	msg := make([]byte, benchMsg)
	rand.New(rand.NewSource(4)).Read(msg)
	return msg
}

func BenchmarkWrite(b *testing.B) {
	msg := randomMsg()
	for _, r := range benchRoles {
		b.Run(r.name, func(b *testing.B) {
			c := newConn(&fakeConn{w: io.Discard}, r.client, r.b64, nil, nil)
			b.SetBytes(benchMsg)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// chunkReader yields n Reads of msg, then io.EOF: a relay's source.
type chunkReader struct {
	msg []byte
	n   int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	r.n--
	return copy(p, r.msg), nil
}

// BenchmarkForward is what a relay does with one Read of its source: read it into its own
// buffer and Write it, or let ReadFrom read it into the frame buffer.
func BenchmarkForward(b *testing.B) {
	msg := randomMsg()
	for _, r := range benchRoles {
		c := newConn(&fakeConn{w: io.Discard}, r.client, r.b64, nil, nil)
		b.Run(r.name+"/Write", func(b *testing.B) {
			buf := make([]byte, 32<<10)
			b.SetBytes(benchMsg)
			b.ReportAllocs()
			src := &chunkReader{msg: msg, n: b.N}
			for i := 0; i < b.N; i++ {
				n, _ := src.Read(buf)
				if _, err := c.Write(buf[:n]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(r.name+"/ReadFrom", func(b *testing.B) {
			b.SetBytes(benchMsg)
			b.ReportAllocs()
			if _, err := c.ReadFrom(&chunkReader{msg: msg, n: b.N}); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// loopReader serves b over and over.
type loopReader struct {
	b []byte
	i int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.i:])
	l.i = (l.i + n) % len(l.b)
	return n, nil
}

func BenchmarkRead(b *testing.B) {
	msg := randomMsg()
	for _, r := range benchRoles {
		b.Run(r.name, func(b *testing.B) {
			// What the other side writes: one message, captured once.
			var wire bytes.Buffer
			newConn(&fakeConn{w: &wire}, !r.client, r.b64, nil, nil).Write(msg)
			c := newConn(&fakeConn{r: &loopReader{b: wire.Bytes()}}, r.client, r.b64, nil, nil)
			buf := make([]byte, 32<<10)
			b.SetBytes(benchMsg)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := io.ReadFull(c, buf[:benchMsg]); err != nil {
					b.Fatal(err)
				}
			}
			if !bytes.Equal(buf[:benchMsg], msg) {
				b.Fatal("read differs")
			}
		})
	}
}
