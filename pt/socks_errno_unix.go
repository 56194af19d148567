//go:build !windows

package pt

import (
	"os"
	"syscall"
)

// socks5Causes maps SOCKS5 failure codes to the errors a failed connection gives for them; the
// first of each is what a SOCKS5 proxy's failure reply wraps (socks5CodeError).
func socks5Causes() map[byte][]error {
	return map[byte][]error{
		socksNetUnreachable:  {syscall.ENETUNREACH},
		socksHostUnreachable: {syscall.EHOSTUNREACH},
		socksConnRefused:     {syscall.ECONNREFUSED},
		socksTTLExpired:      {os.ErrDeadlineExceeded},
	}
}
