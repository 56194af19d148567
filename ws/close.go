package ws

import (
	"errors"
	"net"
	"time"
)

// CloseWrite sends a Close frame with status 1000, the peer's io.EOF (what
// follows is in doc.go's table). It returns nil if a Close was sent, now or
// before, and the write error that ended writing if none could be.
func (c *Conn) CloseWrite() error {
	c.wlock <- struct{}{}
	defer c.unlock()
	return c.writeClose(closePayload(CloseNormal, ""))
}

// closeIfDone closes TCP on the server once both Close frames were sent
// (the server closes first, section 7.1.1).
func (c *Conn) closeIfDone() {
	if !c.client && c.closeSent.Load() && c.peerClosed.Load() {
		c.conn.Close()
	}
}

// Close runs the closing handshake with status 1000, see CloseWithStatus.
func (c *Conn) Close() error {
	return c.CloseWithStatus(CloseNormal, "")
}

// CloseWithError closes the connection as io.PipeWriter's CloseWithError does a pipe: with status
// 1000 if err is nil, else with 1011 (internal error), so that the peer reads an error rather than
// a clean end. err's text is not sent: it may name addresses. See CloseWithStatus.
func (c *Conn) CloseWithError(err error) error {
	if err == nil {
		return c.Close()
	}
	return c.CloseWithStatus(CloseInternalError, "")
}

// CloseWithStatus sends a Close frame with code (1000 if code may not be sent on the wire) and
// reason (cut to fit a control frame), waits a bounded time (the close timeout) for the peer's
// Close, then closes the TCP connection. Data still arriving is discarded. When reading ended
// without the peer's Close (a failure), it first half-closes TCP and discards data until EOF within
// the same bound, so that the peer reads our Close before the reset (doc.go). A concurrent Read
// returns an error by the same bound. Later calls return net.ErrClosed.
func (c *Conn) CloseWithStatus(code int, reason string) error {
	err := net.ErrClosed
	c.closeOnce.Do(func() { err = c.closeHandshake(code, reason) })
	return err
}

func (c *Conn) closeHandshake(code int, reason string) error {
	if !validCloseCode(code) {
		code = CloseNormal
	}
	deadline := time.Now().Add(c.wait)
	c.setWriteDeadline(closeDeadline, deadline) // a Write stuck in the middle of a message fails
	c.wlock <- struct{}{}
	c.writeClose(closePayload(code, reason))
	c.unlock()
	c.conn.SetReadDeadline(deadline) // a Read in progress returns by then
	c.rmu.Lock()
	defer c.rmu.Unlock()
	var sink [512]byte
	var err error
	for err == nil { // read until the peer's Close
		_, err = c.read(sink[:])
	}
	c.linger(sink[:])
	return c.closeConn()
}

// linger, rmu held, is the half-close and discard of CloseWithStatus, up to lingerMax bytes. A
// *net.TCPConn sends a FIN; a *tls.Conn's CloseWrite sends only a close_notify alert, which a TLS
// peer reads as the end of data. After the peer's Close the client waits the same way for the
// server to close TCP.
func (c *Conn) linger(sink []byte) {
	switch cw, ok := c.conn.(interface{ CloseWrite() error }); {
	case !c.peerClosed.Load() && ok && c.closeSent.Load():
		cw.CloseWrite()
	case !c.peerClosed.Load() || !c.client: // no half-close, or no Close to read; or the server, done
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

// closeConn closes the TCP connection: orderly once both Close frames have
// passed, else with a reset (SO_LINGER 0, where the conn or the one under
// TLS has SetLinger), for the reasons doc.go gives.
func (c *Conn) closeConn() error {
	conn := c.conn
	if t, ok := conn.(interface{ NetConn() net.Conn }); ok {
		conn = t.NetConn()
	}
	if l, ok := conn.(interface{ SetLinger(int) error }); ok && !(c.closeSent.Load() && c.peerClosed.Load()) {
		l.SetLinger(0)
	}
	if err := c.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
