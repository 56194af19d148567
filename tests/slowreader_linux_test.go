//go:build linux

package tests

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestSlowReaderThroughBothPrograms is the scaled version of the check that a slow but live
// user is never cut while attackers hold tunnels: tor's side of a websocket-client reads a
// download at rate through websocket-client and websocket-server for three stall bounds, while
// a second websocket-server holds many peers that never read, and is not cut; a tunnel beside it
// whose reader takes nothing is cut within the bound.
//
// Scaled: buffers of 8 KiB (-socket-buffer; tor's side 2 KiB), bounds of 4 s, 16 KiB/s. The
// server sees a slow reader's progress when websocket-client reads the WebSocket again, after it
// has written a whole chunk (up to 32 KiB) to tor's side, and its receive window has opened: about
// every 2 s here. (At 1 KiB/s on loopback with the default buffers, whose windows open a 64 KiB
// segment at a time, over 2 minutes apart: hence the 5-minute default bound.) With the system's
// autotuned buffers (-socket-buffer 0) the same reader is cut.
func TestSlowReaderThroughBothPrograms(t *testing.T) {
	const (
		stall  = 4 * time.Second
		rate   = 16 << 10 // bytes per second
		span   = 3 * stall
		buffer = "8192"
		peers  = 100
	)
	orAddr, conns := plainORPort(t, peers+2)
	serverAddr := closedAddr(t)
	server := startStandalone(t, "websocket-server", serverAddr, "-listen", serverAddr, "-orport", orAddr,
		"-stall-timeout", stall.String(), "-socket-buffer", buffer)
	socksAddr := closedAddr(t)
	client := startStandalone(t, "websocket-client", socksAddr, "-listen", socksAddr,
		"-stall-timeout", stall.String(), "-socket-buffer", buffer)

	// The attackers: peers of a second server that ask for a download and never read.
	otherAddr := closedAddr(t)
	startStandalone(t, "websocket-server", otherAddr, "-listen", otherAddr, "-orport", orAddr,
		"-stall-timeout", stall.String(), "-socket-buffer", buffer)
	for i := 0; i < peers; i++ {
		_, raw, err := dialSmall(otherAddr, 2048, 536)
		if err != nil {
			t.Fatalf("peer %d: %v", i, err)
		}
		defer raw.Close()
		startDownload(nextOR(t, conns), 1<<30)
	}

	// tor's side: a SOCKS connection whose receive buffer is small from the start.
	torSide := func() net.Conn {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		}}
		conn, err := d.Dial("tcp", socksAddr)
		if err != nil {
			t.Fatal(err)
		}
		conn, answer := socks5Over(t, conn, serverAddr, "")
		if code := socks5Reply(t, conn, answer); code != 0 {
			t.Fatalf("SOCKS reply %d:\n%s\n%s", code, client.output(), server.output())
		}
		return conn
	}
	slow := torSide()
	slowDown := startDownload(nextOR(t, conns), 1<<30)
	torSide() // reads nothing
	idleDown := startDownload(nextOR(t, conns), 1<<30)

	start := time.Now()
	got := readAtRate(t, slow, rate, span, func() string { return client.output() + "\n" + server.output() })
	select {
	case <-slowDown.closed:
		t.Fatalf("the slow reader's tunnel was cut after %v (%d bytes read)", slowDown.at.Sub(start).Round(time.Millisecond), got)
	default:
	}
	// The control: the reader beside it that takes nothing is cut, by one program or the other,
	// within 1.5 stall bounds and the close timeout (and some slack), after its buffers filled.
	idleDown.waitClosed(t, "the reader that takes nothing")
	if took := idleDown.at.Sub(start); took > stall*3/2+closeTimeout+2*time.Second {
		t.Errorf("the reader that takes nothing was cut after %v, want at most %v", took, stall*3/2+closeTimeout+2*time.Second)
	}
	slow.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := io.ReadFull(slow, make([]byte, 512)); err != nil {
		t.Errorf("the slow reader, at the end: %v", err)
	}
	t.Logf("the slow reader read %d bytes in %v, not cut; the reader beside it that took nothing was cut %v after the start",
		got, span, idleDown.at.Sub(start).Round(time.Millisecond))
}
