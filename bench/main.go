// Command bench is the performance harness of the websocket pluggable transport.
//
// It runs, interleaved round by round on loopback, the same two-hop tunnel
// (load generator → client relay → server relay → target) four ways:
//
//	raw      two plain TCP io.Copy relays (splice: the bytes never enter them)
//	copy     two TCP relays that read into a buffer, then write it (the least a
//	         relay that must touch every byte, as unmasking does, can cost)
//	gorilla  a client and a server relay written with github.com/gorilla/websocket
//	ours     bin/websocket-client (standalone SOCKS5) and bin/websocket-server (-orport)
//
// and writes doc/PERFORMANCE.md and doc/performance.svg. Every relay runs as a
// separate process (the raw, copy and gorilla relays are subcommands of this
// binary), so memory and CPU are read from /proc the same way for all four.
//
// Usage:
//
//	go run . [-o ../doc/PERFORMANCE.md] [-rounds 5] [-size 256] [-strict] ...
//	bench relay-raw -listen ADDR -to ADDR
//	bench relay-copy -listen ADDR -to ADDR
//	bench relay-gorilla-client -listen ADDR -url ws://ADDR/ [-base64]
//	bench relay-gorilla-server -listen ADDR -to ADDR [-base64]
//	bench load -entry ADDR [-socks ADDR] -n N ...   (a load-generator child)
//	bench target -listen ADDR                       (sink / source / echo target)
//	bench bulk -entry ADDR [-socks ADDR] -size MiB [-up]  (one transfer, for profiling by hand)
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run dispatches to the subcommand named by args[0], or to the harness.
func run(args []string) error {
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "":
		return runHarness(args)
	case "relay-raw":
		return cmdRelayTCP(cmd, args, moveSpliced)
	case "relay-copy":
		return cmdRelayTCP(cmd, args, moveCopied)
	case "relay-gorilla-client":
		return cmdGorillaClient(args)
	case "relay-gorilla-server":
		return cmdGorillaServer(args)
	case "load":
		return cmdLoad(args)
	case "bulk":
		return cmdBulk(args)
	case "target":
		return cmdTarget(args)
	}
	return fmt.Errorf("unknown subcommand %q", cmd)
}
