// Package pt implements what a Tor pluggable transport needs besides its own protocol:
// version 1 of Tor's pluggable transport interface (pt-spec.txt,
// https://spec.torproject.org/pt-spec), the SOCKS server tor talks to, the Extended ORPort
// client (ext-orport-spec.txt), outbound connections through TOR_PT_PROXY, logging without
// client addresses, the one copy loop and the termination monitor.
//
// Talking to tor (pt-spec 3.2, 3.3): [ClientSetup] and [ServerSetup] read the TOR_PT_*
// environment through an injected getenv, print VERSION 1 (or VERSION-ERROR) and return the
// configuration; a missing or malformed variable gives one ENV-ERROR (or PROXY-ERROR) line
// naming it, and an error. [Output] is the only writer of stdout: each line is written whole,
// names and addresses are validated and free text is escaped, so no argument can break a line.
// LOG messages and STATUS values are C-style quoted strings as tor's kvline parser reads them.
//
// Arguments (pt-spec 3.5, 3.2.3, 3.3.3): [Args] keeps duplicate keys in order.
// [ParseClientArgs] reads per-bridge arguments "k=v;k2=v2" and [ParseServerTransportOptions]
// reads "t:k=v;t:k2=v2", both with backslash escapes; SMETHOD ARGS escape '\', '=' and ','.
//
// SOCKS (pt-spec 3.5, RFC 1928, RFC 1929, SOCKS4a): [SocksHandshake] reads one SOCKS5 request
// (per-bridge arguments in the RFC 1929 username and password, concatenated) or one SOCKS4a
// request (arguments in USERID) within a timeout, reading exactly the request's bytes; the
// caller answers with [SocksConn.Grant] once the tunnel is up, or [SocksConn.Reject] with the
// reply code that fits the error (refused, unreachable, timeout, general failure).
//
// Extended ORPort (ext-orport-spec.txt): [DialOr] authenticates with SAFE_COOKIE (cookie file
// re-read at each connection, server hash checked in constant time), sends USERADDR, TRANSPORT
// and DONE, and waits for OKAY, under one 20 s deadline; without an Extended ORPort it
// connects to the plain ORPort.
//
// Outbound connections (pt-spec 3.2.2, 3.3.2): [Dialer] connects directly or through the
// TOR_PT_PROXY proxy (socks5, socks4a, http CONNECT), from the outbound bind addresses when
// set (never for loopback destinations; [DialOr] uses them too, for an ORPort that is not on
// loopback). A SOCKS5 proxy's failure code becomes an error that
// Reject turns back into the same code. ClientSetup validates the proxy URL; the client
// prints PROXY DONE.
//
// Privacy (pt-spec 4): unless told otherwise, [Logger] replaces everything that looks like an
// IPv4 or IPv6 address, with or without port, by "[scrubbed]", erring towards too much. It
// cannot recognize host names, so errors do not repeat a target's or a SOCKS request's name.
//
// [Relay] copies both directions, half-closes at EOF, closes both on error (a WebSocket with
// status 1011), ends a tunnel left half-closed for longer than its bound, and holds only small
// buffers while idle. [StallConn] bounds writes by progress, so that a peer that stops reading
// cannot hold a tunnel, while a slow one is never cut; no bound is ever put on idleness alone
// (tor keeps idle connections open on purpose). [Limited] rate-limits a warning that remote
// peers can cause. [MonitorTermination] turns SIGTERM, SIGINT, stdin EOF and (in
// managed mode) the parent's death (pt-spec 3.4) into two channels: stop accepting, and exit now.
//
// Concurrency: Output, Logger and Termination are safe for concurrent use. The other functions
// work on the connections they are given and leave no goroutine behind. The package holds no
// mutable state but its buffer pools.
package pt
