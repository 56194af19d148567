package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"
)

// The target at the end of every tunnel. A request is one op byte and a
// big-endian uint64 n:
//
//	'U' n  the target reads n bytes, then answers one byte 'k' (upload)
//	'D' n  the target writes n bytes (download)
//	'E' 0  the target echoes everything until EOF (latency, idle and load tests)
//
// After 'U' and 'D' the next request may follow on the same connection.
const (
	opUpload   = 'U'
	opDownload = 'D'
	opEcho     = 'E'
)

func cmdTarget(args []string) error {
	fs := flag.NewFlagSet("target", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	fs.Parse(args)
	return serveTCP(*listen, serveTarget)
}

// pattern is the payload of bulk transfers: not all zeros, so that nothing on
// the way could profit from trivially compressible data.
var pattern = func() []byte {
	p := make([]byte, 64<<10)
	x := uint32(2463534242)
	for i := range p {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p[i] = byte(x)
	}
	return p
}()

func serveTarget(c net.Conn) {
	defer c.Close()
	var hdr [9]byte
	var buf []byte // for uploads only: an idle echo tunnel should cost the target little
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint64(hdr[1:]))
		switch hdr[0] {
		case opUpload:
			if buf == nil {
				buf = make([]byte, 64<<10)
			}
			if _, err := io.CopyBuffer(io.Discard, io.LimitReader(c, n), buf); err != nil {
				return
			}
			if _, err := c.Write([]byte{'k'}); err != nil {
				return
			}
		case opDownload:
			if err := writeN(c, n); err != nil {
				return
			}
		case opEcho:
			io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 4096))
			return
		default:
			return
		}
	}
}

func writeN(w io.Writer, n int64) error {
	const chunk = 32 << 10
	for n > 0 {
		k := int64(chunk)
		if n < k {
			k = n
		}
		if _, err := w.Write(pattern[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func request(c net.Conn, op byte, n int64) error {
	var hdr [9]byte
	hdr[0] = op
	binary.BigEndian.PutUint64(hdr[1:], uint64(n))
	_, err := c.Write(hdr[:])
	return err
}

// tunnel says how the load generator enters a chain: a TCP address, and for
// ours a SOCKS5 request for socksTarget (the bridge address).
type tunnel struct {
	entry       string
	socksTarget string
}

// dial opens one tunnel, ready to carry data.
func (t tunnel) dial(timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", t.entry, timeout)
	if err != nil {
		return nil, err
	}
	if t.socksTarget != "" {
		c.SetDeadline(time.Now().Add(timeout))
		if err := socks5Connect(c, t.socksTarget); err != nil {
			c.Close()
			return nil, err
		}
		c.SetDeadline(time.Time{})
	}
	return c, nil
}

// socks5Connect is a minimal SOCKS5 client (RFC 1928): no authentication,
// CONNECT to an IPv4 address.
func socks5Connect(c net.Conn, target string) error {
	addr, err := net.ResolveTCPAddr("tcp", target)
	if err != nil || addr.IP.To4() == nil {
		return fmt.Errorf("socks target %q: want IPv4:port", target)
	}
	if _, err := c.Write([]byte{5, 1, 0}); err != nil { // version 5, one method: none
		return err
	}
	var r [10]byte
	if _, err := io.ReadFull(c, r[:2]); err != nil {
		return err
	}
	if r[0] != 5 || r[1] != 0 {
		return fmt.Errorf("socks: method reply %x", r[:2])
	}
	req := append([]byte{5, 1, 0, 1}, addr.IP.To4()...) // CONNECT, IPv4
	req = binary.BigEndian.AppendUint16(req, uint16(addr.Port))
	if _, err := c.Write(req); err != nil {
		return err
	}
	// Reply: VER REP RSV ATYP=1 BND.ADDR(4) BND.PORT(2).
	if _, err := io.ReadFull(c, r[:4]); err != nil {
		return err
	}
	if r[1] != 0 {
		return fmt.Errorf("socks: reply code %d", r[1])
	}
	if r[3] != 1 {
		return errors.New("socks: reply address is not IPv4")
	}
	_, err = io.ReadFull(c, r[4:10])
	return err
}
