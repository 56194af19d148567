// Command websocket-client is the client of the websocket pluggable transport: it carries each
// SOCKS connection from tor inside a WebSocket (ws:// or wss://) to a bridge. See its man page.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/pt"
	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

// version is set at build time with -ldflags "-X main.version=..."; init falls back on the
// module's version, then "dev" (pt.Version).
var version string

func init() { version = pt.Version(version) }

const (
	methodName     = "websocket"
	socksTimeout   = 30 * time.Second // for tor's SOCKS request
	connectTimeout = 60 * time.Second // TCP (and proxy) dial plus TLS handshake
)

// bridge says how to reach one bridge, from the Bridge line's arguments over the defaults.
type bridge struct {
	url   *url.URL
	front string // TLS server name, when it differs from the URL's host
	opt   ws.Options
}

// client holds what every connection shares.
type client struct {
	defaults bridge
	dialer   *pt.Dialer
	log      *pt.Logger
	status   *pt.Output // managed mode: summaries go to tor too
	stats    pt.Stats
}

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("websocket-client", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:1080", "SOCKS `address` to listen on (standalone mode)")
	defaults := pt.Args{} // bridge arguments given as flags
	arg := func(k, usage string) { fs.Func(k, usage, func(v string) error { defaults.Add(k, v); return nil }) }
	arg("url", "WebSocket `URL` used when the SOCKS request carries no url= (default ws://TARGET/)")
	arg("front", "TLS server `name` (SNI) to send instead of the URL's host")
	arg("protocol", "offer the `base64` subprotocol")
	proxy := fs.String("proxy", "", "outgoing proxy `URL`: socks5://, socks4a:// or http:// (standalone mode)")
	lf, code, done := pt.CommandLine(fs, os.Args[1:], version)
	if done {
		return code
	}
	usage := func(err error) int { fmt.Fprintln(os.Stderr, "websocket-client:", err); return 2 }
	c := &client{dialer: &pt.Dialer{Timeout: connectTimeout}}
	managed := pt.Managed(os.Getenv)
	out := pt.NewOutput(os.Stdout)
	var err error
	if c.defaults, err = parseBridge(defaults, bridge{}); err != nil {
		return usage(err)
	} else if c.log, err = pt.OpenLogger(out, lf.File, lf.Level, lf.Unsafe, managed); err != nil {
		return usage(err)
	}
	if *proxy != "" {
		if c.dialer.ProxyURL, err = pt.ParseProxyURL(*proxy); err != nil {
			return usage(fmt.Errorf("-proxy: %w", err))
		}
	}
	info := &pt.ClientInfo{}
	if managed {
		if info, err = pt.ClientSetup(out, os.Getenv, []string{methodName}); err != nil {
			return 1
		}
		*c.dialer = pt.Dialer{ProxyURL: info.ProxyURL, OutboundV4: info.OutboundV4,
			OutboundV6: info.OutboundV6, Timeout: connectTimeout}
		c.status = out
		if info.ProxyURL != nil {
			out.ProxyDone()
		}
		out.StatusVersion("websocket-client", version)
		if len(info.MethodNames) == 0 {
			out.CmethodsDone()
			return 0
		}
		*listen = "127.0.0.1:0" // loopback only, and only IPv4: tor warns about duplicates
	}
	term := pt.MonitorTermination(os.Stdin, info.ExitOnStdinClose, managed)
	pt.WatchSignals(c.log, func() { c.stats.Report(c.log, c.status, methodName) }) // SIGHUP, SIGUSR1
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		if managed {
			out.CmethodError(methodName, err.Error())
			out.CmethodsDone()
		}
		c.log.Errorf("listening: %v", err)
		return 1
	}
	if managed {
		out.Cmethod(methodName, "socks5", ln.Addr())
		out.CmethodsDone()
	}
	c.log.Noticef("websocket-client %s listening for SOCKS on %s", version, ln.Addr())
	go c.acceptLoop(ln)
	go func() {
		for range time.Tick(time.Hour) {
			c.stats.Report(c.log, c.status, methodName)
		}
	}()
	<-term.Stop()
	ln.Close()
	term.Drain(&c.stats.Active)
	c.stats.Report(c.log, c.status, methodName)
	return 0
}

func (c *client) acceptLoop(ln net.Listener) {
	for {
		switch conn, err := ln.Accept(); {
		case errors.Is(err, net.ErrClosed):
			return
		case err != nil:
			c.log.Warnf("accepting: %v", err) // e.g. out of file descriptors: wait a little
			time.Sleep(100 * time.Millisecond)
		default:
			c.stats.Active.Add(1)
			go c.handle(conn)
		}
	}
}

// handle serves one SOCKS connection: the SOCKS request, the connection to the bridge, and only
// then the SOCKS reply, so that tor learns whether the tunnel is really up.
func (c *client) handle(conn net.Conn) {
	relaying := false
	defer func() {
		if !relaying {
			conn.Close()
			c.stats.Active.Add(-1)
		}
	}()
	sc, err := pt.SocksHandshake(conn, socksTimeout)
	if err != nil {
		c.log.Warnf("%v", err) // "pt: socks handshake: ..."; only tor connects here: worth seeing
		return
	}
	wsConn, err := c.connect(sc)
	if err != nil {
		c.log.Warnf("connecting to the bridge: %s", unnamed(err))
		sc.Reject(err)
		return
	}
	relaying = c.tunnel(sc, wsConn)
}

// tunnel grants tor's SOCKS request and relays it to the WebSocket in a goroutine of its own,
// whose stack has not grown in the handshakes. It reports whether the relay started; if not, the
// WebSocket is closed and the caller still owns sc and the count in c.stats.Active.
func (c *client) tunnel(sc *pt.SocksConn, wsConn *ws.Conn) bool {
	if err := sc.Grant(); err != nil {
		c.log.Infof("SOCKS reply: %v", err)
		wsConn.Close()
		return false
	}
	c.stats.Conns.Add(1)
	go func() {
		defer c.stats.Active.Add(-1)
		if _, _, err := pt.Relay(sc.Conn, wsConn, &c.stats.Sent, &c.stats.Received); err != nil { // closes both
			c.log.Infof("connection to the bridge ended: %v", err)
		}
	}()
	return true
}

// connect dials the SOCKS target (the Bridge line's address, never the URL's host, which is
// not resolved at all) and runs TLS for wss and then the WebSocket handshake.
func (c *client) connect(sc *pt.SocksConn) (*ws.Conn, error) {
	b, err := parseBridge(sc.Args, c.defaults)
	if err != nil {
		return nil, err
	}
	u := cmp.Or(b.url, &url.URL{Scheme: "ws", Host: sc.Target, Path: "/"})
	if b.front != "" && u.Scheme != "wss" {
		return nil, errors.New("front= needs a wss:// url")
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := c.dialer.DialContext(ctx, "tcp", sc.Target)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "wss" {
		tc := tls.Client(conn, &tls.Config{ServerName: cmp.Or(b.front, u.Hostname())})
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS: %w", err)
		}
		conn = tc
	}
	wsConn, err := ws.Client(conn, u, &b.opt)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("WebSocket handshake: %w", err)
	}
	return wsConn, nil
}

// unnamed is err's text without the host names that DNS and certificate errors carry: the
// logger scrubs addresses, not names, and the name of a bridge or front gives the bridge away.
func unnamed(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &dnsErr):
		return "resolving a host name: " + dnsErr.Err
	case errors.As(err, &certErr):
		return fmt.Sprintf("TLS: certificate not accepted (%T)", certErr.Err)
	}
	return err.Error()
}

// parseBridge applies per-bridge arguments (url=, front=, protocol=) over the defaults d.
func parseBridge(args pt.Args, d bridge) (bridge, error) {
	for k, vs := range args {
		if len(vs) != 1 {
			return d, fmt.Errorf("argument %s given %d times", pt.SafeName(k), len(vs))
		}
		switch v := vs[0]; k {
		case "url":
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" || u.User != nil || u.Fragment != "" {
				return d, errors.New("bad url argument: want ws://HOST[:PORT]/PATH or wss://HOST[:PORT]/PATH")
			}
			d.url = u
		case "front":
			d.front = v
		case "protocol":
			if v != "base64" {
				return d, fmt.Errorf("unknown protocol %s (only base64 is supported)", pt.SafeName(v))
			}
			d.opt.Base64 = true
		default:
			return d, fmt.Errorf("unknown argument %s (known: url, front, protocol)", pt.SafeName(k))
		}
	}
	return d, nil
}
