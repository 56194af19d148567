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

// SOCKS protocol numbers: RFC 1928 (SOCKS5), RFC 1929 (its username/password
// authentication) and SOCKS4a.
const (
	socks4Version     = 4
	socks5Version     = 5
	socksAuthNone     = 0x00
	socksAuthUserPass = 0x02
	socksNoAcceptable = 0xff
	socksUserPassVer  = 1 // RFC 1929 sub-negotiation version
	socksCmdConnect   = 1
	socksAtypIPv4     = 1
	socksAtypDomain   = 3
	socksAtypIPv6     = 4

	socksSucceeded         = 0
	socksGeneralFailure    = 1
	socksNetUnreachable    = 3
	socksHostUnreachable   = 4
	socksConnRefused       = 5
	socksTTLExpired        = 6
	socksCmdNotSupported   = 7
	socksAtypNotSupported  = 8
	socks4Granted          = 0x5a
	socks4Rejected         = 0x5b
	socks4MaxUserID        = 2 * 255 // as much as the SOCKS5 username and password carry
	socksUserPassFailure   = 1       // any non-zero RFC 1929 status is a failure
	socksUserPassSucceeded = 0
)

// SocksConn is a connection from tor whose SOCKS request has been read but not yet answered.
// The caller answers with Grant once the tunnel to Target is up, or with Reject.
type SocksConn struct {
	net.Conn
	Target  string // "host:port", IPv6 in brackets
	Args    Args   // per-bridge arguments (pt-spec section 3.5), empty if none
	version byte   // 4 or 5: the form of the reply
}

// SocksHandshake reads one SOCKS5 (RFC 1928, with the arguments in RFC 1929 username and
// password) or SOCKS4a CONNECT request from conn, within timeout (> 0; zero or less means no
// limit). The deadline is cleared after success. A malformed request gets the protocol's error
// reply where it has one, and an error; the caller then closes conn. Only the request's own
// bytes are read. Called by the per-connection goroutine, never in the accept loop.
func SocksHandshake(conn net.Conn, timeout time.Duration) (*SocksConn, error) {
	if timeout > 0 {
		if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
			return nil, err
		}
	}
	c := &SocksConn{Conn: conn}
	var b [1]byte
	_, err := io.ReadFull(conn, b[:])
	if err == nil {
		c.version = b[0]
		switch c.version {
		case socks5Version:
			err = c.socks5()
		case socks4Version:
			err = c.socks4()
		default:
			err = fmt.Errorf("unknown version %d", c.version)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pt: socks handshake: %w", err)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return c, nil
}

// socks5 reads the rest of a SOCKS5 greeting, the authentication and the request.
func (c *SocksConn) socks5() error {
	var buf [255]byte
	methods, err := readCounted(c.Conn, buf[:])
	if err != nil {
		return err
	}
	if len(methods) == 0 {
		return errors.New("no authentication methods offered")
	}
	// Username/password first: tor sends the arguments in it.
	method := byte(socksNoAcceptable)
	if bytes.IndexByte(methods, socksAuthUserPass) >= 0 {
		method = socksAuthUserPass
	} else if bytes.IndexByte(methods, socksAuthNone) >= 0 {
		method = socksAuthNone
	}
	if _, err := c.Write([]byte{socks5Version, method}); err != nil {
		return err
	}
	switch method {
	case socksNoAcceptable:
		return errors.New("no acceptable authentication method")
	case socksAuthNone:
		c.Args = Args{}
		return c.socks5Request()
	}
	args, err := c.userPass()
	if err != nil {
		return err
	}
	if c.Args, err = ParseClientArgs(args); err != nil {
		c.Write([]byte{socksUserPassVer, socksUserPassFailure})
		return err
	}
	if _, err := c.Write([]byte{socksUserPassVer, socksUserPassSucceeded}); err != nil {
		return err
	}
	return c.socks5Request()
}

// userPass reads the RFC 1929 sub-negotiation and returns the argument string: the username,
// followed by the password unless that is the single NUL byte tor sends when the arguments fit
// in the username (pt-spec section 3.5). A malformed one gets a failure status.
func (c *SocksConn) userPass() (string, error) {
	var b [1]byte
	var buf [255]byte
	if _, err := io.ReadFull(c.Conn, b[:]); err != nil {
		return "", err
	}
	if b[0] != socksUserPassVer {
		c.Write([]byte{socksUserPassVer, socksUserPassFailure})
		return "", fmt.Errorf("username/password version %d", b[0])
	}
	var args string
	for _, field := range []string{"username", "password"} {
		s, err := readCounted(c.Conn, buf[:])
		if err != nil {
			return "", err
		}
		if len(s) == 0 {
			c.Write([]byte{socksUserPassVer, socksUserPassFailure})
			return "", fmt.Errorf("empty %s", field)
		}
		if field == "username" || !bytes.Equal(s, []byte{0}) {
			args += string(s)
		}
	}
	return args, nil
}

// socks5Request reads the request that follows authentication: VER CMD RSV ATYP DST.ADDR
// DST.PORT.
func (c *SocksConn) socks5Request() error {
	var buf [255]byte
	if _, err := io.ReadFull(c.Conn, buf[:4]); err != nil {
		return err
	}
	ver, cmd, rsv, atyp := buf[0], buf[1], buf[2], buf[3]
	switch {
	case ver != socks5Version || rsv != 0:
		c.reply(socksGeneralFailure)
		return fmt.Errorf("bad request header % x", buf[:4])
	case cmd != socksCmdConnect:
		c.reply(socksCmdNotSupported)
		return fmt.Errorf("command %d not supported", cmd)
	}
	var host string
	var err error
	switch atyp {
	case socksAtypIPv4, socksAtypIPv6:
		ip := buf[:net.IPv4len]
		if atyp == socksAtypIPv6 {
			ip = buf[:net.IPv6len]
		}
		if _, err := io.ReadFull(c.Conn, ip); err != nil {
			return err
		}
		host = net.IP(ip).String()
	case socksAtypDomain:
		if host, err = c.domain(readCounted(c.Conn, buf[:])); err != nil {
			return err
		}
	default:
		c.reply(socksAtypNotSupported)
		return fmt.Errorf("address type %d not supported", atyp)
	}
	if _, err := io.ReadFull(c.Conn, buf[:2]); err != nil {
		return err
	}
	c.Target = net.JoinHostPort(host, strconv.Itoa(int(buf[0])<<8|int(buf[1])))
	return nil
}

// socks4 reads the rest of a SOCKS4a request: CD DSTPORT DSTIP USERID NUL, and a domain name
// with a NUL when DSTIP is 0.0.0.x with x != 0. The USERID carries the arguments.
func (c *SocksConn) socks4() error {
	var hdr [7]byte
	if _, err := io.ReadFull(c.Conn, hdr[:]); err != nil {
		return err
	}
	if hdr[0] != socksCmdConnect {
		c.reply(socksGeneralFailure)
		return fmt.Errorf("command %d not supported", hdr[0])
	}
	var buf [socks4MaxUserID]byte
	userID, err := readNulTerminated(c.Conn, buf[:])
	if err != nil {
		return err
	}
	if c.Args, err = ParseClientArgs(string(userID)); err != nil {
		c.reply(socksGeneralFailure)
		return err
	}
	ip := net.IP(hdr[3:7])
	host := ip.String()
	if ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 {
		if host, err = c.domain(readNulTerminated(c.Conn, buf[:255])); err != nil {
			return err
		}
	}
	c.Target = net.JoinHostPort(host, strconv.Itoa(int(hdr[1])<<8|int(hdr[2])))
	return nil
}

// domain takes a requested name as read, with the read's error. It refuses, with a general
// failure reply, a name that cannot be a host: empty, or with a byte that is not printable
// ASCII, or a bracket (which would make "host:port" ambiguous).
func (c *SocksConn) domain(name []byte, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if len(name) == 0 {
		err = errors.New("empty domain name")
	}
	for _, b := range name {
		if b <= ' ' || b >= 0x7f || b == '[' || b == ']' {
			err = fmt.Errorf("byte %#x in domain name", b)
		}
	}
	if err != nil {
		c.reply(socksGeneralFailure)
		return "", err
	}
	return string(name), nil
}

// readCounted reads a length byte and that many bytes into buf (255 bytes long).
func readCounted(r io.Reader, buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, buf[:1]); err != nil {
		return nil, err
	}
	s := buf[:buf[0]]
	_, err := io.ReadFull(r, s)
	return s, err
}

// readNulTerminated reads bytes up to a NUL, one at a time so that nothing after the NUL is
// consumed. More than len(buf) bytes before the NUL is an error.
func readNulTerminated(r io.Reader, buf []byte) ([]byte, error) {
	var b [1]byte
	for n := 0; ; n++ {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, err
		}
		if b[0] == 0 {
			return buf[:n], nil
		}
		if n == len(buf) {
			return nil, fmt.Errorf("string longer than %d bytes", len(buf))
		}
		buf[n] = b[0]
	}
}

// Grant sends the success reply (bound address 0.0.0.0:0). Data may flow afterwards.
func (c *SocksConn) Grant() error {
	return c.reply(socksSucceeded)
}

// Reject sends a failure reply with the code that fits err: connection refused, network or host
// unreachable, TTL expired for a timeout, else general failure (SOCKS4a has a single failure
// code). The caller closes the connection afterwards.
func (c *SocksConn) Reject(err error) error {
	return c.reply(socksReplyCode(err))
}

// reply writes a SOCKS5 reply with code, or the SOCKS4 reply that matches it.
func (c *SocksConn) reply(code byte) error {
	b := []byte{socks5Version, code, 0, socksAtypIPv4, 0, 0, 0, 0, 0, 0}
	if c.version == socks4Version {
		b = []byte{0, socks4Granted, 0, 0, 0, 0, 0, 0} // VN CD DSTPORT DSTIP
		if code != socksSucceeded {
			b[1] = socks4Rejected
		}
	}
	_, err := c.Write(b)
	return err
}

// socksReplyCode is the SOCKS5 failure code that fits err.
func socksReplyCode(err error) byte {
	var netErr net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return socksConnRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return socksNetUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH):
		return socksHostUnreachable
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return socksTTLExpired
	case errors.As(err, &dnsErr):
		return socksHostUnreachable
	}
	return socksGeneralFailure
}
