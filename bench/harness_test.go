package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the harness's child processes: the
// relays that TestChains starts run this binary with BENCH_CHILD=1.
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_CHILD") == "1" {
		if err := run(os.Args[1:]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Setenv("BENCH_CHILD", "1")
	os.Exit(m.Run())
}

func TestStat(t *testing.T) {
	s := stat([]float64{5, 1, 3, 2, 4})
	if s != (spread{3, 1, 5}) {
		t.Fatalf("odd count: %+v", s)
	}
	if s := stat([]float64{4, 1, 2, 3}); s != (spread{2.5, 1, 4}) {
		t.Fatalf("even count: %+v", s)
	}
	// Paired: round 1 ours/raw = 0.5, round 2 = 1, round 3 = 0.8 → median 0.8,
	// unlike the ratio of the medians (8/10).
	q, ok := pairedRatio([]float64{5, 10, 8}, []float64{10, 10, 10})
	if !ok || q != 0.8 {
		t.Fatalf("pairedRatio = %v, %v", q, ok)
	}
	if _, ok := pairedRatio(nil, []float64{1}); ok {
		t.Fatal("pairedRatio of nothing reported a value")
	}
}

func TestStatFields(t *testing.T) {
	// A command name with a space and a parenthesis, as /proc allows.
	line := "1234 (a b) c) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 8 0"
	f := statFields(line)
	if f[0] != "S" || f[11] != "250" || f[12] != "75" {
		t.Fatalf("fields %q", f)
	}
}

// TestSocks5Connect checks the client against the wire bytes of RFC 1928.
func TestSocks5Connect(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	done := make(chan []byte, 1)
	go func() {
		defer b.Close()
		got := make([]byte, 3+10)
		io.ReadFull(b, got[:3])
		b.Write([]byte{5, 0}) // version 5, method "no authentication"
		io.ReadFull(b, got[3:])
		b.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}) // succeeded, bound 0.0.0.0:0
		done <- got
	}()
	if err := socks5Connect(a, "127.0.0.1:8080"); err != nil {
		t.Fatal(err)
	}
	want := []byte{5, 1, 0, // greeting: version 5, 1 method, no authentication
		5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90} // CONNECT, IPv4 127.0.0.1, port 8080
	if got := <-done; !bytes.Equal(got, want) {
		t.Fatalf("client sent % x, want % x", got, want)
	}
}

func TestSocks5Refused(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		defer b.Close()
		io.ReadFull(b, make([]byte, 3))
		b.Write([]byte{5, 0})
		io.ReadFull(b, make([]byte, 10))
		b.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // 5: connection refused
	}()
	err := socks5Connect(a, "127.0.0.1:8080")
	if err == nil || !strings.Contains(err.Error(), "reply code 5") {
		t.Fatalf("err = %v", err)
	}
}

// TestChains runs the raw, copy and gorilla chains end to end, as child processes,
// with a transfer each way, a latency round and a small load test.
func TestChains(t *testing.T) {
	c := &config{logDir: t.TempDir(), chunk: 32 << 10, size: 1 << 20}
	tAddr := listen(t, serveTarget)
	for _, v := range []variant{{"raw", false}, {"copy", false}, {"gorilla", false}, {"gorilla", true}} {
		ch, err := c.startChain(v, tAddr, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, up := range []bool{true, false} {
			if mbps, cc, cs, err := c.bulk(ch, up); err != nil || mbps <= 0 || cc <= 0 || cs <= 0 {
				t.Errorf("%s: %v MB/s, CPU %v s + %v s, %v", v, mbps, cc, cs, err)
			}
		}
		rtts, err := pingRound([]*chain{ch, ch}, 120) // two tunnels, slices of 100 then 20
		for _, rtt := range rtts {
			if len(rtt) != 120 || rtt[0] <= 0 || rtt[0] > rtt[119] {
				t.Errorf("%s: latency %v", v, rtt)
			}
		}
		if err != nil || len(rtts) != 2 {
			t.Errorf("%s: %d latency series, %v", v, len(rtts), err)
		}
		ch.stop()
	}
	l, err := c.loadTest(variant{"gorilla", false}, tAddr, 2, 50, true)
	if err != nil {
		t.Fatal(err)
	}
	if !l.ok() || l.opened != 50 || l.carried != 50 || !l.rssOK {
		t.Fatalf("load test: %+v", l)
	}
}

// cpuSeconds sees a busy loop's time to the millisecond (utime+stime would say 0 or 10 ms),
// and the machine's time shares add up.
func TestCPUSeconds(t *testing.T) {
	before, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	st := readCPUStat()
	x := 0
	for start := time.Now(); time.Since(start) < 30*time.Millisecond; x++ {
	}
	after, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 0.001 || d > 5 {
		t.Errorf("a 30 ms busy loop took %v s of CPU (%d turns)", d, x)
	}
	steal, idle := shares(st, readCPUStat())
	if steal < 0 || idle < 0 || steal+idle > 1 || st[0] == 0 {
		t.Errorf("steal %v, idle %v, first reading %v", steal, idle, st)
	}
}

// spliceSpy would be taken by io.Copy's fast paths (ReadFrom, WriteTo: splice(2)
// between sockets), which the copy chain must not take.
type spliceSpy struct {
	bytes.Buffer
	fastPath bool
}

func (s *spliceSpy) ReadFrom(r io.Reader) (int64, error) {
	s.fastPath = true
	return s.Buffer.ReadFrom(r)
}
func (s *spliceSpy) WriteTo(w io.Writer) (int64, error) {
	s.fastPath = true
	return s.Buffer.WriteTo(w)
}

func TestMoveCopiedThroughItsOwnBuffer(t *testing.T) {
	src, dst := &spliceSpy{}, &spliceSpy{}
	src.Write(pattern)
	moveCopied(dst, src)
	if src.fastPath || dst.fastPath || !bytes.Equal(dst.Bytes(), pattern) {
		t.Fatalf("fast path taken: source %v, destination %v; %d bytes moved", src.fastPath, dst.fastPath, dst.Len())
	}
	// The raw chain's io.Copy takes it: the spy can tell.
	src.Write(pattern[:10])
	moveSpliced(&bytes.Buffer{}, src)
	if !src.fastPath {
		t.Fatal("io.Copy did not take WriteTo")
	}
}

// TestTargetsPerDirection checks the per-direction targets against figures made up
// so that each verdict on the paired ratio differs from the verdict on the ratio of
// the medians.
func TestTargetsPerDirection(t *testing.T) {
	rounds := func(x ...float64) []float64 { return x }
	raw := &result{v: variant{"raw", false}, down: rounds(1000, 960, 1100),
		downC: rounds(0.3, 0.25, 0.45), downS: rounds(0.3, 0.25, 0.45)}
	cp := &result{v: variant{"copy", false}, upC: rounds(0.5, 0.6, 0.45), upS: rounds(0.5, 0.6, 0.45)}
	ours := &result{v: variant{"ours", false}, down: rounds(960, 900, 990),
		upC: rounds(0.5, 0.6, 0.5), upS: rounds(0.5, 0.6, 0.7),
		downC: rounds(0.48, 0.3, 0.6), downS: rounds(0.48, 0.3, 0.6)}
	rep := &report{cfg: &config{}, results: []*result{raw, cp, ours}}
	rep.evaluate()
	want := map[string]string{
		"download: relays' CPU per GiB vs raw TCP chain": "PASS 1.33× (0.96 s vs 0.60 s per GiB)",
		"upload: relays' CPU per GiB vs copy chain":      "PASS 1.00× (1.20 s vs 1.00 s per GiB)",
		"download throughput vs raw TCP chain":           "FAIL 0.94× (960 MB/s vs 1000 MB/s)",
	}
	for _, c := range rep.checks {
		if w, ok := want[c.name]; ok {
			if got := c.verdict() + " " + c.got; got != w {
				t.Errorf("%s: %s, want %s", c.name, got, w)
			}
			delete(want, c.name)
		}
	}
	if len(want) > 0 {
		t.Errorf("targets missing: %v", want)
	}
}
