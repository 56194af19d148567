package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

type result struct {
	v                      variant
	up, down               []float64 // MB/s per round
	p50, p99               []float64 // µs per round
	cpuC, cpuS             []float64 // client and server relay CPU seconds per GiB, per round
	upC, upS, downC, downS []float64 // the same for each direction alone (per GiB of that direction)
	rssClient, rssServer   []float64 // bytes per idle tunnel, per repetition
	rssTunnels             int
	conc                   *loadResult
	notes                  []string
}

// cpu is both relays' CPU seconds per GiB, per round.
func (r *result) cpu() []float64 { return sum(r.cpuC, r.cpuS) }

// upCPU and downCPU are the same for each direction alone.
func (r *result) upCPU() []float64   { return sum(r.upC, r.upS) }
func (r *result) downCPU() []float64 { return sum(r.downC, r.downS) }

func (r *result) upMBps() []float64   { return r.up }
func (r *result) downMBps() []float64 { return r.down }

func (r *result) rssTotal() []float64 { return sum(r.rssClient, r.rssServer) }

func sum(a, b []float64) []float64 {
	t := make([]float64, len(a))
	for i := range t {
		t[i] = a[i] + b[i]
	}
	return t
}

type check struct {
	name, goal, got string
	pass, measured  bool
}

type report struct {
	cfg        *config
	start, end time.Time
	results    []*result
	skipped    []string
	nofile     uint64
	checks     []check
	// The machine during the throughput rounds: /proc/stat before and after, load averages,
	// and each round's share of steal and idle time.
	stat0, stat1 cpuStat
	load0, load1 string
	steal, idle  []float64
}

func (rep *report) find(family string, b64 bool) *result {
	for _, r := range rep.results {
		if r.v.family == family && r.v.base64 == b64 {
			return r
		}
	}
	return nil
}

// spread is "median (min–max)".
type spread struct{ med, lo, hi float64 }

func stat(x []float64) spread {
	if len(x) == 0 {
		return spread{}
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{m, s[0], s[len(s)-1]}
}

func (s spread) format(scale float64, prec int) string {
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.med/scale, prec, s.lo/scale, prec, s.hi/scale)
}

// pairedRatio is the median over rounds of a[i]/b[i]: the variants of one round
// ran back to back, so pairing them cancels much of the machine's drift.
func pairedRatio(a, b []float64) (float64, bool) {
	n := min(len(a), len(b))
	if n == 0 {
		return 0, false
	}
	q := make([]float64, n)
	for i := range q {
		q[i] = a[i] / b[i]
	}
	return stat(q).med, true
}

// evaluate fills rep.checks and returns how many targets were missed or not measured.
func (rep *report) evaluate() int {
	ours, raw, gor := rep.find("ours", false), rep.find("raw", false), rep.find("gorilla", false)
	ours64, gor64, cp := rep.find("ours", true), rep.find("gorilla", true), rep.find("copy", false)
	// cpu checks the paired ratio of f (CPU seconds per GiB) of ours to other's.
	cpu := func(name, goal string, f func(*result) []float64, other *result, want float64) {
		c := check{name: name, goal: goal}
		if ours != nil && other != nil {
			q, ok := pairedRatio(f(ours), f(other))
			c.measured, c.pass = ok, ok && q <= want
			c.got = fmt.Sprintf("%.2f× (%.2f s vs %.2f s per GiB)", q, stat(f(ours)).med, stat(f(other)).med)
		}
		rep.checks = append(rep.checks, c)
	}
	cpu("relays' CPU per GiB vs raw TCP chain", "≤ 2.0×", (*result).cpu, raw, 2.0)
	cpu("relays' CPU per GiB vs gorilla/websocket", "≤ 0.7×", (*result).cpu, gor, 0.7)
	// Per direction: download need not touch the payload, so it is held to the raw
	// chain, which splices; upload must unmask every byte, so to the copy chain.
	cpu("download: relays' CPU per GiB vs raw TCP chain", "≤ 1.5×", (*result).downCPU, raw, 1.5)
	cpu("upload: relays' CPU per GiB vs copy chain", "≤ 1.1×", (*result).upCPU, cp, 1.1)
	ratio := func(name, goal string, a, b *result, want float64) {
		c := check{name: name, goal: goal}
		if a != nil && b != nil {
			u, ok1 := pairedRatio(a.up, b.up)
			d, ok2 := pairedRatio(a.down, b.down)
			c.measured = ok1 && ok2
			c.pass = c.measured && u >= want && d >= want
			c.got = fmt.Sprintf("upload %.2f×, download %.2f×", u, d)
		}
		rep.checks = append(rep.checks, c)
	}
	ratio("binary throughput vs raw TCP chain", "≥ 0.85× each way", ours, raw, 0.85)
	ratio("base64 throughput vs gorilla base64", "≥ 1.3× each way", ours64, gor64, 1.3)
	c := check{name: "download throughput vs raw TCP chain", goal: "≥ 0.95×"}
	if ours != nil && raw != nil {
		q, ok := pairedRatio(ours.down, raw.down)
		c.measured, c.pass = ok, ok && q >= 0.95
		c.got = fmt.Sprintf("%.2f× (%.0f MB/s vs %.0f MB/s)", q, stat(ours.down).med, stat(raw.down).med)
	}
	rep.checks = append(rep.checks, c)

	c = check{name: "memory per idle tunnel", goal: "≤ 40 KiB client + server"}
	if ours != nil && len(ours.rssClient) > 0 {
		t := stat(ours.rssTotal()).med
		c.measured, c.pass = true, t <= 40<<10
		c.got = fmt.Sprintf("%.1f KiB (client %.1f + server %.1f)", t/1024, stat(ours.rssClient).med/1024, stat(ours.rssServer).med/1024)
	}
	rep.checks = append(rep.checks, c)

	c = check{name: "concurrent tunnels", goal: fmt.Sprintf("%d carrying traffic, no error", rep.cfg.concTunnels)}
	if ours != nil && ours.conc != nil {
		l := ours.conc
		c.measured, c.pass = true, l.ok()
		c.got = fmt.Sprintf("%d opened, %d carried, %d errors", l.opened, l.carried, l.openErrs+l.carryErrs)
		if !l.alive {
			c.got += ", a relay died"
		}
	}
	rep.checks = append(rep.checks, c)

	c = check{name: "round-trip latency p50 vs raw TCP chain", goal: "≤ 1.1×"}
	if ours != nil && raw != nil {
		q, ok := pairedRatio(ours.p50, raw.p50)
		c.measured, c.pass = ok, ok && q <= 1.1
		c.got = fmt.Sprintf("%.2f× (%.0f µs vs %.0f µs)", q, stat(ours.p50).med, stat(raw.p50).med)
	}
	rep.checks = append(rep.checks, c)

	missed := 0
	for _, c := range rep.checks {
		if !c.pass {
			missed++
		}
	}
	return missed
}

func (c check) verdict() string {
	switch {
	case !c.measured:
		return "NOT MEASURED"
	case c.pass:
		return "PASS"
	}
	return "FAIL"
}

func (rep *report) summary() string {
	var b strings.Builder
	fmt.Fprintln(&b, "\nchain            upload MB/s          download MB/s        relays' CPU s/GiB   rtt p50 µs  p99 µs  KiB/idle tunnel (c+s)")
	for _, r := range rep.results {
		fmt.Fprintf(&b, "%-16s %-20s %-20s %-19s", r.v, stat(r.up).format(1, 0), stat(r.down).format(1, 0), stat(r.cpu()).format(1, 2))
		if len(r.p50) > 0 {
			fmt.Fprintf(&b, "  %10.0f  %6.0f", stat(r.p50).med, stat(r.p99).med)
		}
		if len(r.rssClient) > 0 {
			fmt.Fprintf(&b, "  %.1f + %.1f", stat(r.rssClient).med/1024, stat(r.rssServer).med/1024)
		}
		fmt.Fprintln(&b)
	}
	for _, s := range rep.skipped {
		fmt.Fprintln(&b, "SKIPPED", s)
	}
	fmt.Fprintln(&b, rep.machine())
	for _, c := range rep.checks {
		fmt.Fprintf(&b, "%-12s %-47s %-32s %s\n", c.verdict(), c.name, c.goal, c.got)
	}
	return b.String()
}

// keepMarker separates the generated part of PERFORMANCE.md from notes written
// by hand (profiles, analysis), which the harness keeps when it rewrites the file.
const keepMarker = "<!-- Generated above by bench/ (make bench); text below this line is kept as written. -->"

func (rep *report) writeReport(path, svgPath string) error {
	kept := "\n"
	if old, err := os.ReadFile(path); err == nil {
		if _, after, ok := strings.Cut(string(old), keepMarker); ok {
			kept = after
		}
	}
	c := rep.cfg
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Performance\n\n")
	p("Measured by the harness in `bench/` (`make bench`) on %s, in %s, on a machine with %d cores (%s/%s, %s, kernel %s). %s\n\n",
		rep.start.UTC().Format("2006-01-02 15:04 MST"), rep.end.Sub(rep.start).Round(time.Second), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), kernel(), rep.machine())
	p("The same two-hop tunnel is built four ways and measured interleaved, round by round (%d rounds, the order rotating each round), on loopback:\n\n", c.rounds)
	p("- **raw**: load generator → TCP relay → TCP relay → target; each relay is `io.Copy` both ways (splice(2) between the sockets: the data never enters the relay).\n")
	p("- **copy**: the same, except that each relay reads into a 32 KiB buffer of its own, then writes it (`io.CopyBuffer` with neither side's `ReadFrom` nor `WriteTo`): the least a relay can cost when every byte passes through its memory, as it must where WebSocket masks (upload), since every byte is unmasked.\n")
	p("- **gorilla**: load generator → TCP↔WebSocket client relay → WebSocket↔TCP server relay → target, written with github.com/gorilla/websocket (`WriteMessage` per TCP read of up to 32 KiB, `NextReader` per message, reused buffers; write buffer 32 KiB from a pool, read buffer gorilla's default). For base64, each message is base64 text (subprotocol `base64`).\n")
	p("- **ours**: load generator → `websocket-client` (standalone, SOCKS5) → `websocket-server` (standalone, `-orport` to the target) → target; base64 with `-protocol base64` and `-base64=true`.\n\n")
	if c.label != "" {
		p("Our programs: %s, from `%s`.\n\n", c.label, c.bin)
	}
	p("Every relay is its own process (the raw, copy and gorilla relays are subcommands of the harness binary), so CPU and memory are read from `/proc` the same way for all four: CPU as the run time of the process's threads (`/proc/PID/task/*/schedstat`, in ns), memory as VmRSS (`/proc/PID/status`).\n\n")

	p("## Cost per byte\n\nWhat a bridge operator pays for is CPU per byte; throughput on this machine is far above what one tor process pushes. Relays' CPU: the client and the server relay processes' CPU time during one upload and one download of %d MiB per round, per GiB of payload; median (min–max) of %d rounds. Ratios are paired: the median over rounds of (chain ÷ other) within the same round; a base64 chain is compared with gorilla's base64 chain.\n\n", c.size>>20, c.rounds)
	p("| chain | relays' CPU s/GiB | client | server | CPU vs raw | CPU vs copy | CPU vs gorilla | upload vs raw | download vs raw |\n|---|---|---|---|---|---|---|---|---|\n")
	raw, cp := rep.find("raw", false), rep.find("copy", false)
	for _, r := range rep.results {
		gor := rep.find("gorilla", r.v.base64)
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.v, stat(r.cpu()).format(1, 2), stat(r.cpuC).format(1, 2), stat(r.cpuS).format(1, 2),
			pairedText(r, raw, (*result).cpu), pairedText(r, cp, (*result).cpu), pairedText(r, gor, (*result).cpu),
			pairedText(r, raw, (*result).upMBps), pairedText(r, raw, (*result).downMBps))
	}

	p("\nThe same, each direction alone: CPU seconds per GiB of that direction's payload, client + server relay = both; paired ratios of both to the raw chain's and to the copy chain's.\n\n")
	p("| chain | upload: client | server | both | vs raw | vs copy | download: client | server | both | vs raw | vs copy |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.results {
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.v,
			stat(r.upC).format(1, 2), stat(r.upS).format(1, 2), stat(r.upCPU()).format(1, 2), pairedText(r, raw, (*result).upCPU), pairedText(r, cp, (*result).upCPU),
			stat(r.downC).format(1, 2), stat(r.downS).format(1, 2), stat(r.downCPU()).format(1, 2), pairedText(r, raw, (*result).downCPU), pairedText(r, cp, (*result).downCPU))
	}

	p("\n## Targets\n\n| target | goal | measured | result |\n|---|---|---|---|\n")
	for _, c := range rep.checks {
		p("| %s | %s | %s | **%s** |\n", c.name, c.goal, c.got, c.verdict())
	}
	p("\n## Why other harnesses can give other figures\n\n")
	p("All chains share the machine's cores with the load generator and the target, so a chain's throughput is what the machine leaves it, and its ratio to another chain moves with the machine. Where cores are to spare, every chain runs about as fast as the load generator and the ratios approach 1; where they are scarce, the ratios approach the inverse of the chains' CPU per byte. What moves them:\n\n")
	p("- **Size of the pushes.** The load generator writes %d KiB at a time (`-chunk`); bigger writes mean fewer system calls and wake-ups per byte in every relay, which a raw chain that splices feels most.\n", c.chunk>>10)
	p("- **One direction or both.** Each round here runs an upload, then a download, never both at once; a test that runs only uploads measures only the masking direction of our client (the costlier one) and our server's unmasking.\n")
	p("- **Size of the chunks relayed.** Our relays read at most 32 KiB at a time and send one frame per read; gorilla's relays likewise, and the copy relays read at most 32 KiB at a time too; the raw relays move whatever the socket holds.\n")
	p("- **Steal time.** On a virtual machine the hypervisor takes time from whatever runs at that moment, so the spread of every figure grows with steal, and the ratios move: with 50%% steal, an earlier run of this report read our chain at 1.09× the raw chain's throughput; here steal was %s.\n\n", stealText(rep))
	p("CPU per GiB is the figure that travels best from machine to machine: it counts what the relays do per byte, not what the machine leaves them. Cache contention and frequency still move it, hence its spread.\n\n")

	p("## Throughput\n\n%d MiB each way per round through a new tunnel; payload MB/s (10⁶ bytes/s), median (min–max) of %d rounds.\n\n", c.size>>20, c.rounds)
	p("| chain | upload MB/s | download MB/s | relays' CPU s/GiB |\n|---|---|---|---|\n")
	for _, r := range rep.results {
		p("| %s | %s | %s | %s |\n", r.v, stat(r.up).format(1, 0), stat(r.down).format(1, 0), stat(r.cpu()).format(1, 2))
	}
	p("\n## Latency\n\n%d round trips of 64 bytes per round through one tunnel of each chain to an echo target (after 50 not counted), taken in slices of 100 chain after chain so that a slow spell of the machine falls on every chain alike; µs, median (min–max) over rounds of each round's percentile.\n\n", c.pings)
	p("| chain | p50 µs | p99 µs |\n|---|---|---|\n")
	for _, r := range rep.results {
		if len(r.p50) > 0 {
			p("| %s | %s | %s |\n", r.v, stat(r.p50).format(1, 0), stat(r.p99).format(1, 0))
		}
	}
	p("\n## Memory per idle tunnel\n\nFresh relay processes; VmRSS of each before and 1 s after opening %d tunnels (fewer for raw, whose relays need 6 descriptors per tunnel; the copy chain's relays hold two 32 KiB buffers per tunnel, allocated up front; each proven by a one-byte echo, then idle), difference ÷ tunnels; KiB, median (min–max) of %d repetitions.\n\n", c.rssTunnels, c.rssRounds)
	p("| chain | tunnels | client KiB | server KiB | together KiB |\n|---|---|---|---|---|\n")
	for _, r := range rep.results {
		if len(r.rssClient) > 0 {
			p("| %s | %d | %s | %s | %s |\n", r.v, r.rssTunnels, stat(r.rssClient).format(1024, 1), stat(r.rssServer).format(1024, 1), stat(r.rssTotal()).format(1024, 1))
		}
	}
	p("\n## Concurrent tunnels\n\nFresh relay processes; %d load-generator processes open %d tunnels together (at most 32 being opened at a time by each), then every tunnel carries 4 echoes of 1 KiB at the same time, checked byte for byte. RLIMIT_NOFILE of every process: %d. Chains: %s (the raw relays cannot take part: io.Copy splices through a pipe per direction, 6 descriptors per tunnel in each relay, so about %d tunnels at most; the copy chain need not, being there for its CPU per byte).\n\n", c.concProcs, c.concTunnels, rep.nofile, c.concFamilies, rawMaxTunnels(rep.nofile)+300)
	p("| chain | opened | carried traffic | errors | time to open | relays alive | first error |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rep.results {
		if l := r.conc; l != nil {
			p("| %s | %d / %d | %d | %d | %s | %v | %s |\n", r.v, l.opened, l.tunnels, l.carried, l.openErrs+l.carryErrs, l.openTime.Round(time.Millisecond), l.alive, mdEscape(l.firstErr))
		}
	}
	for _, r := range rep.results {
		for _, n := range r.notes {
			p("\n%s: %s\n", r.v, mdEscape(n))
		}
	}
	for _, s := range rep.skipped {
		p("\nNot measured: %s\n", mdEscape(s))
	}
	p("\n![Throughput, latency and memory per tunnel](%s)\n\n", filepath.Base(svgPath))
	p("## Reproduce\n\n```\nmake build\nmake bench          # the micro-benchmarks, then the harness\ncd bench && go run . -o ../doc/PERFORMANCE.md -rounds %d -size %d -pings %d -rss-tunnels %d -rss-rounds %d -conc-tunnels %d\n```\n\n",
		c.rounds, c.size>>20, c.pings, c.rssTunnels, c.rssRounds, c.concTunnels)
	p("`go run . -h` lists the flags (sizes, rounds, which chains, extra arguments for the programs). `-strict` makes a missed target exit non-zero; otherwise only a harness error does. The machine is shared, so figures move from run to run; compare ratios within one run rather than figures across runs.\n\n")
	p("%s%s", keepMarker, kept)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(svgPath, []byte(rep.svg()), 0o644)
}

// pairedText is the paired ratio of f(r) to f(other), or "–" without other.
func pairedText(r, other *result, f func(*result) []float64) string {
	if other == nil {
		return "–"
	}
	q, ok := pairedRatio(f(r), f(other))
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%.2f×", q)
}

// machine describes the machine during the throughput rounds.
func (rep *report) machine() string {
	idle := 0.0
	if len(rep.idle) > 0 {
		_, idle = shares(rep.stat0, rep.stat1)
	}
	return fmt.Sprintf("Load average at the start of the throughput rounds %s, at their end %s; during them the machine was %.0f%% idle, and steal time (CPU time the hypervisor gave to other guests) was %s.",
		rep.load0, rep.load1, 100*idle, stealText(rep))
}

// stealText is the steal time over all rounds and per round.
func stealText(rep *report) string {
	steal, _ := shares(rep.stat0, rep.stat1)
	return fmt.Sprintf("%.1f%% of the machine's time (per round: %s%%)", 100*steal, stat(rep.steal).format(0.01, 1))
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
