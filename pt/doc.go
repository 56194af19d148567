// Package pt implements what a Tor pluggable transport needs besides its own protocol, for Tor's
// pluggable transport interface, version 1 (pt-spec.txt, https://spec.torproject.org/pt-spec). Each
// function's doc says what it does; this overview is a map with the spec references.
//
// Talking to tor (pt-spec 3.2, 3.3): [ClientSetup] and [ServerSetup] read the TOR_PT_*
// environment; [Output] is the only writer of stdout, and no argument can break its lines.
//
// Arguments (pt-spec 3.5, 3.2.3, 3.3.3): [Args], [ParseClientArgs],
// [ParseServerTransportOptions], and the SMETHOD ARGS of [Output.Smethod].
//
// SOCKS (pt-spec 3.5, RFC 1928, RFC 1929, SOCKS4a): [SocksHandshake], then [SocksConn.Grant]
// or [SocksConn.Reject].
//
// Extended ORPort (ext-orport-spec.txt, SAFE_COOKIE of proposal 217): [DialOr].
//
// Outbound connections (pt-spec 3.2.2, 3.3.2): [Dialer], directly or through the socks5,
// socks4a or http CONNECT proxy of TOR_PT_PROXY, from the outbound bind addresses when set
// (never for loopback destinations).
//
// Privacy (pt-spec 4): unless told otherwise, [Logger] replaces everything that looks like an
// IP address by "[scrubbed]". It cannot recognize host names, so errors do not repeat a
// target's or a SOCKS request's name.
//
// [Relay] copies both directions; [StallConn] bounds writes by progress, never idleness alone
// (tor keeps idle connections open on purpose); [Limited] rate-limits a warning that remote
// peers can cause; [MonitorTermination] turns SIGTERM, SIGINT, stdin EOF and the parent's
// death (pt-spec 3.4) into two channels: stop accepting, and exit now.
//
// Concurrency: Dialer, Output, Logger, Limited and Termination are safe for concurrent use. The
// other functions work on the connections they are given and leave no goroutine behind. The
// package holds no mutable state but its buffer pools.
package pt
