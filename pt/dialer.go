package pt

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxHTTPHead bounds the response head of an HTTP proxy.
const maxHTTPHead = 8192

// Dialer makes the client's outgoing TCP connections, as the package doc says (pt-spec 3.2.2).
type Dialer struct {
	ProxyURL               *url.URL // socks5://, socks4a:// or http://, with optional user:pass@; nil: direct
	OutboundV4, OutboundV6 net.IP   // source addresses for IPv4 and IPv6 destinations (ignored for loopback)
	Timeout                time.Duration
	Buffer                 int // the sockets' kernel buffers (see Buffers); 0: the system's
}

// Socket buffers bound what a peer who stops reading pins, and the steps in which a slow reader's
// progress reaches the writer (Linux reopens a closed window by a sixteenth of the buffer).
// LocalBuffer, towards tor on loopback, costs nothing; SocketBuffer, the WebSocket's default,
// bounds a tunnel to about 2.5 MB/s at a 100 ms round trip (measured: see the man pages).
const LocalBuffer, SocketBuffer = 128 << 10, 256 << 10

// Buffers returns a Control function for net.Dialer and net.ListenConfig that sets a socket's
// send and receive buffers to size bytes, turning their autotuning off (nil for size <= 0),
// before it connects: Linux keeps a window whose buffer is set later as small as it began.
func Buffers(size int) func(network, address string, c syscall.RawConn) error {
	if size <= 0 {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var err error
		cerr := c.Control(func(fd uintptr) {
			err = cmp.Or(setSockopt(fd, syscall.SO_RCVBUF, size), setSockopt(fd, syscall.SO_SNDBUF, size))
		})
		return cmp.Or(cerr, err)
	}
}

// DialContext connects to addr ("host:port") over network "tcp", "tcp4" or "tcp6". Timeout
// (when > 0) and ctx bound the connection and the whole proxy handshake; the returned
// connection has no deadline set and is a *net.TCPConn (so CloseWrite works). A refusal by a
// SOCKS5 proxy wraps the errno that fits its reply code (ECONNREFUSED for 5, and so on: socks5Causes),
// so that SocksConn.Reject passes the same code on to tor.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil, fmt.Errorf("pt: dial %s: network not supported", network)
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	if d.ProxyURL == nil {
		return d.dialTCP(ctx, network, addr)
	}
	handshake := map[string]func(io.ReadWriter, *url.Userinfo, string) error{
		"socks5": socks5Connect, "socks4a": socks4aConnect, "http": httpConnect,
	}[d.ProxyURL.Scheme]
	if handshake == nil {
		return nil, fmt.Errorf("pt: proxy scheme %q not supported", d.ProxyURL.Scheme)
	}
	conn, err := d.dialTCP(ctx, "tcp", d.ProxyURL.Host)
	if err != nil {
		return nil, fmt.Errorf("pt: connecting to proxy: %w", err)
	}
	deadline, _ := ctx.Deadline() // zero when ctx has none
	conn.SetDeadline(deadline)
	// A cancelled ctx interrupts the handshake by moving the deadline into the past.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err = handshake(conn, d.ProxyURL.User, addr)
	if !stop() { // ctx ended first: say so rather than "i/o timeout"
		err = ctx.Err()
	}
	if err == nil {
		err = conn.SetDeadline(time.Time{})
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("pt: %s proxy: %w", d.ProxyURL.Scheme, err)
	}
	return conn, nil
}

// dialTCP connects directly, from the outbound address that fits each resolved destination.
func (d *Dialer) dialTCP(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{Control: Buffers(d.Buffer)}
	if d.OutboundV4 == nil && d.OutboundV6 == nil {
		return nd.DialContext(ctx, network, addr)
	}
	// A net.Dialer with a LocalAddr only tries destinations of its family: resolve here and
	// pick the source address for each destination.
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err == nil {
		err = errors.New("no address for the host name")
	}
	for _, ip := range ips {
		nd.LocalAddr = bindAddr(ip.IP, d.OutboundV4, d.OutboundV6)
		var conn net.Conn
		if conn, err = nd.DialContext(ctx, network, net.JoinHostPort(ip.String(), port)); err == nil {
			return conn, nil
		}
	}
	return nil, err
}

// bindAddr is the source address for a connection to dst: v4 or v6 by dst's family, none
// when that one is unset or dst is a loopback address (pt-spec: the setting "MUST be ignored
// for connections to loopback addresses").
func bindAddr(dst, v4, v6 net.IP) net.Addr {
	src := v6
	if dst.To4() != nil {
		src = v4
	}
	if src == nil || dst.IsLoopback() {
		return nil
	}
	return &net.TCPAddr{IP: src}
}

// splitTarget splits "host:port" for a proxy request; ip is valid when host is a literal.
func splitTarget(addr string) (host string, ip netip.Addr, port uint16, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", ip, 0, err
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", ip, 0, errors.New("bad port")
	}
	ip, _ = netip.ParseAddr(host)
	return host, ip.Unmap(), uint16(n), nil
}

// socks5Connect runs RFC 1928 CONNECT, with RFC 1929 authentication when user is set.
func socks5Connect(rw io.ReadWriter, user *url.Userinfo, addr string) error {
	host, ip, port, err := splitTarget(addr)
	if err != nil {
		return err
	}
	req := []byte{socks5Version, socksCmdConnect, 0}
	switch {
	case ip.Is4():
		req = append(append(req, socksAtypIPv4), ip.AsSlice()...)
	case ip.Is6() && ip.Zone() == "":
		req = append(append(req, socksAtypIPv6), ip.AsSlice()...)
	case !ip.IsValid() && len(host) >= 1 && len(host) <= 255:
		req = append(append(req, socksAtypDomain, byte(len(host))), host...)
	default:
		return errors.New("cannot send host: zoned address, or name of 0 or over 255 bytes")
	}
	req = append(req, byte(port>>8), byte(port))
	method := byte(socksAuthNone)
	var auth []byte
	if user != nil {
		name := user.Username()
		pass, _ := user.Password()
		if len(name) < 1 || len(name) > 255 || len(pass) < 1 || len(pass) > 255 {
			return errors.New("username and password must have 1 to 255 bytes each")
		}
		method = socksAuthUserPass
		auth = append(append(append([]byte{1, byte(len(name))}, name...), byte(len(pass))), pass...)
	}
	w := &wire{rw: rw}
	w.write(socks5Version, 1, method)
	if r := w.read(2); r[0] != socks5Version || r[1] != method {
		w.failf("greeting answered with % x", r)
	}
	if auth != nil {
		w.write(auth...)
		if r := w.read(2); r[0] != 1 || r[1] != 0 { // RFC 1929 VER 1, STATUS success
			w.failf("authentication failed")
		}
	}
	w.write(req...)
	// The reply: VER REP RSV ATYP BND.ADDR BND.PORT. Read the bound address exactly, whatever
	// its type: the stream starts right after it.
	switch r := w.read(4); {
	case r[0] != socks5Version:
		w.failf("reply version %d", r[0])
	case r[1] != socksSucceeded:
		w.failf("%w", socks5CodeError(r[1]))
	case r[3] == socksAtypIPv4:
		w.read(net.IPv4len + 2)
	case r[3] == socksAtypIPv6:
		w.read(net.IPv6len + 2)
	case r[3] == socksAtypDomain:
		w.read(int(w.u8()) + 2)
	default:
		w.failf("reply address type %d", r[3])
	}
	return w.err
}

// socks5CodeError is the error for a SOCKS5 failure reply, wrapping its cause (see DialContext).
func socks5CodeError(code byte) error {
	if causes := socks5Causes()[code]; causes != nil {
		return fmt.Errorf("request failed with reply code %d: %w", code, causes[0])
	}
	return fmt.Errorf("request failed with reply code %d", code)
}

// socks4aConnect runs a SOCKS4a CONNECT; the USERID is the URL's username.
func socks4aConnect(rw io.ReadWriter, user *url.Userinfo, addr string) error {
	host, ip, port, err := splitTarget(addr)
	if err != nil {
		return err
	}
	req := []byte{socks4Version, socksCmdConnect, byte(port >> 8), byte(port)}
	switch {
	case ip.Is4():
		req = append(req, ip.AsSlice()...)
	case ip.IsValid():
		return errors.New("SOCKS4a cannot connect to an IPv6 address")
	default:
		req = append(req, 0, 0, 0, 1) // 0.0.0.x: the domain name follows the USERID
	}
	if strings.IndexByte(user.Username(), 0) >= 0 || strings.IndexByte(host, 0) >= 0 {
		return errors.New("NUL byte in user or host")
	}
	req = append(append(req, user.Username()...), 0)
	if !ip.IsValid() {
		req = append(append(req, host...), 0)
	}
	w := &wire{rw: rw}
	w.write(req...)
	if r := w.read(8); r[0] != 0 || r[1] != socks4Granted { // VN CD DSTPORT DSTIP
		w.failf("request rejected (% x)", r[:2])
	}
	return w.err
}

// httpConnect runs an HTTP/1.1 CONNECT (RFC 9110 section 9.3.6), with Basic
// authentication when user is set. Only a 2xx status succeeds.
func httpConnect(rw io.ReadWriter, user *url.Userinfo, addr string) error {
	if _, _, _, err := splitTarget(addr); err != nil {
		return err
	}
	if strings.ContainsFunc(addr, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("bad target: a space or control byte")
	}
	req := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if user != nil {
		pass, _ := user.Password()
		cred := base64.StdEncoding.EncodeToString([]byte(user.Username() + ":" + pass))
		req += "Proxy-Authorization: Basic " + cred + "\r\n"
	}
	w := &wire{rw: rw}
	w.write([]byte(req + "\r\n")...)
	// Read the head one byte at a time, so that no byte of the stream after it is taken.
	var head []byte
	for w.err == nil && !bytes.HasSuffix(head, []byte("\n\r\n")) && !bytes.HasSuffix(head, []byte("\n\n")) {
		if len(head) == maxHTTPHead {
			return errors.New("response head too long")
		}
		head = append(head, w.u8())
	}
	if w.err != nil {
		return w.err
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), nil)
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("CONNECT answered %q", resp.Status)
	}
	return nil
}
