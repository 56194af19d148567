package pt

import (
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Termination tells the program when to stop accepting connections and when to exit
// (pt-spec 3.4).
type Termination struct {
	stop, now         chan struct{}
	stopOnce, nowOnce sync.Once
}

// MonitorTermination watches SIGTERM, SIGINT, stdin EOF (only if exitOnStdinClose) and the
// parent's death (getppid changes, polled every second). SIGTERM, stdin EOF and the parent's
// death close both channels; the first SIGINT closes Stop, the second Now. Once Now is closed
// the signal handlers are removed, so a further signal has its default effect.
func MonitorTermination(stdin io.Reader, exitOnStdinClose bool) *Termination {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	return monitor(sigs, func() { signal.Stop(sigs) }, stdin, exitOnStdinClose, os.Getppid, time.Second)
}

// monitor is MonitorTermination with its sources injected: the signal channel and the function
// that stops it, stdin, and getppid polled every interval. Its watching goroutine ends once Now
// is closed; the one reading stdin ends at stdin's EOF or error.
func monitor(sigs <-chan os.Signal, stopSignals func(), stdin io.Reader, exitOnStdinClose bool,
	getppid func() int, interval time.Duration) *Termination {
	t := &Termination{stop: make(chan struct{}), now: make(chan struct{})}
	if exitOnStdinClose && stdin != nil {
		go func() {
			_, _ = io.Copy(io.Discard, stdin) // tor writes nothing; we wait for EOF
			t.fireNow()
		}()
	}
	ppid := getppid() // read now: the parent must not change before we look
	go func() {
		defer stopSignals()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		interrupts := 0
		for {
			select {
			case <-t.now:
				return
			case <-tick.C:
				if getppid() != ppid {
					t.fireNow()
				}
			case sig := <-sigs:
				if sig == syscall.SIGINT {
					interrupts++
				}
				t.fireStop()
				if sig != syscall.SIGINT || interrupts == 2 {
					t.fireNow()
				}
			}
		}
	}()
	return t
}

// Stop is closed at the first SIGINT or at any "now" event: stop accepting.
func (t *Termination) Stop() <-chan struct{} { return t.stop }

// Now is closed at SIGTERM, a second SIGINT, stdin EOF or the parent's death: exit.
func (t *Termination) Now() <-chan struct{} { return t.now }

func (t *Termination) fireStop() { t.stopOnce.Do(func() { close(t.stop) }) }

func (t *Termination) fireNow() {
	t.fireStop()
	t.nowOnce.Do(func() { close(t.now) })
}
