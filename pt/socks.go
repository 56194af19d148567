package pt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// SOCKS numbers: RFC 1928 (SOCKS5), RFC 1929 (its username/password authentication), SOCKS4a.
const (
	socks4Version, socks5Version                        = 4, 5
	socksAuthNone, socksAuthUserPass, socksNoAcceptable = 0x00, 0x02, 0xff
	socksCmdConnect                                     = 1
	socksAtypIPv4, socksAtypDomain, socksAtypIPv6       = 1, 3, 4
	// SOCKS5 reply codes; SOCKS4 has one for success and one for any failure.
	socksSucceeded, socksGeneralFailure                                          = 0, 1
	socksNetUnreachable, socksHostUnreachable, socksConnRefused, socksTTLExpired = 3, 4, 5, 6
	socksCmdNotSupported, socksAtypNotSupported                                  = 7, 8
	socks4Granted, socks4Rejected                                                = 0x5a, 0x5b
	socks4MaxUserID                                                              = 2 * 255 // what SOCKS5 can carry
)

// wire does the exact reads and writes of a handshake and keeps the first error, so that a
// handshake is a list of steps with one check at the end. It never reads ahead. After an error,
// reads give zero bytes (which end every loop and match no success) and writes do nothing.
type wire struct {
	rw  io.ReadWriter
	err error
}

func (w *wire) read(n int) []byte {
	b := make([]byte, n)
	if w.err == nil {
		_, w.err = io.ReadFull(w.rw, b)
	}
	return b
}

func (w *wire) u8() byte        { return w.read(1)[0] }
func (w *wire) counted() []byte { return w.read(int(w.u8())) } // a length byte, then that many
func (w *wire) write(b ...byte) { // all of b in one Write
	if w.err == nil {
		_, w.err = w.rw.Write(b)
	}
}

func (w *wire) failf(format string, a ...any) {
	if w.err == nil {
		w.err = fmt.Errorf(format, a...)
	}
}

// SocksConn is a connection from tor whose SOCKS request has been read but not yet answered.
// The caller answers with Grant once the tunnel to Target is up, or with Reject.
type SocksConn struct {
	net.Conn
	Target  string // "host:port", IPv6 in brackets
	Args    Args   // per-bridge arguments (pt-spec section 3.5), empty if none
	version byte   // 4 or 5: the form of the reply
}

// SocksHandshake reads one SOCKS5 or SOCKS4a CONNECT request from conn within timeout (zero or
// less: no limit), and clears the deadline after success. A malformed request gets the
// protocol's error reply where it has one, and an error; the caller then closes conn. Only the
// request's own bytes are read. Called by the per-connection goroutine, never in the accept loop.
func SocksHandshake(conn net.Conn, timeout time.Duration) (*SocksConn, error) {
	c := &SocksConn{Conn: conn}
	w := &wire{rw: conn}
	if timeout > 0 {
		w.err = conn.SetDeadline(time.Now().Add(timeout))
	}
	switch c.version = w.u8(); c.version {
	case socks5Version:
		c.socks5(w)
	case socks4Version:
		c.socks4(w)
	default:
		w.failf("unknown version %d", c.version)
	}
	if w.err == nil {
		w.err = conn.SetDeadline(time.Time{})
	}
	if w.err != nil {
		return nil, fmt.Errorf("pt: socks handshake: %w", w.err)
	}
	return c, nil
}

// socks5 reads the rest of the greeting, the authentication and the request.
func (c *SocksConn) socks5(w *wire) {
	methods := w.counted()
	switch { // username/password first: tor sends the arguments in it
	case bytes.IndexByte(methods, socksAuthUserPass) >= 0:
		w.write(socks5Version, socksAuthUserPass)
		// RFC 1929: VER 1, ULEN, UNAME, PLEN, PASSWD; the answer is VER 1 and a status, 0 for
		// success. The arguments are the username followed by the password, unless that is the
		// single NUL tor sends when they fit in the username.
		if v := w.u8(); v != 1 {
			w.write(1, 1)
			w.failf("username/password version %d", v)
		}
		uname, passwd := w.counted(), w.counted()
		args := string(uname)
		if !bytes.Equal(passwd, []byte{0}) {
			args += string(passwd)
		}
		var err error
		c.Args, err = ParseClientArgs(args)
		if len(uname) == 0 || len(passwd) == 0 {
			err = errors.New("empty username or password")
		}
		if err != nil {
			w.write(1, 1)
			w.failf("%w", err)
		}
		w.write(1, 0)
	case bytes.IndexByte(methods, socksAuthNone) >= 0:
		w.write(socks5Version, socksAuthNone)
		c.Args = Args{}
	default:
		w.write(socks5Version, socksNoAcceptable)
		w.failf("no acceptable authentication method")
	}
	// The request: VER CMD RSV ATYP DST.ADDR DST.PORT.
	hdr := w.read(4)
	var host string
	switch {
	case hdr[0] != socks5Version || hdr[2] != 0:
		c.refusef(w, socksGeneralFailure, "bad request header % x", hdr)
	case hdr[1] != socksCmdConnect:
		c.refusef(w, socksCmdNotSupported, "command %d not supported", hdr[1])
	case hdr[3] == socksAtypIPv4:
		host = net.IP(w.read(net.IPv4len)).String()
	case hdr[3] == socksAtypIPv6:
		host = net.IP(w.read(net.IPv6len)).String()
	case hdr[3] == socksAtypDomain:
		host = c.domain(w, w.counted())
	default:
		c.refusef(w, socksAtypNotSupported, "address type %d not supported", hdr[3])
	}
	port := w.read(2)
	c.Target = net.JoinHostPort(host, strconv.Itoa(int(port[0])<<8|int(port[1])))
}

// socks4 reads the rest of a SOCKS4a request: CD DSTPORT DSTIP USERID NUL, and a domain name
// and NUL when DSTIP is 0.0.0.x with x != 0. The USERID carries the arguments.
func (c *SocksConn) socks4(w *wire) {
	hdr := w.read(7)
	if hdr[0] != socksCmdConnect {
		c.refusef(w, socksGeneralFailure, "command %d not supported", hdr[0])
	}
	userID := c.untilNul(w, socks4MaxUserID, "USERID")
	var err error
	if c.Args, err = ParseClientArgs(string(userID)); err != nil {
		c.refusef(w, socksGeneralFailure, "%w", err)
	}
	host := net.IP(hdr[3:7]).String()
	if hdr[3] == 0 && hdr[4] == 0 && hdr[5] == 0 && hdr[6] != 0 {
		host = c.domain(w, c.untilNul(w, 255, "domain name"))
	}
	c.Target = net.JoinHostPort(host, strconv.Itoa(int(hdr[1])<<8|int(hdr[2])))
}

// untilNul reads up to a NUL, one byte at a time, and refuses the request (and stops reading)
// when more than max bytes come before it.
func (c *SocksConn) untilNul(w *wire, max int, what string) (s []byte) {
	for b := w.u8(); b != 0; b = w.u8() {
		if len(s) == max {
			c.refusef(w, socksGeneralFailure, "%s longer than %d bytes", what, max)
			break
		}
		s = append(s, b)
	}
	return s
}

// domain refuses a requested name that cannot be a host: empty, or with a byte that is not
// printable ASCII or is a bracket (which would make "host:port" ambiguous).
func (c *SocksConn) domain(w *wire, name []byte) string {
	if !isWord.Match(name) || bytes.ContainsAny(name, "[]") {
		c.refusef(w, socksGeneralFailure, "bad domain name") // not echoed: a name identifies a bridge
	}
	return string(name)
}

func (c *SocksConn) refusef(w *wire, code byte, format string, a ...any) {
	w.write(c.replyFor(code)...)
	w.failf(format, a...)
}

// Grant sends the success reply (bound address 0.0.0.0:0). Data may flow afterwards.
func (c *SocksConn) Grant() error {
	_, err := c.Write(c.replyFor(socksSucceeded))
	return err
}

// Reject sends a failure reply with the code that fits err: connection refused, network or host
// unreachable, TTL expired for a timeout, else general failure. The caller then closes c.
func (c *SocksConn) Reject(err error) error {
	_, err = c.Write(c.replyFor(socksReplyCode(err)))
	return err
}

// replyFor is the reply with code: SOCKS5 VER REP RSV ATYP BND.ADDR BND.PORT, or
// SOCKS4 VN CD DSTPORT DSTIP.
func (c *SocksConn) replyFor(code byte) []byte {
	if c.version != socks4Version {
		return []byte{socks5Version, code, 0, socksAtypIPv4, 0, 0, 0, 0, 0, 0}
	}
	cd := byte(socks4Granted)
	if code != socksSucceeded {
		cd = socks4Rejected
	}
	return []byte{0, cd, 0, 0, 0, 0, 0, 0}
}

// socks5Causes maps SOCKS5 failure codes to the errors of a failed connection that fit them; the
// first is what a proxy's failure reply wraps (socks5CodeError). Windows returns Winsock's codes,
// which syscall does not name (its ECONNREFUSED and the like are never returned there), and which
// are larger than any other system's errno.
func socks5Causes() map[byte][]error {
	return map[byte][]error{
		socksNetUnreachable:  {syscall.ENETUNREACH, syscall.Errno(10051)},    // WSAENETUNREACH
		socksHostUnreachable: {syscall.EHOSTUNREACH, syscall.Errno(10065)},   // WSAEHOSTUNREACH
		socksConnRefused:     {syscall.ECONNREFUSED, syscall.Errno(10061)},   // WSAECONNREFUSED
		socksTTLExpired:      {os.ErrDeadlineExceeded, syscall.Errno(10060)}, // WSAETIMEDOUT
	}
}

// socksReplyCode is the SOCKS5 failure code that fits err.
func socksReplyCode(err error) byte {
	for code, causes := range socks5Causes() {
		for _, cause := range causes {
			if errors.Is(err, cause) {
				return code
			}
		}
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return socksTTLExpired
	case errors.As(err, new(*net.DNSError)):
		return socksHostUnreachable
	}
	return socksGeneralFailure
}
