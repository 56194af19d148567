package main

// The flashproxy method: tor's SOCKS requests are not dialed but paired, first in first out,
// with WebSocket connections that browser proxies open to us (proxy/proxy.js); each proxy
// copies its pair's bytes to and from the bridge.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
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
	maxPerAddress, maxConns  int
	proxyWait, socksWait     time.Duration
	answerWait, regInterval  time.Duration
	register, regAddr        string
	http                     *http.Client
	server                   *http.Server // where proxies connect, on every -flashproxy-listen
	mu                       sync.Mutex
	proxies                  []*proxy      // unpaired, oldest first
	requests                 []chan *proxy // SOCKS requests waiting for a proxy, oldest first
	silent                   []*proxy      // paired, and nothing from the bridge yet
	lastRegister, lastNotice time.Time
}

// proxy is one browser proxy's WebSocket.
type proxy struct {
	conn *ws.Conn
	from netip.Prefix  // its address; for IPv6 its /64, which one host often has whole
	pre  []byte        // what it sent before it was paired, for tor first
	done chan struct{} // closed when its wait has ended; then err tells whether it is usable
	err  error
}

func (f *flash) flags(fs *flag.FlagSet) {
	fs.Func("flashproxy-listen", "`address` where browser proxies connect (repeatable or comma list; default :9000)",
		func(v string) error { f.listens = append(f.listens, strings.Split(v, ",")...); return nil })
	fs.IntVar(&f.maxWaiting, "max-waiting-proxies", 10, "at most `N` proxies wait unpaired")
	fs.IntVar(&f.maxPerAddress, "max-proxies-per-address", 2, "at most `N` proxies of one address wait, or are paired without an answer from the bridge")
	fs.DurationVar(&f.answerWait, "proxy-answer-wait", 30*time.Second, "close a paired proxy that relays nothing from the bridge this long")
	fs.IntVar(&f.maxConns, "max-proxy-conns", 256, "at most `N` connections open on the proxy ports at once")
	fs.DurationVar(&f.proxyWait, "proxy-wait", 10*time.Minute, "how long a proxy may wait unpaired")
	fs.IntVar(&f.maxPre, "proxy-unpaired-bytes", 10<<10, "`bytes` a proxy may send before it is paired")
	fs.DurationVar(&f.socksWait, "socks-wait", 2*time.Minute, "how long a SOCKS request waits for a proxy")
	fs.StringVar(&f.register, "register", "", "register with the facilitator at `URL`")
	fs.StringVar(&f.regAddr, "register-addr", "", "`HOST:PORT` to register instead of :PORT of the first -flashproxy-listen")
	fs.DurationVar(&f.regInterval, "register-interval", 10*time.Second, "at most one registration per `interval`")
}

// start listens for proxies and registers.
func (f *flash) start() (err error) {
	f.server = pt.HTTPServer(f, flashHandshake, f.c.log)
	defer func() {
		if err != nil {
			f.server.Close()
		}
	}()
	if min(f.maxWaiting, f.maxPerAddress, f.maxConns) < 1 || f.maxPre < 0 || min(f.proxyWait, f.socksWait, f.answerWait) <= 0 {
		return errors.New("-max-waiting-proxies, -max-proxies-per-address, -max-proxy-conns, -proxy-wait, -proxy-answer-wait and -socks-wait must be positive, -proxy-unpaired-bytes not negative")
	}
	if req, err := http.NewRequest(http.MethodPost, f.register, nil); err != nil || (f.register != "" && req.URL.Scheme != "http" && req.URL.Scheme != "https") {
		return errors.New("-register wants an http:// or https:// URL")
	}
	lc := net.ListenConfig{Control: pt.Buffers(f.c.dialer.Buffer)} // proxies' WebSockets too: accepted sockets inherit them
	if len(f.listens) == 0 {
		f.listens = []string{":9000"}
	}
	open := make(chan struct{}, f.maxConns) // shared by the proxy listeners
	for i, a := range f.listens {
		ln, err := lc.Listen(context.Background(), "tcp", a)
		if err != nil {
			return err
		}
		if _, port, _ := net.SplitHostPort(ln.Addr().String()); i == 0 && f.regAddr == "" {
			f.regAddr = net.JoinHostPort("", port) // the facilitator takes the host from the request
		}
		go f.server.Serve(pt.StallListener(limitListener{ln, open}, f.c.stall))
		f.c.log.Listening("websocket-client "+version+" (flash proxies)", ln)
	}
	// A redirect is not followed (it would carry the registration elsewhere): its status is a warning.
	f.http = &http.Client{Timeout: registerTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: f.c.dialer.DialContext, DisableKeepAlives: true, DisableCompression: true}}
	f.mu.Lock()
	f.registerLocked()
	f.mu.Unlock()
	return nil
}

// limitListener accepts a connection only while fewer than cap(open) are open, so that a flood
// of proxies cannot take the descriptors that tor's SOCKS requests need: the others wait in the
// kernel's backlog, which costs none.
type limitListener struct {
	net.Listener
	open chan struct{}
}

func (l limitListener) Accept() (conn net.Conn, err error) {
	l.open <- struct{}{}
	if conn, err = l.Listener.Accept(); err != nil {
		<-l.open
		return nil, err
	}
	return &limitConn{conn, sync.OnceFunc(func() { <-l.open })}, nil
}

type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// afterReply is tor's connection once paired: the SOCKS reply, its first write, is followed by
// what the proxy sent before it was paired; the next, the bridge's first bytes, calls answered.
type afterReply struct {
	net.Conn
	pre      []byte // nil once written
	answered func()
}

func (a *afterReply) Write(p []byte) (int, error) {
	if a.pre == nil {
		a.answered()
	}
	n, err := a.Conn.Write(p)
	if pre := a.pre; err == nil && pre != nil {
		a.pre = nil
		_, err = a.Conn.Write(pre)
	}
	return n, err
}

func (a *afterReply) CloseWrite() error { return pt.CloseWrite(a.Conn) }

// NetConn is the conn under a, for pt.Abort to reset.
func (a *afterReply) NetConn() net.Conn { return a.Conn }

// ServeHTTP accepts a proxy on any path and queues it.
func (f *flash) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := ws.Upgrade(w, r, &ws.Options{Base64: true, HandshakeTimeout: flashHandshake})
	if err != nil {
		f.c.log.Debugf("proxy handshake: %v", err)
		return
	}
	remote, _ := netip.ParseAddrPort(r.RemoteAddr)
	ip := remote.Addr().Unmap()
	from, _ := ip.Prefix(min(ip.BitLen(), 64)) // IPv4: the address; IPv6: its /64
	p := &proxy{conn: conn, from: from, done: make(chan struct{})}
	conn.SetReadDeadline(time.Now().Add(f.proxyWait))
	refused := ""
	f.mu.Lock()
	others := func(q *proxy) bool { return q.from != p.from }
	mine := len(slices.DeleteFunc(slices.Concat(f.proxies, f.silent), others)) // waiting, or paired and silent
	switch {
	case len(f.proxies) >= f.maxWaiting+len(f.requests):
		refused = fmt.Sprintf("%d proxies are already waiting (-max-waiting-proxies)", f.maxWaiting)
	case mine >= f.maxPerAddress:
		refused = fmt.Sprintf("%d proxies of its address wait or have not relayed from the bridge yet (-max-proxies-per-address)", f.maxPerAddress)
	default:
		f.proxies = append(f.proxies, p)
		f.c.log.Debugf("a proxy came (%d waiting)", len(f.proxies))
	}
	f.mu.Unlock()
	if refused != "" {
		f.bound("a proxy was turned away: %s", refused)
		conn.CloseWithStatus(1013, "try again later")
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
	n, err := io.ReadFull(p.conn, buf)
	p.pre = buf[:n]
	queued, status := dequeue(f, &f.proxies, p), ws.CloseNormal
	switch {
	case n > f.maxPre:
		p.err, status = fmt.Errorf("sent more than %d bytes before it was paired (-proxy-unpaired-bytes)", f.maxPre), ws.ClosePolicy
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
	p.conn.CloseWithStatus(status, "") // unusable, if pair took it meanwhile
}

// match pairs the oldest waiting requests with the oldest waiting proxies.
func (f *flash) match() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.proxies) > 0 && len(f.requests) > 0 {
		f.requests[0] <- f.proxies[0]
		f.silent = append(f.silent, f.proxies[0]) // until it relays from the bridge
		f.proxies, f.requests = f.proxies[1:], f.requests[1:]
	}
}

// pair waits up to socksWait for a proxy for tor's request sc, and gives up if tor closes sc.
func (f *flash) pair(sc *pt.SocksConn) (*ws.Conn, error) {
	ch := make(chan *proxy, 1)
	left, leave := context.WithCancelCause(context.Background())
	ctx, cancel := context.WithTimeoutCause(left, f.socksWait, // stays done, unlike a timer's channel
		fmt.Errorf("no proxy came within %v (-socks-wait): %w", f.socksWait, os.ErrDeadlineExceeded))
	defer cancel()
	tor := sc.Conn
	go func() { // tor sends nothing before the SOCKS reply: a read that ends means it has left
		tor.Read(make([]byte, 1))
		leave(errors.New("tor closed the SOCKS connection while it waited for a proxy"))
	}()
	defer func() { tor.SetReadDeadline(time.Unix(1, 0)); <-left.Done(); tor.SetReadDeadline(time.Time{}) }()
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
		case <-ctx.Done():
			if dequeue(f, &f.requests, ch) {
				return nil, context.Cause(ctx)
			}
			p = <-ch // matched as time ran out or tor left
		}
		if left.Err() != nil { // tor has left: the proxy, still waiting, goes to the next request
			dequeue(f, &f.silent, p)
			firstInLine(f, &f.proxies, p)
			f.match()
			return nil, context.Cause(left)
		}
		p.conn.SetReadDeadline(time.Unix(1, 0)) // ends its wait
		<-p.done
		if p.err == nil {
			p.conn.SetReadDeadline(time.Time{})
			time.AfterFunc(f.answerWait, func() {
				if dequeue(f, &f.silent, p) {
					f.bound("a paired proxy relayed nothing from the bridge within %v (-proxy-answer-wait)", f.answerWait)
					p.conn.CloseWithStatus(ws.ClosePolicy, "")
				}
			})
			sc.Conn = &afterReply{Conn: sc.Conn, pre: p.pre, answered: sync.OnceFunc(func() { dequeue(f, &f.silent, p) })}
			f.c.log.Infof("paired a proxy (%d bytes it sent while waiting go to tor first)", len(p.pre))
			return p.conn, nil
		}
		dequeue(f, &f.silent, p)
		firstInLine(f, &f.requests, ch) // still the oldest request
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
		req, _ := http.NewRequest(http.MethodPost, f.register, strings.NewReader(body)) // start checked f.register
		// Only what the facilitator needs: no User-Agent ("" makes Go send none), no Referer.
		req.Header = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "User-Agent": {""}}
		resp, err := f.http.Do(req)
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

// firstInLine puts v at the head of *q, under f.mu.
func firstInLine[T any](f *flash, q *[]T, v T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*q = slices.Insert(*q, 0, v)
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
