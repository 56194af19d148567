package pt

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

const (
	extOrCookieHeader = "! Extended ORPort Auth Cookie !\x0a"
	extOrServerLabel  = "ExtORPort authentication server-to-client hash"
	extOrClientLabel  = "ExtORPort authentication client-to-server hash"
	extOrSafeCookie   = 1 // the auth type
	// Commands and replies.
	extOrDone, extOrUserAddr, extOrTransport, extOrOkay, extOrDeny = 0x0000, 0x0001, 0x0002, 0x1000, 0x1001

	// extOrTimeout bounds all of DialOr: tor is local and answers at once unless it is stuck.
	extOrTimeout    = 20 * time.Second
	extOrMaxIgnored = 16 // unknown replies skipped while waiting for OKAY or DENY
)

// DialOr connects to tor for one client connection. With an Extended ORPort (info.ExtendedOrAddr)
// it authenticates with SAFE_COOKIE, reading info.AuthCookieFile afresh (tor may rewrite it), then
// sends USERADDR clientAddr (omitted when empty), TRANSPORT methodName and DONE, and waits for
// OKAY. Without one it connects to info.OrAddr. The whole exchange runs within extOrTimeout; the
// returned connection has no deadline and carries the Tor stream.
func DialOr(info *ServerInfo, clientAddr, methodName string) (*net.TCPConn, error) {
	return dialOr(info, clientAddr, methodName, extOrTimeout)
}

// dialOr is DialOr with the time limit as a parameter, so that tests can use a short one.
func dialOr(info *ServerInfo, clientAddr, methodName string, timeout time.Duration) (*net.TCPConn, error) {
	if info.ExtendedOrAddr == nil {
		if info.OrAddr == nil {
			return nil, errors.New("pt: no ORPort to connect to")
		}
		return dialTor(info, info.OrAddr, timeout)
	}
	cookie, err := readAuthCookie(info.AuthCookieFile)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	conn, err := dialTor(info, info.ExtendedOrAddr, timeout)
	if err != nil {
		return nil, err
	}
	w := &wire{rw: conn, err: conn.SetDeadline(deadline)}
	extOrAuth(w, cookie)
	extOrCommands(w, clientAddr, methodName)
	if w.err == nil {
		w.err = conn.SetDeadline(time.Time{})
	}
	if w.err != nil {
		conn.Close()
		return nil, fmt.Errorf("pt: Extended ORPort: %w", w.err)
	}
	return conn, nil
}

func dialTor(info *ServerInfo, addr *net.TCPAddr, timeout time.Duration) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: bindAddr(addr.IP, info.OutboundV4, info.OutboundV6),
		Control: Buffers(LocalBuffer)}
	conn, err := d.Dial("tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("pt: connecting to tor: %w", err)
	}
	return conn.(*net.TCPConn), nil // always, for "tcp"
}

// CheckAuthCookie reads an Extended ORPort cookie file as DialOr does, so that a program can
// tell at start that the file is missing, unreadable or malformed; the error names the file.
func CheckAuthCookie(path string) error {
	_, err := readAuthCookie(path)
	return err
}

// readAuthCookie reads the 32-byte cookie that follows the header in a cookie file.
func readAuthCookie(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pt: auth cookie: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 65))
	switch {
	case err != nil:
		return nil, fmt.Errorf("pt: auth cookie: %w", err)
	case len(b) != 64:
		return nil, fmt.Errorf("pt: auth cookie file %s has %d bytes, not 64", path, len(b))
	case string(b[:32]) != extOrCookieHeader:
		return nil, fmt.Errorf("pt: auth cookie file %s has a wrong header", path)
	}
	return b[32:], nil
}

// extOrHash is HMAC-SHA256(cookie, label | clientNonce | serverNonce).
func extOrHash(cookie []byte, label string, clientNonce, serverNonce []byte) []byte {
	h := hmac.New(sha256.New, cookie)
	h.Write([]byte(label))
	h.Write(clientNonce)
	h.Write(serverNonce)
	return h.Sum(nil)
}

// extOrAuth runs SAFE_COOKIE authentication.
func extOrAuth(w *wire, cookie []byte) {
	offered := false // tor sends the auth types it supports, one byte each, then 0
	for n, t := 0, w.u8(); t != 0; n, t = n+1, w.u8() {
		if n == 255 {
			w.failf("endless list of auth types")
			break
		}
		offered = offered || t == extOrSafeCookie
	}
	if !offered {
		w.failf("tor does not offer SAFE_COOKIE authentication")
	}
	clientNonce := make([]byte, 32)
	if _, err := rand.Read(clientNonce); err != nil {
		w.failf("%w", err)
	}
	w.write(append([]byte{extOrSafeCookie}, clientNonce...)...)
	serverHash, serverNonce := w.read(32), w.read(32)
	if !hmac.Equal(serverHash, extOrHash(cookie, extOrServerLabel, clientNonce, serverNonce)) {
		w.failf("wrong server hash: tor has another auth cookie")
	}
	w.write(extOrHash(cookie, extOrClientLabel, clientNonce, serverNonce)...)
	if status := w.u8(); status != 1 {
		w.failf("authentication failed (status %d)", status)
	}
}

// extOrCommands sends DialOr's commands in one write, then reads tor's replies until OKAY or
// DENY (an error), skipping a bounded number of unknown ones, which the spec says to ignore. It
// reads nothing past the final reply.
func extOrCommands(w *wire, clientAddr, methodName string) {
	if len(clientAddr) > 0xffff || len(methodName) > 0xffff {
		w.failf("command body too long")
	}
	var cmds []byte
	if clientAddr != "" {
		cmds = appendExtOrCommand(cmds, extOrUserAddr, clientAddr)
	}
	cmds = appendExtOrCommand(cmds, extOrTransport, methodName)
	cmds = appendExtOrCommand(cmds, extOrDone, "")
	w.write(cmds...)
	for i := 0; i <= extOrMaxIgnored && w.err == nil; i++ {
		hdr := w.read(4) // u16 command, u16 length
		cmd := binary.BigEndian.Uint16(hdr)
		w.read(int(binary.BigEndian.Uint16(hdr[2:]))) // a body, ignored
		if w.err == nil && cmd == extOrOkay {
			return
		}
		if cmd == extOrDeny {
			w.failf("tor denied the connection")
		}
	}
	w.failf("too many unknown replies")
}

// appendExtOrCommand appends a command: u16 command, u16 body length, body (big-endian).
func appendExtOrCommand(b []byte, cmd uint16, body string) []byte {
	b = binary.BigEndian.AppendUint16(b, cmd)
	return append(binary.BigEndian.AppendUint16(b, uint16(len(body))), body...)
}
