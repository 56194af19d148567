//go:build !windows

package pt

import (
	"net"
	"os"
	"syscall"
)

// osReplyCases are errors of a failed connection as this system gives them.
func osReplyCases() []replyCase {
	return []replyCase{
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, 0x05},
		{"network unreachable", os.NewSyscallError("connect", syscall.ENETUNREACH), 0x03},
		{"host unreachable", syscall.EHOSTUNREACH, 0x04},
	}
}
