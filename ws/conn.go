package ws

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
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

// Bounds on what the peer sends (doc.go).
const (
	DefaultMaxMessage = 1 << 20 // the default bound on one received data message
	maxFragments      = 4096    // bounds the frames of one received data message
	lingerMax         = 4 << 20 // bounds the bytes that linger discards
)

// CloseError is the error Read returns after the peer's Close with a status other than 1000 or
// none, and after a violation we detected, for which we sent our Close with Code (see Read).
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

// Conn is a WebSocket connection presented as a byte stream (a net.Conn): see the package doc.
type Conn struct {
	conn   net.Conn
	client bool          // we mask, the peer must not
	b64    bool          // "base64" subprotocol negotiated
	maxMsg int64         // bound on one received data message
	wait   time.Duration // Options.CloseTimeout

	// Reader state, guarded by rmu (held by Read, or by Close when idle).
	rmu     sync.Mutex
	br      *bufio.Reader // small, or while data flows one of readAheads reading small (see Read)
	small   *bufio.Reader
	remain  int64 // payload bytes left in the current data frame
	fin     bool  // the current data frame ends its message
	rkey    [4]byte
	rkeyPos int
	msgText bool  // the open message is text (base64)
	msgLen  int64 // wire bytes of the open message so far
	msgFrms int64 // frames of the open message so far; 0: no message is open
	dec     decoder
	rerr    error // sticky: io.EOF, *CloseError or the conn's error

	// Writer state. wlock is a semaphore held for whole frames (a channel, so that Read's control
	// replies can wait for it with a bound); werr is guarded by it.
	wlock chan struct{}
	werr  error                  // sticky: errWriteClosed after our Close, or a write error
	pong  atomic.Pointer[[]byte] // left by Read for the writer (see reply)

	// dmu guards the write deadlines of their three owners (see
	// setWriteDeadline) and the conn's, always the earliest of the three.
	dmu       sync.Mutex
	deadlines [3]time.Time // indexed by userDeadline, replyDeadline, closeDeadline

	closeSent  atomic.Bool // our Close frame was sent whole
	peerClosed atomic.Bool // the peer's Close frame was received
	closeOnce  sync.Once
}

// The owners of the write deadline, see Conn.deadlines.
const (
	userDeadline = iota
	replyDeadline
	closeDeadline
)

// newConn reads ahead through a buffer of a data frame's usual header (16-bit length; masked when
// we are the server) and 192 payload bytes, so that the rest of a full frame lands 64-byte aligned
// in the caller's buffer (why: see frameBuf). A control frame, at most 139 bytes, fits.
func newConn(conn net.Conn, client, b64 bool, opt *Options, pre []byte) *Conn {
	o := opt.get()
	ahead := 192 + 4
	if !client {
		ahead += 4
	}
	// small reads the bytes that came with the handshake, then conn.
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pre), conn), ahead)
	return &Conn{conn: conn, client: client, b64: b64, maxMsg: int64(o.MaxMessage),
		wait: o.CloseTimeout, wlock: make(chan struct{}, 1), br: br, small: br}
}

// Subprotocol returns the negotiated subprotocol: "base64" or "".
func (c *Conn) Subprotocol() string {
	if c.b64 {
		return "base64"
	}
	return ""
}

func (c *Conn) LocalAddr() net.Addr               { return c.conn.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr              { return c.conn.RemoteAddr() }
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetDeadline sets both deadlines, see SetWriteDeadline.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.conn.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline. A write that times out ends writing, as any write error
// does. Read's replies and Close bound their own writes without undoing t.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.setWriteDeadline(userDeadline, t)
}

// setWriteDeadline sets owner's write deadline (zero: none) and gives the
// conn the earliest of all owners'.
func (c *Conn) setWriteDeadline(owner int, t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.deadlines[owner] = t
	var earliest time.Time
	for _, d := range c.deadlines {
		if !d.IsZero() && (earliest.IsZero() || d.Before(earliest)) {
			earliest = d
		}
	}
	return c.conn.SetWriteDeadline(earliest)
}
