// Command websocket-server is the bridge side of the websocket pluggable transport: it accepts
// WebSocket connections over HTTP (or HTTPS) and passes each stream to tor's Extended ORPort.
// See doc/websocket-server.1.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/pt"
	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

var version string // see pt.Version

func init() { version = pt.Version(version) }

const methodName = "websocket"

// options are the per-listener settings: flags in standalone mode, and in managed mode the
// same names as keys of TOR_PT_SERVER_TRANSPORT_OPTIONS, applied over the flags.
type options struct {
	path             string
	url              string // public URL, for the bridge line: SMETHOD ARGS:url=...
	tlsCert, tlsKey  string
	trusted          []*net.IPNet
	base64           bool
	maxConns         int
	handshakeTimeout time.Duration
	maxMessage       int
	stallTimeout     time.Duration
	halfClose        time.Duration
	socketBuffer     int
}

// register defines the option flags in fs, with o's current values as defaults.
func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.path, "path", o.path, "serve WebSocket only at this URL `path`; 404 elsewhere")
	fs.Func("url", "public `URL` (ws:// or wss://) for the bridge line tor writes", func(v string) error {
		o.url = v
		if _, err := ws.ParseURL(v); err != nil {
			return err
		} else if strings.ContainsAny(v, `,=\`) { // tor writes ARGS with escapes kept, ',' as ' '
			return errors.New("tor's bridge line cannot carry a comma, an equals sign or a backslash: percent-encode them")
		}
		return nil
	})
	fs.StringVar(&o.tlsCert, "tls-cert", o.tlsCert, "serve wss: certificate chain `file` (PEM)")
	fs.StringVar(&o.tlsKey, "tls-key", o.tlsKey, "serve wss: private key `file` (PEM)")
	fs.Func("trusted-proxy", "`CIDR[,CIDR]` of reverse proxies whose X-Forwarded-For is believed", func(v string) error {
		o.trusted = nil
		for _, p := range strings.Split(v, ",") {
			_, n, err := net.ParseCIDR(strings.TrimSpace(p))
			if err != nil {
				return err
			}
			o.trusted = append(o.trusted, n)
		}
		return nil
	})
	fs.BoolVar(&o.base64, "base64", o.base64, "accept the base64 subprotocol")
	fs.IntVar(&o.maxConns, "max-conns", o.maxConns, "at most `N` WebSocket connections at once (0: no limit)")
	fs.DurationVar(&o.handshakeTimeout, "handshake-timeout", o.handshakeTimeout, "time allowed for TLS and HTTP handshakes")
	fs.IntVar(&o.maxMessage, "max-message", o.maxMessage, "largest received message in `bytes` (0: 1 MiB)")
	fs.DurationVar(&o.stallTimeout, "stall-timeout", o.stallTimeout, "close a tunnel whose peer takes no data for this long (0: never)")
	fs.DurationVar(&o.halfClose, "half-close-timeout", o.halfClose, "close a tunnel this long after one direction ended (0: never)")
	fs.IntVar(&o.socketBuffer, "socket-buffer", o.socketBuffer, "kernel send and receive buffers of each WebSocket, in `bytes` (0: the system's)")
}

// server serves one listener.
type server struct {
	info  *pt.ServerInfo
	opt   options
	log   *pt.Logger
	stats *pt.Stats    // shared by all listeners
	open  atomic.Int64 // requests of this listener in progress, for max-conns
	orErr *pt.Limited  // remote clients can cause it once per connection
}

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("websocket-server", flag.ContinueOnError)
	base := options{base64: true, maxConns: 1000, handshakeTimeout: 10 * time.Second, stallTimeout: 5 * time.Minute,
		halfClose: time.Minute, socketBuffer: pt.SocketBuffer}
	base.register(fs)
	var listens []string
	fs.Func("listen", "`address` to listen on (standalone mode; repeatable or comma list)", func(v string) error {
		listens = append(listens, strings.Split(v, ",")...)
		return nil
	})
	orport := fs.String("orport", "", "plain ORPort `address` to connect to (standalone mode)")
	extorport := fs.String("extorport", "", "Extended ORPort `address` to connect to (standalone mode)")
	cookie := fs.String("auth-cookie", "", "Extended ORPort authentication cookie `file` (with -extorport)")
	managed := pt.Managed(os.Getenv)
	out, logger, code, done := pt.CommandLine(fs, os.Args[1:], version, managed)
	if done {
		return code
	}
	usage := func(err error) int { fmt.Fprintln(os.Stderr, "websocket-server:", err); return 2 }
	info := &pt.ServerInfo{AuthCookieFile: *cookie}
	if managed {
		var err error
		if info, err = pt.ServerSetup(out, os.Getenv, []string{methodName}); err != nil {
			return 1
		}
		out.StatusVersion("websocket-server", version)
	} else {
		if len(listens) == 0 || (*orport == "") == (*extorport == "") || (*extorport != "") != (*cookie != "") {
			return usage(errors.New("standalone mode needs -listen and either -orport or -extorport with -auth-cookie"))
		}
		for _, a := range listens {
			addr, err := net.ResolveTCPAddr("tcp", a)
			if err != nil {
				return usage(err)
			}
			info.Bindaddrs = append(info.Bindaddrs, pt.Bindaddr{MethodName: methodName, Addr: addr})
		}
		or, err := net.ResolveTCPAddr("tcp", cmp.Or(*orport, *extorport)) // exactly one is set
		if err != nil {
			return usage(err)
		}
		if *orport != "" {
			info.OrAddr = or
		} else {
			info.ExtendedOrAddr = or
			if err := pt.CheckAuthCookie(*cookie); err != nil {
				logger.Errorf("%v", err)
				return 1 // standalone: a fatal setup error (nothing restarts us in a loop)
			}
		}
	}
	term := pt.MonitorTermination(os.Stdin, info.ExitOnStdinClose, managed)
	st := &pt.Stats{}
	report := func() { st.Report(logger, out, methodName) }
	pt.WatchSignals(logger, report) // SIGHUP, SIGUSR1
	// Closing a server ends its listener and the connections still in HTTP; WebSockets go on.
	var servers []io.Closer
	for _, ba := range info.Bindaddrs {
		srv, addr, args, err := listen(info, ba, base, logger, st)
		if err != nil {
			logger.Errorf("%v", err)
			out.SmethodError(ba.MethodName, err.Error())
			continue
		}
		out.Smethod(ba.MethodName, addr, args)
		servers = append(servers, srv)
	}
	out.SmethodsDone()
	// In managed mode, even with no listener, wait for tor to end the transport: exiting would
	// make tor start it again every second. Standalone, nothing restarts it in a loop.
	if len(servers) < len(info.Bindaddrs) && !managed {
		return 1
	}
	term.Wait(servers, &st.Active, report)
	return 0
}

// listen applies ba's options over base, opens the listener and serves it in a goroutine. It
// returns the arguments for the SMETHOD line.
func listen(info *pt.ServerInfo, ba pt.Bindaddr, base options, logger *pt.Logger, st *pt.Stats) (*http.Server, net.Addr, pt.Args, error) {
	s := &server{info: info, opt: base, log: logger, stats: st, orErr: logger.Limited(time.Minute)}
	ofs := flag.NewFlagSet("", flag.ContinueOnError) // only Set is called, which prints nothing
	s.opt.register(ofs)
	for k, vs := range ba.Options {
		for _, v := range vs {
			if ofs.Lookup(k) == nil {
				return nil, nil, nil, fmt.Errorf("unknown option %s", pt.SafeName(k))
			} else if err := ofs.Set(k, v); err != nil {
				return nil, nil, nil, fmt.Errorf("option %s=%s: %v", k, v, err)
			}
		}
	}
	switch {
	case (s.opt.tlsCert == "") != (s.opt.tlsKey == ""):
		return nil, nil, nil, errors.New("tls-cert and tls-key go together")
	case s.opt.handshakeTimeout <= 0:
		return nil, nil, nil, errors.New("handshake-timeout must be positive")
	case s.opt.stallTimeout < 0 || s.opt.halfClose < 0 || s.opt.socketBuffer < 0:
		return nil, nil, nil, errors.New("stall-timeout, half-close-timeout and socket-buffer may not be negative")
	}
	var tlsConfig *tls.Config
	if s.opt.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(s.opt.tlsCert, s.opt.tlsKey) // errors name a file it cannot read
		if err != nil {
			return nil, nil, nil, fmt.Errorf("tls-cert %s, tls-key %s: %v", s.opt.tlsCert, s.opt.tlsKey, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	}
	lc := net.ListenConfig{Control: pt.Buffers(s.opt.socketBuffer)} // accepted sockets inherit them
	ln, err := lc.Listen(context.Background(), "tcp", ba.Addr.String())
	if errors.Is(err, os.ErrPermission) {
		err = fmt.Errorf("%v (a port below 1024 needs a privilege that tor's transports lack: see BRIDGE.md)", err)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	ln = pt.StallListener(ln, s.opt.stallTimeout) // under TLS: a timed-out TLS write cannot go on
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	srv := pt.HTTPServer(s, s.opt.handshakeTimeout, logger)
	go srv.Serve(ln)
	logger.Listening("websocket-server "+version, ln)
	var args pt.Args
	if s.opt.url != "" {
		args = pt.Args{"url": {s.opt.url}}
	}
	return srv, ln.Addr(), args, nil
}

// ServeHTTP upgrades one request to WebSocket and relays it to the ORPort, in a goroutine of its
// own: returning frees what net/http holds for the request (its buffers) while the tunnel lives.
// It reaches tor before it answers 101, so that a client learns from the handshake (and tells
// its tor in the SOCKS reply) when this bridge's tor cannot be reached.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opt.path != "" && r.URL.Path != s.opt.path {
		s.log.Debugf("answered a request for another path with 404")
		http.NotFound(w, r)
		return
	}
	s.stats.Active.Add(1)
	done := func() { s.open.Add(-1); s.stats.Active.Add(-1) }
	if n := s.open.Add(1); s.opt.maxConns > 0 && n > int64(s.opt.maxConns) {
		done()
		s.log.Debugf("refused a connection: -max-conns %d reached", s.opt.maxConns)
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	var or net.Conn
	if ws.IsUpgrade(r) {
		var err error
		if or, err = pt.DialOr(s.info, s.clientAddr(r), methodName); err != nil {
			done()
			s.orErr.Warnf("connecting to the ORPort: %v", err)
			http.Error(w, "ORPort unreachable", http.StatusBadGateway)
			return
		}
	}
	conn, err := ws.Upgrade(w, r, &ws.Options{Base64: s.opt.base64, MaxMessage: s.opt.maxMessage,
		HandshakeTimeout: s.opt.handshakeTimeout})
	if err != nil {
		done()
		if or != nil {
			or.Close()
		}
		s.log.Debugf("WebSocket handshake from %s: %v", r.RemoteAddr, err)
		return
	}
	s.stats.Tunnel(s.log, pt.StallConn(or, s.opt.stallTimeout), conn, s.opt.halfClose, nil, done)
}

// clientAddr is the address given to tor in USERADDR: the peer's, or when the peer is a trusted
// proxy, the right-most address in X-Forwarded-For that is not a trusted proxy. A forwarded
// address has no port, which tor accepts (USERADDR "1.2.3.4" or "2001:db8::1").
func (s *server) clientAddr(r *http.Request) string {
	trusted := func(ip net.IP) bool {
		return slices.ContainsFunc(s.opt.trusted, func(n *net.IPNet) bool { return n.Contains(ip) })
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	if err != nil || ip == nil || !trusted(ip) {
		return r.RemoteAddr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0 && trusted(ip); i-- {
		hop := net.ParseIP(strings.TrimSpace(hops[i]))
		if hop == nil {
			break // not an address: believe nothing further left
		}
		ip = hop
	}
	if ip.Equal(net.ParseIP(host)) {
		return r.RemoteAddr
	}
	return ip.String()
}
