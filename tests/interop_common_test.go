//go:build interop

package tests

// Helpers shared by the interop tests (interop_*_test.go), beside those of
// faketor_test.go (closedAddr for a free port, socks5, the fake Extended
// ORPort newExtOR), programs_test.go (echoServer, writeCert) and main_test.go
// (listen, the SHA-256-checked echo roundTrip): processes whose output goes to
// a file and which die with the test, waiting for a TCP port, an echo.
// Everything listens on 127.0.0.1 only.

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lookPath fails the test when a peer program is missing (install-deps.sh
// installs them): a missing peer is a failure, never a skip.
func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (run tests/install-deps.sh as root): %v", name, err)
	}
	return p
}

// child is a process started by a test; stdout and stderr go to Log.
type child struct {
	Cmd  *exec.Cmd
	Log  string
	done chan struct{}
	err  error
}

// startChild starts name with args, output to a file in a temp dir. At the end
// of the test it is killed, and if the test failed the output's tail is
// logged. env entries are added to the test's environment.
func startChild(t *testing.T, env []string, name string, args ...string) *child {
	t.Helper()
	return startChildFiles(t, env, nil, name, args...)
}

// startChildFiles is startChild with extra open files for the child (fd 3 on).
func startChildFiles(t *testing.T, env []string, files []*os.File, name string, args ...string) *child {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(name)+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a group of its own, for Stop
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	f.Close()
	p := &child{Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("output of %s (last 3000 bytes):\n%s", filepath.Base(name), tail(p.Output(), 3000))
		}
	})
	return p
}

// Stop ends the process: SIGTERM (nginx and Chromium then end their own
// children), SIGKILL after 5 s, and finally SIGKILL to its process group for
// any child left behind.
func (p *child) Stop() {
	if !p.Exited() {
		p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.Cmd.Process.Kill()
			<-p.done
		}
	}
	syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
}

// Exited reports whether the process has ended.
func (p *child) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns everything the process printed so far.
func (p *child) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// waitOutput waits until the process has printed something containing s and
// returns the output; it fails the test if the process exits first.
func (p *child) waitOutput(t *testing.T, s string) string {
	t.Helper()
	deadline := time.Now().Add(interopTimeout)
	for time.Now().Before(deadline) {
		if out := p.Output(); strings.Contains(out, s) {
			return out
		}
		if p.Exited() {
			t.Fatalf("%s exited (%v) before printing %q", p.Cmd.Path, p.err, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not print %q within %v", p.Cmd.Path, s, interopTimeout)
	return ""
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// waitTCP waits until addr accepts a TCP connection; fails the test if p (may
// be nil) exits first or the time runs out.
func waitTCP(t *testing.T, addr string, p *child) {
	t.Helper()
	deadline := time.Now().Add(interopTimeout)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		if p != nil && p.Exited() {
			t.Fatalf("%s exited (%v) before listening on %s", p.Cmd.Path, p.err, addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after %v", addr, interopTimeout)
}

// echo copies everything c sends back to it, then half-closes.
func echo(c net.Conn) {
	io.Copy(c, c)
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		hc.CloseWrite()
	}
}
