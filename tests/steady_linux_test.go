//go:build linux

package tests

// Steady-state tests that depend on Linux: socket options set before connect (so that the SYN
// already announces a small window and MSS), and the server's descriptors and memory read from
// /proc.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/pt"
	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

// dialSmall opens a WebSocket to addr over a TCP connection with SO_RCVBUF (and TCP_MAXSEG
// unless mss is 0) set before connect, and returns it with that connection.
func dialSmall(addr string, rcvbuf, mss int) (*ws.Conn, net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			if err == nil && mss > 0 {
				err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, mss)
			}
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	return upgradeOver(conn, addr)
}

// TestSlowReaderNotCut: a WebSocket peer that reads a download at 1 KiB/s for three times the
// stall bound is not cut, while a peer beside it that reads nothing is.
//
// A StallConn sees progress only when the kernel accepts bytes into the socket's full send
// buffer, and how often that happens for a slow reader depends on the buffers, not only on the
// pace (measured at 1 KiB/s on this kernel, without the programs): with Linux's default buffers
// the server's write moved after 2m5s, then every 1m33s (loopback; with an MSS of 1460: 2m6s,
// then about every minute); with a 4 KiB SO_RCVBUF set after connect, every 2 s to 30 s+ from
// one run to the next. With SO_RCVBUF at its minimum (2048, which Linux doubles) set before
// connect, the receiver reopens its window every ~2 KiB it reads, and the write moves every
// 2.1-2.5 s, regularly over minutes. A StallConn cuts only after a whole stall period without
// progress, so a 4 s bound leaves a margin of 1.6 over that spacing; the reader keeps its pace
// by elapsed time (not by ticks) when the machine is busy. With a 1 s bound the same reader is
// cut, which the test then reports.
func TestSlowReaderNotCut(t *testing.T) {
	const (
		stall = 4 * time.Second
		rate  = 1 << 10 // bytes per second
		span  = 3 * stall
	)
	orAddr, conns := plainORPort(t, 2)
	addr := closedAddr(t)
	server := startStandalone(t, "websocket-server", addr, "-listen", addr, "-orport", orAddr,
		"-stall-timeout", stall.String())
	slow, slowRaw, err := dialSmall(addr, 2048, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slowRaw.Close()
	slowDown := startDownload(nextOR(t, conns), 1<<30) // until the test ends
	_, idleRaw, err := dialSmall(addr, 2048, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer idleRaw.Close()
	idleDown := startDownload(nextOR(t, conns), 1<<30)

	// Read at rate for the span, the close timeout and a second more: a cut shows (the ORPort
	// connection closed) only after the server's closing handshake has waited that long.
	start := time.Now()
	got := readAtRate(t, slow, rate, span+closeTimeout+time.Second, server.output)
	select {
	case <-slowDown.closed:
		t.Fatalf("the slow reader's tunnel was cut after %v (%d bytes read):\n%s",
			slowDown.at.Sub(start).Round(time.Millisecond), got, server.output())
	default:
	}
	if want := int64(span.Seconds() * rate); got < want {
		t.Errorf("the slow reader read %d bytes in %v, want at least %d", got, time.Since(start), want)
	}
	// The control: in the same setting, a peer that reads nothing is cut.
	idleDown.waitClosed(t, "the peer that reads nothing")
	if !waitLines(server, stallClosed, 1) {
		t.Errorf("no \"tunnel N closed ... (stall timeout)\" line in the log:\n%s", server.output())
	}
	t.Logf("the slow reader read %d bytes in %v, not cut; the peer beside it that read nothing was cut %v after the start",
		got, span+closeTimeout+time.Second, idleDown.at.Sub(start).Round(time.Millisecond))
}

// readAtRate reads c at rate bytes per second for span, checking the download's pattern (byte i
// is i%251), and returns the count; a read error ends the test, with the output of out.
func readAtRate(t *testing.T, c interface {
	io.Reader
	SetReadDeadline(time.Time) error
}, rate int64, span time.Duration, out func() string) int64 {
	t.Helper()
	start := time.Now()
	var got int64
	buf := make([]byte, 512)
	for tick := time.NewTicker(50 * time.Millisecond); time.Since(start) < span; <-tick.C {
		for due := int64(time.Since(start).Seconds()*float64(rate)) - got; due > 0; {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(buf[:min(due, int64(len(buf)))])
			for i, b := range buf[:n] {
				if b != byte((got+int64(i))%251) {
					t.Fatalf("byte %d of the download is %d, want %d", got+int64(i), b, (got+int64(i))%251)
				}
			}
			got, due = got+int64(n), due-int64(n)
			if err != nil {
				t.Fatalf("the slow reader, after %d bytes in %v: %v\n%s", got, time.Since(start).Round(time.Millisecond), err, out())
			}
		}
	}
	return got
}

// procFigures are a process's descriptors, resident memory and goroutines.
type procFigures struct {
	fds, rssKiB, goroutines int
}

func (f procFigures) String() string {
	return fmt.Sprintf("%d descriptors, RSS %d KiB, %d goroutines", f.fds, f.rssKiB, f.goroutines)
}

// openFDs counts the descriptors of process pid.
func openFDs(t *testing.T, pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// rssKiB reads VmRSS of process pid.
func rssKiB(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// schedG is a goroutine line of the Go runtime's scheduler trace (GODEBUG=schedtrace=N,
// scheddetail=1): "  G12: status=4(chan receive) m=nil lockedm=nil". Status 6 is a dead
// goroutine kept for reuse, 0 one not yet started.
var schedG = regexp.MustCompile(`^  G\d+: status=(\d+)\(`)

// goroutines counts the live goroutines of p, which runs with GODEBUG=schedtrace=...,
// scheddetail=1, in the first scheduler trace that the runtime writes in full after the call.
func goroutines(t *testing.T, p *proc) int {
	t.Helper()
	p.mu.Lock()
	mark := p.stderr.Len()
	p.mu.Unlock()
	for deadline := time.Now().Add(waitLong); ; time.Sleep(50 * time.Millisecond) {
		p.mu.Lock()
		trace := string(p.stderr.Bytes()[mark:])
		p.mu.Unlock()
		// A trace starts with a "SCHED" line; the one that follows ends it.
		blocks := strings.Split(trace, "\nSCHED ")
		if len(blocks) >= 3 {
			n := 0
			for _, line := range strings.Split(blocks[1], "\n") {
				if m := schedG.FindStringSubmatch(line); m != nil {
					if s, _ := strconv.Atoi(m[1]); s&^0x1000 != 6 && s != 0 { // 0x1000: being scanned
						n++
					}
				}
			}
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scheduler trace from the server within %v", waitLong)
		}
	}
}

// measure takes p's figures: the goroutines first, which waits for the next scheduler trace
// (up to a second), so that the descriptors and memory are read once p has acted on what the
// test did just before.
func measure(t *testing.T, p *proc) procFigures {
	g := goroutines(t, p)
	pid := p.cmd.Process.Pid
	return procFigures{fds: openFDs(t, pid), rssKiB: rssKiB(t, pid), goroutines: g}
}

// stdoutLines counts p's stdout lines that match re (in managed mode the log is on stdout).
func stdoutLines(p *proc, re *regexp.Regexp) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, line := range p.stdout {
		if re.MatchString(line) {
			n++
		}
	}
	return n
}

// closedAfter returns the shortest and longest lifetime in p's "tunnel N closed after D" log
// lines that match re.
func closedAfter(p *proc, re *regexp.Regexp) (low, high time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	after := regexp.MustCompile(`closed after ([^:]+):`)
	for _, line := range p.stdout {
		if m := after.FindStringSubmatch(line); m != nil && re.MatchString(line) {
			d, _ := time.ParseDuration(m[1])
			if low == 0 || d < low {
				low = d
			}
			high = max(high, d)
		}
	}
	return low, high
}

// TestManyStalledPeers fills websocket-server's 300 slots (max-conns, stall-timeout and
// half-close-timeout given by tor in TOR_PT_SERVER_TRANSPORT_OPTIONS) with peers that hold
// tunnels as an attacker would: half start a download and never read, half go silent after the
// upgrade while tor closes its ORPort connection. While they hold, a 301st peer is refused with
// 503; after the bounds, the server's descriptors, memory and goroutines are back near their
// idle values, and a new tunnel carries 16 MiB each way intact. It logs the figures.
func TestManyStalledPeers(t *testing.T) {
	const (
		peers  = 300
		bounds = 3 * time.Second
	)
	or := newExtOR(t)
	server := startProc(t, "websocket-server", serverEnv(t, or,
		"TOR_PT_SERVER_TRANSPORT_OPTIONS=websocket:max-conns=300;websocket:stall-timeout=3s;websocket:half-close-timeout=3s",
		// The runtime writes its scheduler state, every goroutine included, to stderr twice a
		// second: the only way to count a running program's goroutines from outside.
		"GODEBUG=schedtrace=500,scheddetail=1,gctrace=1"), "-log-level", "info")
	if server.addr == "" {
		t.Fatalf("no SMETHOD line:\n%s", server.output())
	}
	idle := measure(t, server)

	// The peers announce a 536-byte MSS and the smallest receive buffer: the server's send
	// buffer towards each then stays near 44 KiB, so that 150 stalled downloads of 512 KiB
	// hold little kernel memory on a shared machine.
	start := time.Now()
	var stalled, silent []*orConn
	for i := 0; i < peers; i++ {
		_, raw, err := dialSmall(server.addr, 2048, 536)
		if err != nil {
			t.Fatalf("peer %d: %v", i, err)
		}
		defer raw.Close() // the peers never read, never send and never close
		if oc := or.next(t); i%2 == 0 {
			stalled = append(stalled, oc)
		} else {
			silent = append(silent, oc)
		}
	}
	t.Logf("%d tunnels opened in %v", peers, time.Since(start).Round(time.Millisecond))
	if c, err := tryWS(server.addr, "/", nil); err == nil || !strings.Contains(err.Error(), "503") {
		if c != nil {
			c.Close()
		}
		t.Fatalf("peer %d while %d tunnels hold: %v, want a 503 error", peers+1, peers, err)
	}

	start = time.Now()
	downloads := make([]*download, len(stalled))
	for i, oc := range stalled {
		downloads[i] = startDownload(oc.TCPConn, 512<<10)
	}
	for _, oc := range silent {
		oc.Close()
	}
	// No tunnel can end before the bounds (3 s) and the close timeout (2 s): all are held now.
	loaded := measure(t, server)
	if loaded.fds < idle.fds+2*peers {
		t.Errorf("loaded: %v, want at least %d descriptors (two per tunnel)", loaded, idle.fds+2*peers)
	}
	for deadline := time.Now().Add(waitLong); openFDs(t, server.cmd.Process.Pid) > idle.fds+10; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors %v after the load began, want at most %d (idle %d)",
				openFDs(t, server.cmd.Process.Pid), waitLong, idle.fds+10, idle.fds)
		}
	}
	freed := time.Since(start)
	for i, d := range downloads {
		d.waitClosed(t, fmt.Sprintf("stalled peer %d", i))
	}
	for deadline := time.Now().Add(waitLong); stdoutLines(server, stallClosed) < len(stalled) ||
		stdoutLines(server, halfCloseClosed) < len(silent); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d tunnels closed for a stall and %d for a half-close, want %d and %d",
				stdoutLines(server, stallClosed), stdoutLines(server, halfCloseClosed), len(stalled), len(silent))
		}
	}
	after := measure(t, server)

	// A normal tunnel: 16 MiB each way through an echoing ORPort.
	c := dialWS(t, server.addr, "/", nil)
	oc := or.next(t)
	go func() { io.Copy(oc, oc); oc.CloseWrite() }()
	const size = 16 << 20
	sent := make(chan []byte, 1)
	go func() {
		sum, err := sendAndHash(c, size)
		if err != nil {
			t.Error(err)
		}
		c.CloseWrite()
		sent <- sum
	}()
	c.SetReadDeadline(time.Now().Add(waitLong))
	n, sum, err := readHash(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := <-sent; n != size || !bytes.Equal(sum, want) {
		t.Fatalf("echo after the load: %d bytes, SHA-256 %x; want %d bytes, %x", n, sum, size, want)
	}
	c.Close()

	// At the end, the runtime's own dump: SIGQUIT makes a Go program print every goroutine
	// (the runtime's own included) and exit.
	closed := regexp.MustCompile(`tunnel \d+ closed`)
	for deadline := time.Now().Add(waitLong); stdoutLines(server, closed) < peers+1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the 16 MiB tunnel was not logged as closed")
		}
	}
	p := server.cmd.Process
	fdsEnd, rssEnd := openFDs(t, p.Pid), rssKiB(t, p.Pid)
	p.Signal(syscall.SIGQUIT)
	server.wait(waitLong)
	server.mu.Lock()
	dump0 := server.stderr.String()
	server.mu.Unlock()
	_, dump, _ := strings.Cut(dump0, "SIGQUIT")
	// "goroutine 7 gp=0x... m=nil [chan receive]:"; goroutine 0 is a thread's scheduler stack.
	dumped := len(regexp.MustCompile(`(?m)^goroutine [1-9]\d* .*\[`).FindAllString(dump, -1))

	t.Logf("idle:   %v", idle)
	t.Logf("loaded: %v (%d tunnels: %d stalled downloads, %d silent after tor closed)", loaded, peers, len(stalled), len(silent))
	t.Logf("after:  %v (descriptors back %v after the load began)", after, freed.Round(time.Millisecond))
	t.Logf("end, after a 16 MiB echo: %d descriptors, RSS %d KiB, %d goroutines in the SIGQUIT dump (the runtime's included)",
		fdsEnd, rssEnd, dumped)
	for _, c := range []struct {
		what string
		re   *regexp.Regexp
	}{{"stall", stallClosed}, {"half-close", halfCloseClosed}} {
		low, high := closedAfter(server, c.re)
		t.Logf("tunnels closed for a %s after %v to %v (from their opening)", c.what, low, high)
	}
	if gcs := regexp.MustCompile(`(?m)^gc \d+ @.*$`).FindAllString(dump0, -1); len(gcs) > 0 {
		t.Logf("%d garbage collections, the last: %s", len(gcs), gcs[len(gcs)-1])
	}
	if after.goroutines > idle.goroutines+10 {
		t.Errorf("after the bounds: %d goroutines, want at most idle+10 (%d)", after.goroutines, idle.goroutines+10)
	}
	// The runtime gives freed memory back to the system only after a garbage collection, which
	// a server that allocates nothing more may not run for two minutes: "after" is still about
	// the loaded figure (measured: idle 6 MiB, loaded and after 34 MiB, the last collection
	// during the load). The bound only catches memory that grows beyond the load.
	if after.rssKiB > 8*idle.rssKiB {
		t.Errorf("after the bounds: RSS %d KiB, want at most 8 times idle (%d KiB)", after.rssKiB, idle.rssKiB)
	}
	if fdsEnd > idle.fds+10 {
		t.Errorf("at the end: %d descriptors, want at most idle+10 (%d)", fdsEnd, idle.fds+10)
	}
}

// TestIdleAfterBurstHoldsNoBuffers: a tunnel that has carried a burst and gone idle holds no
// large buffer, in either direction of either relay: each waits for data before it takes one
// (the copy loop's, a WebSocket's read-ahead, ReadFrom's), so that a bridge's idle tunnels cost
// what idle tunnels cost even after they have been busy. Measured in-process, on the heap, with
// both relays (pt.Relay over ws, as the programs run them) and an echo for tor.
func TestIdleAfterBurstHoldsNoBuffers(t *testing.T) {
	const tunnels, burst = 16, 256 << 10
	echo := listen(t)
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	web := listen(t)
	go http.Serve(web, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := ws.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		or, err := net.Dial("tcp", echo.Addr().String())
		if err != nil {
			conn.Close()
			return
		}
		pt.Relay(or, conn, pt.RelayOptions{})
	}))
	apps := make([]net.Conn, tunnels)
	for i := range apps {
		wsConn, _, err := upgradeOver(dial(t, web.Addr().String()), web.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		app, local := tcpPair(t)
		go pt.Relay(local, wsConn, pt.RelayOptions{})
		apps[i] = app
		t.Cleanup(func() { app.Close() })
		roundTrip(t, app, 1)
	}
	idle := heapInUse()
	for _, app := range apps {
		roundTrip(t, app, burst)
	}
	var held int64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if held = (heapInUse() - idle) / tunnels; held < 32<<10 {
			t.Logf("each idle tunnel holds %d bytes more than before its burst", held)
			return
		}
		time.Sleep(50 * time.Millisecond) // poll: the relays give their buffers back as they go idle
	}
	t.Errorf("after a %d KiB burst each way, each idle tunnel holds %d KiB more than before it (want < 32)", burst>>10, held>>10)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	ln := listen(t)
	c := dial(t, ln.Addr().String())
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// heapInUse is the heap in use after the collections that empty sync.Pools.
func heapInUse() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
