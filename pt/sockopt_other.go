//go:build !windows

package pt

import "syscall"

// setSockopt sets the SOL_SOCKET option opt of socket fd (see Buffers; sockopt_windows.go).
func setSockopt(fd uintptr, opt, value int) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, value)
}
