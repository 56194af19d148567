//go:build !unix

package pt

// WatchSignals does nothing where SIGHUP and SIGUSR1 do not exist (Windows): see term_unix.go.
func WatchSignals(l *Logger, summary func()) (stop func()) { return func() {} }
