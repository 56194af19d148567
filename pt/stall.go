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
// timeout error that names the stall timeout once the peer has taken nothing for stall, however
// long the whole write takes, so that a slow but live reader is never cut and a peer that stops
// reading cannot hold the writer for ever. Deadlines set on the result still apply. Put it under
// TLS (a timed-out TLS write cannot be resumed). stall <= 0 returns conn as it is.
//
// A blocked write wakes every stall/4 and writes again: the kernel takes any bytes that the
// peer's acknowledgements freed (a waiting writer is woken only once a third of its send buffer
// is free, which a slow reader may take minutes to free), and these count as progress. So a
// stall is cut between stall and 1.5 × stall after the peer last took data.
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
	armed time.Time // the next look for progress
}

// Write writes all of p unless the peer takes nothing for stall or the caller's deadline passes.
// One goroutine writes at a time; SetWriteDeadline may be called during a Write.
func (c *stallConn) Write(p []byte) (int, error) {
	n, now := 0, time.Now()
	last := now // when the write began or bytes were last accepted
	for {
		user := c.renew(now)
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

// renew keeps the next look for progress between stall/8 and stall/4 ahead of now, so that a busy
// writer costs a timer update every stall/8, not one per write, and returns the caller's deadline.
func (c *stallConn) renew(now time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed.Sub(now) < c.stall/8 {
		c.armed = now.Add(c.stall / 4)
		c.apply()
	}
	return c.user
}

// apply sets the conn's write deadline to the earlier of the caller's and the next look.
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

func (c *stallConn) CloseWrite() error { return CloseWrite(c.Conn) }

// SetLinger sets SO_LINGER on the wrapped conn (see Abort).
func (c *stallConn) SetLinger(sec int) error {
	if l, ok := c.Conn.(interface{ SetLinger(sec int) error }); ok {
		return l.SetLinger(sec)
	}
	return errors.New("pt: the connection has no SetLinger")
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
