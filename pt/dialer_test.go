package pt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestBindAddr(t *testing.T) {
	v4, v6 := net.ParseIP("198.51.100.7"), net.ParseIP("2001:db8::7")
	cases := []struct {
		dst    string
		v4, v6 net.IP
		want   string // "" for no source address
	}{
		{"192.0.2.1", v4, v6, "198.51.100.7"},
		{"::ffff:192.0.2.1", v4, v6, "198.51.100.7"}, // IPv4-mapped is IPv4
		{"2001:db8::1", v4, v6, "2001:db8::7"},
		{"192.0.2.1", nil, v6, ""},
		{"2001:db8::1", v4, nil, ""},
		{"127.0.0.1", v4, v6, ""}, // loopback: the setting is ignored
		{"127.200.0.9", v4, v6, ""},
		{"::ffff:127.0.0.1", v4, v6, ""},
		{"::1", v4, v6, ""},
	}
	for _, tc := range cases {
		got := bindAddr(net.ParseIP(tc.dst), tc.v4, tc.v6)
		if tc.want == "" && got != nil || tc.want != "" && (got == nil || got.(*net.TCPAddr).IP.String() != tc.want) {
			t.Errorf("bindAddr(%s) = %v, want %q", tc.dst, got, tc.want)
		}
	}
}

// Source addresses that are not on this machine do not stop connections to loopback: binding
// to one would fail with EADDRNOTAVAIL.
func TestDialDirectLoopbackIgnoresOutbound(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Write([]byte("hi"))
			conn.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	d := &Dialer{OutboundV4: net.ParseIP("192.0.2.55"), OutboundV6: net.ParseIP("2001:db8::55"), Timeout: time.Minute}
	// "localhost" may resolve to ::1 first, where nothing listens: the next address is tried.
	for _, addr := range []string{ln.Addr().String(), net.JoinHostPort("localhost", port)} {
		conn, err := d.DialContext(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		data, err := io.ReadAll(conn)
		conn.Close()
		if err != nil || string(data) != "hi" {
			t.Fatalf("%s: read %q, %v", addr, data, err)
		}
	}
}

// fakeProxy runs a script on each connection: for each step it reads exactly len(expect)
// bytes, which must equal expect, and writes send. With stream set it then plays pong.
func fakeProxy(t *testing.T, stream bool, script ...[2]string) (string, <-chan error) {
	addr, results := fakePeer(t, func(conn net.Conn) error {
		for _, step := range script {
			got := make([]byte, len(step[0]))
			if _, err := io.ReadFull(conn, got); err != nil {
				return err
			}
			if string(got) != step[0] {
				return fmt.Errorf("proxy got %q, want %q", got, step[0])
			}
			if _, err := io.WriteString(conn, step[1]); err != nil {
				return err
			}
		}
		if !stream {
			_, err := io.Copy(io.Discard, conn) // until the client hangs up
			return err
		}
		return pong(conn)
	})
	return addr.String(), results
}

const (
	socks5Granted = "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00" // VER, succeeded, RSV, ATYP IPv4, 0.0.0.0:0
	socks4Grant   = "\x00\x5a\x00\x00\x00\x00\x00\x00"         // VN 0, granted, port, IP
	httpRequest   = "CONNECT 192.0.2.1:443 HTTP/1.1\r\nHost: 192.0.2.1:443\r\n\r\n"
)

func TestDialProxy(t *testing.T) {
	refusal := func(code byte) [][2]string { // a SOCKS5 CONNECT to 192.0.2.1:443 refused with code
		return [][2]string{
			{"\x05\x01\x00", "\x05\x00"},
			{"\x05\x01\x00\x01\xc0\x00\x02\x01\x01\xbb", "\x05" + string(rune(code)) + "\x00\x01\x00\x00\x00\x00\x00\x00"},
		}
	}
	cases := []struct {
		name, url, target string
		script            [][2]string // {what the proxy expects, what it answers}
		early             string      // stream bytes sent with the last answer
		wantErr           string      // "" for success
		wantCode          byte        // SOCKS5 code Reject gives the error (0: not checked)
	}{
		{"socks5", "socks5://H", "192.0.2.1:443", [][2]string{
			{"\x05\x01\x00", "\x05\x00"},                                // 1 method: no auth; chosen
			{"\x05\x01\x00\x01\xc0\x00\x02\x01\x01\xbb", socks5Granted}, // CONNECT IPv4 192.0.2.1:443
		}, "", "", 0},
		{"socks5 user/pass, domain, bound domain", "socks5://user:pa%3Ass@H", "example.com:80", [][2]string{
			{"\x05\x01\x02", "\x05\x02"},          // username/password
			{"\x01\x04user\x05pa:ss", "\x01\x00"}, // RFC 1929 VER 1, "user", "pa:ss"; success
			{"\x05\x01\x00\x03\x0bexample.com\x00\x50", // CONNECT domain, LEN 11, port 80
				"\x05\x00\x00\x03\x04host\x12\x34"}, // bound address: domain "host", port 0x1234
		}, "E", "", 0},
		{"socks5 IPv6, bound IPv6", "socks5://H", "[2001:db8::1]:8080", [][2]string{
			{"\x05\x01\x00", "\x05\x00"},
			{"\x05\x01\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1f\x90",
				"\x05\x00\x00\x04" + strings.Repeat("\x00", 16) + "\x00\x00"}, // bound [::]:0
		}, "EARLY", "", 0},
		{"socks5 refused", "socks5://H", "192.0.2.1:443", refusal(socksConnRefused), "", "reply code 5", socksConnRefused},
		{"socks5 host unreachable", "socks5://H", "192.0.2.1:443", refusal(socksHostUnreachable), "", "reply code 4", socksHostUnreachable},
		{"socks5 TTL expired", "socks5://H", "192.0.2.1:443", refusal(socksTTLExpired), "", "reply code 6", socksTTLExpired},
		{"socks5 general failure", "socks5://H", "192.0.2.1:443", refusal(socksGeneralFailure), "", "reply code 1", socksGeneralFailure},
		{"socks5 no acceptable method", "socks5://H", "192.0.2.1:443", [][2]string{
			{"\x05\x01\x00", "\x05\xff"},
		}, "", "greeting", 0},
		{"socks5 auth failure", "socks5://u:p@H", "192.0.2.1:443", [][2]string{
			{"\x05\x01\x02", "\x05\x02"},
			{"\x01\x01u\x01p", "\x01\x01"}, // status 1: failure
		}, "", "authentication failed", 0},
		{"socks5 reply version 4", "socks5://H", "192.0.2.1:443", [][2]string{
			{"\x05\x01\x00", "\x05\x00"},
			{"\x05\x01\x00\x01\xc0\x00\x02\x01\x01\xbb", "\x04\x00\x00\x01\x00\x00\x00\x00\x00\x00"},
		}, "", "reply version", 0},
		{"socks5 bad bound address type", "socks5://H", "192.0.2.1:443", [][2]string{
			{"\x05\x01\x00", "\x05\x00"},
			{"\x05\x01\x00\x01\xc0\x00\x02\x01\x01\xbb", "\x05\x00\x00\x07"},
		}, "", "address type 7", 0},
		{"socks5 empty password", "socks5://u@H", "192.0.2.1:443", nil, "", "1 to 255", 0},
		{"socks4a IPv4", "socks4a://tor@H", "192.0.2.1:443", [][2]string{
			{"\x04\x01\x01\xbb\xc0\x00\x02\x01tor\x00", socks4Grant}, // VN CD port IP, USERID "tor"
		}, "E", "", 0},
		{"socks4a domain", "socks4a://H", "example.com:80", [][2]string{
			{"\x04\x01\x00\x50\x00\x00\x00\x01" + // VN CD port 80, IP 0.0.0.1
				"\x00" + // empty USERID
				"example.com\x00", socks4Grant},
		}, "", "", 0},
		{"socks4a rejected", "socks4a://H", "192.0.2.1:443", [][2]string{
			{"\x04\x01\x01\xbb\xc0\x00\x02\x01\x00", "\x00\x5b\x00\x00\x00\x00\x00\x00"},
		}, "", "rejected", socksGeneralFailure},
		{"socks4a IPv6", "socks4a://H", "[2001:db8::1]:80", nil, "", "IPv6", 0},
		{"http", "http://H", "192.0.2.1:443", [][2]string{
			{httpRequest, "HTTP/1.1 200 Connection established\r\n\r\n"},
		}, "EARLY", "", 0}, // the stream's first bytes come in the same write as the head
		{"http/1.0, headers, bare LF", "http://H", "192.0.2.1:443", [][2]string{
			{httpRequest, "HTTP/1.0 200 OK\nProxy-Agent: x\n\n"},
		}, "E", "", 0},
		{"http basic auth", "http://user:pass@H", "example.com:443", [][2]string{
			{"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n" +
				"Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n", // base64("user:pass")
				"HTTP/1.1 200 OK\r\n\r\n"},
		}, "", "", 0},
		{"http 407", "http://H", "192.0.2.1:443", [][2]string{
			{httpRequest, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n"},
		}, "", "407", socksGeneralFailure},
		{"http 403", "http://H", "192.0.2.1:443", [][2]string{
			{httpRequest, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"},
		}, "", "403", 0},
		{"http redirect", "http://H", "192.0.2.1:443", [][2]string{
			{httpRequest, "HTTP/1.1 301 Moved\r\nLocation: http://x/\r\n\r\n"},
		}, "", "301", 0},
		{"http not http", "http://H", "192.0.2.1:443", [][2]string{
			{httpRequest, "SSH-2.0-OpenSSH\r\n\r\n"},
		}, "", "malformed HTTP", 0},
		{"http endless head", "http://H", "192.0.2.1:443", [][2]string{
			{httpRequest, "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: b\r\n", 1200)},
		}, "", "too long", 0},
		{"http target with a newline", "http://H", "a\r\nb:443", nil, "", "bad target", 0},
		{"port out of range", "socks5://H", "192.0.2.1:65536", nil, "", "bad port", 0},
		{"no port", "http://H", "192.0.2.1", nil, "", "missing port", 0},
		{"socks5 domain too long", "socks5://H", strings.Repeat("a", 256) + ":80", nil, "", "cannot send host", 0},
		{"socks5 zoned IPv6", "socks5://H", "[fe80::1%eth0]:80", nil, "", "cannot send host", 0},
		{"socks4a NUL in user", "socks4a://a%00b@H", "192.0.2.1:80", nil, "", "NUL", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			script := tc.script
			if len(script) > 0 {
				script[len(script)-1][1] += tc.early
			}
			addr, proxyResult := fakeProxy(t, tc.wantErr == "", script...)
			u, err := url.Parse(strings.Replace(tc.url, "@H", "@"+addr, 1))
			if err != nil {
				t.Fatal(err)
			}
			if u.Host == "H" {
				u.Host = addr
			}
			// Outbound addresses that are not on this machine: ignored for the loopback proxy.
			d := &Dialer{ProxyURL: u, OutboundV4: net.ParseIP("192.0.2.55"), Timeout: time.Minute}
			conn, err := d.DialContext(context.Background(), "tcp", tc.target)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tc.wantErr)
				}
				if host, _, _ := net.SplitHostPort(tc.target); host != "" && strings.Contains(err.Error(), host) {
					t.Errorf("error %q repeats the target's host, which may name a bridge", err)
				}
				if tc.wantCode != 0 && socksReplyCode(err) != tc.wantCode {
					t.Errorf("Reject code %d, want %d", socksReplyCode(err), tc.wantCode)
				}
				received(t, proxyResult)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			streamCheck(t, conn, tc.early+"pong")
			if err := received(t, proxyResult); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// streamCheck sends "ping", half-closes (so the conn must be a *net.TCPConn) and reads want.
func streamCheck(t *testing.T, conn net.Conn, want string) {
	t.Helper()
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		t.Fatalf("conn is a %T, not a *net.TCPConn", conn)
	}
	if _, err := io.WriteString(tcp, "ping"); err != nil {
		t.Fatal(err)
	}
	if err := tcp.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if data, err := io.ReadAll(tcp); err != nil || string(data) != want {
		t.Fatalf("stream read %q, %v; want %q", data, err, want)
	}
}

// The proxy answers are parsed the same however they are split, and nothing after them is read.
func TestProxyRepliesSplit(t *testing.T) {
	const stream = "STREAM"
	cases := []struct {
		name    string
		connect func(io.ReadWriter, *url.Userinfo, string) error
		user    *url.Userinfo
		answer  string
	}{
		{"socks5", socks5Connect, url.UserPassword("u", "p"),
			"\x05\x02" + // username/password chosen
				"\x01\x00" + // RFC 1929 success
				"\x05\x00\x00\x03\x04host\x12\x34"}, // succeeded, bound to domain "host", port 0x1234
		{"socks4a", socks4aConnect, nil, socks4Grant},
		{"http", httpConnect, nil, "HTTP/1.1 200 OK\r\nVia: x\r\n\r\n"},
	}
	for _, tc := range cases {
		for _, wrap := range []func(io.Reader) io.Reader{iotest.OneByteReader, iotest.HalfReader} {
			src := strings.NewReader(tc.answer + stream)
			if err := tc.connect(proxyAnswer(wrap(src)), tc.user, "example.com:443"); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if src.Len() != len(stream) {
				t.Errorf("%s: %d stream bytes consumed", tc.name, len(stream)-src.Len())
			}
		}
	}
}

// The handshake's deadline is cleared after success.
func TestDialProxyClearsDeadline(t *testing.T) {
	addr, proxyResult := fakeProxy(t, true, [2]string{httpRequest, "HTTP/1.1 200 OK\r\n\r\n"})
	d := &Dialer{ProxyURL: &url.URL{Scheme: "http", Host: addr}, Timeout: 200 * time.Millisecond}
	conn, err := d.DialContext(context.Background(), "tcp", "192.0.2.1:443")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(300 * time.Millisecond) // past the handshake's deadline
	streamCheck(t, conn, "pong")
	if err := received(t, proxyResult); err != nil {
		t.Fatal(err)
	}
}

// A silent proxy meets Timeout (SOCKS code 6), or the context's cancellation.
func TestDialProxySilent(t *testing.T) {
	addr, proxyResult := fakeProxy(t, false)
	d := &Dialer{ProxyURL: &url.URL{Scheme: "socks5", Host: addr}, Timeout: 200 * time.Millisecond}
	_, err := d.DialContext(context.Background(), "tcp", "192.0.2.1:443")
	if socksReplyCode(err) != socksTTLExpired {
		t.Fatalf("got %v, want a timeout", err)
	}
	received(t, proxyResult)

	addr, proxyResult = fakeProxy(t, false)
	d = &Dialer{ProxyURL: &url.URL{Scheme: "socks4a", Host: addr}}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err = d.DialContext(ctx, "tcp", "192.0.2.1:443"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	received(t, proxyResult)
}

func TestDialErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	ctx := context.Background()
	d := &Dialer{ProxyURL: &url.URL{Scheme: "socks5", Host: closed}}
	if _, err := d.DialContext(ctx, "tcp", "192.0.2.1:443"); socksReplyCode(err) != socksConnRefused {
		t.Errorf("proxy down: %v (SOCKS reply %d)", err, socksReplyCode(err))
	}
	d = &Dialer{ProxyURL: &url.URL{Scheme: "https", Host: closed}}
	if _, err := d.DialContext(ctx, "tcp", "192.0.2.1:443"); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Errorf("https proxy: %v", err)
	}
	if _, err := (&Dialer{}).DialContext(ctx, "udp", closed); err == nil {
		t.Error("udp dialed")
	}
	if _, err := (&Dialer{}).DialContext(ctx, "tcp", closed); socksReplyCode(err) != socksConnRefused {
		t.Errorf("direct to a closed port: %v", err)
	}
}

// The errors a SOCKS5 proxy's reply becomes map back to the same reply code.
func TestSocksCodeRoundTrip(t *testing.T) {
	for code := byte(1); code <= 8; code++ {
		want := code
		if code != 3 && code != 4 && code != 5 && code != 6 {
			want = socksGeneralFailure
		}
		if got := socksReplyCode(socks5CodeError(code)); got != want {
			t.Errorf("code %d came back as %d", code, got)
		}
	}
}

func FuzzSocks5ProxyReply(f *testing.F) {
	f.Add([]byte("\x05\x00" + socks5Granted))
	f.Add([]byte("\x05\x02\x01\x00\x05\x00\x00\x03\x04host\x12\x34"))
	f.Add([]byte("\x05\x00\x05\x00\x00\x04" + strings.Repeat("\x00", 18)))
	f.Add([]byte("\x05\x00\x05\x05\x00\x01"))
	f.Add([]byte("\x05\x00\x05\x00\x00\x03\xff"))
	user := url.UserPassword("u", "p")
	f.Fuzz(func(t *testing.T, answer []byte) {
		for _, u := range []*url.Userinfo{nil, user} {
			r := bytes.NewReader(answer)
			err := socks5Connect(proxyAnswer(r), u, "example.com:80")
			// The shortest success: greeting answer 2, reply head 4, empty bound domain 1+0, port 2.
			if err == nil && r.Len() > len(answer)-9 {
				t.Fatalf("success after reading only %d bytes", len(answer)-r.Len())
			}
		}
		socks4aConnect(proxyAnswer(bytes.NewReader(answer)), nil, "example.com:80")
	})
}

func FuzzHTTPConnectReply(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\nstream"))
	f.Add([]byte("HTTP/1.0 407 Auth\nProxy-Authenticate: Basic\n\n"))
	f.Add([]byte("HTTP/1.1 200\r\nContent-Length: -1\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		r := bytes.NewReader(answer)
		err := httpConnect(proxyAnswer(r), url.User("u"), "192.0.2.1:443")
		head := answer[:len(answer)-r.Len()]
		if err == nil && !bytes.HasSuffix(head, []byte("\n\n")) && !bytes.HasSuffix(head, []byte("\n\r\n")) {
			t.Fatalf("success with head %q", head)
		}
		if len(head) > maxHTTPHead+1 {
			t.Fatalf("read %d bytes", len(head))
		}
	})
}
