// Package pt implements what a Tor pluggable transport needs besides its own protocol:
// version 1 of Tor's pluggable transport interface (pt-spec.txt,
// https://spec.torproject.org/pt-spec), the SOCKS server tor talks to, the Extended ORPort
// client (ext-orport-spec.txt), outbound connections through TOR_PT_PROXY, logging that keeps
// client addresses out of logs, the copy loop between two connections and the termination
// monitor.
//
// # Talking to tor (pt-spec 3.2, 3.3)
//
// [ClientSetup] and [ServerSetup] read the TOR_PT_* environment through an injected getenv
// function, negotiate the version (VERSION 1, or VERSION-ERROR no-version) and return the
// configuration; any missing or malformed variable gives one ENV-ERROR line naming the variable
// and an error, after which the program exits. [Output] is the only writer of stdout: each line
// is written whole under a mutex, names and addresses are validated and free text is escaped,
// so no argument can break a line or add one. LOG messages are C-style quoted strings as tor's
// kvline parser reads them. STATUS lines quote values the same way.
//
// # Arguments (pt-spec 3.5, 3.2.3, 3.3.3)
//
// [Args] holds key=value pairs with duplicates in order. [ParseClientArgs] reads per-bridge
// arguments ("k=v;k2=v2", backslash escapes) and [ParseServerTransportOptions] reads
// TOR_PT_SERVER_TRANSPORT_OPTIONS ("t:k=v;t:k2=v2"); SMETHOD ARGS are written with '\', '='
// and ',' escaped.
//
// # SOCKS server (pt-spec 3.5, RFC 1928, RFC 1929, SOCKS4a)
//
// [SocksHandshake] reads one SOCKS5 request (no authentication, or RFC 1929 username/password
// carrying the per-bridge arguments, split across both fields when longer than 255 bytes) or
// one SOCKS4a request (arguments in USERID), within a timeout. The caller answers with
// [SocksConn.Grant] once the tunnel is up, or [SocksConn.Reject] with a reply code fitting the
// error.
//
// # Extended ORPort (ext-orport-spec.txt, proposal 217)
//
// [DialOr] connects to tor's Extended ORPort, authenticates with SAFE_COOKIE (the cookie file
// is re-read at each connection, the server hash checked in constant time), sends USERADDR,
// TRANSPORT and DONE, and waits for OKAY, all under one deadline. Without an Extended ORPort it
// connects to the plain ORPort.
//
// # Outbound connections (pt-spec 3.2.2, 3.3.2)
//
// [Dialer] makes the client's outbound connections, directly or through the upstream proxy of
// TOR_PT_PROXY (socks5, socks4a or http CONNECT), from the outbound bind addresses when set.
// ClientSetup validates the proxy URL and prints PROXY-ERROR for a bad one; the client prints
// PROXY DONE.
//
// # Logging and privacy (pt-spec 4)
//
// [Logger] writes timestamped lines to a file or LOG lines to tor. Unless told otherwise it
// replaces everything that looks like an IPv4 or IPv6 address, with or without port, by
// "[scrubbed]", erring towards scrubbing too much.
//
// # Relay and termination (pt-spec 3.4)
//
// [Relay] is the one copy loop: both directions, half-close at EOF, both connections closed
// on error, small buffers while idle. [MonitorTermination] turns SIGTERM, SIGINT, stdin EOF
// and the parent's death into two channels: stop accepting, and exit now.
//
// # Concurrency
//
// Output, Logger and Termination are safe for concurrent use. Relay and the SOCKS and Extended
// ORPort functions work on the connections they are given and start no goroutine that outlives
// them, except Relay's second direction, which ends before Relay returns. The package holds no
// mutable state except its buffer pools.
package pt
