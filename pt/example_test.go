package pt_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/pt"
)

func ExampleOutput() {
	out := pt.NewOutput(os.Stdout)
	out.Version()
	out.Cmethod("websocket", "socks5", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1080})
	out.CmethodsDone()
	out.Smethod("websocket", &net.TCPAddr{IP: net.IPv6loopback, Port: 80}, pt.Args{"url": {"ws://example.com/"}})
	out.Log("warning", "two\nlines and a \"quote\"")
	out.StatusVersion("websocket-client", "1.0")
	// Output:
	// VERSION 1
	// CMETHOD websocket socks5 127.0.0.1:1080
	// CMETHODS DONE
	// SMETHOD websocket [::1]:80 ARGS:url=ws://example.com/
	// LOG SEVERITY=warning MESSAGE="two\nlines and a \"quote\""
	// STATUS TYPE=version IMPLEMENTATION=websocket-client VERSION=1.0
}

func ExampleParseClientArgs() {
	args, err := pt.ParseClientArgs(`url=ws://example.com/;front=cdn.example;k=a\;b\=c;k=2`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(args["url"][0], args["front"], args["k"])
	_, err = pt.ParseClientArgs("url")
	fmt.Println(err)
	// Output:
	// ws://example.com/ [cdn.example] [a;b=c 2]
	// client arguments: missing '=' after key "url"
}

func ExampleParseServerTransportOptions() {
	opts, err := pt.ParseServerTransportOptions(`websocket:path=/ws;obfs4:iat-mode=0;websocket:max\=x=1`)
	fmt.Println(opts["websocket"], opts["obfs4"], err)
	// Output:
	// map[max=x:[1] path:[/ws]] map[iat-mode:[0]] <nil>
}

func ExampleServerSetup() {
	dir, err := os.MkdirTemp("", "pt-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	env := map[string]string{
		"TOR_PT_MANAGED_TRANSPORT_VER":    "1",
		"TOR_PT_STATE_LOCATION":           filepath.Join(dir, "state"),
		"TOR_PT_SERVER_TRANSPORTS":        "websocket,obfs4",
		"TOR_PT_SERVER_BINDADDR":          "websocket-0.0.0.0:80,obfs4-0.0.0.0:443",
		"TOR_PT_SERVER_TRANSPORT_OPTIONS": "websocket:path=/tunnel",
		"TOR_PT_ORPORT":                   "127.0.0.1:9001",
		"TOR_PT_EXTENDED_SERVER_PORT":     "",
	}
	getenv := func(k string) string { return env[k] }
	info, err := pt.ServerSetup(pt.NewOutput(os.Stdout), getenv, []string{"websocket"})
	if err != nil {
		return // the ENV-ERROR line is printed; a program would exit 1
	}
	for _, b := range info.Bindaddrs {
		fmt.Println(b.MethodName, b.Addr, b.Options)
	}
	fmt.Println(info.OrAddr, info.ExtendedOrAddr)

	env["TOR_PT_ORPORT"] = "localhost:9001"
	_, err = pt.ServerSetup(pt.NewOutput(os.Stdout), getenv, []string{"websocket"})
	fmt.Println(err != nil)
	// Output:
	// VERSION 1
	// websocket 0.0.0.0:80 map[path:[/tunnel]]
	// 127.0.0.1:9001 <nil>
	// VERSION 1
	// ENV-ERROR TOR_PT_ORPORT: "localhost:9001" is not ip:port
	// true
}

func ExampleNewLogger() {
	// In managed mode, messages go to tor as LOG lines, addresses scrubbed.
	log, err := pt.NewLogger(pt.NewOutput(os.Stdout), nil, "info", false)
	if err != nil {
		fmt.Println(err)
		return
	}
	log.Infof("connection from %s closed", "[2001:db8::5]:41000")
	log.Debugf("below the minimum level: dropped")
	// Output:
	// LOG SEVERITY=info MESSAGE="connection from [scrubbed] closed"
}

func ExampleRelay() {
	client, a := net.Pipe()
	b, server := net.Pipe()
	go func() {
		client.Write([]byte("hello"))
		client.Close() // EOF: Relay closes b (a net.Pipe has no CloseWrite)
	}()
	done := make(chan struct{})
	go func() {
		data, _ := io.ReadAll(server)
		fmt.Printf("server got %q\n", data)
		server.Close()
		close(done)
	}()
	aToB, bToA, err := pt.Relay(a, b, pt.RelayOptions{})
	<-done
	fmt.Println(aToB, bToA, err)
	// Output:
	// server got "hello"
	// 5 0 <nil>
}
