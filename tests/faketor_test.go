package tests

// A fake tor: it runs the programs as tor does (environment, stdout lines, stdin), speaks SOCKS5
// to websocket-client with per-bridge arguments, and plays the Extended ORPort behind
// websocket-server.

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const waitLong = 20 * time.Second // generous: tests run with -race on a loaded machine

// proc is a running program.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	addr   string // from the CMETHOD or SMETHOD line; "" if none
	done   chan struct{}
	unsafe bool

	mu     sync.Mutex
	stdout []string // every line
	stderr bytes.Buffer
}

// protocolLine matches what a PT may write on stdout (pt-spec 3.3).
var protocolLine = regexp.MustCompile(`^(VERSION|VERSION-ERROR|ENV-ERROR|CMETHOD|CMETHOD-ERROR|CMETHODS|SMETHOD|SMETHOD-ERROR|SMETHODS|PROXY|PROXY-ERROR|LOG|STATUS) `)

// ownAddr matches the only address a program logs without -unsafe-logging: its own listener's.
var ownAddr = regexp.MustCompile(`listening on (?:127\.0\.0\.\d+|\[::1\]):\d+`)

// startProc runs a program with exactly env (no inherited environment). In managed mode it
// waits until the program has printed CMETHODS DONE / SMETHODS DONE, or an error line, or has
// exited. The cleanup kills it and checks its output: only protocol lines on stdout, no host
// name in any log line, and no address but its own listener's unless -unsafe-logging was given.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	return startCommand(t, exec.Command(program(name), args...), env)
}

// startCommand is startProc for any command that runs one of the programs (under wine, say).
func startCommand(t *testing.T, cmd *exec.Cmd, env []string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: cmd, done: make(chan struct{})}
	for _, a := range cmd.Args {
		p.unsafe = p.unsafe || a == "-unsafe-logging"
	}
	p.cmd.Env = env
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		s := bufio.NewScanner(stdout)
		r := ready
		for s.Scan() {
			line := s.Text()
			p.mu.Lock()
			p.stdout = append(p.stdout, line)
			p.mu.Unlock()
			f := strings.Fields(line)
			switch {
			case len(f) >= 4 && f[0] == "CMETHOD":
				p.addr = f[3]
			case len(f) >= 3 && f[0] == "SMETHOD":
				p.addr = f[2]
			}
			if r != nil && regexp.MustCompile(`^(CMETHODS DONE|SMETHODS DONE|ENV-ERROR|VERSION-ERROR)`).MatchString(line) {
				close(r)
				r = nil
			}
		}
		p.cmd.Wait() // after stdout is drained, as exec requires
		if r != nil {
			close(r)
		}
		close(p.done)
	}()
	t.Cleanup(p.cleanup)
	if len(env) == 0 {
		return p
	}
	select {
	case <-ready:
	case <-time.After(waitLong):
		t.Fatalf("%s did not finish its setup", cmd)
	}
	return p
}

func (p *proc) cleanup() {
	p.cmd.Process.Kill()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	logs := p.stderr.String()
	for _, line := range p.stdout {
		if !protocolLine.MatchString(line) {
			p.t.Errorf("stdout line outside the PT protocol: %q", line)
		}
		if strings.HasPrefix(line, "LOG ") {
			logs += line + "\n"
		}
	}
	logs = ownAddr.ReplaceAllString(logs, "listening on (own address)")
	if !p.unsafe && (strings.Contains(logs, "127.0.0.1") || strings.Contains(logs, "[::1]")) {
		p.t.Errorf("an address appears in the logs:\n%s", logs)
	}
	if strings.Contains(logs, ".example") { // the tests' bridge and front names
		p.t.Errorf("a host name appears in the logs:\n%s", logs)
	}
}

// output returns everything logged so far: stdout lines and stderr.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.stdout, "\n") + "\n" + p.stderr.String()
}

// waitOutput waits until s appears in the program's output.
func (p *proc) waitOutput(s string) bool {
	for deadline := time.Now().Add(waitLong); !strings.Contains(p.output(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// wait waits for the program to exit and returns its exit code.
func (p *proc) wait(limit time.Duration) (int, error) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), nil
	case <-time.After(limit):
		return -1, fmt.Errorf("still running after %v", limit)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// clientEnv is the environment tor gives a client PT.
func clientEnv(t *testing.T, extra ...string) []string {
	return append([]string{
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_STATE_LOCATION=" + filepath.Join(t.TempDir(), "state"),
		"TOR_PT_CLIENT_TRANSPORTS=websocket",
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
	}, extra...)
}

// serverEnv is the environment tor gives a server PT in front of the fake Extended ORPort or.
func serverEnv(t *testing.T, or *extOR, extra ...string) []string {
	return append([]string{
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_STATE_LOCATION=" + filepath.Join(t.TempDir(), "state"),
		"TOR_PT_SERVER_TRANSPORTS=websocket",
		"TOR_PT_SERVER_BINDADDR=websocket-127.0.0.1:0",
		"TOR_PT_ORPORT=" + closedAddr(t),
		"TOR_PT_EXTENDED_SERVER_PORT=" + or.ln.Addr().String(),
		"TOR_PT_AUTH_COOKIE_FILE=" + or.cookieFile,
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
	}, extra...)
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// socks5 connects to a SOCKS5 server as tor does: the per-bridge arguments in the RFC 1929
// username, a password of one NUL byte. It returns the connection and the reply code.
func socks5(t *testing.T, proxy, target, args string) (net.Conn, byte) {
	t.Helper()
	conn, answer := socks5Send(t, proxy, target, args)
	return conn, socks5Reply(t, conn, answer)
}

// socks5Send connects and sends the whole SOCKS5 request at once (see socks5); it returns the
// connection and the method/auth answer to expect before the reply.
func socks5Send(t *testing.T, proxy, target, args string) (net.Conn, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	return socks5Over(t, conn, target, args)
}

// socks5Over is socks5Send over conn, a connection to the SOCKS server.
func socks5Over(t *testing.T, conn net.Conn, target, args string) (net.Conn, []byte) {
	t.Helper()
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(waitLong))
	host, portStr, _ := net.SplitHostPort(target)
	port, _ := strconv.Atoi(portStr)
	ip := net.ParseIP(host).To4()
	// Greeting: version 5, one method: 2 (username/password), or 0 (none) without arguments;
	// then RFC 1929: version 1, ULEN, UNAME, PLEN 1, PASSWD "\x00".
	req, answer := []byte{5, 1, 0}, []byte{5, 0}
	if args != "" {
		req = append([]byte{5, 1, 2, 1, byte(len(args))}, args...)
		req, answer = append(req, 1, 0), []byte{5, 2, 1, 0}
	}
	// Request: version 5, CONNECT, reserved, ATYP 1 (IPv4), address, port.
	req = append(append(req, 5, 1, 0, 1), ip...)
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	return conn, answer
}

// socks5Reply reads the method/auth answer and the reply to a request sent by socks5Send.
func socks5Reply(t *testing.T, conn net.Conn, answer []byte) byte {
	t.Helper()
	conn.SetDeadline(time.Now().Add(waitLong))
	// Method choice and auth status, then the reply: 5 REP 0 ATYP=1 BND.ADDR(4) BND.PORT(2).
	resp := make([]byte, len(answer)+10)
	if _, err := io.ReadFull(conn, resp[:len(answer)]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp[:len(answer)], answer) {
		t.Fatalf("SOCKS method/auth answer % x", resp[:len(answer)])
	}
	resp = resp[len(answer):]
	if _, err := io.ReadFull(conn, resp); err != nil {
		t.Fatalf("SOCKS reply: %v", err)
	}
	conn.SetDeadline(time.Time{})
	return resp[1]
}

// extOR is a fake Extended ORPort (ext-orport-spec, SAFE_COOKIE).
type extOR struct {
	ln         net.Listener
	cookieFile string
	cookie     []byte
	conns      chan *orConn // authenticated connections
}

// orConn is one connection that completed the Extended ORPort exchange.
type orConn struct {
	*net.TCPConn
	userAddr, transport string
}

func newExtOR(t *testing.T) *extOR {
	o := &extOR{cookieFile: filepath.Join(t.TempDir(), "extended_orport_auth_cookie"),
		cookie: make([]byte, 32), conns: make(chan *orConn, 16)}
	rand.Read(o.cookie)
	if err := os.WriteFile(o.cookieFile, append([]byte("! Extended ORPort Auth Cookie !\x0a"), o.cookie...), 0o600); err != nil {
		t.Fatal(err)
	}
	o.ln = serveLoopback(t, func(c net.Conn) {
		oc, err := o.handshake(c.(*net.TCPConn))
		if err != nil {
			t.Errorf("fake Extended ORPort: %v", err)
			c.Close()
			return
		}
		o.conns <- oc
	})
	return o
}

// serveLoopback listens on a loopback port until the test ends, and runs handle in a goroutine
// for each connection.
func serveLoopback(t *testing.T, handle func(net.Conn)) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln
}

func (o *extOR) handshake(c *net.TCPConn) (*orConn, error) {
	c.SetDeadline(time.Now().Add(waitLong))
	defer c.SetDeadline(time.Time{})
	// Auth types: 1 (SAFE_COOKIE), end of list 0.
	if _, err := c.Write([]byte{1, 0}); err != nil {
		return nil, err
	}
	// Chosen type (1 byte) and ClientNonce (32).
	buf := make([]byte, 1+32)
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, err
	}
	if buf[0] != 1 {
		return nil, fmt.Errorf("auth type %d", buf[0])
	}
	clientNonce, serverNonce := buf[1:], make([]byte, 32)
	rand.Read(serverNonce)
	mac := func(label string) []byte {
		h := hmac.New(sha256.New, o.cookie)
		h.Write([]byte("ExtORPort authentication " + label))
		h.Write(clientNonce)
		h.Write(serverNonce)
		return h.Sum(nil)
	}
	// ServerHash (32) and ServerNonce (32); then ClientHash (32) comes back.
	if _, err := c.Write(append(mac("server-to-client hash"), serverNonce...)); err != nil {
		return nil, err
	}
	clientHash := make([]byte, 32)
	if _, err := io.ReadFull(c, clientHash); err != nil {
		return nil, err
	}
	if !hmac.Equal(clientHash, mac("client-to-server hash")) {
		c.Write([]byte{0})
		return nil, errors.New("wrong ClientHash")
	}
	c.Write([]byte{1})
	oc := &orConn{TCPConn: c}
	for {
		// Command: u16 type, u16 length, body.
		var h [4]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return nil, err
		}
		body := make([]byte, binary.BigEndian.Uint16(h[2:]))
		if _, err := io.ReadFull(c, body); err != nil {
			return nil, err
		}
		switch binary.BigEndian.Uint16(h[:2]) {
		case 0x0000: // DONE → OKAY
			_, err := c.Write([]byte{0x10, 0x00, 0, 0})
			return oc, err
		case 0x0001:
			oc.userAddr = string(body)
		case 0x0002:
			oc.transport = string(body)
		}
	}
}

// next returns the next authenticated connection.
func (o *extOR) next(t *testing.T) *orConn {
	t.Helper()
	select {
	case c := <-o.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(waitLong):
		t.Fatal("no connection reached the Extended ORPort")
		return nil
	}
}

// tunnel starts a fake ExtORPort, websocket-server and websocket-client in managed mode.
func tunnel(t *testing.T, serverArgs ...string) (or *extOR, server, client *proc) {
	or = newExtOR(t)
	server = startProc(t, "websocket-server", serverEnv(t, or), append([]string{"-log-level", "debug"}, serverArgs...)...)
	client = startProc(t, "websocket-client", clientEnv(t), "-log-level", "debug")
	if server.addr == "" || client.addr == "" {
		t.Fatalf("no method line:\n%s\n%s", server.output(), client.output())
	}
	return or, server, client
}
