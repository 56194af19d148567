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

// Extended ORPort protocol numbers (ext-orport-spec.txt; SAFE_COOKIE from proposal 217).
const (
	extOrAuthSafeCookie = 1
	extOrCmdDone        = 0x0000
	extOrCmdUserAddr    = 0x0001
	extOrCmdTransport   = 0x0002
	extOrReplyOkay      = 0x1000
	extOrReplyDeny      = 0x1001

	extOrCookieHeader = "! Extended ORPort Auth Cookie !\x0a"
	extOrServerLabel  = "ExtORPort authentication server-to-client hash"
	extOrClientLabel  = "ExtORPort authentication client-to-server hash"

	// extOrTimeout bounds DialOr: connecting, authenticating and the commands. tor is local
	// and answers at once; the bound only keeps a stuck tor from holding connections forever.
	extOrTimeout = 20 * time.Second
	// extOrMaxIgnored bounds the unknown commands skipped while waiting for OKAY or DENY.
	extOrMaxIgnored = 16
)

// DialOr connects to tor for one client connection. With an Extended ORPort
// (info.ExtendedOrAddr) it authenticates with SAFE_COOKIE, reading info.AuthCookieFile afresh
// (tor may rewrite it), then sends USERADDR clientAddr (omitted when empty), TRANSPORT
// methodName and DONE, and waits for OKAY. Without one it connects to info.OrAddr. The whole
// exchange runs within extOrTimeout; the returned connection has no deadline and carries the
// Tor stream.
func DialOr(info *ServerInfo, clientAddr, methodName string) (*net.TCPConn, error) {
	return dialOr(info, clientAddr, methodName, extOrTimeout)
}

// dialOr is DialOr with the time limit as a parameter, so that tests can use a short one.
func dialOr(info *ServerInfo, clientAddr, methodName string, timeout time.Duration) (*net.TCPConn, error) {
	if info.ExtendedOrAddr == nil {
		if info.OrAddr == nil {
			return nil, errors.New("pt: no ORPort to connect to")
		}
		return dialTCPTimeout(info.OrAddr, timeout)
	}
	cookie, err := readAuthCookie(info.AuthCookieFile)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	conn, err := dialTCPTimeout(info.ExtendedOrAddr, timeout)
	if err != nil {
		return nil, err
	}
	if err := extOrHandshake(conn, cookie, clientAddr, methodName, deadline); err != nil {
		conn.Close()
		return nil, fmt.Errorf("pt: Extended ORPort: %w", err)
	}
	return conn, nil
}

// extOrHandshake authenticates and sends the commands under deadline, cleared after.
func extOrHandshake(conn net.Conn, cookie []byte, clientAddr, methodName string, deadline time.Time) error {
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	if err := extOrAuth(conn, cookie); err != nil {
		return err
	}
	if err := extOrCommands(conn, clientAddr, methodName); err != nil {
		return err
	}
	return conn.SetDeadline(time.Time{})
}

// dialTCPTimeout connects to addr; a "tcp" dial always gives a *net.TCPConn.
func dialTCPTimeout(addr *net.TCPAddr, timeout time.Duration) (*net.TCPConn, error) {
	conn, err := net.DialTimeout("tcp", addr.String(), timeout)
	if err != nil {
		return nil, fmt.Errorf("pt: connecting to tor: %w", err)
	}
	return conn.(*net.TCPConn), nil
}

// readAuthCookie reads the 32-byte cookie from a cookie file: the 32-byte header, then the
// cookie, 64 bytes in all.
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

// extOrAuth runs SAFE_COOKIE authentication on rw.
func extOrAuth(rw io.ReadWriter, cookie []byte) error {
	// The auth types tor supports, one byte each, ending with 0.
	offered := false
	var b [1]byte
	for n := 0; ; n++ {
		if n > 255 {
			return errors.New("endless list of auth types")
		}
		if _, err := io.ReadFull(rw, b[:]); err != nil {
			return err
		}
		if b[0] == 0 {
			break
		}
		offered = offered || b[0] == extOrAuthSafeCookie
	}
	if !offered {
		return errors.New("tor does not offer SAFE_COOKIE authentication")
	}
	clientNonce := make([]byte, 32)
	if _, err := rand.Read(clientNonce); err != nil {
		return err
	}
	if _, err := rw.Write(append([]byte{extOrAuthSafeCookie}, clientNonce...)); err != nil {
		return err
	}
	reply := make([]byte, 64) // ServerHash ServerNonce
	if _, err := io.ReadFull(rw, reply); err != nil {
		return err
	}
	serverHash, serverNonce := reply[:32], reply[32:]
	if !hmac.Equal(serverHash, extOrHash(cookie, extOrServerLabel, clientNonce, serverNonce)) {
		return errors.New("wrong server hash: tor has another auth cookie")
	}
	if _, err := rw.Write(extOrHash(cookie, extOrClientLabel, clientNonce, serverNonce)); err != nil {
		return err
	}
	if _, err := io.ReadFull(rw, b[:]); err != nil {
		return err
	}
	if b[0] != 1 {
		return fmt.Errorf("authentication failed (status %d)", b[0])
	}
	return nil
}

// extOrCommands sends USERADDR (unless clientAddr is empty), TRANSPORT and DONE in one write,
// then reads tor's replies up to OKAY or DENY.
func extOrCommands(rw io.ReadWriter, clientAddr, methodName string) error {
	if len(clientAddr) > 0xffff || len(methodName) > 0xffff {
		return errors.New("command body too long")
	}
	var cmds []byte
	if clientAddr != "" {
		cmds = appendExtOrCommand(cmds, extOrCmdUserAddr, clientAddr)
	}
	cmds = appendExtOrCommand(cmds, extOrCmdTransport, methodName)
	cmds = appendExtOrCommand(cmds, extOrCmdDone, "")
	if _, err := rw.Write(cmds); err != nil {
		return err
	}
	return readExtOrReply(rw)
}

// appendExtOrCommand appends a command: u16 command, u16 body length, body (big-endian).
func appendExtOrCommand(b []byte, cmd uint16, body string) []byte {
	b = binary.BigEndian.AppendUint16(b, cmd)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// readExtOrReply reads replies until OKAY (nil) or DENY (an error), skipping a bounded number
// of unknown ones, which the spec says to ignore. It reads nothing past the final reply.
func readExtOrReply(r io.Reader) error {
	var hdr [4]byte
	for i := 0; i <= extOrMaxIgnored; i++ {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		cmd, n := binary.BigEndian.Uint16(hdr[:2]), binary.BigEndian.Uint16(hdr[2:])
		if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
			return err
		}
		switch cmd {
		case extOrReplyOkay:
			return nil
		case extOrReplyDeny:
			return errors.New("tor denied the connection")
		}
	}
	return errors.New("too many unknown replies")
}
