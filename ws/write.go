package ws

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"strings"
)

var errWriteClosed = errors.New("websocket: write after Close was sent")

// Write sends p as one data message: binary, or base64 text when that
// subprotocol was negotiated, in frames of at most 32 KiB of data (32,769
// bytes with base64). After our Close was sent (doc.go's table says when)
// it fails with an error and sends nothing.
func (c *Conn) Write(p []byte) (int, error) {
	op, chunk := byte(opBinary), maxBinaryData
	if c.b64 {
		op, chunk = opText, maxBase64Data
	}
	n := 0
	for n < len(p) {
		m := min(len(p)-n, chunk)
		if n+m == len(p) {
			op |= 0x80 // FIN
		}
		c.wlock <- struct{}{}
		err := c.writeData(op, p[n:n+m], nil)
		c.unlock()
		if err != nil {
			return n, err
		}
		n += m
		op = opContinuation
	}
	return n, nil
}

// unlock releases the writer's lock, first sending the Pong that Read left
// (see reply). A Pong left after that send and before the release is seen
// after it: then whoever holds the lock next sends it.
func (c *Conn) unlock() {
	for {
		if p := c.pong.Swap(nil); p != nil {
			c.writeData(opPong, *p, nil) // an error shows in the next Write
		}
		<-c.wlock
		if c.pong.Load() == nil {
			return
		}
		select {
		case c.wlock <- struct{}{}:
		default:
			return
		}
	}
}

// writeData sends one data frame (see writeFrame), or a Pong, wlock held.
// Any error ends writing: a frame cut short cannot be followed by another,
// and the connection will be reset (see closeConn).
func (c *Conn) writeData(op byte, payload []byte, buf []byte) error {
	if c.werr != nil {
		return c.werr
	}
	c.werr = c.writeFrame(op, payload, buf)
	return c.werr
}

// writeClose sends our Close, wlock held, unless one was sent already, and
// ends writing; on the server it closes TCP if the peer's Close came first.
func (c *Conn) writeClose(payload []byte) error {
	if c.werr == errWriteClosed {
		return nil
	}
	if err := c.writeData(opClose, payload, nil); err != nil {
		return err
	}
	c.werr = errWriteClosed
	c.closeSent.Store(true)
	c.closeIfDone()
	return nil
}

// closePayload is a Close frame's payload: empty for CloseNoStatus, else
// the code and as much of reason as fits, kept valid UTF-8.
func closePayload(code int, reason string) []byte {
	if code == CloseNoStatus {
		return nil
	}
	reason = strings.ToValidUTF8(reason[:min(len(reason), maxControl-2)], "")
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// ReadFrom sends what r yields until r's EOF, each Read (up to 128 KiB) as
// binary messages of at most 32 KiB, in one write; with base64, each Read of
// up to 32 KiB as one message. It reads into a pooled readBuf, where
// writeFrame frames and masks binary data in place, and holds that buffer
// (not the writer's lock) while r.Read blocks.
func (c *Conn) ReadFrom(r io.Reader) (total int64, err error) {
	buf := readPool.Get().(*readBuf)
	defer readPool.Put(buf)
	op, inPlace, size := byte(opBinary|0x80), buf[:], readFrames*maxBinaryData
	if c.b64 {
		op, inPlace, size = opText|0x80, nil, maxBinaryData // encoded into a buffer of its own
	}
	for err == nil {
		var n int
		if n, err = r.Read(buf[payloadAt : payloadAt+size]); n > 0 {
			c.wlock <- struct{}{}
			werr := c.writeData(op, buf[payloadAt:payloadAt+n], inPlace)
			c.unlock()
			if werr != nil {
				return total, werr
			}
			total += int64(n)
		}
	}
	if err == io.EOF {
		err = nil
	}
	return total, err
}

// writeFrame sends one frame, header and payload in one write; wlock is
// held. op may carry the FIN bit; control frames always get it. Data
// frames' payload is base64-encoded when negotiated. The frame is built in
// buf, whose payload space (from payloadAt on) already holds payload unless
// buf is nil; the header goes just before it. Binary payload in buf beyond
// maxBinaryData (from ReadFrom) goes as one frame per maxBinaryData, each
// moved up behind its header, and all in the one write.
func (c *Conn) writeFrame(op byte, payload []byte, buf []byte) error {
	code, fin := op&0x0F, op&0x80 != 0 || op >= opClose
	n, chunk := len(payload), maxBinaryData
	text := c.b64 && code < opClose
	if text {
		n = base64.StdEncoding.EncodedLen(n)
		chunk = max(n, 1)
	}
	if buf == nil {
		fb := framePool.Get().(*frameBuf)
		defer framePool.Put(fb)
		buf = fb[:]
		if text {
			encode(buf[payloadAt:], payload)
		} else {
			copy(buf[payloadAt:], payload)
		}
	}
	var hdr [maxHeader]byte
	end := payloadAt + n // and the headers of the frames after the first
	for at := chunk; at < n; at += chunk {
		end += putHeader(hdr[:], code, fin, min(n-at, chunk), c.client)
	}
	start := end // of the frames built so far, from the last
	for at := (max(n, 1) - 1) / chunk * chunk; at >= 0; at -= chunk {
		size := min(n-at, chunk)
		dst := start - size
		copy(buf[dst:start], buf[payloadAt+at:payloadAt+at+size])
		h := putHeader(hdr[:], code, fin, size, c.client)
		if c.client {
			key, err := newMaskKey()
			if err != nil {
				return err
			}
			copy(hdr[h-4:h], key[:])
			mask(key, 0, buf[dst:start])
		}
		start = dst - h
		copy(buf[start:dst], hdr[:h])
	}
	_, err := c.conn.Write(buf[start:end])
	return err
}
