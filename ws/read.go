package ws

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"
	"unicode/utf8"
)

// Read reads data payload bytes, message boundaries ignored. It returns
// io.EOF after the peer's clean Close, a *CloseError after any other Close
// or a protocol violation, and io.ErrUnexpectedEOF if the TCP connection
// ends without a Close frame. Timeouts are not sticky.
//
// Given room for a whole frame, on a binary connection, Read borrows a
// read-ahead buffer of eight frames once the peer's next bytes have come (see
// WaitRead); after the first frame it returns, in the same call and up to
// len(p), the payload of every data frame the buffer already holds, without
// waiting for more: one system call for several frames. It gives the buffer
// back once empty.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) >= maxBinaryData && !c.b64 && c.br == c.small {
		if err := c.waitRead(); err != nil {
			return 0, err
		}
		c.br = readAheads.Get().(*bufio.Reader)
		c.br.Reset(c.small) // after what small holds
	}
	n, err := c.read(p)
	for err == nil && !c.b64 && n < len(p) && c.remain == 0 && c.dataWaiting() {
		if err = c.nextFrame(); err == nil && c.remain > 0 {
			var m int
			m, err = c.readPayload(p[n:min(len(p), n+c.br.Buffered())]) // no waiting
			if n += m; c.remain == 0 && c.fin && err == nil {
				err = c.endMessage()
			}
		}
		err = c.readErr(err)
	}
	if c.br != c.small && c.br.Buffered() == 0 {
		c.br.Reset(nil)
		readAheads.Put(c.br)
		c.br = c.small
	}
	return n, err
}

// WaitRead waits until the peer's next data frame has begun to come, or an error
// that Read then returns too. It holds no buffer but the conn's own small one,
// so that a caller relaying many idle conns can take a large buffer for Read
// only when data has come. It returns at once within a frame, whose rest is on
// its way. A Ping that comes meanwhile is answered and the wait goes on; a
// Close ends it, with the error Read returns.
func (c *Conn) WaitRead() error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return c.waitRead()
}

func (c *Conn) waitRead() error { // rmu held
	for c.rerr == nil && c.remain == 0 && c.dec.oi >= c.dec.on {
		b, err := c.br.Peek(1)
		if err != nil {
			return c.readErr(err)
		}
		if b[0]&0x0F < opClose { // a data frame begins
			return nil
		}
		if err := c.nextFrame(); err != nil { // a control frame, handled here
			return c.readErr(err)
		}
	}
	return c.rerr
}

var readAheads = sync.Pool{New: func() any {
	return bufio.NewReaderSize(nil, aheadFrames*(maxHeader+maxBinaryData))
}}

// dataWaiting reports whether br holds a data frame's header and some of its payload.
func (c *Conn) dataWaiting() bool {
	b, _ := c.br.Peek(min(c.br.Buffered(), 2))
	return len(b) == 2 && b[0]&0x0F <= opBinary && c.br.Buffered() > headerLen(b[1])
}

// headerLen is the length of a frame header whose second byte is b1 (section 5.2).
func headerLen(b1 byte) int {
	h := 2 + 4*int(b1>>7) // the masking key
	switch b1 & 0x7F {
	case 126:
		h += 2
	case 127:
		h += 8
	}
	return h
}

func (c *Conn) read(p []byte) (int, error) {
	for c.rerr == nil {
		if len(p) == 0 {
			return 0, nil
		}
		if n := c.dec.flush(p); n > 0 {
			return n, nil
		}
		if c.remain == 0 {
			if err := c.nextFrame(); err != nil {
				return 0, c.readErr(err)
			}
			continue
		}
		read := c.readPayload
		if c.msgText {
			read = c.readText
		}
		n, err := read(p)
		if c.remain == 0 && c.fin && c.rerr == nil { // also when a timeout came with the last bytes
			if eerr := c.endMessage(); eerr != nil {
				err = eerr
			}
		}
		if n > 0 || err != nil {
			return n, c.readErr(err)
		}
	}
	return 0, c.rerr
}

// readErr makes err sticky unless it is a timeout (the caller may retry).
func (c *Conn) readErr(err error) error {
	if err == nil || c.rerr != nil {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	c.rerr = err
	return err
}

// readPayload reads data payload of the current frame into p, unmasked.
// Bytes of the frame already in br come first, and then, in the same
// call, as much of the rest of the frame as p takes: the sender wrote the
// frame at once, so its rest is on its way, and a relay then forwards one
// large write per frame rather than a small one and a large one.
func (c *Conn) readPayload(p []byte) (n int, err error) {
	if int64(len(p)) > c.remain {
		p = p[:c.remain]
	}
	if c.br.Buffered() > 0 {
		n, _ = c.br.Read(p) // only what is buffered, without error
	}
	if n < len(p) {
		var m int
		m, err = c.br.Read(p[n:])
		n += m
	}
	if !c.client { // the checks in nextFrame leave only masked frames to the server
		c.rkeyPos = mask(c.rkey, c.rkeyPos, p[:n])
	}
	c.remain -= int64(n)
	return n, err
}

// readText reads base64 text of the current frame and decodes it into p:
// into the pooled textBufs, as much as decodes to at most len(p) bytes, and
// one group more, so that a message of len(p) bytes (a relay's frame)
// takes one Read; what of that group does not fit waits in d.out.
func (c *Conn) readText(p []byte) (int, error) {
	d := &c.dec
	if len(p) < 8 { // too small to be worth a text buffer: one group via d.out
		m, err := c.readPayload(d.carry[d.nc:])
		d.nc += m
		if derr := d.feedCarry(); derr != nil {
			return 0, c.fail(CloseInvalidData, derr.Error())
		}
		return d.flush(p), err
	}
	buf := textBufs.Get().(*[maxFrameSend]byte)
	defer textBufs.Put(buf)
	text := buf[:min(len(buf), (len(p)+2)/3*4)]
	copy(text, d.carry[:d.nc])
	m, err := c.readPayload(text[d.nc:])
	n, derr := d.decode(text[:d.nc+m], p)
	if derr != nil {
		return 0, c.fail(CloseInvalidData, derr.Error())
	}
	return n, err
}

func (c *Conn) endMessage() error {
	c.msgLen, c.msgFrms = 0, 0
	if c.msgText && c.dec.end() {
		return c.fail(CloseInvalidData, "truncated base64 message")
	}
	return nil
}

// nextFrame reads a frame header (RFC 6455 section 5.2) and checks it.
// Control frames are handled whole here; for a data frame it sets up the
// payload read. A timeout leaves what was read in br, so a retry continues
// where it stopped.
func (c *Conn) nextFrame() error {
	b, err := c.br.Peek(2)
	if err != nil {
		return err
	}
	b0, b1 := b[0], b[1]
	fin, op, masked := b0&0x80 != 0, b0&0x0F, b1&0x80 != 0
	n, h := int64(b1&0x7F), headerLen(b1)
	hb, err := c.br.Peek(h)
	if err != nil {
		return err
	}
	switch n {
	case 126:
		n = int64(binary.BigEndian.Uint16(hb[2:]))
	case 127:
		u := binary.BigEndian.Uint64(hb[2:])
		if u>>63 != 0 {
			return c.fail(CloseProtocolError, "64-bit length with most significant bit set")
		}
		n = int64(u)
	}
	switch {
	case b0&0x70 != 0:
		return c.fail(CloseProtocolError, "reserved bits set")
	case c.client && masked:
		return c.fail(CloseProtocolError, "masked frame from server")
	case !c.client && !masked:
		return c.fail(CloseProtocolError, "unmasked frame from client")
	}
	if masked {
		copy(c.rkey[:], hb[h-4:])
		c.rkeyPos = 0
	}
	if op >= opClose {
		switch {
		case op > opPong:
			return c.fail(CloseProtocolError, "reserved opcode")
		case !fin:
			return c.fail(CloseProtocolError, "fragmented control frame")
		case n > maxControl:
			return c.fail(CloseProtocolError, "control frame too long")
		}
		b, err := c.br.Peek(h + int(n))
		if err != nil {
			return err
		}
		payload := b[h:]
		c.br.Discard(h + int(n))
		if masked {
			mask(c.rkey, 0, payload)
		}
		return c.control(op, payload)
	}
	switch {
	case op > opBinary:
		return c.fail(CloseProtocolError, "reserved opcode")
	case op == opContinuation && c.msgFrms == 0:
		return c.fail(CloseProtocolError, "continuation frame without a message")
	case op != opContinuation && c.msgFrms > 0:
		return c.fail(CloseProtocolError, "new message inside a fragmented message")
	case op == opText && !c.b64:
		return c.fail(CloseUnsupportedData, "text frame without the base64 subprotocol")
	}
	c.br.Discard(h)
	if op != opContinuation {
		c.msgText = op == opText
	}
	c.msgFrms++
	switch {
	case n > c.maxMsg-c.msgLen:
		return c.fail(CloseTooBig, "message too big")
	case c.msgFrms > max(maxFragments, c.maxMsg/1024):
		return c.fail(CloseTooBig, "message in too many frames")
	}
	c.msgLen += n
	c.remain, c.fin = n, fin
	if n == 0 && fin {
		return c.endMessage()
	}
	return nil
}

// control handles a Ping, Pong or Close frame (section 5.5).
func (c *Conn) control(op byte, payload []byte) error {
	switch op {
	case opPing:
		c.reply(opPong, payload)
		return nil
	case opPong:
		return nil // unsolicited or not, nothing to do
	}
	code, reason := CloseNoStatus, ""
	switch {
	case len(payload) == 1:
		return c.fail(CloseProtocolError, "close frame with 1-byte payload")
	case len(payload) >= 2:
		code, reason = int(binary.BigEndian.Uint16(payload)), string(payload[2:])
		if !validCloseCode(code) {
			return c.fail(CloseProtocolError, "invalid close code")
		}
		if !utf8.ValidString(reason) {
			return c.fail(CloseInvalidData, "close reason not UTF-8")
		}
	}
	c.peerClosed.Store(true)
	if code == CloseNormal || code == CloseNoStatus {
		// The peer's end of stream: our answer waits (doc.go).
		c.rerr = io.EOF
		time.AfterFunc(c.wait, func() {
			if c.reply(opClose, closePayload(CloseNormal, "")) != nil {
				c.closeConn() // the peer is not reading: nothing more can reach it
			}
		})
		c.closeIfDone()
		return io.EOF
	}
	c.rerr = &CloseError{Code: code, Reason: reason}
	c.reply(opClose, closePayload(code, "")) // the peer is failing: echo its status at once
	return c.rerr
}

// fail sends a Close with code, then ends reading with a *CloseError.
func (c *Conn) fail(code int, reason string) error {
	c.reply(opClose, closePayload(code, reason))
	c.rerr = &CloseError{Code: code, Reason: reason}
	return c.rerr
}

// reply writes a control frame for Read: a Pong, or a Close that echoes the
// peer's, answers it, or fails the connection, within the close timeout
// (doc.go). A Pong is left for the writer to send after its frame, or, if
// none is writing, sent here. A Close first sets the write deadline to that
// bound, so that a stalled Write fails and lets it through (writing ends
// with the Close anyway); it is not sent if the lock cannot be had by then.
// A reply whose write times out ends writing.
func (c *Conn) reply(op byte, payload []byte) error {
	deadline := time.Now().Add(c.wait)
	if op == opPong {
		p := bytes.Clone(payload) // payload is in br, which the next read reuses
		c.pong.Store(&p)
		select {
		case c.wlock <- struct{}{}:
		default:
			return nil // the writer sends it
		}
		if p := c.pong.Swap(nil); p != nil { // else a writer took the lock first and sent it
			c.setWriteDeadline(replyDeadline, deadline)
			c.writeData(opPong, *p, nil) // an error shows in the next Write
			c.setWriteDeadline(replyDeadline, time.Time{})
		}
		c.unlock()
		return nil
	}
	c.setWriteDeadline(closeDeadline, deadline)
	t := time.NewTimer(c.wait)
	defer t.Stop()
	select {
	case c.wlock <- struct{}{}:
	case <-t.C:
		return errors.New("websocket: Close not sent: the writer is stalled")
	}
	defer c.unlock()
	return c.writeClose(payload)
}
