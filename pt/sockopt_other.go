//go:build !windows

package pt

import "syscall"

// setSockopt sets the SOL_SOCKET option opt of socket fd (see Buffers; sockopt_windows.go).
func setSockopt(fd uintptr, opt, value int) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, value)
}

// readable returns a function that waits until c has bytes to read, or an error, by peeking at
// one byte without taking it (see waiter).
func readable(c syscall.Conn) func() {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	var b [1]byte
	peek := func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return err != syscall.EAGAIN
	}
	return func() { _ = rc.Read(peek) }
}
