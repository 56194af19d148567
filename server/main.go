// Command websocket-server is the bridge side of the websocket pluggable transport: it accepts
// WebSocket connections over HTTP (or HTTPS) and passes each stream to tor's Extended ORPort.
// See doc/websocket-server.1.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
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
	maxHeaderBytes = 16 << 10
	summaryEvery   = time.Hour
)

// options are the per-listener settings: flags in standalone mode, and in managed mode the
// same names as keys of TOR_PT_SERVER_TRANSPORT_OPTIONS, applied over the flags.
type options struct {
	path             string
	tlsCert, tlsKey  string
	trusted          cidrs
	base64           bool
	maxConns         int
	handshakeTimeout time.Duration
	maxMessage       int
}

// register defines the option flags in fs, with o's current values as defaults.
func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.path, "path", o.path, "serve WebSocket only at this URL `path`; 404 elsewhere")
	fs.StringVar(&o.tlsCert, "tls-cert", o.tlsCert, "serve wss: certificate chain `file` (PEM)")
	fs.StringVar(&o.tlsKey, "tls-key", o.tlsKey, "serve wss: private key `file` (PEM)")
	fs.Var(&o.trusted, "trusted-proxy", "`CIDR[,CIDR]` of reverse proxies whose X-Forwarded-For is believed")
	fs.BoolVar(&o.base64, "base64", o.base64, "accept the base64 subprotocol")
	fs.IntVar(&o.maxConns, "max-conns", o.maxConns, "at most `N` WebSocket connections at once (0: no limit)")
	fs.DurationVar(&o.handshakeTimeout, "handshake-timeout", o.handshakeTimeout, "time allowed for TLS and HTTP handshakes")
	fs.IntVar(&o.maxMessage, "max-message", o.maxMessage, "largest received message in `bytes` (0: 1 MiB)")
}

// cidrs is a flag.Value: a comma-separated list of CIDR prefixes.
type cidrs []*net.IPNet

func (c *cidrs) String() string { return fmt.Sprint(*c) }

func (c *cidrs) Set(v string) error {
	var list cidrs
	for _, p := range strings.Split(v, ",") {
		_, n, err := net.ParseCIDR(strings.TrimSpace(p))
		if err != nil {
			return err
		}
		list = append(list, n)
	}
	*c = list
	return nil
}

func (c cidrs) contains(ip net.IP) bool {
	for _, n := range c {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// listFlag collects a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, strings.Split(v, ",")...); return nil }

// server serves one listener.
type server struct {
	info  *pt.ServerInfo
	opt   options
	log   *pt.Logger
	stats *pt.Stats    // shared by all listeners
	open  atomic.Int64 // requests of this listener in progress, for max-conns
}

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("websocket-server", flag.ContinueOnError)
	base := options{base64: true, handshakeTimeout: 10 * time.Second}
	base.register(fs)
	var listens listFlag
	fs.Var(&listens, "listen", "`address` to listen on (standalone mode; repeatable or comma list)")
	orport := fs.String("orport", "", "plain ORPort `address` to connect to (standalone mode)")
	extorport := fs.String("extorport", "", "Extended ORPort `address` to connect to (standalone mode)")
	cookie := fs.String("auth-cookie", "", "Extended ORPort authentication cookie `file` (with -extorport)")
	lf, code, done := pt.CommandLine(fs, os.Args[1:], version)
	if done {
		return code
	}
	usage := func(err error) int { fmt.Fprintln(os.Stderr, "websocket-server:", err); return 2 }
	managed := pt.Managed(os.Getenv)
	out := pt.NewOutput(os.Stdout)
	logger, err := pt.OpenLogger(out, lf.File, lf.Level, lf.Unsafe, managed)
	if err != nil {
		return usage(err)
	}
	info := &pt.ServerInfo{AuthCookieFile: *cookie}
	if managed {
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
		for _, a := range []struct {
			flag string
			addr **net.TCPAddr
		}{{*orport, &info.OrAddr}, {*extorport, &info.ExtendedOrAddr}} {
			if a.flag != "" {
				if *a.addr, err = net.ResolveTCPAddr("tcp", a.flag); err != nil {
					return usage(err)
				}
			}
		}
	}
	term := pt.MonitorTermination(os.Stdin, info.ExitOnStdinClose, managed)
	st := &pt.Stats{}
	var status *pt.Output // managed mode: summaries go to tor too
	if managed {
		status = out
	}
	pt.WatchSignals(logger, func() { st.Report(logger, status, methodName) }) // SIGHUP, SIGUSR1
	var servers []*http.Server
	for _, ba := range info.Bindaddrs {
		srv, addr, err := listen(info, ba, base, logger, st)
		if err != nil {
			logger.Errorf("%v", err)
			if managed {
				out.SmethodError(ba.MethodName, err.Error())
			}
			continue
		}
		if managed {
			out.Smethod(ba.MethodName, addr, nil)
		}
		servers = append(servers, srv)
	}
	if managed {
		out.SmethodsDone()
	}
	if failed := len(info.Bindaddrs) - len(servers); failed > 0 && (!managed || len(servers) == 0) {
		return 1
	} else if len(servers) == 0 {
		return 0 // tor asked for no transport we have
	}
	go func() {
		for range time.Tick(summaryEvery) {
			st.Report(logger, status, methodName)
		}
	}()
	<-term.Stop()
	for _, srv := range servers {
		srv.Close() // listeners and connections still in HTTP; WebSockets go on
	}
	term.Drain(&st.Active)
	st.Report(logger, status, methodName)
	return 0
}

// listen applies ba's options over base, opens the listener and serves it in a goroutine.
func listen(info *pt.ServerInfo, ba pt.Bindaddr, base options, logger *pt.Logger, st *pt.Stats) (*http.Server, net.Addr, error) {
	s := &server{info: info, opt: base, log: logger, stats: st}
	ofs := flag.NewFlagSet("", flag.ContinueOnError)
	ofs.SetOutput(io.Discard)
	s.opt.register(ofs)
	for k, vs := range ba.Options {
		for _, v := range vs {
			if ofs.Lookup(k) == nil {
				return nil, nil, fmt.Errorf("unknown option %s", pt.SafeName(k))
			} else if err := ofs.Set(k, v); err != nil {
				return nil, nil, fmt.Errorf("option %s=%s: %v", k, v, err)
			}
		}
	}
	switch {
	case (s.opt.tlsCert == "") != (s.opt.tlsKey == ""):
		return nil, nil, errors.New("tls-cert and tls-key go together")
	case s.opt.handshakeTimeout <= 0:
		return nil, nil, errors.New("handshake-timeout must be positive")
	}
	var tlsConfig *tls.Config
	if s.opt.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(s.opt.tlsCert, s.opt.tlsKey)
		if err != nil {
			return nil, nil, err
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	}
	ln, err := net.Listen("tcp", ba.Addr.String())
	if err != nil {
		return nil, nil, err
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opt.handshakeTimeout, // also bounds the TLS handshake
		IdleTimeout:       s.opt.handshakeTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(logWriter{logger}, "", 0),                        // its messages carry client addresses
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){}, // no HTTP/2
	}
	go srv.Serve(ln)
	logger.Noticef("websocket-server %s listening on %s", version, ln.Addr())
	return srv, ln.Addr(), nil
}

// logWriter sends net/http's error log through our (scrubbing) logger.
type logWriter struct{ l *pt.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Debugf("http: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}

// ServeHTTP upgrades one request to WebSocket and relays it to the ORPort, in a goroutine of its
// own: returning frees what net/http holds for the request (its buffers) while the tunnel lives.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opt.path != "" && r.URL.Path != s.opt.path {
		http.NotFound(w, r)
		return
	}
	s.stats.Active.Add(1)
	done := func() { s.open.Add(-1); s.stats.Active.Add(-1) }
	if n := s.open.Add(1); s.opt.maxConns > 0 && n > int64(s.opt.maxConns) {
		done()
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	conn, err := ws.Upgrade(w, r, &ws.Options{Base64: s.opt.base64, MaxMessage: s.opt.maxMessage,
		HandshakeTimeout: s.opt.handshakeTimeout})
	if err != nil {
		done()
		s.log.Infof("WebSocket handshake from %s: %v", r.RemoteAddr, err)
		return
	}
	or, err := pt.DialOr(s.info, s.clientAddr(r), methodName)
	if err != nil {
		done()
		s.log.Warnf("connecting to the ORPort: %v", err)
		conn.CloseWithStatus(ws.CloseInternalError, "ORPort unreachable")
		return
	}
	s.stats.Conns.Add(1)
	peer := r.RemoteAddr
	go func() {
		defer done()
		if _, _, err := pt.Relay(conn, or, &s.stats.Received, &s.stats.Sent); err != nil { // closes both
			s.log.Infof("connection from %s ended: %v", peer, err)
		}
	}()
}

// clientAddr is the address given to tor in USERADDR: the peer's, or when the peer is a trusted
// proxy, the right-most address in X-Forwarded-For that is not a trusted proxy. A forwarded
// address has no port, which tor accepts (USERADDR "1.2.3.4" or "2001:db8::1").
func (s *server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	if err != nil || ip == nil || !s.opt.trusted.contains(ip) {
		return r.RemoteAddr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0 && s.opt.trusted.contains(ip); i-- {
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
