package pt

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// StallConn bounds conn's writes by progress rather than by duration: a Write fails with a
// timeout error that names the stall timeout once no byte of it has been accepted (by the kernel, for TCP) for stall, however
// long the whole write takes, so that a slow but live reader is never cut and a peer that stops
// reading cannot hold the writer for ever. Deadlines set on the result still apply. Put it
// under TLS (a timed-out TLS write cannot be resumed). stall <= 0 returns conn as it is.
//
// The conn's write deadline is renewed only when less than half of stall remains, so a busy
// writer costs a timer update every stall/2, not one per write.
func StallConn(conn net.Conn, stall time.Duration) net.Conn {
	if stall <= 0 {
		return conn
	}
	return &stallConn{Conn: conn, stall: stall}
}

type stallConn struct {
	net.Conn
	stall time.Duration
	mu    sync.Mutex
	user  time.Time // the write deadline set by the caller
	armed time.Time // when the current stall window ends
}

// Write writes all of p unless the peer takes nothing for stall or the caller's deadline passes.
// One goroutine writes at a time; SetWriteDeadline may be called during a Write.
func (c *stallConn) Write(p []byte) (int, error) {
	n, now := 0, time.Now()
	last := now // when the write began or a byte was last accepted
	for {
		user := c.renew(last, now)
		m, err := c.Conn.Write(p[n:])
		n += m
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if now = time.Now(); m > 0 {
			last = now
		}
		if !user.IsZero() && !now.Before(user) {
			return n, err // the caller's deadline
		}
		if now.Sub(last) >= c.stall {
			return n, fmt.Errorf("the peer took no data for %v (stall timeout): %w", c.stall, err)
		}
	}
}

// renew moves the stall window to end at last+stall when less than half of it remains or it
// has ended, and returns the caller's deadline.
func (c *stallConn) renew(last, now time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed.Sub(last) < c.stall/2 || !c.armed.After(now) {
		c.armed = last.Add(c.stall)
		c.apply()
	}
	return c.user
}

// apply sets the conn's write deadline to the earlier of the caller's and the stall window's.
func (c *stallConn) apply() {
	d := c.user
	if !c.armed.IsZero() && (d.IsZero() || c.armed.Before(d)) {
		d = c.armed
	}
	c.Conn.SetWriteDeadline(d)
}

func (c *stallConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.user = t
	c.apply()
	return nil
}

func (c *stallConn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

// CloseWrite half-closes the conn if it can (a *net.TCPConn), else closes it.
func (c *stallConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// StallListener returns ln with every accepted connection wrapped by StallConn.
func StallListener(ln net.Listener, stall time.Duration) net.Listener {
	return stallListener{ln, stall}
}

type stallListener struct {
	net.Listener
	stall time.Duration
}

func (l stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return StallConn(c, l.stall), nil
}
