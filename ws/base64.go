package ws

import (
	"bytes"
	"encoding/base64"
	"errors"
	"sync"
)

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

// strict rejects padding anywhere but at the end, and unused bits that are
// not zero. Like every encoding/base64 decoder it skips '\r' and '\n',
// which decode refuses first.
var strict = base64.StdEncoding.Strict()

// textBufs hold the text of one Read while it is decoded into the caller's
// buffer: taken per Read, never held while idle. Sized for a relay's
// 32 KiB read.
var textBufs = sync.Pool{New: func() any { return new([maxFrameSend]byte) }}

// decode decodes the whole groups of text into out, which has room for
// them, and keeps the 0-3 trailing characters in carry. The caller has put
// the previous carry at the front of text.
func (d *decoder) decode(text, out []byte) (int, error) {
	whole := len(text) &^ 3
	switch {
	case d.padded && len(text) > 0: // data after the padding
		return 0, errBase64
	case bytes.IndexByte(text, '\r') >= 0 || bytes.IndexByte(text, '\n') >= 0:
		return 0, errBase64
	}
	n, err := strict.Decode(out, text[:whole])
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

// end checks the end of a message: no partial group may remain.
func (d *decoder) end() error {
	truncated := d.nc != 0
	*d = decoder{out: d.out, oi: d.oi, on: d.on}
	if truncated {
		return errBase64
	}
	return nil
}
