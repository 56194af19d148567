// Command websocket-client is the client of the websocket pluggable transport: it carries each
// SOCKS connection from tor inside a WebSocket (ws:// or wss://) to a bridge. See its man page.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/pt"
	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

var version string // see pt.Version

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
	defaults  bridge
	dialer    *pt.Dialer
	log       *pt.Logger
	stats     pt.Stats
	stall     time.Duration // StallConn bound on every tunnel write
	halfClose time.Duration // RelayOptions.HalfClose
	flash     *flash
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
	c := &client{dialer: &pt.Dialer{Timeout: connectTimeout}}
	fs.DurationVar(&c.stall, "stall-timeout", 5*time.Minute, "close a tunnel whose peer takes no data for this long (0: never)")
	fs.DurationVar(&c.halfClose, "half-close-timeout", time.Minute, "close a tunnel this long after one direction ended (0: never)")
	fs.IntVar(&c.dialer.Buffer, "socket-buffer", pt.SocketBuffer, "kernel send and receive buffers of each WebSocket, in `bytes` (0: the system's)")
	c.flash = &flash{c: c}
	c.flash.flags(fs)
	managed := pt.Managed(os.Getenv)
	out, log, code, done := pt.CommandLine(fs, os.Args[1:], version, managed)
	if done {
		return code
	}
	usage := func(err error) int { fmt.Fprintln(os.Stderr, "websocket-client:", err); return 2 }
	c.log = log
	var err error
	if c.defaults, err = parseBridge(defaults, bridge{}); err != nil {
		return usage(err)
	}
	if *proxy != "" {
		if c.dialer.ProxyURL, err = pt.ParseProxyURL(*proxy); err != nil {
			return usage(fmt.Errorf("-proxy: %w", err))
		}
	}
	info := &pt.ClientInfo{MethodNames: []string{methodName}}
	if managed {
		if info, err = pt.ClientSetup(out, os.Getenv, []string{methodName, flashName}); err != nil {
			return 1
		}
		c.dialer.ProxyURL, c.dialer.OutboundV4, c.dialer.OutboundV6 = info.ProxyURL, info.OutboundV4, info.OutboundV6
		if info.ProxyURL != nil {
			out.ProxyDone()
		}
		out.StatusVersion("websocket-client", version)
		if len(info.MethodNames) == 0 {
			out.CmethodsDone()
			return 0
		}
		*listen = "127.0.0.1:0" // loopback only, and only IPv4: tor warns about duplicates
	} else if len(c.flash.listens) > 0 {
		info.MethodNames = []string{flashName} // standalone: one method, flashproxy with -flashproxy-listen
	}
	term := pt.MonitorTermination(os.Stdin, info.ExitOnStdinClose, managed)
	report := func() { c.stats.Report(c.log, out, methodName) }
	pt.WatchSignals(c.log, report) // SIGHUP, SIGUSR1
	var lns []io.Closer
	for _, name := range info.MethodNames {
		lc := net.ListenConfig{Control: pt.Buffers(pt.LocalBuffer)} // SOCKS: tor's side
		ln, err := lc.Listen(context.Background(), "tcp", *listen)
		connect := c.connect
		if name == flashName && err == nil {
			connect = c.flash.pair
			if err = c.flash.start(); err != nil {
				ln.Close()
			}
		}
		if err != nil {
			out.CmethodError(name, err.Error())
			c.log.Errorf("%s: listening: %v", name, err)
			continue
		}
		out.Cmethod(name, "socks5", ln.Addr())
		c.log.Listening("websocket-client "+version+" (SOCKS, "+name+")", ln)
		go c.acceptLoop(ln, connect)
		lns = append(lns, ln)
		if name == flashName {
			lns = append(lns, c.flash.server) // the proxies' listeners, on the first SIGINT too
		}
	}
	out.CmethodsDone()
	if len(lns) < len(info.MethodNames) && (!managed || len(lns) == 0) {
		return 1
	}
	term.Wait(lns, &c.stats.Active, report)
	return 0
}

func (c *client) acceptLoop(ln net.Listener, connect func(*pt.SocksConn) (*ws.Conn, error)) {
	limited := c.log.Limited(time.Minute)
	for {
		switch conn, err := ln.Accept(); {
		case errors.Is(err, net.ErrClosed):
			return
		case err != nil:
			limited.Warnf("accepting: %v", err) // e.g. out of file descriptors: wait a little
			time.Sleep(100 * time.Millisecond)
		default:
			c.stats.Active.Add(1)
			go c.handle(pt.StallConn(conn, c.stall), connect)
		}
	}
}

// handle serves one SOCKS connection: the SOCKS request, the connection to the bridge (connect
// dials it, or pairs with a flash proxy), and only then the SOCKS reply, so that tor learns
// whether the tunnel is really up.
func (c *client) handle(conn net.Conn, connect func(*pt.SocksConn) (*ws.Conn, error)) {
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
	wsConn, err := connect(sc)
	if err != nil {
		c.log.Warnf("connecting to the bridge: %s", unnamed(err))
		sc.Reject(err)
		return
	}
	if err := sc.Grant(); err != nil {
		c.log.Infof("SOCKS reply: %v", err)
		wsConn.Close()
		return
	}
	relaying = true
	c.stats.Tunnel(c.log, sc.Conn, wsConn, c.halfClose, func(err error) bool {
		ce := (*ws.CloseError)(nil) // 1011: the bridge failed it, its tor may be down
		return errors.As(err, &ce) && ce.Code == ws.CloseInternalError
	}, func() { c.stats.Active.Add(-1) })
}

// connect dials the SOCKS target (the Bridge line's address, never the URL's host, which is not
// resolved at all) and runs TLS for wss and then the WebSocket handshake.
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
	conn = pt.StallConn(conn, c.stall) // under TLS: a timed-out TLS write cannot go on
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
		if se := (*ws.StatusError)(nil); errors.As(err, &se) && se.Code == 400 && u.Scheme == "ws" {
			err = fmt.Errorf("%w (a TLS port? is the URL wss://?)", err) // Go, nginx: 400 to plain HTTP
		}
		return nil, fmt.Errorf("WebSocket handshake: %w", err)
	}
	return wsConn, nil
}

// unnamed is err's text without the host names that DNS and certificate errors carry: the
// logger scrubs addresses, not names, and the name of a bridge or front gives the bridge away.
func unnamed(err error) string {
	var dnsErr *net.DNSError
	var dateErr x509.CertificateInvalidError
	switch {
	case errors.As(err, &dnsErr):
		return "resolving a host name: " + dnsErr.Err
	case errors.As(err, new(x509.HostnameError)):
		return "TLS: the bridge's certificate is not valid for the url= host (check url=, or set front= to a name the certificate holds)"
	case errors.As(err, new(x509.UnknownAuthorityError)):
		return "TLS: no trusted CA signed the bridge's certificate (self-signed? or a TLS-intercepting proxy on the way?)"
	case errors.As(err, &dateErr) && dateErr.Reason == x509.Expired:
		return "TLS: the bridge's certificate has expired or is not valid yet (check its dates and this computer's clock)"
	case errors.As(err, new(*tls.CertificateVerificationError)):
		return "TLS: the bridge's certificate is not accepted (check its chain of CAs)"
	case errors.As(err, new(tls.RecordHeaderError)):
		return "TLS: the bridge answered without TLS (a plain port? is the URL ws://?)"
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
			u, err := ws.ParseURL(v)
			if err != nil {
				return d, fmt.Errorf("bad url argument: %w", err)
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
