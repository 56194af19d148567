package ws

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
)

// decoder decodes one message of the "base64" subprotocol (standard base64, RFC 4648 section 4; see
// doc.go) as its frames come, keeping at most one partial 4-character group and one decoded group.
type decoder struct {
	carry  [4]byte // characters of an incomplete group
	nc     int     // len of carry in use
	out    [3]byte // a decoded group not yet given to the reader
	oi, on int     // out[oi:on] is pending
	padded bool    // the message's padded (last) group was seen
}

var errBase64 = errors.New("invalid base64 in text message")

// strict rejects padding anywhere but at the end and non-zero unused bits.
var strict = base64.StdEncoding.Strict()

// The codec below takes 12 bits at a time through a table: two characters per lookup. It runs
// 1.6–2× as fast as encoding/base64 here (see doc/PERFORMANCE.md), which does the ends (padding,
// and the last bytes) and every error. The tables are computed at their first use (a program that
// never meets base64 never holds the decoder's 128 KiB) and never written after.
const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

var (
	encPairs = sync.OnceValue(func() *[1 << 12]uint16 { // 12 bits → their two characters
		t := new([1 << 12]uint16)
		for i := range t {
			t[i] = uint16(b64Alphabet[i>>6])<<8 | uint16(b64Alphabet[i&63])
		}
		return t
	})
	decPairs = sync.OnceValue(func() *[1 << 16]uint16 { // two characters → their 12 bits, or 0xFFFF
		var val [256]uint16
		for i := range val {
			val[i] = uint16(strings.IndexByte(b64Alphabet, byte(i))) // 0xFFFF (-1) when not in it
		}
		t := new([1 << 16]uint16)
		for i := range t {
			t[i] = val[i>>8]<<6 | val[i&0xFF]
			if val[i>>8]|val[i&0xFF] > 63 {
				t[i] = 0xFFFF
			}
		}
		return t
	})
)

// encode is base64.StdEncoding.Encode: 6 bytes to 8 characters a step.
func encode(dst, src []byte) {
	t, si, di := encPairs(), 0, 0
	for ; len(src)-si >= 8 && len(dst)-di >= 8; si, di = si+6, di+8 {
		v := binary.BigEndian.Uint64(src[si:]) // the top 48 bits are used
		binary.BigEndian.PutUint64(dst[di:], uint64(t[v>>52])<<48|
			uint64(t[v>>40&0xFFF])<<32|uint64(t[v>>28&0xFFF])<<16|uint64(t[v>>16&0xFFF]))
	}
	base64.StdEncoding.Encode(dst[di:], src[si:])
}

// decodeStrict is strict.Decode, but it refuses '\r' and '\n' (which encoding/base64 skips): 8
// characters to 6 bytes a step, while they are all data characters.
func decodeStrict(dst, src []byte) (int, error) {
	t, si, di := decPairs(), 0, 0
	for ; len(src)-si >= 8 && len(dst)-di >= 8; si, di = si+8, di+6 {
		v := binary.BigEndian.Uint64(src[si:])
		a, b, c, d := t[v>>48], t[v>>32&0xFFFF], t[v>>16&0xFFFF], t[v&0xFFFF]
		if (a|b|c|d)&0xF000 != 0 {
			break // not 8 data characters: encoding/base64 says what is wrong
		}
		binary.BigEndian.PutUint64(dst[di:], uint64(a)<<52|uint64(b)<<40|uint64(c)<<28|uint64(d)<<16)
	}
	if bytes.ContainsAny(src[si:], "\r\n") {
		return di, errBase64
	}
	n, err := strict.Decode(dst[di:], src[si:])
	return di + n, err
}

// textBufs hold the text of one Read while it is decoded into the caller's buffer: taken per Read,
// never held while idle. Sized for a relay's 32 KiB read.
var textBufs = sync.Pool{New: func() any { return new([maxFrameSend]byte) }}

// decode decodes the whole groups of text into out, which has room for them
// or for all but the last (decoded into d.out then, and flushed into out as
// far as it fits), and keeps the 0-3 trailing characters in carry. The
// caller has put the previous carry at the front of text and d.out is empty.
func (d *decoder) decode(text, out []byte) (int, error) {
	whole := len(text) &^ 3
	fit := min(whole, len(out)/3*4)
	if d.padded && len(text) > 0 || 0 < fit && fit < whole && text[fit-1] == '=' { // data after the padding
		return 0, errBase64
	}
	n, err := decodeStrict(out, text[:fit])
	if err == nil && fit < whole {
		d.on, err = decodeStrict(d.out[:], text[fit:whole])
		d.oi = 0
		n += d.flush(out[n:])
	}
	if err != nil {
		return 0, errBase64
	}
	if whole > 0 && text[whole-1] == '=' {
		d.padded = true
	}
	d.nc = copy(d.carry[:], text[whole:])
	if d.nc > 0 && d.padded {
		return 0, errBase64
	}
	return n, nil
}

// feedCarry decodes carry once it holds a whole group, into out.
func (d *decoder) feedCarry() error {
	if d.nc < 4 {
		return nil
	}
	n, err := d.decode(d.carry[:], d.out[:])
	d.oi, d.on = 0, n
	return err
}

// flush copies pending decoded bytes into p.
func (d *decoder) flush(p []byte) int {
	n := copy(p, d.out[d.oi:d.on])
	d.oi += n
	return n
}

// end ends a message and reports whether it was truncated: a partial group remained.
func (d *decoder) end() (truncated bool) {
	truncated = d.nc != 0
	*d = decoder{out: d.out, oi: d.oi, on: d.on}
	return truncated
}
