package pt

import "syscall"

// setSockopt sets the SOL_SOCKET option opt of socket fd (see Buffers; sockopt_other.go).
func setSockopt(fd uintptr, opt, value int) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, opt, value)
}

// readable returns nil: on Windows a large buffer is taken before the read that waits.
func readable(syscall.Conn) func() { return nil }
