package main

import (
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/pt"
)

// TestFlashProxyBuffers checks that the sockets accepted from browser proxies, untrusted peers,
// have the kernel buffers of -socket-buffer, like every other WebSocket, and not the system's,
// which grow to several MiB each. The accepted socket is found among this process's descriptors
// by its two addresses; Linux reports twice the size set.
func TestFlashProxyBuffers(t *testing.T) {
	const size = 24 << 10 // neither the system's default receive nor send buffer
	f := startFlash(t, &pt.Dialer{Buffer: size})
	proxy, err := net.Dial("tcp", "127.0.0.1"+f.regAddr) // ":PORT" of the proxy listener
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	want := proxy.LocalAddr().String() // the accepted socket's peer

	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if fd := socketWithPeer(t, want); fd >= 0 {
			for _, opt := range []struct {
				name string
				opt  int
			}{{"SO_RCVBUF", syscall.SO_RCVBUF}, {"SO_SNDBUF", syscall.SO_SNDBUF}} {
				if got, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, opt.opt); err != nil || got != 2*size {
					t.Errorf("accepted proxy socket: %s %d (%v), want %d", opt.name, got, err, 2*size)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no accepted socket with peer %s", want)
		}
	}
}

// socketWithPeer returns the descriptor of this process whose peer address is addr, or -1.
func socketWithPeer(t *testing.T, addr string) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if peer, err := syscall.Getpeername(fd); err == nil {
			if in, ok := peer.(*syscall.SockaddrInet4); ok && (&net.TCPAddr{IP: in.Addr[:], Port: in.Port}).String() == addr {
				return fd
			}
		}
	}
	return -1
}
