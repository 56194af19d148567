package pt

import (
	"os"
	"syscall"
)

// socks5Causes maps SOCKS5 failure codes to the errors a failed connection gives for them; the
// first of each is what a SOCKS5 proxy's failure reply wraps (socks5CodeError). Windows returns
// Winsock's codes (WSAE*) or the system's (ERROR_*), which syscall does not name: its
// ECONNREFUSED and the like are invented values that no Windows call returns.
func socks5Causes() map[byte][]error {
	return map[byte][]error{
		socksNetUnreachable:  {syscall.Errno(10051), syscall.Errno(1231)},                        // WSAENETUNREACH, ERROR_NETWORK_UNREACHABLE
		socksHostUnreachable: {syscall.Errno(10065), syscall.Errno(1232)},                        // WSAEHOSTUNREACH, ERROR_HOST_UNREACHABLE
		socksConnRefused:     {syscall.Errno(10061), syscall.Errno(1225)},                        // WSAECONNREFUSED, ERROR_CONNECTION_REFUSED
		socksTTLExpired:      {os.ErrDeadlineExceeded, syscall.Errno(10060), syscall.Errno(121)}, // WSAETIMEDOUT, ERROR_SEM_TIMEOUT
	}
}
