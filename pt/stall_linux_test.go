package pt

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStallConnSlowTCP: a reader at 5 KiB/s behind a small receive buffer, written to through a
// large send buffer. The kernel wakes a blocked writer only when a third of its queue is free,
// which takes minutes here; the write is not cut, since every look for progress writes again
// and the kernel takes what was freed. When the reader stops, the write is cut within 1.5 times
// the bound (and some slack).
func TestStallConnSlowTCP(t *testing.T) {
	const stall = 800 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
	}}
	reader, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	w, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.(*net.TCPConn).SetWriteBuffer(4 << 20)
	ch := make(chan writeResult, 1)
	go func() {
		start := time.Now()
		n, err := StallConn(w, stall).Write(make([]byte, 64<<20))
		ch <- writeResult{n, err, time.Since(start)}
	}()
	buf := make([]byte, 512)
	reader.SetReadDeadline(time.Now().Add(20 * time.Second))
	for end := time.Now().Add(5 * stall); time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond) // the pace of the slow reader under test
		if _, err := reader.Read(buf); err != nil {
			t.Fatalf("slow reader: %v", err)
		}
		select {
		case r := <-ch:
			t.Fatalf("a live reader was cut: Write = %d, %v after %v", r.n, r.err, r.at)
		default:
		}
	}
	stopped := time.Now() // the reader stops
	r := waitWrite(t, ch)
	if r.err == nil || !strings.Contains(r.err.Error(), "stall timeout") {
		t.Fatalf("Write = %d, %v; want the stall timeout", r.n, r.err)
	}
	if took := time.Since(stopped); took > 2*stall {
		t.Errorf("cut %v after the reader stopped, want at most about 1.5 × %v", took, stall)
	}
}

// inProcNetTCP returns the state (hex, as in include/net/tcp_states.h) of the socket from local
// to remote (both 127.0.0.1) in /proc/net/tcp, or "" if it is not there: an orphan that the
// kernel still holds is.
func inProcNetTCP(t *testing.T, local, remote net.Addr) string {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	hex := func(a net.Addr) string { return fmt.Sprintf("0100007F:%04X", a.(*net.TCPAddr).Port) }
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 3 && f[1] == hex(local) && f[2] == hex(remote) {
			return f[3]
		}
	}
	return ""
}

// TestRelayCutFreesKernel: a tunnel cut by the stall bound, whose peer holds its connection
// open without reading, leaves no socket behind: the kernel's memory is free at once. A plain
// close would leave an orphan holding its unsent data, probing the zero window for minutes.
func TestRelayCutFreesKernel(t *testing.T) {
	left, a := loopbackPair(t)
	b, right := loopbackPair(t)
	defer left.Close()
	defer right.Close() // never reads
	b.SetWriteBuffer(64 << 10)
	right.SetReadBuffer(4 << 10)
	go left.Write(make([]byte, 8<<20)) // fails once Relay aborts a; no one checks
	done := startRelay(a, StallConn(b, 300*time.Millisecond), RelayOptions{})
	if r := waitRelay(t, done); r.err == nil || !strings.Contains(r.err.Error(), "stall") {
		t.Fatalf("Relay = %v, want the stall timeout", r.err)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		state := inProcNetTCP(t, b.LocalAddr(), b.RemoteAddr())
		if state == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cut tunnel's socket %v is still in /proc/net/tcp (state %s) 2 s after the cut", b.LocalAddr(), state)
		}
	}
}

// TestBuffers: Buffers sets a dialed socket's buffers before it connects, and a listener's,
// which the sockets it accepts inherit (Linux reports twice the size set).
func TestBuffers(t *testing.T) {
	const size = 48 << 10
	lc := net.ListenConfig{Control: Buffers(size)}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: Buffers(size)}
	dialed, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()
	for name, c := range map[string]net.Conn{"dialed": dialed, "accepted": accepted} {
		rc, _ := c.(*net.TCPConn).SyscallConn()
		rc.Control(func(fd uintptr) {
			for _, opt := range []int{syscall.SO_RCVBUF, syscall.SO_SNDBUF} {
				if v, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt); err != nil || v != 2*size {
					t.Errorf("%s socket: option %d is %d, %v; want %d", name, opt, v, err, 2*size)
				}
			}
		})
	}
	if Buffers(0) != nil {
		t.Error("Buffers(0) is not nil: the system's buffers")
	}
}
