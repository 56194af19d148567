package ws

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"
	"unsafe"
)

// refWire is what the package must send for msgs, each one data message, built without its
// writer: frames of at most chunk raw bytes (32 KiB, or 32,769 with base64), FIN on a
// message's last, the shortest length (RFC 6455 section 5.2), base64 text when b64. A
// client's masking keys are random: they are taken from got where the reference's own
// header says they are, so that any other difference shows.
func refWire(got []byte, client, b64 bool, msgs [][]byte) []byte {
	chunk, first := maxBinaryData, byte(opBinary)
	if b64 {
		chunk, first = maxBase64Data, opText
	}
	var w []byte
	for _, msg := range msgs {
		for i, op := 0, first; i < len(msg); i, op = i+chunk, opContinuation {
			p := msg[i:min(i+chunk, len(msg))]
			if b64 {
				p = []byte(base64.StdEncoding.EncodeToString(p))
			}
			if i+chunk >= len(msg) {
				op |= 0x80
			}
			var m byte
			if client {
				m = 0x80
			}
			switch n := len(p); {
			case n < 126:
				w = append(w, op, m|byte(n))
			case n < 1<<16:
				w = binary.BigEndian.AppendUint16(append(w, op, m|126), uint16(n))
			default:
				w = binary.BigEndian.AppendUint64(append(w, op, m|127), uint64(n))
			}
			var key [4]byte
			if client {
				if len(got) >= len(w)+4 {
					copy(key[:], got[len(w):])
				}
				w = append(w, key[:]...)
			}
			for j, b := range p {
				w = append(w, b^key[j%4])
			}
		}
	}
	return w
}

// splitEvery cuts b into pieces of n bytes (the last may be shorter).
func splitEvery(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		k := min(n, len(b))
		out, b = append(out, b[:k]), b[k:]
	}
	return out
}

var diffSizes = []int{0, 1, 2, 3, 4, 7, 8, 9, 124, 125, 126, 127, 128, 1000, 2047, 2048,
	16384, 32767, 32768, 32769, 32770, 65535, 65536, 65537, 100000, 131071, 131072, 131073, 300000}

// Write and ReadFrom send byte for byte what the reference writer sends, for every size
// around the length encodings' and the frames' limits, both roles, binary and base64.
// ReadFrom sends each Read of its source as messages of 32 KiB: here, a bytes.Reader yields
// 128 KiB at a time (ReadFrom's buffer; 32 KiB with base64), four binary frames in one write.
func TestWriteDifferential(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	sizes := append([]int(nil), diffSizes...)
	for i := 0; i < 20; i++ {
		sizes = append(sizes, rng.Intn(70000))
	}
	for _, r := range benchRoles {
		for _, size := range sizes {
			msg := make([]byte, size)
			rng.Read(msg)
			var out bytes.Buffer
			c := newConn(&fakeConn{w: &out}, r.client, r.b64, nil, nil)
			if n, err := c.Write(msg); n != size || err != nil {
				t.Fatalf("%s: Write(%d bytes) = %d, %v", r.name, size, n, err)
			}
			if want := refWire(out.Bytes(), r.client, r.b64, [][]byte{msg}); !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("%s: Write of %d bytes differs from the reference", r.name, size)
			}
			out.Reset()
			if n, err := c.ReadFrom(bytes.NewReader(msg)); n != int64(size) || err != nil {
				t.Fatalf("%s: ReadFrom(%d bytes) = %d, %v", r.name, size, n, err)
			}
			if want := refWire(out.Bytes(), r.client, r.b64, splitEvery(msg, maxBinaryData)); !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("%s: ReadFrom of %d bytes differs from the reference", r.name, size)
			}
		}
	}
}

// The reference writer itself, on the example of RFC 6455 section 5.7 ("Hello", unmasked,
// then masked with key 37 fa 21 3d; the RFC's frames are text, 0x81), so that the
// differential test compares to the RFC.
func TestRefWire(t *testing.T) {
	if got := refWire(nil, false, false, [][]byte{[]byte("Hello")}); !bytes.Equal(got,
		[]byte{0x82, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}) { // FIN|binary, len 5, "Hello"
		t.Errorf("unmasked: % x", got)
	}
	masked := []byte{0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58} // MASK|5, key, masked
	if got := refWire(masked, true, false, [][]byte{[]byte("Hello")}); !bytes.Equal(got, masked) {
		t.Errorf("masked: % x", got)
	}
}

// errAfter fails every write after the first n.
type errAfter struct {
	n   int
	out bytes.Buffer
}

var errBroken = errors.New("broken pipe")

func (w *errAfter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, errBroken
	}
	w.n--
	return w.out.Write(p)
}

// ReadFrom with awkward sources: one byte per Read (each byte is a message of its own),
// data together with io.EOF, a read error after data, and a write error, which ends
// writing for good like Write's and is counted out.
func TestReadFromSources(t *testing.T) {
	msg := make([]byte, 300000)
	rand.New(rand.NewSource(5)).Read(msg)
	errSource := errors.New("source failed")
	for _, r := range benchRoles {
		first := readFrames * maxBinaryData // a Read: four binary frames, or one base64 message
		if r.b64 {
			first = maxBinaryData
		}
		for _, tc := range []struct {
			name  string
			src   io.Reader
			msgs  [][]byte
			n     int64
			err   error
			wrote int // frames the conn takes before failing (-1: never fails)
		}{
			{"one byte", iotest.OneByteReader(bytes.NewReader(msg[:300])), splitEvery(msg[:300], 1), 300, nil, -1},
			{"data with EOF", iotest.DataErrReader(bytes.NewReader(msg[:5000])), splitEvery(msg[:5000], 1024), 5000, nil, -1}, // 1 KiB a Read
			{"read error", io.MultiReader(bytes.NewReader(msg[:10]), iotest.ErrReader(errSource)), [][]byte{msg[:10]}, 10, errSource, -1},
			{"write error", bytes.NewReader(msg), splitEvery(msg[:first], maxBinaryData), int64(first), errBroken, 1},
		} {
			w := &errAfter{n: tc.wrote}
			c := newConn(&fakeConn{w: w}, r.client, r.b64, nil, nil)
			n, err := c.ReadFrom(tc.src)
			if n != tc.n || err != tc.err {
				t.Errorf("%s, %s: ReadFrom = %d, %v; want %d, %v", r.name, tc.name, n, err, tc.n, tc.err)
			}
			if want := refWire(w.out.Bytes(), r.client, r.b64, tc.msgs); !bytes.Equal(w.out.Bytes(), want) {
				t.Errorf("%s, %s: wire differs from the reference", r.name, tc.name)
			}
			if tc.err == errBroken {
				if _, err := c.Write([]byte("more")); err != errBroken {
					t.Errorf("%s: Write after a failed ReadFrom: %v, want the write error", r.name, err)
				}
				if err := c.CloseWrite(); err == nil {
					t.Errorf("%s: CloseWrite after a failed ReadFrom reports success", r.name)
				}
			}
		}
	}
}

// alignReader records where each Read's buffer starts, modulo 64, and serves r.
type alignReader struct {
	r    io.Reader
	mods []uintptr
}

func (a *alignReader) Read(p []byte) (int, error) {
	if len(p) > 0 {
		a.mods = append(a.mods, uintptr(unsafe.Pointer(&p[0]))%64)
	}
	return a.r.Read(p)
}

// The kernel's copies into our buffers run at full speed only when the buffer is aligned
// (measured: 15% more CPU per GiB for the relays with a payload at offset 14): ReadFrom reads
// its source into a 64-byte-aligned place, and Read puts the bulk of a full frame at a 64-byte
// offset of the caller's (aligned) buffer, or, given room for a frame, reads frames ahead into
// an aligned buffer of its own (after a small read that waits for them), both roles.
func TestAlignedCopies(t *testing.T) {
	msg := make([]byte, 3*maxBinaryData)
	for _, client := range []bool{false, true} {
		src := &alignReader{r: bytes.NewReader(msg)}
		var wire bytes.Buffer
		newConn(&fakeConn{w: &wire}, client, false, nil, nil).ReadFrom(src)
		for _, m := range src.mods {
			if m != 0 {
				t.Errorf("client=%v: ReadFrom reads at %d modulo 64", client, m)
			}
		}
		conn := &alignReader{r: bytes.NewReader(wire.Bytes())}
		rc := newConn(&fakeConn{r: conn}, !client, false, nil, nil)
		buf := make([]byte, maxBinaryData/2) // a relay's small buffer, aligned like any large allocation
		if uintptr(unsafe.Pointer(&buf[0]))%64 != 0 {
			t.Fatal("test buffer not aligned")
		}
		for i := 0; i < 2; i++ {
			conn.mods = conn.mods[:0]
			if n, err := io.ReadFull(rc, buf); n != len(buf) || err != nil {
				t.Fatalf("Read: %d, %v", n, err)
			}
			if want := 2 - i; len(conn.mods) != want || conn.mods[want-1] != 0 {
				t.Errorf("client=%v: half a frame read as %d reads at %v modulo 64; want %d, the last at 0", !client, len(conn.mods), conn.mods, want)
			}
		}
		conn = &alignReader{r: bytes.NewReader(wire.Bytes())} // room for a frame: read ahead
		rc = newConn(&fakeConn{r: conn}, !client, false, nil, nil)
		buf = make([]byte, maxBinaryData)
		for i := 0; i < 3; i++ {
			if n, err := io.ReadFull(rc, buf); n != len(buf) || err != nil {
				t.Fatalf("Read: %d, %v", n, err)
			}
		}
		if len(conn.mods) != 2 || conn.mods[1] != 0 { // the wait's small read, then the read-ahead's
			t.Errorf("client=%v: three frames read as %d reads at %v modulo 64; want two, the read-ahead's at 0", !client, len(conn.mods), conn.mods)
		}
	}
}
