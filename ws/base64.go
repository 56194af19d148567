package ws

import "errors"

// The "base64" subprotocol (transport proposal): each message is standard
// base64 (RFC 4648 section 4) with "=" padding only at its end, and may be
// split across frames anywhere. decoder decodes one message incrementally,
// keeping at most one partial 4-character group and one decoded group.
type decoder struct {
	carry  [4]byte // characters of an incomplete group
	nc     int     // len of carry in use
	out    [3]byte // a decoded group not yet given to the reader
	oi, on int     // out[oi:on] is pending
	padded bool    // the message's padded (last) group was seen
}

var errBase64 = errors.New("invalid base64 in text message")

// b64val maps a base64 character to its 6-bit value, '=' to 64 and
// anything else to 255.
func b64val(c byte) byte {
	if c >= 0x80 {
		return 255
	}
	return b64table[c]
}

// b64table is b64val for ASCII, 16 characters a line; a table rather than
// comparisons: random text would make every branch a guess.
const b64table = "" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" + // controls
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x3e\xff\xff\xff\x3f" + // '+' 62, '/' 63
	"\x34\x35\x36\x37\x38\x39\x3a\x3b\x3c\x3d\xff\xff\xff\x40\xff\xff" + // '0'-'9' 52-61, '=' 64
	"\xff\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e" + // 'A'-'O' 0-14
	"\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\xff\xff\xff\xff\xff" + // 'P'-'Z' 15-25
	"\xff\x1a\x1b\x1c\x1d\x1e\x1f\x20\x21\x22\x23\x24\x25\x26\x27\x28" + // 'a'-'o' 26-40
	"\x29\x2a\x2b\x2c\x2d\x2e\x2f\x30\x31\x32\x33\xff\xff\xff\xff\xff" //   'p'-'z' 41-51

// group decodes the 4 characters s into out (which may overlap s: s is read
// first) and returns the number of bytes. Padding must be canonical: the
// unused bits of the last character are zero (strict decoding).
func (d *decoder) group(s, out []byte) (int, error) {
	if d.padded {
		return 0, errBase64 // data after the padding
	}
	a, b, c, e := b64val(s[0]), b64val(s[1]), b64val(s[2]), b64val(s[3])
	switch {
	case a|b|c|e < 64: // the common case: 4 data characters
		out[0], out[1], out[2] = a<<2|b>>4, b<<4|c>>2, c<<6|e
		return 3, nil
	case a > 63 || b > 63 || c > 64 || e > 64:
		return 0, errBase64
	case c == 64: // "xx=="
		if e != 64 || b&0xF != 0 {
			return 0, errBase64
		}
		d.padded = true
		out[0] = a<<2 | b>>4
		return 1, nil
	default: // "xxx=": e is 64
		if c&0x3 != 0 {
			return 0, errBase64
		}
		d.padded = true
		out[0], out[1] = a<<2|b>>4, b<<4|c>>2
		return 2, nil
	}
}

// decode decodes the whole groups of text in place (output at text[:n])
// and keeps the 0-3 trailing characters in carry. The caller has put the
// previous carry at the front of text.
func (d *decoder) decode(text []byte) (n int, err error) {
	i := 0
	for ; i+4 <= len(text); i += 4 {
		k, err := d.group(text[i:i+4], text[n:])
		if err != nil {
			return n, err
		}
		n += k
	}
	d.nc = copy(d.carry[:], text[i:])
	if d.nc > 0 && d.padded {
		return n, errBase64
	}
	return n, nil
}

// feedCarry decodes carry once it holds a whole group, into out.
func (d *decoder) feedCarry() error {
	if d.nc < 4 {
		return nil
	}
	n, err := d.group(d.carry[:], d.out[:])
	d.nc, d.oi, d.on = 0, 0, n
	return err
}

// flush copies pending decoded bytes into p.
func (d *decoder) flush(p []byte) int {
	n := copy(p, d.out[d.oi:d.on])
	d.oi += n
	return n
}

// end checks the end of a message: no partial group may remain.
func (d *decoder) end() error {
	truncated := d.nc != 0
	*d = decoder{out: d.out, oi: d.oi, on: d.on}
	if truncated {
		return errBase64
	}
	return nil
}
