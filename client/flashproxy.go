package main

// The flashproxy method: tor's SOCKS requests are not dialed but paired, first in first out,
// with WebSocket connections that browser proxies open to us (proxy/proxy.js); each proxy
// copies its pair's bytes to and from the bridge.

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/pt"
	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

const (
	flashName        = "flashproxy"
	flashHandshake   = 10 * time.Second // a proxy's HTTP request and our 101 answer
	registerTimeout  = 30 * time.Second
	fewProxies       = 3           // register when fewer proxies than this wait
	boundLogInterval = time.Minute // at most one notice per interval when a bound is hit
)

// flash pairs the SOCKS requests of the flashproxy method with proxies.
type flash struct {
	c                        *client
	listens                  []string
	maxWaiting, maxPre       int
	proxyWait, socksWait     time.Duration
	register, regAddr        string
	regInterval              time.Duration
	http                     *http.Client
	servers                  []*http.Server // where proxies connect
	socks                    *net.TCPAddr   // the SOCKS listener's address
	mu                       sync.Mutex
	proxies                  []*proxy      // unpaired, oldest first
	requests                 []chan *proxy // SOCKS requests waiting for a proxy, oldest first
	lastRegister, lastNotice time.Time
}

// proxy is one browser proxy's WebSocket.
type proxy struct {
	conn *ws.Conn
	pre  []byte        // what it sent before it was paired, for tor first
	done chan struct{} // closed when its wait has ended; then err tells whether it is usable
	err  error
}

func (f *flash) flags(fs *flag.FlagSet) {
	fs.Func("flashproxy-listen", "`address` where browser proxies connect (repeatable or comma list; default :9000)",
		func(v string) error { f.listens = append(f.listens, strings.Split(v, ",")...); return nil })
	fs.IntVar(&f.maxWaiting, "max-waiting-proxies", 10, "at most `N` proxies wait unpaired")
	fs.DurationVar(&f.proxyWait, "proxy-wait", 10*time.Minute, "how long a proxy may wait unpaired")
	fs.IntVar(&f.maxPre, "proxy-unpaired-bytes", 10<<10, "`bytes` a proxy may send before it is paired")
	fs.DurationVar(&f.socksWait, "socks-wait", 2*time.Minute, "how long a SOCKS request waits for a proxy")
	fs.StringVar(&f.register, "register", "", "register with the facilitator at `URL`")
	fs.StringVar(&f.regAddr, "register-addr", "", "`HOST:PORT` to register instead of :PORT of the first -flashproxy-listen")
	fs.DurationVar(&f.regInterval, "register-interval", 10*time.Second, "at most one registration per `interval`")
}

// start listens for proxies, registers, and returns the SOCKS listener of the method.
func (f *flash) start(socks string) (_ net.Listener, err error) {
	defer func() {
		if err != nil {
			f.closeServers()
		}
	}()
	if f.maxWaiting < 1 || f.maxPre < 0 || f.proxyWait <= 0 || f.socksWait <= 0 {
		return nil, errors.New("-max-waiting-proxies, -proxy-wait and -socks-wait must be positive, -proxy-unpaired-bytes not negative")
	}
	if u, err := url.Parse(f.register); err != nil || (f.register != "" && u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("-register wants an http:// or https:// URL")
	}
	if len(f.listens) == 0 {
		f.listens = []string{":9000"}
	}
	for i, a := range f.listens {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return nil, err
		}
		if _, port, _ := net.SplitHostPort(ln.Addr().String()); i == 0 && f.regAddr == "" {
			f.regAddr = net.JoinHostPort("", port) // the facilitator takes the host from the request
		}
		srv := &http.Server{Handler: f, ReadHeaderTimeout: flashHandshake, IdleTimeout: flashHandshake,
			MaxHeaderBytes: 16 << 10, ErrorLog: f.c.log.HTTPErrorLog(),
			TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
		go srv.Serve(pt.StallListener(ln, f.c.stall))
		f.servers = append(f.servers, srv)
		f.c.log.Listening("websocket-client "+version+" (flash proxies)", ln)
	}
	ln, err := net.Listen("tcp", socks)
	if err != nil {
		return nil, err
	}
	f.http = &http.Client{Timeout: registerTimeout, Transport: &http.Transport{DialContext: f.c.dialer.DialContext, DisableKeepAlives: true}}
	f.mu.Lock()
	f.registerLocked()
	f.mu.Unlock()
	f.socks = ln.Addr().(*net.TCPAddr)
	return flashListener{ln, f}, nil
}

// flashListener is the SOCKS listener of the method; closing it closes the proxy listeners too.
type flashListener struct {
	net.Listener
	f *flash
}

func (l flashListener) Close() error {
	l.f.closeServers()
	return l.Listener.Close()
}

func (f *flash) closeServers() {
	for _, srv := range f.servers {
		srv.Close()
	}
}

// owns tells whether a SOCKS connection with local address a came to the flashproxy listener
// (whatever wraps the connection, its address stays).
func (f *flash) owns(a net.Addr) bool {
	c, ok := a.(*net.TCPAddr)
	return ok && f.socks != nil && c.Port == f.socks.Port && (f.socks.IP.IsUnspecified() || c.IP.Equal(f.socks.IP))
}

// afterReply is tor's connection when a proxy sent data before it was paired: the first write,
// the SOCKS reply, is followed by that data.
type afterReply struct {
	net.Conn
	pre []byte
}

func (a *afterReply) Write(p []byte) (int, error) {
	n, err := a.Conn.Write(p)
	if pre := a.pre; err == nil && pre != nil {
		a.pre = nil
		_, err = a.Conn.Write(pre)
	}
	return n, err
}

func (a *afterReply) CloseWrite() error {
	if cw, ok := a.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return a.Conn.Close()
}

// ServeHTTP accepts a proxy on any path and queues it.
func (f *flash) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := ws.Upgrade(w, r, &ws.Options{Base64: true, HandshakeTimeout: flashHandshake})
	if err != nil {
		f.c.log.Debugf("proxy handshake: %v", err)
		return
	}
	p := &proxy{conn: conn, done: make(chan struct{})}
	conn.SetReadDeadline(time.Now().Add(f.proxyWait))
	f.mu.Lock()
	full := len(f.proxies) >= f.maxWaiting+len(f.requests)
	if !full {
		f.proxies = append(f.proxies, p)
		f.c.log.Debugf("a proxy came (%d waiting)", len(f.proxies))
	}
	f.mu.Unlock()
	if full {
		f.bound("a proxy was turned away: %d proxies are already waiting (-max-waiting-proxies)", f.maxWaiting)
		conn.CloseWithStatus(1013, "too many proxies waiting") // Try Again Later
		return
	}
	go f.wait(p)
	f.match()
}

// wait reads what a queued proxy sends until it is paired (pair interrupts the read with a
// deadline) or its wait ends: it left, it waited too long, or it sent too much.
func (f *flash) wait(p *proxy) {
	defer close(p.done)
	buf := make([]byte, f.maxPre+1)
	n, err := 0, error(nil)
	for err == nil && n <= f.maxPre {
		var m int
		m, err = p.conn.Read(buf[n:])
		n += m
	}
	p.pre = buf[:n]
	queued := dequeue(f, &f.proxies, p)
	switch {
	case n > f.maxPre:
		p.err = fmt.Errorf("sent more than %d bytes before it was paired (-proxy-unpaired-bytes)", f.maxPre)
		f.bound("a proxy %v", p.err)
	case errors.Is(err, os.ErrDeadlineExceeded) && !queued:
		return // paired
	case errors.Is(err, os.ErrDeadlineExceeded):
		p.err = fmt.Errorf("waited %v unpaired (-proxy-wait)", f.proxyWait)
		f.bound("a proxy %v", p.err)
	default:
		p.err = fmt.Errorf("left before it was paired: %v", err)
		f.c.log.Debugf("a proxy %v", p.err)
	}
	if queued {
		p.conn.Close()
	}
}

// match pairs the oldest waiting requests with the oldest waiting proxies.
func (f *flash) match() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.proxies) > 0 && len(f.requests) > 0 {
		f.requests[0] <- f.proxies[0]
		f.proxies, f.requests = f.proxies[1:], f.requests[1:]
	}
}

// pair waits up to socksWait for a proxy for tor's request sc.
func (f *flash) pair(sc *pt.SocksConn) (*ws.Conn, error) {
	ch := make(chan *proxy, 1)
	timeout := time.NewTimer(f.socksWait)
	defer timeout.Stop()
	f.mu.Lock()
	if len(f.proxies) < fewProxies {
		f.registerLocked()
	}
	f.requests = append(f.requests, ch)
	f.c.log.Debugf("a SOCKS request waits for a proxy (%d waiting)", len(f.requests))
	f.mu.Unlock()
	for {
		f.match()
		var p *proxy
		select {
		case p = <-ch:
		case <-timeout.C:
			if dequeue(f, &f.requests, ch) {
				return nil, fmt.Errorf("no proxy came within %v (-socks-wait): %w", f.socksWait, os.ErrDeadlineExceeded)
			}
			p = <-ch // matched as time ran out
		}
		p.conn.SetReadDeadline(time.Unix(1, 0)) // ends its wait
		<-p.done
		if p.err == nil {
			p.conn.SetReadDeadline(time.Time{})
			if len(p.pre) > 0 {
				sc.Conn = &afterReply{sc.Conn, p.pre}
			}
			f.c.log.Infof("paired a proxy (%d bytes it sent while waiting go to tor first)", len(p.pre))
			return p.conn, nil
		}
		p.conn.Close()
		f.mu.Lock()
		f.requests = slices.Insert(f.requests, 0, ch) // still the oldest request
		f.mu.Unlock()
	}
}

// registerLocked (f.mu held) registers with the facilitator in the background, at most once
// per regInterval.
func (f *flash) registerLocked() {
	if f.register == "" || time.Since(f.lastRegister) < f.regInterval {
		return
	}
	f.lastRegister = time.Now()
	body := url.Values{"client": {f.regAddr}, "client-transport": {"websocket"}}.Encode()
	go func() {
		resp, err := f.http.Post(f.register, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = errors.New(resp.Status)
			}
		}
		if err != nil {
			f.c.log.Warnf("registering with the facilitator: %v", err)
		}
	}()
}

// bound logs a bound that was hit: at notice level at most once per boundLogInterval, since
// anyone may connect, else at info level.
func (f *flash) bound(format string, a ...any) {
	logf := f.c.log.Infof
	f.mu.Lock()
	if time.Since(f.lastNotice) >= boundLogInterval {
		f.lastNotice, logf = time.Now(), f.c.log.Noticef
	}
	f.mu.Unlock()
	logf(format, a...)
}

// dequeue removes v from *q, under f.mu, and reports whether it was there.
func dequeue[T comparable](f *flash, q *[]T, v T) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.Index(*q, v)
	if i >= 0 {
		*q = slices.Delete(*q, i, i+1)
	}
	return i >= 0
}
