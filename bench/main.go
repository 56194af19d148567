// Command bench is the performance harness of the websocket pluggable transport.
//
// It runs, interleaved round by round on loopback, the same two-hop tunnel
// (load generator → client relay → server relay → target) three ways:
//
//	raw      two plain TCP io.Copy relays
//	gorilla  a client and a server relay written with github.com/gorilla/websocket
//	ours     bin/websocket-client (standalone SOCKS5) and bin/websocket-server (-orport)
//
// and writes doc/PERFORMANCE.md and doc/performance.svg. Every relay runs as a
// separate process (the raw and gorilla relays are subcommands of this binary),
// so memory and CPU are read from /proc the same way for all three.
//
// Usage:
//
//	go run . [-o ../doc/PERFORMANCE.md] [-rounds 5] [-size 256] [-strict] ...
//	bench relay-raw -listen ADDR -to ADDR
//	bench relay-gorilla-client -listen ADDR -url ws://ADDR/ [-base64]
//	bench relay-gorilla-server -listen ADDR -to ADDR [-base64]
//	bench load -entry ADDR [-socks ADDR] -n N ...   (a load-generator child)
//	bench target -listen ADDR                       (sink / source / echo target)
package main

import (
	"fmt"
	"os"
)

func main() {
	var err error
	cmd, args := "", os.Args[1:]
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "":
		err = runHarness(args)
	case "relay-raw":
		err = cmdRelayRaw(args)
	case "relay-gorilla-client":
		err = cmdGorillaClient(args)
	case "relay-gorilla-server":
		err = cmdGorillaServer(args)
	case "load":
		err = cmdLoad(args)
	case "target":
		err = cmdTarget(args)
	default:
		err = fmt.Errorf("unknown subcommand %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
