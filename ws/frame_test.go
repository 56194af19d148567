package ws

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"net"
	"testing"
)

// maskRef is the byte-at-a-time reference for mask.
func maskRef(key [4]byte, pos int, b []byte) int {
	for i := range b {
		b[i] ^= key[pos&3]
		pos++
	}
	return pos & 3
}

func TestMaskDifferential(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	sizes := []int{1000, 4096, 32 << 10, 100003}
	for n := 0; n <= 300; n++ {
		sizes = append(sizes, n)
	}
	buf := make([]byte, 100003+8)
	rng.Read(buf)
	for _, n := range sizes {
		for align := 0; align < 8; align++ {
			for pos := 0; pos < 4; pos++ {
				a := bytes.Clone(buf[align : align+n])
				b := bytes.Clone(a)
				pa, pb := mask(key, pos, a), maskRef(key, pos, b)
				if pa != pb || !bytes.Equal(a, b) {
					t.Fatalf("n=%d align=%d pos=%d: mask differs from reference", n, align, pos)
				}
			}
		}
	}
}

func TestMaskSpecVector(t *testing.T) {
	// The transport proposal's masked frame: key 12 34 56 78, payload "SGVsbG8=".
	b := []byte{0x41, 0x73, 0x00, 0x0b, 0x70, 0x73, 0x6e, 0x45}
	if mask([4]byte{0x12, 0x34, 0x56, 0x78}, 0, b); string(b) != "SGVsbG8=" {
		t.Fatalf("unmasked %q", b)
	}
}

func TestAcceptKey(t *testing.T) {
	for key, want := range map[string]string{
		"mzo2xSF9N8VUxuefqO0RSw==": "fM0KjD7ixoxkl4PEXU6tNaTveSg=",
		"k5Ybhw0XBDeBfmda1J9ooQ==": "LYWpflPUHdal8U1BLPXWR3iqUrI=",
		"dGhlIHNhbXBsZSBub25jZQ==": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", // RFC 6455 section 1.3
	} {
		if got := acceptKey(key); got != want {
			t.Errorf("acceptKey(%s) = %s, want %s", key, got, want)
		}
	}
}

func TestValidCloseCode(t *testing.T) {
	valid := map[int]bool{1000: true, 1001: true, 1002: true, 1003: true, 1007: true,
		1011: true, 1014: true, 3000: true, 4999: true}
	for code := 0; code < 6000; code++ {
		want := valid[code] || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
		if validCloseCode(code) != want {
			t.Errorf("validCloseCode(%d) = %v", code, !want)
		}
	}
}

// Frames written inline. Client frames (server role) mostly use the
// all-zero masking key, which leaves the payload readable.
var (
	z4        = []byte{0, 0, 0, 0}                              // masking key 00 00 00 00
	close1000 = cat([]byte{0x88, 0x82}, z4, []byte{0x03, 0xE8}) // FIN|Close, MASK|len 2, key, status 1000
)

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

type wireCase struct {
	name   string
	client bool // the Conn under test is the client (reads unmasked frames)
	b64    bool
	max    int
	in     []byte
	data   string  // payload bytes Read returns
	code   int     // 0: Read ends with io.EOF; -1: io.ErrUnexpectedEOF; else the CloseError code
	sent   []frame // what the peer receives, CloseWrite included
}

var wireCases = []wireCase{
	{name: "spec masked base64 frame", b64: true,
		in: cat([]byte{0x81, 0x88, // FIN|Text, MASK|len 8
			0x12, 0x34, 0x56, 0x78, // masking key
			0x41, 0x73, 0x00, 0x0b, 0x70, 0x73, 0x6e, 0x45}, // "SGVsbG8=" masked
			[]byte{0x88, 0x80}, z4), // FIN|Close, MASK|len 0, key
		data: "Hello", sent: []frame{{0x88, []byte{0x03, 0xE8}}}},
	{name: "base64 split inside a group", b64: true,
		in: cat([]byte{0x01, 0x82}, z4, []byte("SG"), // Text (no FIN), MASK|len 2, key, "SG"
			[]byte{0x80, 0x86}, z4, []byte("VsbG8="), // FIN|Continuation, MASK|len 6, key
			close1000),
		data: "Hello", sent: []frame{{0x88, []byte{0x03, 0xE8}}}},
	{name: "base64 then binary messages", b64: true,
		in: cat([]byte{0x81, 0x84}, z4, []byte("YWI="), // FIN|Text "YWI=" = "ab"
			[]byte{0x82, 0x81}, z4, []byte("c"), // FIN|Binary "c"
			[]byte{0x81, 0x80}, z4, // FIN|Text, empty message
			close1000),
		data: "abc", sent: []frame{{0x88, []byte{0x03, 0xE8}}}},
	{name: "binary then close 1000",
		in:   cat([]byte{0x82, 0x83}, z4, []byte("abc"), close1000), // FIN|Binary, MASK|len 3
		data: "abc", sent: []frame{{0x88, []byte{0x03, 0xE8}}}},
	{name: "ping between fragments gets one pong",
		in: cat([]byte{0x02, 0x81}, z4, []byte("a"), // Binary (no FIN), MASK|len 1
			[]byte{0x89, 0x82}, z4, []byte("hi"), // FIN|Ping, MASK|len 2, "hi"
			[]byte{0x8A, 0x80}, z4, // FIN|Pong (unsolicited), ignored
			[]byte{0x80, 0x81}, z4, []byte("b"), // FIN|Continuation "b"
			close1000),
		data: "ab", sent: []frame{{0x8A, []byte("hi")}, {0x88, []byte{0x03, 0xE8}}}},
	{name: "16-bit and non-minimal 64-bit lengths",
		in: cat([]byte{0x82, 0xFE, 0x00, 0x7E}, z4, bytes.Repeat([]byte("x"), 126), // len16 126
			[]byte{0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 3}, z4, []byte("abc"), // len64 3
			close1000),
		data: string(bytes.Repeat([]byte("x"), 126)) + "abc", sent: []frame{{0x88, []byte{0x03, 0xE8}}}},
	{name: "close 1001 with reason",
		in:   cat([]byte{0x88, 0x85}, z4, []byte{0x03, 0xE9}, []byte("bye")), // status 1001, "bye"
		code: 1001, sent: []frame{{0x88, []byte{0x03, 0xE9}}}},
	{name: "close 3000",
		in:   cat([]byte{0x88, 0x82}, z4, []byte{0x0B, 0xB8}), // status 3000
		code: 3000, sent: []frame{{0x88, []byte{0x0B, 0xB8}}}},
	{name: "no close frame", in: cat([]byte{0x82, 0x81}, z4, []byte("a")), data: "a", code: -1,
		sent: []frame{{0x88, []byte{0x03, 0xE8}}}},
	{name: "truncated header", in: []byte{0x82}, code: -1, sent: []frame{{0x88, []byte{0x03, 0xE8}}}},
	{name: "client reads unmasked", client: true,
		in:   []byte{0x82, 0x02, 'h', 'i', 0x88, 0x00}, // FIN|Binary len 2 "hi"; FIN|Close len 0
		data: "hi", sent: []frame{{0x88, []byte{0x03, 0xE8}}}},

	// Violations: the Close we send and the CloseError we return.
	{name: "RSV1", in: cat([]byte{0xC2, 0x80}, z4), code: 1002},
	{name: "RSV2", in: cat([]byte{0xA2, 0x80}, z4), code: 1002},
	{name: "RSV3", in: cat([]byte{0x92, 0x80}, z4), code: 1002},
	{name: "opcode 3", in: cat([]byte{0x83, 0x80}, z4), code: 1002},
	{name: "opcode 7", in: cat([]byte{0x87, 0x80}, z4), code: 1002},
	{name: "opcode 0xB", in: cat([]byte{0x8B, 0x80}, z4), code: 1002},
	{name: "opcode 0xF", in: cat([]byte{0x8F, 0x80}, z4), code: 1002},
	{name: "unmasked client frame", in: []byte{0x82, 0x01, 'a'}, code: 1002},
	{name: "masked server frame", client: true, in: cat([]byte{0x82, 0x81}, z4, []byte("a")), code: 1002},
	{name: "64-bit length MSB", in: cat([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}, z4), code: 1002},
	{name: "control frame of 126", in: cat([]byte{0x89, 0xFE, 0x00, 0x7E}, z4), code: 1002},
	{name: "fragmented ping", in: cat([]byte{0x09, 0x80}, z4), code: 1002},
	{name: "continuation without message", in: cat([]byte{0x80, 0x80}, z4), code: 1002},
	{name: "binary inside a message",
		in:   cat([]byte{0x02, 0x81}, z4, []byte("a"), []byte{0x82, 0x81}, z4, []byte("b")),
		data: "a", code: 1002},
	{name: "close with 1-byte payload", in: cat([]byte{0x88, 0x81}, z4, []byte{0x03}), code: 1002},
	{name: "close 999", in: cat([]byte{0x88, 0x82}, z4, []byte{0x03, 0xE7}), code: 1002},
	{name: "close 1004", in: cat([]byte{0x88, 0x82}, z4, []byte{0x03, 0xEC}), code: 1002},
	{name: "close 1005", in: cat([]byte{0x88, 0x82}, z4, []byte{0x03, 0xED}), code: 1002},
	{name: "close 1006", in: cat([]byte{0x88, 0x82}, z4, []byte{0x03, 0xEE}), code: 1002},
	{name: "close 1015", in: cat([]byte{0x88, 0x82}, z4, []byte{0x03, 0xF7}), code: 1002},
	{name: "close 2999", in: cat([]byte{0x88, 0x82}, z4, []byte{0x0B, 0xB7}), code: 1002},
	{name: "close 5000", in: cat([]byte{0x88, 0x82}, z4, []byte{0x13, 0x88}), code: 1002},
	{name: "close reason not UTF-8", in: cat([]byte{0x88, 0x83}, z4, []byte{0x03, 0xE8, 0xFF}), code: 1007},
	{name: "text without base64", in: cat([]byte{0x81, 0x80}, z4), code: 1003},
	{name: "base64 invalid character", b64: true,
		in: cat([]byte{0x81, 0x84}, z4, []byte("SG!v")), code: 1007},
	{name: "base64 padding in the middle", b64: true,
		in: cat([]byte{0x81, 0x88}, z4, []byte("SA==SGVs")), data: "H", code: 1007},
	{name: "base64 data after padding in next frame", b64: true,
		in:   cat([]byte{0x01, 0x84}, z4, []byte("SA=="), []byte{0x80, 0x84}, z4, []byte("SGVs")),
		data: "H", code: 1007},
	{name: "base64 truncated group", b64: true,
		in: cat([]byte{0x81, 0x83}, z4, []byte("SGV")), code: 1007},
	{name: "base64 non-canonical padding", b64: true,
		in: cat([]byte{0x81, 0x88}, z4, []byte("SGVsbG9=")), data: "Hel", code: 1007},
	{name: "base64 line break", b64: true,
		in: cat([]byte{0x81, 0x86}, z4, []byte("SGVs\r\n")), data: "Hel", code: 1007},
	{name: "message over the limit", max: 4,
		in: cat([]byte{0x82, 0x85}, z4, []byte("abcde")), code: 1009},
	{name: "fragments over the limit", max: 4,
		in:   cat([]byte{0x02, 0x83}, z4, []byte("abc"), []byte{0x80, 0x82}, z4, []byte("de")),
		data: "abc", code: 1009},
	{name: "huge declared length",
		in: cat([]byte{0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, z4), code: 1009},
	{name: "4096 fragments", // the most a message may have under the default limit
		in: cat([]byte{0x02, 0x81}, z4, []byte("a"), // Binary (no FIN), MASK|len 1, "a"
			bytes.Repeat(cat([]byte{0x00, 0x80}, z4), 4094), // Continuation (no FIN), MASK|len 0
			[]byte{0x80, 0x81}, z4, []byte("b"), close1000), // FIN|Continuation "b"
		data: "ab", sent: []frame{{0x88, []byte{0x03, 0xE8}}}},
	{name: "4097 fragments",
		in: cat([]byte{0x02, 0x80}, z4, // Binary (no FIN), MASK|len 0
			bytes.Repeat(cat([]byte{0x00, 0x80}, z4), 4096)), // Continuation (no FIN), MASK|len 0
		code: 1009},
	{name: "fragment bound grows with the limit", max: 8 << 20, // 8192 frames
		in: cat([]byte{0x02, 0x81}, z4, []byte("a"), // Binary (no FIN), MASK|len 1, "a"
			bytes.Repeat(cat([]byte{0x00, 0x80}, z4), 8190), // Continuation (no FIN), MASK|len 0
			[]byte{0x80, 0x81}, z4, []byte("b"), // FIN|Continuation "b"
			[]byte{0x02, 0x80}, z4, bytes.Repeat(cat([]byte{0x00, 0x80}, z4), 8192)), // 8193 frames
		data: "ab", code: 1009},
	{name: "empty messages are not fragments", max: 1024, // each ends its message
		in:   cat(bytes.Repeat(cat([]byte{0x82, 0x80}, z4), 5000), close1000), // FIN|Binary, MASK|len 0
		sent: []frame{{0x88, []byte{0x03, 0xE8}}}},
	{name: "base64 limit counts text", b64: true, max: 7,
		in: cat([]byte{0x81, 0x88}, z4, []byte("SGVsbG8=")), code: 1009},
}

// runWire feeds in to a Conn until Read fails, then calls CloseWrite as a
// relay would. It returns what Read gave, its final error, and the bytes
// the peer received before and after CloseWrite.
func runWire(t testing.TB, tc wireCase, r io.Reader) (data []byte, err error, before, sent []byte) {
	var out bytes.Buffer
	c := newConn(&fakeConn{r: r, w: &out}, tc.client, tc.b64, &Options{MaxMessage: tc.max}, nil)
	buf := make([]byte, maxBinaryData) // small reads exercise the partial paths, large ones Read's read-ahead
	var ne net.Error
	for i := 0; err == nil || errors.As(err, &ne) && ne.Timeout(); i++ { // timeouts are not sticky
		size := 1 + len(data)%7
		if i%3 == 2 {
			size = len(buf)
		}
		var n int
		n, err = c.Read(buf[:size])
		data = append(data, buf[:n]...)
	}
	before = bytes.Clone(out.Bytes())
	c.CloseWrite()
	return data, err, before, out.Bytes()
}

// timeoutReader fails every other Read with a timeout, else reads one byte.
type timeoutReader struct {
	r    io.Reader
	tick bool
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (t *timeoutReader) Read(p []byte) (int, error) {
	if t.tick = !t.tick; t.tick {
		return 0, timeoutErr{}
	}
	return t.r.Read(p[:min(len(p), 1)])
}

// dataTimeoutReader reads one byte and reports a timeout with it, as the
// io.Reader contract allows (n > 0 with an error).
type dataTimeoutReader struct{ r io.Reader }

func (t dataTimeoutReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p[:min(len(p), 1)])
	if err == nil {
		err = timeoutErr{}
	}
	return n, err
}

func TestReadFrames(t *testing.T) {
	withTimeouts := append(readers, []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"timeouts", func(r io.Reader) io.Reader { return &timeoutReader{r: r} }},
		{"data with timeouts", func(r io.Reader) io.Reader { return dataTimeoutReader{r} }},
	}...)
	for _, tc := range wireCases {
		for _, rd := range withTimeouts {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				data, err, before, sent := runWire(t, tc, rd.wrap(bytes.NewReader(tc.in)))
				if string(data) != tc.data {
					t.Errorf("data %q, want %q", data, tc.data)
				}
				var ce *CloseError
				switch {
				case tc.code == 0 && err != io.EOF,
					tc.code == -1 && err != io.ErrUnexpectedEOF,
					tc.code > 0 && (!errors.As(err, &ce) || ce.Code != tc.code):
					t.Fatalf("error %v, want code %d", err, tc.code)
				}
				if tc.code == 0 { // a clean Close is answered by CloseWrite, not by Read
					for _, f := range parseFrames(t, before) {
						if f.op == 0x88 {
							t.Fatal("Close answered before CloseWrite")
						}
					}
				}
				fs := parseFrames(t, sent)
				want := tc.sent
				if tc.code > 1001 && tc.sent == nil { // a violation: our Close carries the code
					if len(fs) != 1 || fs[0].op != 0x88 || closeCode(fs[0].payload) != tc.code {
						t.Fatalf("sent %v, want one Close %d", fs, tc.code)
					}
					return
				}
				if len(fs) != len(want) {
					t.Fatalf("sent %v, want %v", fs, want)
				}
				for i := range fs {
					if fs[i].op != want[i].op || !bytes.Equal(fs[i].payload, want[i].payload) {
						t.Errorf("frame %d: %x %q, want %x %q", i, fs[i].op, fs[i].payload, want[i].op, want[i].payload)
					}
				}
			})
		}
	}
}

// The server's frames are unmasked and exact.
func TestWriteFramesServer(t *testing.T) {
	for _, tc := range []struct {
		b64  bool
		msg  string
		want []byte
	}{
		{false, "Hello", []byte{0x82, 0x05, 'H', 'e', 'l', 'l', 'o'}}, // FIN|Binary len 5
		{true, "Hello", cat([]byte{0x81, 0x08}, []byte("SGVsbG8="))},  // FIN|Text len 8
		{true, "", nil}, // nothing to send
	} {
		var out bytes.Buffer
		c := newConn(&fakeConn{w: &out}, false, tc.b64, nil, nil)
		if n, err := c.Write([]byte(tc.msg)); n != len(tc.msg) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
		if !bytes.Equal(out.Bytes(), tc.want) {
			t.Errorf("wrote % x, want % x", out.Bytes(), tc.want)
		}
	}
}

// A large Write is one message in bounded frames; a client masks each frame
// with its own key; base64 pads only at the message's end.
func TestWriteFramesSplit(t *testing.T) {
	msg := make([]byte, 100000)
	rand.New(rand.NewSource(2)).Read(msg)
	for _, client := range []bool{false, true} {
		for _, b64 := range []bool{false, true} {
			var out bytes.Buffer
			c := newConn(&fakeConn{w: &out}, client, b64, nil, nil)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			fs := parseFrames(t, out.Bytes())
			var got []byte
			keys := map[string]bool{}
			for i, f := range fs {
				wantOp := byte(opContinuation)
				if i == 0 {
					wantOp = opBinary
					if b64 {
						wantOp = opText
					}
				}
				if i == len(fs)-1 {
					wantOp |= 0x80
				}
				size := maxBinaryData // every frame but the last is full
				if b64 {
					size = maxFrameSend
				}
				if f.op != wantOp || len(f.payload) > size || i < len(fs)-1 && len(f.payload) != size {
					t.Fatalf("frame %d: op %x len %d", i, f.op, len(f.payload))
				}
				got = append(got, f.payload...)
			}
			if client {
				for i, b := 0, out.Bytes(); len(b) > 0; i++ { // collect each frame's key
					h := putHeader(make([]byte, maxHeader), 0, false, len(fs[i].payload), true)
					keys[string(b[h-4:h])] = true
					b = b[h+len(fs[i].payload):]
				}
				if len(keys) != len(fs) {
					t.Errorf("%d keys for %d frames", len(keys), len(fs))
				}
			}
			if b64 {
				if bytes.IndexByte(got[:len(got)-2], '=') >= 0 {
					t.Fatal("padding before the end of the message")
				}
				var err error
				if got, err = b64std.DecodeString(string(got)); err != nil {
					t.Fatal(err)
				}
			}
			if len(fs) < 4 || !bytes.Equal(got, msg) {
				t.Errorf("client=%v b64=%v: %d frames, payload differs", client, b64, len(fs))
			}
			out.Reset() // a relay's 32 KiB write leaves in one frame
			if c.Write(msg[:32<<10]); len(parseFrames(t, out.Bytes())) != 1 {
				t.Errorf("client=%v b64=%v: 32 KiB in %d frames", client, b64, len(parseFrames(t, out.Bytes())))
			}
		}
	}
}

// FuzzReadFrames reads arbitrary bytes as a server reading a client: never
// a panic; Read gives at most the input's size; the peer receives only
// well-formed Pong and Close frames, at most one Close and nothing after it.
func FuzzReadFrames(f *testing.F) {
	for _, tc := range wireCases {
		f.Add(tc.in, tc.b64)
	}
	f.Fuzz(func(t *testing.T, in []byte, b64 bool) {
		data, err, _, sent := runWire(t, wireCase{b64: b64, max: 1 << 16}, bytes.NewReader(in))
		if err == nil || len(data) > len(in) {
			t.Fatalf("err %v, %d bytes from %d", err, len(data), len(in))
		}
		fs := parseFrames(t, sent)
		for i, f := range fs {
			if f.op != 0x8A && f.op != 0x88 || len(f.payload) > maxControl ||
				f.op == 0x88 && i != len(fs)-1 {
				t.Fatalf("sent frame %d: %x %q", i, f.op, f.payload)
			}
		}
	})
}
