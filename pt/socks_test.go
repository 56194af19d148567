package pt

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

// bufConn is a net.Conn that reads from r and records what is written; deadlines are
// accepted and ignored. Other methods are not used by the code under test.
type bufConn struct {
	net.Conn
	r io.Reader
	w bytes.Buffer
}

func (c *bufConn) Read(p []byte) (int, error)         { return c.r.Read(p) }
func (c *bufConn) Write(p []byte) (int, error)        { return c.w.Write(p) }
func (c *bufConn) SetDeadline(t time.Time) error      { return nil }
func (c *bufConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *bufConn) SetWriteDeadline(t time.Time) error { return nil }

// proxyAnswer is a peer that answers with what r gives and swallows what it is sent.
func proxyAnswer(r io.Reader) io.ReadWriter {
	return struct {
		io.Reader
		io.Writer
	}{r, io.Discard}
}

func cat(parts ...string) []byte { return []byte(strings.Join(parts, "")) }

// The request tor sends for a bridge at 192.0.2.1:443 with the argument "a=b".
var socks5ArgsRequest = cat(
	"\x05\x01\x02",         // VER 5, NMETHODS 1, METHODS: username/password
	"\x01",                 // RFC 1929 VER 1
	"\x03a=b",              // ULEN 3, UNAME "a=b"
	"\x01\x00",             // PLEN 1, PASSWD NUL: all arguments are in UNAME
	"\x05\x01\x00",         // VER 5, CMD CONNECT, RSV
	"\x01\xc0\x00\x02\x01", // ATYP IPv4, 192.0.2.1
	"\x01\xbb",             // DST.PORT 443
)

var socksCases = []struct {
	name   string
	in     []byte
	out    string // what the server answers during the handshake
	target string // "" when the handshake must fail
	args   Args
}{
	{"socks5 args in username", socks5ArgsRequest, "\x05\x02\x01\x00", "192.0.2.1:443", Args{"a": {"b"}}},
	{"socks5 args split across username and password", cat(
		"\x05\x01\x02",     // greeting: username/password
		"\x01",             // VER 1
		"\x07url=ws:",      // ULEN 7, UNAME: the first part
		"\x0b//x/;k=a\\;b", // PLEN 11, PASSWD: the rest, with an escaped ';'
		"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50", // CONNECT 127.0.0.1:80
	), "\x05\x02\x01\x00", "127.0.0.1:80", Args{"url": {"ws://x/"}, "k": {"a;b"}}},
	{"socks5 duplicate keys", cat(
		"\x05\x01\x02",
		"\x01\x07k=1;k=2\x01\x00", // UNAME "k=1;k=2", PASSWD NUL
		"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50",
	), "\x05\x02\x01\x00", "127.0.0.1:80", Args{"k": {"1", "2"}}},
	{"socks5 no auth, domain", cat(
		"\x05\x01\x00",        // greeting: no authentication only
		"\x05\x01\x00",        // VER CMD RSV
		"\x03\x0bexample.com", // ATYP domain, LEN 11, name
		"\x00\x50",            // port 80
	), "\x05\x00", "example.com:80", Args{}},
	{"socks5 prefers username/password", cat(
		"\x05\x02\x00\x02",  // NMETHODS 2: no auth, username/password
		"\x01\x01x\x01\x00", // UNAME "x": not key=value
	), "\x05\x02\x01\x01", "", nil},
	{"socks5 IPv6", cat(
		"\x05\x01\x00",
		"\x05\x01\x00\x04", // ATYP IPv6
		"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", // 2001:db8::1
		"\x1f\x90", // port 8080
	), "\x05\x00", "[2001:db8::1]:8080", Args{}},
	{"socks5 password not NUL is part of the args", cat(
		"\x05\x01\x02",
		"\x01\x02a=\x01b", // UNAME "a=", PASSWD "b"
		"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50",
	), "\x05\x02\x01\x00", "127.0.0.1:80", Args{"a": {"b"}}},
	{"unknown version", cat("\x06\x01\x00"), "", "", nil},
	{"socks5 zero methods", cat("\x05\x00"), "\x05\xff", "", nil},                 // NO ACCEPTABLE METHODS
	{"socks5 no acceptable method", cat("\x05\x02\x01\x80"), "\x05\xff", "", nil}, // GSSAPI, private
	{"rfc1929 bad version", cat("\x05\x01\x02", "\x02\x01x\x01\x00"), "\x05\x02\x01\x01", "", nil},
	{"rfc1929 ulen 0", cat("\x05\x01\x02", "\x01\x00\x01\x00"), "\x05\x02\x01\x01", "", nil},
	{"rfc1929 plen 0", cat("\x05\x01\x02", "\x01\x03a=b\x00"), "\x05\x02\x01\x01", "", nil},
	{"args trailing backslash", cat("\x05\x01\x02", "\x01\x04a=b\\\x01\x00"), "\x05\x02\x01\x01", "", nil},
	{"args empty key", cat("\x05\x01\x02", "\x01\x02=b\x01\x00"), "\x05\x02\x01\x01", "", nil},
	{"socks5 BIND not supported", cat(
		"\x05\x01\x00",
		"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", // CMD 2 BIND
	), "\x05\x00\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00", "", nil},
	{"socks5 UDP ASSOCIATE not supported", cat(
		"\x05\x01\x00",
		"\x05\x03\x00\x01\x7f\x00\x00\x01\x00\x50", // CMD 3
	), "\x05\x00\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00", "", nil},
	{"socks5 bad address type", cat(
		"\x05\x01\x00",
		"\x05\x01\x00\x05\x7f\x00\x00\x01\x00\x50", // ATYP 5
	), "\x05\x00\x05\x08\x00\x01\x00\x00\x00\x00\x00\x00", "", nil},
	{"socks5 request version 4", cat(
		"\x05\x01\x00",
		"\x04\x01\x00\x01\x7f\x00\x00\x01\x00\x50",
	), "\x05\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00", "", nil},
	{"socks5 reserved byte set", cat(
		"\x05\x01\x00",
		"\x05\x01\x01\x01\x7f\x00\x00\x01\x00\x50",
	), "\x05\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00", "", nil},
	{"socks5 empty domain", cat(
		"\x05\x01\x00",
		"\x05\x01\x00\x03\x00\x00\x50", // ATYP domain, LEN 0
	), "\x05\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00", "", nil},
	{"socks5 domain with a bracket", cat(
		"\x05\x01\x00",
		"\x05\x01\x00\x03\x01]\x00\x50", // ATYP domain, LEN 1, "]"
	), "\x05\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00", "", nil},
	{"socks5 domain with a space", cat(
		"\x05\x01\x00",
		"\x05\x01\x00\x03\x03a b\x00\x50", // ATYP domain, LEN 3, "a b"
	), "\x05\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00", "", nil},
	{"socks4a IPv4 with args", cat(
		"\x04\x01",         // VN 4, CD CONNECT
		"\x01\xbb",         // DSTPORT 443
		"\xc0\x00\x02\x01", // DSTIP 192.0.2.1
		"a=b\x00",          // USERID, NUL
	), "", "192.0.2.1:443", Args{"a": {"b"}}},
	{"socks4a domain", cat(
		"\x04\x01\x00\x50",
		"\x00\x00\x00\x01", // DSTIP 0.0.0.1: a name follows
		"\x00",             // empty USERID
		"example.com\x00",
	), "", "example.com:80", Args{}},
	{"socks4 0.0.0.0 is an address", cat("\x04\x01\x00\x50\x00\x00\x00\x00\x00"), "", "0.0.0.0:80", Args{}},
	{"socks4 BIND", cat("\x04\x02\x00\x50\x7f\x00\x00\x01\x00"), "\x00\x5b\x00\x00\x00\x00\x00\x00", "", nil},
	{"socks4 bad args", cat("\x04\x01\x00\x50\x7f\x00\x00\x01", "x\x00"), "\x00\x5b\x00\x00\x00\x00\x00\x00", "", nil},
	{"socks4 empty domain", cat("\x04\x01\x00\x50\x00\x00\x00\x01\x00\x00"), "\x00\x5b\x00\x00\x00\x00\x00\x00", "", nil},
	{"socks4a domain with a control byte", cat("\x04\x01\x00\x50\x00\x00\x00\x01\x00", "a\nb\x00"),
		"\x00\x5b\x00\x00\x00\x00\x00\x00", "", nil},
	{"socks4 overlong USERID", cat("\x04\x01\x00\x50\x7f\x00\x00\x01", strings.Repeat("k", 511), "\x00"),
		"\x00\x5b\x00\x00\x00\x00\x00\x00", "", nil}, // VN 0, CD 0x5b (rejected), port and address 0
	{"socks4 longest USERID", cat("\x04\x01\x00\x50\x7f\x00\x00\x01", "k=", strings.Repeat("v", 508), "\x00"),
		"", "127.0.0.1:80", Args{"k": {strings.Repeat("v", 508)}}},
	{"socks4a overlong domain", cat("\x04\x01\x00\x50\x00\x00\x00\x01\x00", strings.Repeat("d", 256), "\x00"),
		"\x00\x5b\x00\x00\x00\x00\x00\x00", "", nil},
}

func TestSocksHandshake(t *testing.T) {
	readers := map[string]func(io.Reader) io.Reader{
		"whole":   func(r io.Reader) io.Reader { return r },
		"onebyte": iotest.OneByteReader,
		"half":    iotest.HalfReader,
	}
	for _, tc := range socksCases {
		for rname, wrap := range readers {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				trailer := "DATA" // the tunnel's first bytes: must stay unread
				src := bytes.NewReader(append(append([]byte{}, tc.in...), trailer...))
				conn := &bufConn{r: wrap(src)}
				c, err := SocksHandshake(conn, time.Minute)
				if got := conn.w.String(); got != tc.out {
					t.Errorf("server wrote % x, want % x", got, tc.out)
				}
				if tc.target == "" {
					if err == nil {
						t.Fatalf("handshake succeeded with target %q", c.Target)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if c.Target != tc.target || !reflect.DeepEqual(c.Args, tc.args) {
					t.Errorf("got %q %v, want %q %v", c.Target, c.Args, tc.target, tc.args)
				}
				if src.Len() != len(trailer) {
					t.Errorf("%d bytes after the request were consumed", len(trailer)-src.Len())
				}
			})
		}
	}
}

// Every proper prefix of a valid request is an error (the peer closed), never a success.
func TestSocksHandshakeTruncated(t *testing.T) {
	for _, tc := range socksCases {
		if tc.target == "" {
			continue
		}
		for n := 0; n < len(tc.in); n++ {
			conn := &bufConn{r: iotest.OneByteReader(bytes.NewReader(tc.in[:n]))}
			if c, err := SocksHandshake(conn, time.Minute); err == nil {
				t.Fatalf("%s: %d of %d bytes: success with %q", tc.name, n, len(tc.in), c.Target)
			}
		}
	}
}

// tcpPair returns both ends of a loopback TCP connection, closed when the test ends.
func tcpPair(t testing.TB) (client, server net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// A client that stops sending in the middle meets the deadline.
func TestSocksHandshakeTimeout(t *testing.T) {
	for _, n := range []int{0, 3, 7, len(socks5ArgsRequest) - 1} {
		client, server := tcpPair(t)
		if _, err := client.Write(socks5ArgsRequest[:n]); err != nil {
			t.Fatal(err)
		}
		if _, err := SocksHandshake(server, 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("after %d bytes: got %v, want a deadline error", n, err)
		}
	}
}

// The handshake's deadline is gone after success, and the tunnel works both ways on a real
// connection (the request and the first data arrive together).
func TestSocksHandshakeClearsDeadline(t *testing.T) {
	client, server := tcpPair(t)
	if _, err := client.Write(append(socks5ArgsRequest, "early"...)); err != nil {
		t.Fatal(err)
	}
	c, err := SocksHandshake(server, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // past the handshake's deadline
	if err := c.Grant(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "early" {
		t.Fatalf("read %q, %v", buf, err)
	}
	want := "\x05\x02\x01\x00" + "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00" // auth ok, granted
	got := make([]byte, len(want))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != want {
		t.Fatalf("client read % x, %v; want % x", got, err, want)
	}
}

// replyCase is an error and the SOCKS5 reply code that fits it.
type replyCase struct {
	name string
	err  error
	code byte
}

func TestSocksReplyCodes(t *testing.T) {
	refused := func() error { // a real refusal: a closed loopback port
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
			t.Fatal("dial to a closed port succeeded")
		}
		return err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	<-ctx.Done()
	winsock := func(code syscall.Errno) error { // as Windows gives them
		return &net.OpError{Op: "dial", Err: os.NewSyscallError("connectex", code)}
	}
	cases := []replyCase{
		{"refused by the system", refused, 0x05},
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, 0x05},
		{"network unreachable", os.NewSyscallError("connect", syscall.ENETUNREACH), 0x03},
		{"host unreachable", syscall.EHOSTUNREACH, 0x04},
		{"WSAECONNREFUSED", winsock(10061), 0x05},
		{"WSAENETUNREACH", winsock(10051), 0x03},
		{"WSAEHOSTUNREACH", winsock(10065), 0x04},
		{"WSAETIMEDOUT", winsock(10060), 0x06},
		{"WSAECONNRESET", winsock(10054), 0x01},
		{"deadline", os.ErrDeadlineExceeded, 0x06},
		{"context deadline", ctx.Err(), 0x06},
		{"dns timeout", &net.DNSError{Err: "timeout", IsTimeout: true}, 0x06},
		{"dns not found", &net.DNSError{Err: "no such host", IsNotFound: true}, 0x04},
		{"other", errors.New("websocket: status 403"), 0x01},
		{"nil", nil, 0x01},
	}
	for _, tc := range cases {
		for _, v := range []byte{4, 5} {
			conn := &bufConn{}
			c := &SocksConn{Conn: conn, version: v}
			if err := c.Reject(tc.err); err != nil {
				t.Fatal(err)
			}
			want := []byte{0x05, tc.code, 0x00, 0x01, 0, 0, 0, 0, 0, 0} // VER REP RSV ATYP 0.0.0.0:0
			if v == 4 {
				want = []byte{0x00, 0x5b, 0, 0, 0, 0, 0, 0} // VN, CD rejected, DSTPORT, DSTIP
			}
			if !bytes.Equal(conn.w.Bytes(), want) {
				t.Errorf("%s socks%d: reply % x, want % x", tc.name, v, conn.w.Bytes(), want)
			}
		}
	}
	for v, want := range map[byte]string{
		4: "\x00\x5a\x00\x00\x00\x00\x00\x00",         // VN 0, CD granted, port, IP
		5: "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", // VER, REP succeeded, RSV, ATYP IPv4, 0.0.0.0:0
	} {
		conn := &bufConn{}
		if err := (&SocksConn{Conn: conn, version: v}).Grant(); err != nil || conn.w.String() != want {
			t.Errorf("socks%d Grant: % x, %v", v, conn.w.Bytes(), err)
		}
	}
}

func FuzzSocksHandshake(f *testing.F) {
	for _, tc := range socksCases {
		f.Add(tc.in)
	}
	f.Add([]byte{})
	f.Add([]byte("\x05\x01\x02\x01\xff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		conn := &bufConn{r: bytes.NewReader(in)} // EOF at the end: it cannot hang
		c, err := SocksHandshake(conn, time.Minute)
		if conn.w.Len() > 2+2+10 {
			t.Fatalf("server wrote %d bytes", conn.w.Len())
		}
		if err == nil {
			host, port, err := net.SplitHostPort(c.Target)
			if err != nil || net.JoinHostPort(host, port) != c.Target {
				t.Fatalf("bad target %q: %v", c.Target, err)
			}
			if c.Args == nil {
				t.Fatal("nil Args")
			}
		}
	})
}

// TestSocksBadDomainNotEchoed checks that the error for a bad domain name does not repeat it:
// a bridge's name must not reach the logs, which scrub only addresses.
func TestSocksBadDomainNotEchoed(t *testing.T) {
	conn := &bufConn{r: strings.NewReader(
		"\x04\x01\x00\x50" + // VN 4, CD CONNECT, DSTPORT 80
			"\x00\x00\x00\x01" + // DSTIP 0.0.0.1: a domain name follows
			"\x00" + // USERID "", NUL
			"bridge.example\x01\x00")} // the name with a control byte, NUL
	if _, err := SocksHandshake(conn, time.Minute); err == nil || strings.Contains(err.Error(), "bridge.example") {
		t.Errorf("error %v, want one that does not name the host", err)
	}
}
