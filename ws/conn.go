package ws

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Close status codes (RFC 6455 section 7.4.1).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseUnsupportedData = 1003
	CloseNoStatus        = 1005 // never on the wire
	CloseAbnormal        = 1006 // never on the wire
	CloseInvalidData     = 1007
	ClosePolicy          = 1008
	CloseTooBig          = 1009
	CloseInternalError   = 1011
)

// DefaultMaxMessage is the default bound on one received data message.
const DefaultMaxMessage = 1 << 20

// maxFragments bounds the frames of one received data message, or
// MaxMessage/1024 when that is more (see doc.go).
const maxFragments = 4096

// closeWait bounds the closing handshake run by Close; lingerMax bounds the
// bytes it discards after a failure (see linger).
const (
	closeWait = 1500 * time.Millisecond
	lingerMax = 4 << 20
)

// CloseError is the error for a connection closed by a Close frame or failed
// by a protocol violation. Read returns io.EOF for a peer's clean Close
// (1000, or no status); a CloseError for anything else the peer sent, or for
// a violation we detected (after sending our Close with Code).
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("websocket: close %d", e.Code)
	}
	return fmt.Sprintf("websocket: close %d: %s", e.Code, e.Reason)
}

var errWriteClosed = errors.New("websocket: write after Close was sent")

// Conn is a WebSocket connection presented as a byte stream (a net.Conn).
// One goroutine may Read and one may Write at a time; Close, CloseWrite,
// CloseWithStatus and the deadline setters may be called concurrently.
type Conn struct {
	conn   net.Conn
	client bool  // we mask, the peer must not
	b64    bool  // "base64" subprotocol negotiated
	maxMsg int64 // bound on one received data message

	// Reader state, guarded by rmu (held by Read, or by Close when idle).
	rmu     sync.Mutex
	pre     []byte    // bytes read during the handshake, served first
	rbuf    [256]byte // small read-ahead for headers and short frames
	rpos    int
	rend    int
	remain  int64 // payload bytes left in the current data frame
	fin     bool  // the current data frame ends its message
	rkey    [4]byte
	rkeyPos int
	rmasked bool
	inMsg   bool  // a data message is open
	msgText bool  // the open message is text (base64)
	msgLen  int64 // wire bytes of the open message so far
	msgFrms int64 // frames of the open message so far
	dec     decoder
	rerr    error // sticky: io.EOF, *CloseError or the conn's error
	readEnd chan struct{}
	endOnce sync.Once

	// Writer state, guarded by wmu, held for whole frames.
	wmu  sync.Mutex
	werr error // sticky: errWriteClosed after our Close, or a write error

	peerClosed atomic.Bool // the peer's Close frame was received
	closeOnce  sync.Once
}

func newConn(conn net.Conn, client, b64 bool, maxMsg int, pre []byte) *Conn {
	if maxMsg <= 0 {
		maxMsg = DefaultMaxMessage
	}
	return &Conn{conn: conn, client: client, b64: b64, maxMsg: int64(maxMsg),
		pre: pre, readEnd: make(chan struct{})}
}

// Subprotocol returns the negotiated subprotocol: "base64" or "".
func (c *Conn) Subprotocol() string {
	if c.b64 {
		return "base64"
	}
	return ""
}

func (c *Conn) LocalAddr() net.Addr                { return c.conn.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr               { return c.conn.RemoteAddr() }
func (c *Conn) SetDeadline(t time.Time) error      { return c.conn.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.conn.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// ---- reading

// Read reads data payload bytes, message boundaries ignored. It returns
// io.EOF after the peer's clean Close, a *CloseError after any other Close
// or a protocol violation, and io.ErrUnexpectedEOF if the TCP connection
// ends without a Close frame. Timeouts are not sticky.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return c.read(p)
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
		var n int
		var err error
		if c.msgText {
			n, err = c.readText(p)
		} else {
			n, err = c.readPayload(p)
		}
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
	c.setReadErr(err)
	return err
}

func (c *Conn) setReadErr(err error) {
	c.rerr = err
	c.endOnce.Do(func() { close(c.readEnd) })
}

// rawRead reads from the bytes left by the handshake, then from the conn.
func (c *Conn) rawRead(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		if len(c.pre) == 0 {
			c.pre = nil
		}
		return n, nil
	}
	return c.conn.Read(p)
}

// need makes rbuf[rpos:rpos+n] available (n <= len(rbuf)). A timeout keeps
// what was read, so a retry continues where it stopped.
func (c *Conn) need(n int) error {
	if c.rend-c.rpos >= n {
		return nil
	}
	c.rend = copy(c.rbuf[:], c.rbuf[c.rpos:c.rend])
	c.rpos = 0
	for c.rend < n {
		m, err := c.rawRead(c.rbuf[c.rend:])
		c.rend += m
		if err != nil && c.rend < n {
			return err
		}
	}
	return nil
}

// readPayload reads data payload of the current frame into p, unmasked.
// Bytes of the frame already in rbuf come first, and then, in the same
// call, as much of the rest of the frame as p takes: the sender wrote the
// frame at once, so its rest is on its way, and a relay then forwards one
// large write per frame rather than a small one and a large one.
func (c *Conn) readPayload(p []byte) (n int, err error) {
	if int64(len(p)) > c.remain {
		p = p[:c.remain]
	}
	if c.rpos < c.rend {
		n = copy(p, c.rbuf[c.rpos:c.rend])
		c.rpos += n
	}
	if n < len(p) {
		var m int
		m, err = c.rawRead(p[n:])
		n += m
	}
	if c.rmasked {
		c.rkeyPos = mask(c.rkey, c.rkeyPos, p[:n])
	}
	c.remain -= int64(n)
	return n, err
}

// readText reads base64 text of the current frame and decodes it into p:
// into the pooled textBufs, as much as decodes to at most len(p) bytes.
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
	text := buf[:min(len(buf), len(p)/3*4)]
	copy(text, d.carry[:d.nc])
	m, err := c.readPayload(text[d.nc:])
	n, derr := d.decode(text[:d.nc+m], p)
	if derr != nil {
		return 0, c.fail(CloseInvalidData, derr.Error())
	}
	return n, err
}

func (c *Conn) endMessage() error {
	c.inMsg, c.msgLen, c.msgFrms = false, 0, 0
	if c.msgText {
		if err := c.dec.end(); err != nil {
			return c.fail(CloseInvalidData, "truncated base64 message")
		}
	}
	return nil
}

// nextFrame reads a frame header (RFC 6455 section 5.2) and checks it.
// Control frames are handled whole here; for a data frame it sets up the
// payload read.
func (c *Conn) nextFrame() error {
	if err := c.need(2); err != nil {
		return err
	}
	b0, b1 := c.rbuf[c.rpos], c.rbuf[c.rpos+1]
	fin, op, masked := b0&0x80 != 0, b0&0x0F, b1&0x80 != 0
	n := int64(b1 & 0x7F)
	h := 2
	switch n {
	case 126:
		h += 2
	case 127:
		h += 8
	}
	if masked {
		h += 4
	}
	if err := c.need(h); err != nil {
		return err
	}
	hb := c.rbuf[c.rpos : c.rpos+h]
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
	// Lengths need not be minimal: RFC 6455 binds senders only.
	switch {
	case b0&0x70 != 0:
		return c.fail(CloseProtocolError, "reserved bits set")
	case c.client && masked:
		return c.fail(CloseProtocolError, "masked frame from server")
	case !c.client && !masked:
		return c.fail(CloseProtocolError, "unmasked frame from client")
	}
	c.rmasked = masked
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
		if err := c.need(h + int(n)); err != nil {
			return err
		}
		payload := c.rbuf[c.rpos+h : c.rpos+h+int(n)]
		c.rpos += h + int(n)
		if masked {
			mask(c.rkey, 0, payload)
		}
		return c.control(op, payload)
	}
	switch {
	case op > opBinary:
		return c.fail(CloseProtocolError, "reserved opcode")
	case op == opContinuation && !c.inMsg:
		return c.fail(CloseProtocolError, "continuation frame without a message")
	case op != opContinuation && c.inMsg:
		return c.fail(CloseProtocolError, "new message inside a fragmented message")
	case op == opText && !c.b64:
		return c.fail(CloseUnsupportedData, "text frame without the base64 subprotocol")
	}
	c.rpos += h
	if op != opContinuation {
		c.inMsg, c.msgText = true, op == opText
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
		c.writeLocked(opPong, payload) // a failed write shows up in Write
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
		// A clean Close ends the peer's direction only, like a TCP FIN: our
		// answer waits for CloseWrite or Close so that what we still have to
		// send arrives (section 5.5.1 lets an endpoint finish sending first).
		c.setReadErr(io.EOF)
		c.wmu.Lock()
		c.closeIfDone()
		c.wmu.Unlock()
		return io.EOF
	}
	c.setReadErr(&CloseError{Code: code, Reason: reason})
	c.sendClose(code, "") // the peer is failing: echo its status at once
	return c.rerr
}

// closeIfDone closes TCP on the server once both Close frames were sent
// (the server closes first, section 7.1.1). wmu is held.
func (c *Conn) closeIfDone() {
	if !c.client && c.werr != nil && c.peerClosed.Load() {
		c.conn.Close()
	}
}

// fail sends a Close with code, then ends reading with a *CloseError. The
// write deadline bounds the wait for a writer in the middle of a message.
func (c *Conn) fail(code int, reason string) error {
	err := &CloseError{Code: code, Reason: reason}
	c.conn.SetWriteDeadline(time.Now().Add(closeWait))
	c.sendClose(code, reason)
	c.setReadErr(err)
	return err
}

// ---- writing

// Write sends p as one data message: binary, or base64 text when that
// subprotocol was negotiated, in frames of at most 32 KiB of data (32,769
// bytes with base64).
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
		if err := c.writeLocked(op, p[n:n+m]); err != nil {
			return n, err
		}
		n += m
		op = opContinuation
	}
	return n, nil
}

// writeLocked sends one frame under wmu. Any error ends writing: a frame
// cut short cannot be followed by another.
func (c *Conn) writeLocked(op byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if err := c.writeFrame(op, payload); err != nil {
		c.werr = err
	}
	return c.werr
}

// writeFrame sends one frame, header and payload in one write; wmu is
// held. op may carry the FIN bit; control frames always get it. Data
// frames' payload is base64-encoded when negotiated.
func (c *Conn) writeFrame(op byte, payload []byte) error {
	buf := framePool.Get().(*frameBuf)
	defer framePool.Put(buf)
	code, fin := op&0x0F, op&0x80 != 0 || op >= opClose
	n := len(payload)
	text := c.b64 && code < opClose
	if text {
		n = base64.StdEncoding.EncodedLen(n)
	}
	h := putHeader(buf[:], code, fin, n, c.client)
	body := buf[h : h+n]
	if text {
		encode(body, payload)
	} else {
		copy(body, payload)
	}
	if c.client {
		key, err := newMaskKey()
		if err != nil {
			return err
		}
		copy(buf[h-4:h], key[:])
		mask(key, 0, body)
	}
	_, err := c.conn.Write(buf[:h+n])
	return err
}

// sendClose sends our Close frame once; code CloseNoStatus sends an empty
// payload. Writing ends with it.
func (c *Conn) sendClose(code int, reason string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		c.closeIfDone()
		return nil
	}
	var b [maxControl]byte
	n := 0
	if code != CloseNoStatus {
		binary.BigEndian.PutUint16(b[:], uint16(code))
		n = 2 + copy(b[2:], reason)
	}
	err := c.writeFrame(opClose, b[:n])
	c.werr = errWriteClosed
	c.closeIfDone()
	return err
}

// ---- closing

// CloseWrite sends a Close frame with status 1000: the peer reads io.EOF.
// Reading goes on until the peer's Close. If that Close came first, this is
// the answer to it, and the server then closes the TCP connection.
func (c *Conn) CloseWrite() error {
	return c.sendClose(CloseNormal, "")
}

// Close runs the closing handshake with status 1000, see CloseWithStatus.
func (c *Conn) Close() error {
	return c.CloseWithStatus(CloseNormal, "")
}

// CloseWithStatus sends a Close frame with code (1000 if code may not be
// sent on the wire) and reason (cut to fit a control frame), waits a
// bounded time (1.5 s) for the peer's Close, then closes the TCP
// connection. Data still arriving is discarded. When reading ended without
// the peer's Close (a failure), it first half-closes TCP and discards data
// until EOF within the same bound, so that the peer reads our Close rather
// than a reset. It does not block on a concurrent Read: that Read returns
// an error instead. Later calls return net.ErrClosed.
func (c *Conn) CloseWithStatus(code int, reason string) error {
	err := net.ErrClosed
	c.closeOnce.Do(func() { err = c.closeHandshake(code, reason) })
	return err
}

func (c *Conn) closeHandshake(code int, reason string) error {
	if !validCloseCode(code) {
		code = CloseNormal
	}
	reason = strings.ToValidUTF8(reason[:min(len(reason), maxControl-2)], "")
	deadline := time.Now().Add(closeWait)
	c.conn.SetWriteDeadline(deadline) // a Write stuck in the middle of a message fails
	c.sendClose(code, reason)
	if !c.rmu.TryLock() { // a Read is running: it sees the Close or fails when we close
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case <-c.readEnd: // that Read returns now: its writes end by the deadline
			c.rmu.Lock()
		case <-t.C:
			return c.closeConn()
		}
	}
	defer c.rmu.Unlock()
	c.conn.SetReadDeadline(deadline)
	var sink [512]byte
	for { // read until the peer's Close
		if _, err := c.read(sink[:]); err != nil {
			break
		}
	}
	c.linger(sink[:])
	return c.closeConn()
}

// linger runs before TCP is closed, rmu held. Without the peer's Close
// (we failed the connection, or the peer is silent) it half-closes TCP,
// so that the peer reads our Close and then EOF, and it discards what
// still arrives until EOF, lingerMax bytes or the read deadline: closing
// with unread data makes the kernel send a reset, which can destroy our
// Close before the peer reads it (browsers then report 1006). After the
// peer's Close the client waits the same way for the server to close TCP.
func (c *Conn) linger(sink []byte) {
	switch cw, ok := c.conn.(interface{ CloseWrite() error }); {
	case !c.peerClosed.Load() && ok: // *net.TCPConn, *tls.Conn
		cw.CloseWrite()
	case !c.peerClosed.Load() || !c.client: // no half-close; or the server, done
		return
	}
	for n := 0; n < lingerMax; {
		m, err := c.conn.Read(sink)
		if err != nil {
			return
		}
		n += m
	}
}

func (c *Conn) closeConn() error {
	if err := c.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
