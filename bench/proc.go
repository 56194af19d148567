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

// clockTick is USER_HZ, 100 on every Linux architecture Go supports.
const clockTick = 100

// cpuSeconds is utime+stime of pid.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := statFields(string(b))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return float64(u+s) / clockTick, nil
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
