package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

type config struct {
	out, svg, bin, logDir  string
	rounds                 int
	size                   int64 // bytes per bulk transfer
	pings                  int
	rssTunnels, rssRounds  int
	concTunnels, concProcs int
	concFamilies, families string
	oursClient, oursServer string // extra arguments
	gorillaArgs            string
	strict                 bool
	label                  string // which build of our programs
	chunk                  int
}

// variant is one way of building the chain.
type variant struct {
	family string // raw, copy, gorilla, ours
	base64 bool
}

func (v variant) String() string {
	if v.base64 {
		return v.family + " base64"
	}
	return v.family
}

// chain is a running client relay and server relay.
type chain struct {
	v              variant
	client, server *child
	tun            tunnel
}

func runHarness(args []string) error {
	var c config
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.StringVar(&c.out, "o", "../doc/PERFORMANCE.md", "report to write (empty: none)")
	fs.StringVar(&c.svg, "svg", "", "chart to write (default: performance.svg beside -o)")
	fs.StringVar(&c.bin, "bin", "../bin", "directory of websocket-client and websocket-server")
	fs.IntVar(&c.rounds, "rounds", 15, "interleaved rounds of throughput and latency (many short rounds pair better than few long ones on a noisy machine)")
	size := fs.Int("size", 64, "MiB per bulk transfer (each way, each round, each variant)")
	fs.IntVar(&c.pings, "pings", 1000, "64-byte round trips per latency round")
	fs.IntVar(&c.rssTunnels, "rss-tunnels", 4000, "idle tunnels for the memory test")
	fs.IntVar(&c.rssRounds, "rss-rounds", 2, "memory test repetitions (fresh processes each)")
	fs.IntVar(&c.concTunnels, "conc-tunnels", 9000, "concurrent tunnels for the load test (0: skip)")
	fs.IntVar(&c.concProcs, "conc-procs", 3, "load-generator processes for the load test")
	fs.StringVar(&c.families, "variants", "raw,copy,gorilla,ours", "chains to measure")
	fs.StringVar(&c.concFamilies, "conc-variants", "ours,gorilla", "chains put under the load test (raw needs 6 file descriptors per tunnel in each relay: it cannot hold 9,000; copy is a bound of CPU per byte, not of memory, and need not be)")
	fs.StringVar(&c.oursClient, "ours-client-args", "", "extra arguments for websocket-client")
	fs.StringVar(&c.oursServer, "ours-server-args", "", "extra arguments for websocket-server")
	fs.StringVar(&c.gorillaArgs, "gorilla-args", "", "extra arguments for both gorilla relays (-rbuf, -wbuf, -chunk)")
	fs.IntVar(&c.chunk, "chunk", 32<<10, "bytes per write of the load generator in bulk transfers")
	fs.BoolVar(&c.strict, "strict", false, "exit non-zero when a target is missed")
	fs.StringVar(&c.label, "label", "", "which build of our programs is measured, for the report (default: git describe of the work tree)")
	fs.Parse(args)
	if c.label == "" {
		out, err := exec.Command("git", "-C", "..", "describe", "--always", "--dirty").Output()
		if err == nil {
			c.label = "the work tree at " + strings.TrimSpace(string(out)) + " (built by make build)"
		}
	}
	c.size = int64(*size) << 20
	if c.svg == "" && c.out != "" {
		c.svg = filepath.Join(filepath.Dir(c.out), "performance.svg")
	}
	nofile := raiseNofile()
	dir, err := os.MkdirTemp("", "wsbench")
	if err != nil {
		return err
	}
	c.logDir = dir
	fmt.Printf("logs in %s; RLIMIT_NOFILE %d\n", dir, nofile)

	r, err := measure(&c)
	if err != nil {
		return err
	}
	missed := r.evaluate()
	fmt.Print(r.summary())
	if c.out != "" {
		if err := r.writeReport(c.out, c.svg); err != nil {
			return err
		}
		fmt.Println("wrote", c.out, "and", c.svg)
	}
	if c.strict && missed > 0 {
		return fmt.Errorf("%d target(s) missed", missed)
	}
	os.RemoveAll(dir)
	return nil
}

func self() (string, error) { return os.Executable() }

// startChain starts the two relays of v in front of target.
func (c *config) startChain(v variant, target, tag string) (*chain, error) {
	sAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	me, err := self()
	if err != nil {
		return nil, err
	}
	name := strings.ReplaceAll(v.String(), " ", "-") + tag
	var sProg, cProg string
	var sArgs, cArgs []string
	tun := tunnel{entry: cAddr}
	switch v.family {
	case "raw", "copy":
		sProg, sArgs = me, []string{"relay-" + v.family, "-listen", sAddr, "-to", target}
		cProg, cArgs = me, []string{"relay-" + v.family, "-listen", cAddr, "-to", sAddr}
	case "gorilla":
		sProg, sArgs = me, []string{"relay-gorilla-server", "-listen", sAddr, "-to", target}
		cProg, cArgs = me, []string{"relay-gorilla-client", "-listen", cAddr, "-url", "ws://" + sAddr + "/"}
		if v.base64 {
			sArgs, cArgs = append(sArgs, "-base64"), append(cArgs, "-base64")
		}
		sArgs, cArgs = append(sArgs, strings.Fields(c.gorillaArgs)...), append(cArgs, strings.Fields(c.gorillaArgs)...)
	case "ours":
		// -max-conns 0: the harness measures 9,000 tunnels, past the default bound of a bridge.
		sProg, sArgs = filepath.Join(c.bin, "websocket-server"), []string{"-listen", sAddr, "-orport", target, "-max-conns", "0"}
		cProg, cArgs = filepath.Join(c.bin, "websocket-client"), []string{"-listen", cAddr, "-url", "ws://" + sAddr + "/"}
		if v.base64 {
			sArgs, cArgs = append(sArgs, "-base64=true"), append(cArgs, "-protocol", "base64")
		}
		sArgs, cArgs = append(sArgs, strings.Fields(c.oursServer)...), append(cArgs, strings.Fields(c.oursClient)...)
		tun.socksTarget = sAddr
	default:
		return nil, fmt.Errorf("unknown variant %q", v.family)
	}
	ch := &chain{v: v, tun: tun}
	if ch.server, err = startChild(c.logDir, name+"-server", sProg, false, sArgs...); err != nil {
		return nil, err
	}
	if ch.client, err = startChild(c.logDir, name+"-client", cProg, false, cArgs...); err != nil {
		ch.server.stop()
		return nil, err
	}
	if err := waitListening(sAddr, ch.server); err != nil {
		ch.stop()
		return nil, err
	}
	if err := waitListening(cAddr, ch.client); err != nil {
		ch.stop()
		return nil, err
	}
	// One tunnel end to end, so that a broken chain fails here, clearly.
	conn, err := openEcho(tun, 10*time.Second)
	if err != nil {
		ch.stop()
		return nil, fmt.Errorf("%s: first tunnel: %v; server log: %s; client log: %s", v, err, ch.server.tail(), ch.client.tail())
	}
	conn.Close()
	return ch, nil
}

func (ch *chain) stop() {
	ch.client.stop()
	ch.server.stop()
}

// cpu is the CPU time of the client and the server relay so far.
func (ch *chain) cpu() (client, server float64, err error) {
	if client, err = cpuSeconds(ch.client.pid()); err != nil {
		return 0, 0, err
	}
	server, err = cpuSeconds(ch.server.pid())
	return client, server, err
}

func (ch *chain) rss() (int64, int64, error) {
	a, err := rssBytes(ch.client.pid())
	if err != nil {
		return 0, 0, err
	}
	b, err := rssBytes(ch.server.pid())
	return a, b, err
}

// bulk moves c.size bytes one way through a new tunnel and returns MB/s (10^6
// bytes per second of payload) and the client and server relays' CPU seconds meanwhile.
func (c *config) bulk(ch *chain, up bool) (mbps, cpuC, cpuS float64, err error) {
	conn, err := ch.tun.dial(10 * time.Second)
	if err != nil {
		return 0, 0, 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Minute))
	c0, s0, err := ch.cpu()
	if err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	if up {
		err = upload(conn, c.size, c.chunk)
	} else {
		err = download(conn, c.size)
	}
	elapsed := time.Since(start)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%s %s: %v", ch.v, map[bool]string{true: "upload", false: "download"}[up], err)
	}
	c1, s1, err := ch.cpu()
	return float64(c.size) / 1e6 / elapsed.Seconds(), c1 - c0, s1 - s0, err
}

func upload(conn net.Conn, n int64, chunk int) error {
	if err := request(conn, opUpload, n); err != nil {
		return err
	}
	for sent := int64(0); sent < n; {
		k := int64(chunk)
		if n-sent < k {
			k = n - sent
		}
		if _, err := conn.Write(pattern[:k]); err != nil {
			return err
		}
		sent += k
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil {
		return fmt.Errorf("waiting for the target's acknowledgement: %v", err)
	}
	return nil
}

// download reads n bytes and checks them against what the target writes
// (pattern's first 32 KiB, repeated).
func download(conn net.Conn, n int64) error {
	if err := request(conn, opDownload, n); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	const period = 32 << 10
	for got := int64(0); got < n; {
		k := int64(len(buf))
		if n-got < k {
			k = n - got
		}
		m, err := conn.Read(buf[:k])
		for i := 0; i < m; {
			off := int((got + int64(i)) % period)
			l := min(m-i, period-off)
			if string(buf[i:i+l]) != string(pattern[off:off+l]) {
				return fmt.Errorf("data differs after %d bytes", got+int64(i))
			}
			i += l
		}
		got += int64(m)
		if err != nil {
			return fmt.Errorf("after %d of %d bytes: %v", got, n, err)
		}
	}
	return nil
}

// pinger takes 64-byte echoes through one tunnel of a chain.
type pinger struct {
	conn     net.Conn
	msg, got []byte
	rtt      []time.Duration
}

// openPinger opens a tunnel to the echo target and warms it with 50 echoes
// not counted.
func openPinger(ch *chain) (*pinger, error) {
	conn, err := openEcho(ch.tun, 10*time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(5 * time.Minute))
	p := &pinger{conn: conn, msg: pattern[:64], got: make([]byte, 64)}
	if err := p.ping(50); err != nil {
		conn.Close()
		return nil, err
	}
	p.rtt = p.rtt[:0]
	return p, nil
}

// ping takes n echoes, one at a time, and records their round-trip times.
func (p *pinger) ping(n int) error {
	for i := 0; i < n; i++ {
		t := time.Now()
		if _, err := p.conn.Write(p.msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(p.conn, p.got); err != nil {
			return err
		}
		p.rtt = append(p.rtt, time.Since(t))
	}
	return nil
}

// pingRound takes n echoes through one tunnel of each chain, in slices of
// 100 taken chain after chain, so that a slow spell of the machine (such
// spells last seconds here) falls on every chain alike. It returns each
// chain's sorted round-trip times.
func pingRound(chains []*chain, n int) ([][]time.Duration, error) {
	ps := make([]*pinger, len(chains))
	defer func() {
		for _, p := range ps {
			if p != nil {
				p.conn.Close()
			}
		}
	}()
	for i, ch := range chains {
		var err error
		if ps[i], err = openPinger(ch); err != nil {
			return nil, fmt.Errorf("%s: %v", ch.v, err)
		}
	}
	for done := 0; done < n; done += 100 {
		for i, p := range ps {
			if err := p.ping(min(100, n-done)); err != nil {
				return nil, fmt.Errorf("%s: %v", chains[i].v, err)
			}
		}
	}
	rtts := make([][]time.Duration, len(ps))
	for i, p := range ps {
		sort.Slice(p.rtt, func(a, b int) bool { return p.rtt[a] < p.rtt[b] })
		rtts[i] = p.rtt
	}
	return rtts, nil
}

func percentile(sorted []time.Duration, p float64) float64 {
	i := int(p*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / float64(time.Microsecond)
}

// loadTest runs tunnels idle tunnels (proc load children) through a fresh chain
// of v; with traffic, every tunnel then carries echoes at the same time.
// measureRSS reads the relays' RSS before and after opening them.
func (c *config) loadTest(v variant, target string, procs, tunnels int, traffic bool) (*loadResult, error) {
	ch, err := c.startChain(v, target, "-load"+strconv.Itoa(tunnels))
	if err != nil {
		return nil, err
	}
	defer ch.stop()
	time.Sleep(300 * time.Millisecond)
	res := &loadResult{tunnels: tunnels}
	c0, s0, err := ch.rss()
	if err != nil {
		return nil, err
	}
	me, err := self()
	if err != nil {
		return nil, err
	}
	var kids []*child
	defer func() {
		for _, k := range kids {
			k.stop()
		}
	}()
	rounds := "0"
	if traffic {
		rounds = "4"
	}
	start := time.Now()
	for i := 0; i < procs; i++ {
		n := tunnels / procs
		if i < tunnels%procs {
			n++
		}
		args := []string{"load", "-entry", ch.tun.entry, "-n", strconv.Itoa(n), "-rounds", rounds}
		if ch.tun.socksTarget != "" {
			args = append(args, "-socks", ch.tun.socksTarget)
		}
		k, err := startChild(c.logDir, fmt.Sprintf("%s-load%d", strings.ReplaceAll(v.String(), " ", "-"), i), me, true, args...)
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	for _, k := range kids {
		ok, bad, first, err := readStatus(k, "OPEN")
		if err != nil {
			return nil, err
		}
		res.opened += ok
		res.openErrs += bad
		if res.firstErr == "" {
			res.firstErr = first
		}
	}
	res.openTime = time.Since(start)
	time.Sleep(time.Second)
	c1, s1, err := ch.rss()
	if err != nil { // a relay died
		res.firstErr = fmt.Sprintf("%v; client log: %s; server log: %s", err, ch.client.tail(), ch.server.tail())
		return res, nil
	}
	res.rssOK = true
	if res.opened > 0 {
		res.clientPer = float64(c1-c0) / float64(res.opened)
		res.serverPer = float64(s1-s0) / float64(res.opened)
	}
	for _, k := range kids {
		if _, err := io.WriteString(k.in, "GO\n"); err != nil {
			return nil, err
		}
	}
	for _, k := range kids {
		ok, bad, first, err := readStatus(k, "DONE")
		if err != nil {
			return nil, err
		}
		res.carried += ok
		res.carryErrs += bad
		if res.firstErr == "" {
			res.firstErr = first
		}
	}
	res.alive = ch.client.alive() && ch.server.alive()
	return res, nil
}

type loadResult struct {
	tunnels, opened, openErrs, carried, carryErrs int
	clientPer, serverPer                          float64 // RSS bytes per tunnel
	openTime                                      time.Duration
	alive, rssOK                                  bool
	firstErr                                      string
}

func (l *loadResult) ok() bool {
	return l.alive && l.opened == l.tunnels && l.carried == l.tunnels && l.openErrs == 0 && l.carryErrs == 0
}

// readStatus reads the load child's line "WORD ok errors first-error".
func readStatus(k *child, word string) (ok, bad int, first string, err error) {
	type line struct {
		s   string
		err error
	}
	ch := make(chan line, 1)
	go func() { s, err := k.out.ReadString('\n'); ch <- line{s, err} }()
	var l line
	select {
	case l = <-ch:
	case <-time.After(3 * time.Minute):
		return 0, 0, "", fmt.Errorf("%s: no %s line after 3 minutes", k.name, word)
	}
	if l.err != nil {
		return 0, 0, "", fmt.Errorf("%s: %v: %s", k.name, l.err, k.tail())
	}
	f := strings.SplitN(strings.TrimSpace(l.s), " ", 4)
	if len(f) < 3 || f[0] != word {
		return 0, 0, "", fmt.Errorf("%s: unexpected line %q", k.name, l.s)
	}
	ok, err1 := strconv.Atoi(f[1])
	bad, err2 := strconv.Atoi(f[2])
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, "", fmt.Errorf("%s: %q: %v", k.name, l.s, err)
	}
	if len(f) == 4 {
		first = f[3]
	}
	return ok, bad, first, nil
}

// measure runs everything and collects the figures.
func measure(c *config) (*report, error) {
	me, err := self()
	if err != nil {
		return nil, err
	}
	tAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	target, err := startChild(c.logDir, "target", me, false, "target", "-listen", tAddr)
	if err != nil {
		return nil, err
	}
	defer target.stop()
	if err := waitListening(tAddr, target); err != nil {
		return nil, err
	}

	rep := &report{cfg: c, start: time.Now(), nofile: raiseNofile()}
	var chains []*chain
	defer func() {
		for _, ch := range chains {
			ch.stop()
		}
	}()
	for _, fam := range strings.Split(c.families, ",") {
		for _, b64 := range []bool{false, true} {
			v := variant{fam, b64}
			if b64 && (fam == "raw" || fam == "copy") { // plain TCP: nothing to encode
				continue
			}
			ch, err := c.startChain(v, tAddr, "")
			if err != nil {
				fmt.Println("SKIP", v, ":", err)
				rep.skipped = append(rep.skipped, fmt.Sprintf("%s: %v", v, err))
				continue
			}
			chains = append(chains, ch)
			rep.results = append(rep.results, &result{v: v})
		}
	}
	if len(chains) == 0 {
		return nil, errors.New("no chain could start")
	}

	// Throughput, interleaved: each round visits every chain, in an order that
	// rotates from round to round. Then latency, interleaved more finely (see
	// pingRound), for the binary chains.
	gib := float64(2*c.size) / (1 << 30) // both directions of a round
	rep.stat0, rep.load0 = readCPUStat(), loadavg()
	for r := 0; r < c.rounds; r++ {
		st := readCPUStat()
		for i := range chains {
			k := (i + r) % len(chains)
			ch, res := chains[k], rep.results[k]
			var cpuC, cpuS float64
			for _, up := range []bool{true, false} {
				mbps, cc, cs, err := c.bulk(ch, up)
				if err != nil {
					return nil, err
				}
				if g := gib / 2; up {
					res.up, res.upC, res.upS = append(res.up, mbps), append(res.upC, cc/g), append(res.upS, cs/g)
				} else {
					res.down, res.downC, res.downS = append(res.down, mbps), append(res.downC, cc/g), append(res.downS, cs/g)
				}
				cpuC, cpuS = cpuC+cc, cpuS+cs
			}
			res.cpuC, res.cpuS = append(res.cpuC, cpuC/gib), append(res.cpuS, cpuS/gib)
			fmt.Printf("round %d %-15s up %7.0f MB/s  down %7.0f MB/s  relays' CPU %.2f s/GiB (up %.2f, down %.2f)\n", r+1, ch.v, last(res.up), last(res.down), (cpuC+cpuS)/gib,
				last(res.upC)+last(res.upS), last(res.downC)+last(res.downS))
		}
		steal, idle := shares(st, readCPUStat())
		rep.steal, rep.idle = append(rep.steal, steal), append(rep.idle, idle)
	}
	rep.stat1, rep.load1 = readCPUStat(), loadavg()
	var binChains []*chain
	var binResults []*result
	for i, ch := range chains {
		if !ch.v.base64 {
			binChains, binResults = append(binChains, ch), append(binResults, rep.results[i])
		}
	}
	for r := 0; r < c.rounds && c.pings > 0; r++ {
		rtts, err := pingRound(binChains, c.pings)
		if err != nil {
			return nil, fmt.Errorf("latency: %v", err)
		}
		fmt.Printf("round %d latency", r+1)
		for i, res := range binResults {
			res.p50 = append(res.p50, percentile(rtts[i], 0.50))
			res.p99 = append(res.p99, percentile(rtts[i], 0.99))
			fmt.Printf("  %s p50 %.0f µs p99 %.0f µs", res.v, last(res.p50), last(res.p99))
		}
		fmt.Println()
	}
	for _, ch := range chains {
		ch.stop()
	}
	chains = nil

	// Memory per idle tunnel, fresh processes for each repetition, interleaved.
	for r := 0; r < c.rssRounds && c.rssTunnels > 0; r++ {
		for _, res := range rep.results {
			if res.v.base64 {
				continue
			}
			n := c.rssTunnels
			if res.v.family == "raw" {
				n = min(n, rawMaxTunnels(rep.nofile))
			}
			l, err := c.loadTest(res.v, tAddr, 1, n, false)
			if err != nil {
				fmt.Printf("memory %s: %v\n", res.v, err)
				res.notes = append(res.notes, fmt.Sprintf("memory test failed: %v", err))
				continue
			}
			res.rssTunnels = n
			fmt.Printf("memory %-8s %d idle tunnels (%d failed) in %v: client %.1f KiB, server %.1f KiB per tunnel\n",
				res.v, l.opened, l.openErrs, l.openTime.Round(time.Millisecond), l.clientPer/1024, l.serverPer/1024)
			if l.rssOK && l.opened > 0 {
				res.rssClient = append(res.rssClient, l.clientPer)
				res.rssServer = append(res.rssServer, l.serverPer)
			} else {
				res.notes = append(res.notes, fmt.Sprintf("memory test: a relay died (%s)", l.firstErr))
			}
			if l.openErrs > 0 {
				res.notes = append(res.notes, fmt.Sprintf("memory test: %d of %d tunnels failed to open (%s)", l.openErrs, l.tunnels, l.firstErr))
			}
		}
	}

	// Concurrent tunnels carrying traffic.
	for _, res := range rep.results {
		if res.v.base64 || c.concTunnels == 0 || !contains(c.concFamilies, res.v.family) {
			continue
		}
		l, err := c.loadTest(res.v, tAddr, c.concProcs, c.concTunnels, true)
		if err != nil {
			fmt.Printf("load %s: %v\n", res.v, err)
			res.notes = append(res.notes, fmt.Sprintf("load test failed: %v", err))
			continue
		}
		res.conc = l
		fmt.Printf("load %-8s %d tunnels: opened %d (%d errors) in %v, carried %d (%d errors), relays alive %v %s\n",
			res.v, l.tunnels, l.opened, l.openErrs, l.openTime.Round(time.Millisecond), l.carried, l.carryErrs, l.alive, l.firstErr)
	}
	rep.end = time.Now()
	return rep, nil
}

// rawMaxTunnels is how many tunnels a raw relay can hold: io.Copy between TCP
// sockets splices through a pipe (2 descriptors) per direction, so each tunnel
// takes 6 descriptors in each relay.
func rawMaxTunnels(nofile uint64) int {
	return int(nofile)/6 - 300
}

func contains(list, s string) bool {
	for _, x := range strings.Split(list, ",") {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

func last(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	return x[len(x)-1]
}
