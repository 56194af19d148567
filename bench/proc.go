package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// raiseNofile raises RLIMIT_NOFILE's soft limit to the hard limit (children inherit it).
func raiseNofile() uint64 {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 0
	}
	l.Cur = l.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Cur
}

// child is a process started by the harness; its stdout and stderr go to a log file.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	in   io.WriteCloser // stdin, when asked for
	out  *bufio.Reader  // stdout, when asked for
}

// startChild runs prog with args. With pipes, stdin and stdout are connected to
// the harness (load children); otherwise stdout joins stderr in the log file.
func startChild(logDir, name, prog string, pipes bool, args ...string) (*child, error) {
	ch := &child{name: name, log: filepath.Join(logDir, name+".log")}
	f, err := os.Create(ch.log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(prog, args...)
	cmd.Env = cleanEnv()
	cmd.Stderr = f
	if pipes {
		if ch.in, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		ch.out = bufio.NewReader(out)
	} else {
		cmd.Stdout = f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	ch.cmd = cmd
	return ch, nil
}

// cleanEnv drops TOR_PT_* so that our programs run in standalone mode.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOR_PT_") {
			env = append(env, kv)
		}
	}
	return env
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// alive reports whether the process has not exited (it is our child, so until
// Wait it stays a zombie: look at its state).
func (c *child) alive() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.pid()))
	if err != nil {
		return false
	}
	f := statFields(string(b))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// stop sends SIGTERM, waits up to 3 s, then kills.
func (c *child) stop() {
	if c.in != nil {
		c.in.Close()
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// tail returns the end of the child's log, for error messages.
func (c *child) tail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return strings.TrimSpace(string(b))
}

// waitListening polls addr until it accepts a TCP connection.
func waitListening(addr string, ch *child) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if !ch.alive() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s does not listen on %s: %s", ch.name, addr, ch.tail())
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// statFields returns the fields of /proc/PID/stat after the command name, so
// that index 0 is the state (field 3) and utime, stime (fields 14, 15) are 11, 12.
func statFields(s string) []string {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// cpuSeconds is the time pid's threads have run so far: the sum of the first field (ns on a
// CPU) of /proc/PID/task/*/schedstat, which is exact where utime+stime comes in 10 ms ticks
// (a round of one chain takes some 100-300 ms). Go's threads do not exit, so none is lost.
func cpuSeconds(pid int) (float64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var ns int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread has just ended
		}
		f := strings.Fields(string(b))
		if len(f) < 1 {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: empty", pid, t.Name())
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: %v", pid, t.Name(), err)
		}
		ns += v
	}
	return float64(ns) / 1e9, nil
}

// cpuStat is the machine's time in each state so far (the "cpu" line of /proc/stat: user,
// nice, system, idle, iowait, irq, softirq, steal), in ticks.
type cpuStat [8]int64

func readCPUStat() cpuStat {
	var c cpuStat
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i := range c {
		if i+1 < len(f) {
			c[i], _ = strconv.ParseInt(f[i+1], 10, 64)
		}
	}
	return c
}

// shares are the shares (0-1) of the machine's time from a to b that the hypervisor gave to
// others while this machine wanted to run (steal) and that was idle.
func shares(a, b cpuStat) (steal, idle float64) {
	var total int64
	for i := range a {
		total += b[i] - a[i]
	}
	if total <= 0 {
		return 0, 0
	}
	return float64(b[7]-a[7]) / float64(total), float64(b[3]-a[3]+b[4]-a[4]) / float64(total)
}

// rssBytes is VmRSS of pid.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}
