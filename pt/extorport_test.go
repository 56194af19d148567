package pt

import (
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestExtOrHashVectors(t *testing.T) {
	zero := make([]byte, 32) // cookie, client nonce and server nonce: 32 zero bytes each
	for _, tc := range []struct{ label, want string }{
		{extOrServerLabel, "9e221919982a84f75faf60ef926949796268c97833e06960ff265369a90fd6d8"},
		{extOrClientLabel, "0f368b1bee24aabc54a9114ce06c070f3ed99d0d368f599ccc6dfdc8bf457a62"},
	} {
		if got := hex.EncodeToString(extOrHash(zero, tc.label, zero, zero)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.label, got, tc.want)
		}
	}
}

// torSide plays tor's part of the Extended ORPort protocol on one connection and checks every
// byte the PT sends.
type torSide struct {
	cookie    []byte // tor's cookie
	authTypes string // the auth types offered, with the final 0
	status    byte   // authentication result sent to the PT
	wantCmds  string // the commands the PT must send
	reply     string // what tor answers to them
}

func (s torSide) serve(conn net.Conn) error {
	if _, err := io.WriteString(conn, s.authTypes); err != nil {
		return err
	}
	msg := make([]byte, 1+32) // auth type, ClientNonce
	if _, err := io.ReadFull(conn, msg); err != nil {
		return err
	}
	if msg[0] != 1 {
		return fmt.Errorf("auth type %d, want SAFE_COOKIE", msg[0])
	}
	clientNonce, serverNonce := msg[1:], bytes.Repeat([]byte{0xa5}, 32)
	serverHash := extOrHash(s.cookie, extOrServerLabel, clientNonce, serverNonce)
	if _, err := conn.Write(append(serverHash, serverNonce...)); err != nil {
		return err
	}
	clientHash := make([]byte, 32)
	if _, err := io.ReadFull(conn, clientHash); err != nil {
		return err
	}
	if !hmac.Equal(clientHash, extOrHash(s.cookie, extOrClientLabel, clientNonce, serverNonce)) {
		conn.Write([]byte{0})
		return errors.New("wrong ClientHash")
	}
	if _, err := conn.Write([]byte{s.status}); err != nil || s.status != 1 {
		return err
	}
	cmds := make([]byte, len(s.wantCmds))
	if _, err := io.ReadFull(conn, cmds); err != nil {
		return err
	}
	if string(cmds) != s.wantCmds {
		return fmt.Errorf("commands % x, want % x", cmds, s.wantCmds)
	}
	if _, err := io.WriteString(conn, s.reply); err != nil || !strings.HasSuffix(s.reply, "\x10\x00\x00\x00") {
		return err
	}
	return pong(conn)
}

// pong plays the far end of a stream: it expects "ping" and the half-close, and answers "pong".
func pong(conn net.Conn) error {
	data, err := io.ReadAll(conn)
	if err != nil || string(data) != "ping" {
		return fmt.Errorf("stream read %q, %v", data, err)
	}
	_, err = io.WriteString(conn, "pong")
	return err
}

// fakePeer listens on loopback and runs serve on each connection, sending its result on the
// channel.
func fakePeer(t *testing.T, serve func(net.Conn) error) (*net.TCPAddr, <-chan error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	results := make(chan error, 10)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				results <- serve(conn)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr), results
}

// writeCookie writes a cookie file with the header and cookie c.
func writeCookie(t *testing.T, path string, c []byte) {
	if err := os.WriteFile(path, append([]byte(extOrCookieHeader), c...), 0o600); err != nil {
		t.Fatal(err)
	}
}

var (
	cookieA = bytes.Repeat([]byte{'A'}, 32)
	cookieB = bytes.Repeat([]byte{'B'}, 32)
)

const (
	cmdsV4 = "\x00\x01\x00\x10203.0.113.5:4321" + // USERADDR, length 16, address
		"\x00\x02\x00\x09websocket" + // TRANSPORT, length 9, method name
		"\x00\x00\x00\x00" // DONE, length 0
	okay = "\x10\x00\x00\x00" // OKAY, length 0
)

// pingPong checks the Tor stream after the handshake: data both ways and CloseWrite.
func pingPong(t *testing.T, conn *net.TCPConn) {
	t.Helper()
	if _, err := io.WriteString(conn, "ping"); err != nil {
		t.Fatal(err)
	}
	if err := conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if data, err := io.ReadAll(conn); err != nil || string(data) != "pong" {
		t.Fatalf("stream read %q, %v", data, err)
	}
}

// dialOrCheck runs DialOr and, when it succeeds, checks the stream. It returns DialOr's error
// and the result of tor's side, which a failed dial (loopback down) never reaches.
func dialOrCheck(t *testing.T, info *ServerInfo, clientAddr string, torResult <-chan error) (dialErr, torErr error) {
	t.Helper()
	conn, err := DialOr(info, clientAddr, "websocket")
	if opErr := (*net.OpError)(nil); errors.As(err, &opErr) && opErr.Op == "dial" {
		t.Fatalf("cannot reach the fake Extended ORPort: %v", err)
	}
	if err == nil {
		pingPong(t, conn)
		conn.Close()
	}
	return err, received(t, torResult)
}

func TestDialOrExtended(t *testing.T) {
	cases := []struct {
		name       string
		clientAddr string
		tor        torSide
		wantErr    string // "" for success
		torErr     bool   // tor's side sees an error (the PT hung up)
	}{
		{"okay", "203.0.113.5:4321", torSide{cookieA, "\x01\x00", 1, cmdsV4, okay}, "", false},
		{"several auth types", "203.0.113.5:4321", torSide{cookieA, "\x07\x01\x02\x00", 1, cmdsV4, okay}, "", false},
		{"IPv6 client", "[2001:db8::1]:5678", torSide{cookieA, "\x01\x00", 1,
			"\x00\x01\x00\x12[2001:db8::1]:5678" + // USERADDR, length 18
				"\x00\x02\x00\x09websocket\x00\x00\x00\x00", okay}, "", false},
		{"no client address", "", torSide{cookieA, "\x01\x00", 1,
			"\x00\x02\x00\x09websocket\x00\x00\x00\x00", okay}, "", false}, // TRANSPORT, DONE only
		{"unknown replies ignored", "203.0.113.5:4321", torSide{cookieA, "\x01\x00", 1, cmdsV4,
			"\x77\x77\x00\x03xyz" + // unknown command 0x7777, length 3
				"\x00\x03\x00\x00" + // unknown command 3, empty
				okay}, "", false},
		{"wrong cookie", "203.0.113.5:4321", torSide{cookieB, "\x01\x00", 1, cmdsV4, okay}, "wrong server hash", true},
		{"auth failed", "203.0.113.5:4321", torSide{cookieA, "\x01\x00", 0, cmdsV4, okay}, "authentication failed", false},
		{"deny", "203.0.113.5:4321", torSide{cookieA, "\x01\x00", 1, cmdsV4, "\x10\x01\x00\x00"}, "denied", false},
		{"no SAFE_COOKIE", "203.0.113.5:4321", torSide{cookieA, "\x02\x00", 1, cmdsV4, okay}, "SAFE_COOKIE", true},
		{"endless auth types", "203.0.113.5:4321", torSide{cookieA, strings.Repeat("\x01", 300), 1, cmdsV4, okay}, "endless", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cookie")
			writeCookie(t, path, cookieA)
			addr, torResult := fakePeer(t, tc.tor.serve)
			info := &ServerInfo{ExtendedOrAddr: addr, AuthCookieFile: path}
			err, torErr := dialOrCheck(t, info, tc.clientAddr, torResult)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("got %v, want an error with %q", err, tc.wantErr)
			}
			if (torErr != nil) != tc.torErr {
				t.Errorf("tor's side: %v", torErr)
			}
		})
	}
}

// The PT hangs up on a wrong server hash without sending its ClientHash.
func TestDialOrWrongCookieSendsNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cookie")
	writeCookie(t, path, cookieA)
	addr, torResult := fakePeer(t, torSide{cookieB, "\x01\x00", 1, cmdsV4, okay}.serve)
	if _, err := DialOr(&ServerInfo{ExtendedOrAddr: addr, AuthCookieFile: path}, "", "websocket"); err == nil {
		t.Fatal("no error")
	}
	if err := received(t, torResult); err != io.EOF {
		t.Fatalf("tor read %v after the server hash, want EOF", err)
	}
}

func TestDialOrTooManyUnknownReplies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cookie")
	writeCookie(t, path, cookieA)
	for _, n := range []int{extOrMaxIgnored, extOrMaxIgnored + 1} {
		reply := strings.Repeat("\x00\x03\x00\x00", n) + okay // n unknown commands, then OKAY
		addr, torResult := fakePeer(t, torSide{cookieA, "\x01\x00", 1, cmdsV4, reply}.serve)
		info := &ServerInfo{ExtendedOrAddr: addr, AuthCookieFile: path}
		err, torErr := dialOrCheck(t, info, "203.0.113.5:4321", torResult)
		if n > extOrMaxIgnored && err == nil || n <= extOrMaxIgnored && (err != nil || torErr != nil) {
			t.Errorf("%d unknown replies: %v; tor: %v", n, err, torErr)
		}
	}
}

// A tor that says nothing meets the deadline; the seam is dialOr's timeout parameter.
func TestDialOrSilentTor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cookie")
	writeCookie(t, path, cookieA)
	addr, torResult := fakePeer(t, func(conn net.Conn) error {
		_, err := io.Copy(io.Discard, conn) // until the PT gives up
		return err
	})
	_, err := dialOr(&ServerInfo{ExtendedOrAddr: addr, AuthCookieFile: path}, "", "websocket", 200*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	if err := received(t, torResult); err != nil {
		t.Fatal(err)
	}
}

// The cookie file is read at each connection: tor may rewrite it.
func TestDialOrRereadsCookie(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cookie")
	for _, c := range [][]byte{cookieA, cookieB} {
		writeCookie(t, path, c)
		addr, torResult := fakePeer(t, torSide{c, "\x01\x00", 1, cmdsV4, okay}.serve)
		info := &ServerInfo{ExtendedOrAddr: addr, AuthCookieFile: path}
		if err, torErr := dialOrCheck(t, info, "203.0.113.5:4321", torResult); err != nil || torErr != nil {
			t.Fatalf("%v; tor: %v", err, torErr)
		}
	}
}

func TestDialOrBadCookieFile(t *testing.T) {
	dir := t.TempDir()
	header := extOrCookieHeader
	files := map[string]string{
		"short":      header + strings.Repeat("c", 31),
		"long":       header + strings.Repeat("c", 33),
		"bad header": strings.Replace(header, "!", "?", 1) + strings.Repeat("c", 32),
		"empty":      "",
	}
	// No connection may be made: the listener must see none.
	addr, torResult := fakePeer(t, func(net.Conn) error { return errors.New("connected") })
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := DialOr(&ServerInfo{ExtendedOrAddr: addr, AuthCookieFile: path}, "", "websocket"); err == nil {
			t.Errorf("%s cookie file accepted", name)
		}
		if err := CheckAuthCookie(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("CheckAuthCookie, %s cookie file: %v; want an error naming the file", name, err)
		}
	}
	missing := filepath.Join(dir, "missing")
	if _, err := DialOr(&ServerInfo{ExtendedOrAddr: addr, AuthCookieFile: missing}, "", "websocket"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing cookie file: %v", err)
	}
	if err := CheckAuthCookie(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("CheckAuthCookie, missing cookie file: %v; want ErrNotExist naming the file", err)
	}
	select {
	case err := <-torResult:
		t.Fatal(err)
	default:
	}
}

func TestCheckAuthCookie(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cookie")
	if err := os.WriteFile(path, []byte(extOrCookieHeader+strings.Repeat("c", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckAuthCookie(path); err != nil {
		t.Errorf("a good cookie file: %v", err)
	}
}

// Without an Extended ORPort the connection goes to the ORPort and carries only the stream.
func TestDialOrPlain(t *testing.T) {
	addr, torResult := fakePeer(t, pong) // the ORPort: nothing but the stream
	if err, torErr := dialOrCheck(t, &ServerInfo{OrAddr: addr}, "203.0.113.5:4321", torResult); err != nil || torErr != nil {
		t.Fatalf("%v; tor: %v", err, torErr)
	}
	if _, err := DialOr(&ServerInfo{}, "", "websocket"); err == nil {
		t.Fatal("no error without any ORPort")
	}
	path := filepath.Join(t.TempDir(), "cookie")
	writeCookie(t, path, cookieA)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().(*net.TCPAddr)
	ln.Close()
	if _, err := DialOr(&ServerInfo{ExtendedOrAddr: closed, AuthCookieFile: path}, "", "websocket"); socksReplyCode(err) != socksConnRefused {
		t.Fatalf("Extended ORPort down: %v", err)
	}
	addr, torResult = fakePeer(t, torSide{cookieA, "\x01\x00", 1, "", okay}.serve)
	if _, err := DialOr(&ServerInfo{ExtendedOrAddr: addr, AuthCookieFile: path}, "", strings.Repeat("w", 1<<16)); err == nil {
		t.Fatal("a 64 KiB transport name was sent")
	}
	received(t, torResult)
}

// extOrReplies runs extOrCommands against a tor that answers with r, and returns its error.
func extOrReplies(r io.Reader) error {
	w := &wire{rw: proxyAnswer(r)}
	extOrCommands(w, "", "websocket")
	return w.err
}

func TestReadExtOrReply(t *testing.T) {
	const trailer = "STREAM" // the Tor stream after the final reply: must stay unread
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"okay", "\x10\x00\x00\x00", true},
		{"okay with a body", "\x10\x00\x00\x02ab", true}, // OKAY, length 2: the body is skipped
		{"deny", "\x10\x01\x00\x00", false},
		{"unknown then okay", "\x00\x09\x00\x01z" + "\x10\x00\x00\x00", true},
		{"unknown then deny", "\xff\xff\x00\x00" + "\x10\x01\x00\x00", false},
	}
	for _, tc := range cases {
		for _, wrap := range []func(io.Reader) io.Reader{iotest.OneByteReader, iotest.HalfReader} {
			src := strings.NewReader(tc.in + trailer)
			err := extOrReplies(wrap(src))
			if (err == nil) != tc.ok {
				t.Errorf("%s: %v", tc.name, err)
			}
			if tc.ok && src.Len() != len(trailer) {
				t.Errorf("%s: %d stream bytes consumed", tc.name, len(trailer)-src.Len())
			}
		}
		for n := 0; n < len(tc.in); n++ { // every truncation is an error
			if err := extOrReplies(strings.NewReader(tc.in[:n])); err == nil {
				t.Errorf("%s truncated to %d bytes: no error", tc.name, n)
			}
		}
	}
}

func FuzzExtORPortReply(f *testing.F) {
	f.Add([]byte("\x10\x00\x00\x00"))
	f.Add([]byte("\x10\x01\x00\x00"))
	f.Add([]byte("\x77\x77\x00\x03xyz\x10\x00\x00\x00"))
	f.Add([]byte("\x00\x01\xff\xff"))
	f.Add([]byte("\x01\x00" + strings.Repeat("\x00", 64) + "\x01"))
	f.Fuzz(func(t *testing.T, in []byte) {
		extOrReplies(bytes.NewReader(in))
		// The same bytes as tor's side of the authentication.
		var sent bytes.Buffer
		w := &wire{rw: struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(in), &sent}}
		if extOrAuth(w, cookieA); w.err == nil {
			t.Fatal("authenticated without knowing the cookie")
		}
		if sent.Len() > 1+32+32 {
			t.Fatalf("sent %d bytes", sent.Len())
		}
	})
}
