//go:build linux

package tests

import (
	"errors"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

// TestFlashProxyBuffered bounds what websocket-client holds for a flashproxy tunnel whose tor
// reads nothing: a proxy sends until its writes stall for a second. Both test sockets have small
// buffers, so what the proxy got in is mostly the client's: its proxy socket's receive buffer
// (-socket-buffer) and its SOCKS socket's send buffer (128 KiB, twice in the kernel's count).
// With the system's buffers, the SOCKS socket alone takes 4 MiB on loopback.
func TestFlashProxyBuffered(t *testing.T) {
	const bound = 1 << 20
	client, socks, proxies := flashClient(t, "-socket-buffer", "8192")
	small := func(opt int) net.Dialer {
		return net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, 2048) })
		}}
	}
	torDialer := small(syscall.SO_RCVBUF)
	tor, err := torDialer.Dial("tcp", socks)
	if err != nil {
		t.Fatal(err)
	}
	tor, answer := socks5Over(t, tor, flashTarget, "")
	waitCount(t, client, "a SOCKS request waits for a proxy", 1)
	proxyDialer := small(syscall.SO_SNDBUF)
	tcp, err := proxyDialer.Dial("tcp", proxies)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := ws.Client(tcp, &url.URL{Scheme: "ws", Host: proxies, Path: "/"}, &ws.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	if code := socks5Reply(t, tor, answer); code != 0 {
		t.Fatalf("SOCKS reply %d", code)
	}

	chunk, sent := make([]byte, 16<<10), 0
	for sent <= bound {
		proxy.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := proxy.Write(chunk)
		sent += n
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Logf("the proxy's writes stalled after %d KiB", sent>>10)
			return
		} else if err != nil {
			t.Fatalf("after %d bytes: %v", sent, err)
		}
	}
	t.Fatalf("websocket-client took over %d KiB from a proxy for a tor that reads nothing", bound>>10)
}
