package pt

import (
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Termination tells the program when to stop accepting connections and when to exit (pt-spec 3.4).
type Termination struct {
	stop, now         chan struct{} // closed to stop accepting; closed to exit
	fireStop, fireNow func()        // close stop; close stop and now: each at most once
}

// MonitorTermination watches SIGTERM, SIGINT, stdin EOF (if exitOnStdinClose) and the parent's
// death (if watchParent: getppid changes, polled every second; for managed mode, as a standalone
// program's parent may be a shell that exits at once; not on Windows, where the parent's id never
// changes and tor closes stdin instead). The first SIGINT means stop accepting; a second one or
// any other event means exit now, which stops accepting too (see Wait). Once it is time to exit
// the signal handlers are removed, so a further signal has its default effect.
func MonitorTermination(stdin io.Reader, exitOnStdinClose, watchParent bool) *Termination {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	var getppid func() int // nil: the parent is not watched
	if watchParent && runtime.GOOS != "windows" {
		getppid = os.Getppid
	}
	return monitor(sigs, func() { signal.Stop(sigs) }, stdin, exitOnStdinClose, getppid, time.Second)
}

// monitor is MonitorTermination with its sources injected: the signal channel and the function
// that stops it, stdin, and getppid polled every interval (nil: the parent is not watched). Its
// watching goroutine ends once now is closed; the one reading stdin ends at stdin's EOF or error.
func monitor(sigs <-chan os.Signal, stopSignals func(), stdin io.Reader, exitOnStdinClose bool,
	getppid func() int, interval time.Duration) *Termination {
	t := &Termination{stop: make(chan struct{}), now: make(chan struct{})}
	t.fireStop = sync.OnceFunc(func() { close(t.stop) })
	t.fireNow = sync.OnceFunc(func() { t.fireStop(); close(t.now) })
	if exitOnStdinClose && stdin != nil {
		go func() {
			_, _ = io.Copy(io.Discard, stdin) // tor writes nothing; we wait for EOF
			t.fireNow()
		}()
	}
	ppid := 0
	if getppid != nil {
		ppid = getppid() // read now: the parent must not change before we look
	}
	go func() {
		defer stopSignals()
		var tick <-chan time.Time // nil, never ready, when the parent is not watched
		if getppid != nil {
			ticker := time.NewTicker(interval)
			defer ticker.Stop()
			tick = ticker.C
		}
		interrupts := 0
		for {
			select {
			case <-t.now:
				return
			case <-tick:
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

// Wait is the rest of a program's life once its listeners are open: it calls report every hour
// until it is time to stop accepting, then closes the listeners, waits for the open connections
// to end (Drain) and calls report once more.
func (t *Termination) Wait(listeners []io.Closer, active *atomic.Int64, report func()) {
	hourly := time.NewTicker(time.Hour)
	defer hourly.Stop()
wait:
	for {
		select {
		case <-hourly.C:
			report()
		case <-t.stop:
			break wait
		}
	}
	for _, l := range listeners {
		l.Close()
	}
	t.Drain(active)
	report()
}

// Drain waits until active (the count of open connections) is zero, or it is time to exit.
func (t *Termination) Drain(active *atomic.Int64) {
	for active.Load() > 0 {
		select {
		case <-t.now:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
