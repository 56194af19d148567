//go:build unix

package tests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitFile waits until the file at path contains s, and returns the file's text.
func waitFile(t *testing.T, path, s string) string {
	t.Helper()
	for deadline := time.Now().Add(waitLong); ; time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), s) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in %s:\n%s", s, filepath.Base(path), b)
		}
	}
}

// TestSignals plays logrotate with both programs in managed mode and -log: the log file is
// renamed, SIGHUP makes the program write to a new file of that name and go on running, and
// SIGUSR1 logs a summary at once (and sends tor its STATUS line).
func TestSignals(t *testing.T) {
	for _, name := range []string{"websocket-client", "websocket-server"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			file, rotated := filepath.Join(dir, "pt.log"), filepath.Join(dir, "pt.log.1")
			env := clientEnv(t)
			if name == "websocket-server" {
				env = serverEnv(t, newExtOR(t))
			}
			p := startProc(t, name, env, "-log", file)
			waitFile(t, file, "listening")
			if err := os.Rename(file, rotated); err != nil {
				t.Fatal(err)
			}
			p.cmd.Process.Signal(syscall.SIGHUP)
			waitFile(t, file, "SIGHUP: log file reopened")
			p.cmd.Process.Signal(syscall.SIGUSR1)
			now := waitFile(t, file, "summary: 0 connections, 0 bytes sent, 0 bytes received")
			if !p.waitOutput("STATUS TRANSPORT=websocket CONNECTIONS=0 BYTES_SENT=0 BYTES_RECEIVED=0") {
				t.Errorf("no STATUS line after SIGUSR1:\n%s", p.output())
			}
			if strings.Contains(now, "listening") {
				t.Errorf("the new log file has lines from before SIGHUP:\n%s", now)
			}
			if old, err := os.ReadFile(rotated); err != nil || !strings.Contains(string(old), "listening") ||
				strings.Contains(string(old), "SIGHUP") {
				t.Errorf("the renamed log file (%v):\n%s", err, old)
			}
			select {
			case <-p.done:
				t.Fatalf("exited after SIGHUP and SIGUSR1:\n%s", p.output())
			default:
			}
			p.cmd.Process.Signal(syscall.SIGTERM)
			if code, err := p.wait(waitLong); err != nil || code != 0 {
				t.Errorf("exit status %d (%v) after SIGTERM, want 0", code, err)
			}
		})
	}
}
