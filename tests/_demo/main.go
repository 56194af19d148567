// Command demo shows the websocket pluggable transport at work on this machine, without tor:
//
//	SOCKS client ─ websocket-client ─ (WebSocket, through a tap) ─ websocket-server ─ echo server
//
// It sends random bytes through the tunnel and back, checks them by SHA-256, and prints what
// happened: bytes, time, throughput, and the shape of the WebSocket frames the tap saw. It is
// what "make demo" runs after "make build"; it is not part of the product.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/pt"
)

func main() {
	bin := flag.String("bin", "bin", "directory holding websocket-client and websocket-server")
	size := flag.Int64("size", 32<<20, "bytes to send each way")
	flag.Parse()
	if err := run(*bin, *size); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run(bin string, size int64) error {
	echo, err := serve(func(c net.Conn) { io.Copy(c, c); c.(*net.TCPConn).CloseWrite() })
	if err != nil {
		return err
	}
	serverAddr, clientAddr := freeAddr(), freeAddr()
	server, err := start(filepath.Join(bin, "websocket-server"), serverAddr, "-listen", serverAddr, "-orport", echo)
	if err != nil {
		return err
	}
	defer server.stop()
	taps := [2]*tap{{name: "client → server"}, {name: "server → client"}}
	tapAddr, err := serve(func(c net.Conn) { relayWithTap(c, serverAddr, taps) })
	if err != nil {
		return err
	}
	client, err := start(filepath.Join(bin, "websocket-client"), clientAddr, "-listen", clientAddr)
	if err != nil {
		return err
	}
	defer client.stop()

	fmt.Printf("websocket demo, all on this machine, no tor needed:\n  SOCKS client → websocket-client %s → tap %s → websocket-server %s → echo server %s\n",
		clientAddr, tapAddr, serverAddr, echo)
	// Like tor: a SOCKS5 request to websocket-client for the bridge's address (here the tap).
	dialer := &pt.Dialer{ProxyURL: &url.URL{Scheme: "socks5", Host: clientAddr}, Timeout: 10 * time.Second}
	conn, err := dialer.DialContext(context.Background(), "tcp", tapAddr)
	if err != nil {
		return fmt.Errorf("SOCKS connection through websocket-client: %w", err)
	}
	defer conn.Close()

	start := time.Now()
	sent := make(chan []byte, 1)
	go func() {
		h := sha256.New()
		io.Copy(conn, io.TeeReader(io.LimitReader(rand.Reader, size), h))
		conn.(interface{ CloseWrite() error }).CloseWrite()
		sent <- h.Sum(nil)
	}()
	h := sha256.New()
	n, err := io.Copy(h, conn)
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	want, got := <-sent, h.Sum(nil)
	if n != size || !bytes.Equal(want, got) {
		return fmt.Errorf("sent %d bytes (SHA-256 %x), got %d back (SHA-256 %x)", size, want, n, got)
	}
	fmt.Printf("sent %s of random bytes through the tunnel while the echo came back: all intact (SHA-256 %x…)\n",
		size1(size), got[:8])
	fmt.Printf("took %.2f s: %.1f MiB/s each way\nWebSocket frames seen by the tap:\n", elapsed.Seconds(),
		float64(size)/(1<<20)/elapsed.Seconds())
	conn.Close()
	time.Sleep(200 * time.Millisecond) // let the closing handshake reach the tap
	for _, t := range taps {
		fmt.Println(" ", t)
	}
	var stops []string
	for _, p := range []*proc{client, server} {
		d, err := p.stop()
		if err != nil {
			return err
		}
		stops = append(stops, fmt.Sprintf("%s in %v", filepath.Base(p.cmd.Path), d.Round(time.Millisecond)))
	}
	fmt.Printf("stopped with SIGTERM: %s (exit status 0)\n", strings.Join(stops, ", "))
	return nil
}

// size1 writes a byte count for people.
func size1(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// serve listens on a loopback port and runs handle for each connection in a goroutine.
func serve(handle func(net.Conn)) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return ln.Addr().String(), nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is one of the programs, run in standalone mode.
type proc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan error
	once   sync.Once
}

// start runs a program and waits until it accepts connections on addr.
func start(path, addr string, args ...string) (*proc, error) {
	p := &proc{cmd: exec.Command(path, args...), done: make(chan error, 1)}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%v (run \"make build\" first)", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p, nil
		}
	}
	p.stop()
	return nil, fmt.Errorf("%s did not start listening:\n%s", path, p.stderr.String())
}

// stop sends SIGTERM and waits for the exit; it returns how long that took.
func (p *proc) stop() (d time.Duration, err error) {
	p.once.Do(func() {
		start := time.Now()
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			err = errors.New("no exit 10 s after SIGTERM")
		}
		d = time.Since(start)
		if err != nil {
			err = fmt.Errorf("%s: %v\n%s", filepath.Base(p.cmd.Path), err, p.stderr.String())
		}
	})
	return d, err
}

// relayWithTap connects c to addr and copies both ways, showing each direction to a tap.
func relayWithTap(c net.Conn, addr string, taps [2]*tap) {
	s, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer s.Close()
	var wg sync.WaitGroup
	for i, pair := range [2][2]net.Conn{{s, c}, {c, s}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr, pw := io.Pipe()
			go taps[i].parse(pr)
			io.Copy(io.MultiWriter(pair[0], pw), pair[1])
			pw.Close()
			pair[0].(*net.TCPConn).CloseWrite()
		}()
	}
	wg.Wait()
}

// tap counts the WebSocket frames of one direction, by opcode.
type tap struct {
	name   string
	mu     sync.Mutex
	masked int
	frames map[byte]*frameStats
}

type frameStats struct{ count, bytes, min, max int64 }

var opNames = map[byte]string{0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}

// parse skips the HTTP handshake, then reads frame headers (RFC 6455 section 5.2) and skips
// their payloads.
func (t *tap) parse(r io.Reader) {
	defer io.Copy(io.Discard, r)
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if line == "\r\n" {
			break
		}
	}
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		n := int64(h[1] & 0x7F)
		ext := map[int64]int{126: 2, 127: 8}[n]
		if ext > 0 {
			b := make([]byte, 8)
			if _, err := io.ReadFull(br, b[8-ext:]); err != nil {
				return
			}
			n = int64(binary.BigEndian.Uint64(b))
		}
		masked := h[1]&0x80 != 0
		if masked {
			n += 4 // the masking key
		}
		if _, err := io.CopyN(io.Discard, br, n); err != nil {
			return
		}
		if masked {
			n -= 4
		}
		t.add(h[0]&0x0F, n, masked)
	}
}

func (t *tap) add(op byte, n int64, masked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.frames == nil {
		t.frames = map[byte]*frameStats{}
	}
	s := t.frames[op]
	if s == nil {
		s = &frameStats{min: n}
		t.frames[op] = s
	}
	s.count++
	s.bytes += n
	s.min, s.max = min(s.min, n), max(s.max, n)
	if masked {
		t.masked++
	}
}

func (t *tap) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ops []int
	for op := range t.frames {
		ops = append(ops, int(op))
	}
	sort.Ints(ops)
	var parts []string
	total := int64(0)
	for _, op := range ops {
		s := t.frames[byte(op)]
		total += s.count
		parts = append(parts, fmt.Sprintf("%d %s (payload %s to %s, %s in all)", s.count, opNames[byte(op)],
			size1(s.min), size1(s.max), size1(s.bytes)))
	}
	return fmt.Sprintf("%s: %s; %d of %d frames masked", t.name, strings.Join(parts, ", "), t.masked, total)
}
