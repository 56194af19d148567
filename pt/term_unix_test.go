//go:build unix

package pt

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMonitorTerminationRealSignals sends real signals to the test process; MonitorTermination
// has installed its handlers before returning, so they cannot kill the process.
func TestMonitorTerminationRealSignals(t *testing.T) {
	term := MonitorTermination(nil, false, false)
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(term.stop, generous) {
		t.Fatal("SIGINT did not close Stop")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(term.now, generous) {
		t.Fatal("second SIGINT did not close Now")
	}

	term = MonitorTermination(nil, false, true)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(term.now, generous) || !isClosed(term.stop) {
		t.Fatal("SIGTERM did not close Now and Stop")
	}
}

// waitFor polls cond every 10 ms until it holds or d has passed, and reports whether it held.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// fileHas reports whether the file at path contains s.
func fileHas(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), s)
}

// TestWatchSignals sends real SIGUSR1 and SIGHUP to the test process, playing logrotate: the
// log file is renamed, SIGHUP makes the logger write to a new file of the same name, and the
// renamed one keeps the earlier lines only. The handlers keep the process alive.
func TestWatchSignals(t *testing.T) {
	dir := t.TempDir()
	file, rotated := filepath.Join(dir, "pt.log"), filepath.Join(dir, "pt.log.1")
	l, err := OpenLogger(nil, file, "notice", false, false)
	if err != nil {
		t.Fatal(err)
	}
	summaries := make(chan struct{}, 1)
	stop := WatchSignals(l, func() { summaries <- struct{}{} })
	defer func() { stop(); l.w.(io.Closer).Close() }()

	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	received(t, summaries)

	l.Noticef("before rotation")
	if err := os.Rename(file, rotated); err != nil {
		t.Fatal(err)
	}
	l.Noticef("renamed, not yet reopened")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !waitFor(generous, func() bool { return fileHas(file, "SIGHUP: log file reopened") }) {
		t.Fatal("no new log file after SIGHUP")
	}
	l.Noticef("after rotation")
	old, _ := os.ReadFile(rotated)
	cur, _ := os.ReadFile(file)
	if !strings.Contains(string(old), "before rotation") || !strings.Contains(string(old), "not yet reopened") ||
		strings.Contains(string(old), "after rotation") {
		t.Errorf("rotated file:\n%s", old)
	}
	if strings.Contains(string(cur), "before rotation") || !strings.Contains(string(cur), "after rotation") {
		t.Errorf("new file:\n%s", cur)
	}

	// Reopen fails when the directory is gone; the open file stays in use.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err == nil {
		t.Error("Reopen in a removed directory succeeded")
	}
}
