//go:build unix

package pt

import (
	"os"
	"os/signal"
	"syscall"
)

// WatchSignals makes SIGHUP reopen l's log file (for logrotate) and SIGUSR1 call summary, and
// the program go on running, until stop is called. Windows has neither signal (term_other.go).
func WatchSignals(l *Logger, summary func()) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGUSR1 {
				summary()
			} else if err := l.Reopen(); err != nil {
				l.Errorf("SIGHUP: reopening the log file: %v", err)
			} else if l.file != "" {
				l.Noticef("SIGHUP: log file reopened")
			}
		}
	}()
	return func() { signal.Stop(sigs); close(sigs) }
}
