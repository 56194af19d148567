package pt

import (
	"net"
	"os"
	"syscall"
)

// osReplyCases are errors of a failed connection as Windows gives them: Winsock's codes from
// connectex, or the system's from a completed ConnectEx. syscall's POSIX names are never returned.
func osReplyCases() []replyCase {
	dial := func(code syscall.Errno) error {
		return &net.OpError{Op: "dial", Err: os.NewSyscallError("connectex", code)}
	}
	return []replyCase{
		{"WSAECONNREFUSED", dial(10061), 0x05},
		{"ERROR_CONNECTION_REFUSED", dial(1225), 0x05},
		{"WSAENETUNREACH", dial(10051), 0x03},
		{"ERROR_NETWORK_UNREACHABLE", dial(1231), 0x03},
		{"WSAEHOSTUNREACH", dial(10065), 0x04},
		{"ERROR_HOST_UNREACHABLE", dial(1232), 0x04},
		{"WSAETIMEDOUT", dial(10060), 0x06},
		{"ERROR_SEM_TIMEOUT", dial(121), 0x06},
		{"WSAECONNRESET is no refusal", dial(syscall.WSAECONNRESET), 0x01},
	}
}
