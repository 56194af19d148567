package ws

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"math/rand"
	"strings"
	"testing"
)

var b64std = base64.StdEncoding.Strict()

// textFrames makes the masked (zero key) frames of one text message whose
// text is split at the given cut points.
func textFrames(text []byte, cuts []int) []byte {
	var b []byte
	prev := 0
	for i, cut := range append(cuts, len(text)) {
		op := byte(opContinuation)
		if i == 0 {
			op = opText
		}
		if i == len(cuts) {
			op |= 0x80
		}
		var h [maxHeader]byte
		n := putHeader(h[:], op, op&0x80 != 0, cut-prev, true) // key stays 00 00 00 00
		b = append(append(b, h[:n]...), text[prev:cut]...)
		prev = cut
	}
	return append(b, close1000...)
}

// decodeViaConn decodes text split at cuts through a server Conn, reading
// with buffers of size bufSize, through wrap.
func decodeViaConn(text []byte, cuts []int, bufSize int, wrap func(io.Reader) io.Reader) ([]byte, error) {
	c := newConn(&fakeConn{r: wrap(bytes.NewReader(textFrames(text, cuts))), w: io.Discard}, false, true, nil, nil)
	var out []byte
	buf := make([]byte, bufSize)
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func TestBase64Decoder(t *testing.T) {
	for _, tc := range []struct {
		text string
		want string // "!" for an invalid message
	}{
		{"", ""},
		{"SGVsbG8=", "Hello"},
		{"SGVsbG8h", "Hello!"},
		{"SGVsbA==", "Hell"},
		{"AAECAwQF", "\x00\x01\x02\x03\x04\x05"},
		{"+/+/", "\xfb\xff\xbf"},
		{"SGVsbG8", "!"},                            // truncated group
		{"SGVsbG8==", "!"},                          // data after padding
		{"SG=sbG8=", "!"},                           // padding in the middle
		{"SGVsbG9=", "!"},                           // non-zero bits under the padding
		{"SGVsbB==", "!"},                           // non-zero bits under the padding
		{"S===", "!"},                               // one character then padding
		{"====", "!"},                               // padding only
		{"SGVs\nbG8=", "!"},                         // line break
		{"SGVs\rbG8=", "!"},                         // carriage return
		{"SGVsbG8=\n", "!"},                         // line break after the padding
		{"SGVsbG8hSGVsbG8hSGVs\nbG8hSGVsbG8h", "!"}, // after whole steps of the fast loop
		{"SGVsbG8hSGVsbG8h\r", "!"},                 // in a trailing partial group
		{"SGVsbG8hSGVs\r\n\r\nbG8h", "!"},           // four, which encoding/base64 would skip
		{"SGVs bG8=", "!"},                          // space
		{"SGV-bG8=", "!"},                           // URL alphabet
	} {
		text := []byte(tc.text)
		for cut1 := 0; cut1 <= len(text); cut1++ {
			for cut2 := cut1; cut2 <= len(text); cut2++ {
				for _, rd := range readers {
					for _, size := range []int{1, 3, 8, 64} {
						got, err := decodeViaConn(text, []int{cut1, cut2}, size, rd.wrap)
						var ce *CloseError
						if tc.want == "!" {
							if !errors.As(err, &ce) || ce.Code != CloseInvalidData {
								t.Fatalf("%q cuts %d,%d %s/%d: err %v, want 1007", tc.text, cut1, cut2, rd.name, size, err)
							}
						} else if err != nil || string(got) != tc.want {
							t.Fatalf("%q cuts %d,%d %s/%d: %q, %v", tc.text, cut1, cut2, rd.name, size, got, err)
						}
					}
				}
			}
		}
	}
}

func TestBase64Random(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 200; i++ {
		msg := make([]byte, rng.Intn(3000))
		rng.Read(msg)
		text := []byte(base64.StdEncoding.EncodeToString(msg))
		cuts := randomCuts(rng, len(text))
		got, err := decodeViaConn(text, cuts, 1+rng.Intn(2000), readers[rng.Intn(3)].wrap)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("len %d cuts %v: err %v, equal %v", len(msg), cuts, err, bytes.Equal(got, msg))
		}
	}
}

// A Read fills the caller's buffer with decoded bytes (to a whole group), so
// a relay moves as much per call as with binary frames.
func TestBase64ReadFills(t *testing.T) {
	msg := make([]byte, 100000)
	rand.New(rand.NewSource(4)).Read(msg)
	text := []byte(base64.StdEncoding.EncodeToString(msg))
	c := newConn(&fakeConn{r: bytes.NewReader(textFrames(text, nil)), w: io.Discard}, false, true, nil, nil)
	var got []byte
	// 2048 and 32768 are not multiples of 3: a Read fills p, and the rest of the group it
	// ends in (1 byte here) comes with the next Read.
	for _, tc := range []struct{ size, want int }{{2048, 2048}, {32 << 10, 1}, {32 << 10, 32 << 10}} {
		buf := make([]byte, tc.size)
		n, err := c.Read(buf)
		if n != tc.want || err != nil {
			t.Errorf("Read of %d: %d, %v; want %d", tc.size, n, err, tc.want)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, msg[:len(got)]) {
		t.Error("data differs")
	}
}

// A relay's base64 message of up to 32 KiB (as ReadFrom sends them: padded unless a multiple
// of 3) comes out of one Read of a 32 KiB buffer, so that the relay makes one write for it.
func TestBase64ReadWholeMessage(t *testing.T) {
	for _, size := range []int{32766, 32767, 32768} {
		msg := make([]byte, size)
		rand.New(rand.NewSource(int64(size))).Read(msg)
		var wire bytes.Buffer
		newConn(&fakeConn{w: &wire}, true, true, nil, nil).ReadFrom(bytes.NewReader(msg))
		c := newConn(&fakeConn{r: &wire, w: io.Discard}, false, true, nil, nil)
		buf := make([]byte, 32<<10)
		if n, err := c.Read(buf); n != size || err != nil || !bytes.Equal(buf[:n], msg) {
			t.Errorf("message of %d bytes: Read = %d, %v", size, n, err)
		}
	}
}

func randomCuts(rng *rand.Rand, n int) []int {
	cuts := make([]int, rng.Intn(5))
	for i := range cuts {
		cuts[i] = rng.Intn(n + 1)
	}
	for i := 1; i < len(cuts); i++ { // sort, few elements
		for j := i; j > 0 && cuts[j] < cuts[j-1]; j-- {
			cuts[j], cuts[j-1] = cuts[j-1], cuts[j]
		}
	}
	return cuts
}

// FuzzBase64 compares the incremental decoder with encoding/base64 (strict)
// over random splits of a message into frames.
func FuzzBase64(f *testing.F) {
	f.Add([]byte("SGVsbG8="), int64(0), 7)
	f.Add([]byte("SGVsbG8"), int64(1), 1)
	f.Add([]byte("SA==SGVs"), int64(2), 3)
	f.Add([]byte("AAECAwQFBgcICQ=="), int64(3), 100)
	f.Add([]byte("SGVs\r\nbG8="), int64(4), 9)
	f.Fuzz(func(t *testing.T, text []byte, seed int64, size int) {
		if len(text) > 1<<16 {
			return
		}
		rng := rand.New(rand.NewSource(seed))
		size = 1 + (size&0xFFFF)%4096
		got, err := decodeViaConn(text, randomCuts(rng, len(text)), size, readers[rng.Intn(3)].wrap)
		want, werr := b64std.DecodeString(string(text))
		if bytes.ContainsAny(text, "\r\n") { // encoding/base64 skips these; we refuse them
			werr = errBase64
		}
		var ce *CloseError
		switch {
		case werr == nil && (err != nil || !bytes.Equal(got, want)):
			t.Fatalf("%q: got %q, %v; want %q", text, got, err, want)
		case werr != nil && (!errors.As(err, &ce) || ce.Code != CloseInvalidData):
			t.Fatalf("%q: got %q, %v; want close 1007", text, got, err)
		}
	})
}

// The table codec against encoding/base64, over every length up to 100
// (both loops' ends) and some large ones, at several offsets.
func TestCodecDifferential(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	for _, n := range append(rangeInts(0, 100), 1000, 32768, 32769, 100003) {
		for off := 0; off < 3; off++ {
			raw := make([]byte, n+off)
			rng.Read(raw)
			raw = raw[off:]
			want := b64std.EncodeToString(raw)
			text := make([]byte, len(want)+off)[off:]
			if encode(text, raw); string(text) != want {
				t.Fatalf("encode of %d bytes at offset %d: %q, want %q", n, off, text, want)
			}
			got := make([]byte, len(raw))
			if m, err := decodeStrict(got, text); err != nil || !bytes.Equal(got[:m], raw) || m != n {
				t.Fatalf("decodeStrict of %d bytes at offset %d: %d, %v", n, off, m, err)
			}
		}
	}
}

func rangeInts(from, to int) []int {
	var r []int
	for i := from; i <= to; i++ {
		r = append(r, i)
	}
	return r
}

// FuzzDecodeStrict: the table decoder agrees with encoding/base64 (strict)
// on any text without line breaks (which decode refuses before it): the
// same bytes, and an error for the same inputs.
func FuzzDecodeStrict(f *testing.F) {
	f.Add([]byte("SGVsbG8hSGVsbG8h"))
	f.Add([]byte("SGVsbG8hSGVsbA=="))
	f.Add([]byte("SGVsbG8=SGVsbG8h"))
	f.Add([]byte("SGVsbG9hSGVsbG9="))
	f.Add([]byte("SGVs-G8hSGVsbG8h"))
	f.Fuzz(func(t *testing.T, text []byte) {
		if bytes.ContainsAny(text, "\r\n") {
			return
		}
		want, werr := b64std.DecodeString(string(text))
		got := make([]byte, len(text))
		n, err := decodeStrict(got, text)
		if (err != nil) != (werr != nil) || err == nil && !bytes.Equal(got[:n], want) {
			t.Fatalf("%q: %q, %v; want %q, %v", text, got[:n], err, want, werr)
		}
	})
}

// BenchmarkCodec: the table codec on a relay's 32 KiB, alone ("hot") and after touching
// 1 MiB as a relay's kernel copies do between two frames ("cold"), which evicts the tables
// from the faster caches.
func BenchmarkCodec(b *testing.B) {
	raw := make([]byte, 32<<10)
	rand.New(rand.NewSource(7)).Read(raw)
	text := []byte(b64std.EncodeToString(raw))
	out := make([]byte, len(text))
	junk := make([]byte, 1<<20)
	for _, cold := range []bool{false, true} {
		name := map[bool]string{false: "hot", true: "cold"}[cold]
		for op, f := range map[string]func(){
			"encode": func() { encode(out, raw) },
			"decode": func() { decodeStrict(out, text) },
		} {
			b.Run(op+"/"+name, func(b *testing.B) {
				b.SetBytes(int64(len(raw)))
				for i := 0; i < b.N; i++ {
					if cold {
						b.StopTimer()
						clear(junk)
						b.StartTimer()
					}
					f()
				}
			})
		}
	}
}

// Padding that ends exactly where a Read's buffer is full, with more groups after it in the
// same frame, is data after the padding: 1007, whatever the Read sizes.
func TestBase64PaddingAtReadBoundary(t *testing.T) {
	for _, size := range []int{8, 9, 64, 32 << 10} {
		// "QUJD" is "ABC", "QQ==" is "A", padded, its "=" the last character that a Read of
		// size bytes decodes into the caller's buffer.
		text := strings.Repeat("QUJD", size/3-1) + "QQ==" + "QUJDQUJD"
		c := newConn(&fakeConn{r: bytes.NewReader(textFrames([]byte(text), nil)), w: io.Discard}, false, true, nil, nil)
		_, err := io.ReadAll(struct{ io.Reader }{readerOf(c, size)})
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != CloseInvalidData {
			t.Errorf("Reads of %d bytes: %v, want a close 1007", size, err)
		}
	}
}

// readerOf reads c in Reads of size bytes.
func readerOf(c *Conn, size int) io.Reader {
	return readerFunc(func(p []byte) (int, error) { return c.Read(p[:min(len(p), size)]) })
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
