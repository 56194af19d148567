package ws

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Options for both roles. A nil *Options means defaults.
type Options struct {
	// Base64: server — accept the "base64" subprotocol when the client offers it; client — offer
	// "base64" (and then require the server to accept it or no protocol).
	Base64 bool
	// MaxMessage bounds one received data message, in bytes on the wire (see
	// the package doc); 0 means DefaultMaxMessage.
	MaxMessage int
	// HandshakeTimeout bounds the opening handshake: the client's whole
	// exchange; on the server, writing the answer (reading the request is
	// bounded by the http.Server, e.g. ReadHeaderTimeout). 0 means 10 s.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds the closing handshake, the wait for our answer to the peer's clean Close,
	// and Read's control replies (see the package doc). 0 means 2 s.
	CloseTimeout time.Duration
	// Header: client only, extra request headers (e.g. User-Agent).
	Header http.Header
}

const (
	maxResponseHead = 8 << 10 // bytes of the server's answer, headers included
	acceptGUID      = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
)

func (o *Options) get() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.HandshakeTimeout <= 0 {
		r.HandshakeTimeout = 10 * time.Second
	}
	if r.CloseTimeout <= 0 {
		r.CloseTimeout = 2 * time.Second
	}
	if r.MaxMessage <= 0 {
		r.MaxMessage = DefaultMaxMessage
	}
	return r
}

// acceptKey computes Sec-WebSocket-Accept for a key (section 4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// hasToken reports whether a header (possibly several lines of comma
// lists) holds token; eq compares one element.
func hasToken(h http.Header, name, token string, eq func(a, b string) bool) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if eq(strings.Trim(t, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// checkRequest validates an opening handshake (section 4.2.1) and returns
// the HTTP status and message of a refusal, or 0.
func checkRequest(r *http.Request) (int, string) {
	k, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key"))
	v := r.Header.Values("Sec-WebSocket-Version")
	switch {
	case r.Method != http.MethodGet:
		return http.StatusMethodNotAllowed, "method not allowed"
	case !r.ProtoAtLeast(1, 1):
		return http.StatusBadRequest, "HTTP/1.1 or later required"
	case !hasToken(r.Header, "Upgrade", "websocket", strings.EqualFold):
		return http.StatusBadRequest, "missing Upgrade: websocket"
	case !hasToken(r.Header, "Connection", "upgrade", strings.EqualFold):
		return http.StatusBadRequest, "missing Connection: Upgrade"
	case len(r.Header.Values("Sec-WebSocket-Key")) != 1 || err != nil || len(k) != 16:
		return http.StatusBadRequest, "bad Sec-WebSocket-Key"
	// RFC 6455 is version 13; the drafts hybi-07 to hybi-12 (versions 7 and 8) differ only in this
	// number, and the transport proposal permits them.
	case len(v) != 1 || v[0] != "13" && v[0] != "8" && v[0] != "7":
		return http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version"
	}
	return 0, ""
}

// IsUpgrade reports whether Upgrade would accept r, so that a server can
// do what the connection needs (reach its backend) before answering 101.
func IsUpgrade(r *http.Request) bool {
	code, _ := checkRequest(r)
	return code == 0
}

// Upgrade validates the whole request, then hijacks. On refusal it writes an ordinary HTTP error
// (400, 405, 426 with Sec-WebSocket-Version: 13) and returns an error; the caller writes nothing
// more. Bytes already buffered by net/http are kept for the first frame; the conn's deadlines are
// cleared after the answer, which Options.HandshakeTimeout bounds.
func Upgrade(w http.ResponseWriter, r *http.Request, opt *Options) (*Conn, error) {
	o := opt.get()
	code, msg := checkRequest(r)
	if code == http.StatusUpgradeRequired {
		w.Header().Set("Sec-WebSocket-Version", "13")
	}
	if code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodGet)
	}
	if code != 0 {
		http.Error(w, msg, code)
		return nil, errors.New("websocket: refused: " + msg)
	}
	b64 := o.Base64 && hasToken(r.Header, "Sec-WebSocket-Protocol", "base64", func(a, b string) bool { return a == b })
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot upgrade", http.StatusInternalServerError)
		return nil, fmt.Errorf("websocket: hijack: %w", err)
	}
	pre, _ := brw.Reader.Peek(brw.Reader.Buffered()) // frames the client sent right after the request
	answer := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
		"Connection: Upgrade\r\nSec-WebSocket-Accept: " +
		acceptKey(r.Header.Get("Sec-WebSocket-Key")) + "\r\n"
	if b64 {
		answer += "Sec-WebSocket-Protocol: base64\r\n"
	}
	conn.SetDeadline(time.Now().Add(o.HandshakeTimeout))
	if _, err := io.WriteString(conn, answer+"\r\n"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("websocket: writing handshake: %w", err)
	}
	conn.SetDeadline(time.Time{})
	return newConn(conn, false, b64, &o, bytes.Clone(pre)), nil
}

// ParseURL parses s as a WebSocket URL (RFC 6455 section 3): scheme ws or wss, a host, and
// neither user information nor a fragment, which the ws-URI grammar has no place for. The
// error does not repeat s, which may name a bridge.
func ParseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, errors.New("want ws://HOST[:PORT]/PATH or wss://HOST[:PORT]/PATH")
	}
	return u, nil
}

// A StatusError is a server's answer to the opening handshake with a status other than 101.
type StatusError struct {
	Code   int    // such as 404
	Status string // such as "404 Not Found"
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("websocket: handshake refused: status %q", e.Status)
}

// Client runs the opening handshake over conn (already connected; TLS or proxy is the caller's) for
// the ws:// or wss:// URL u (Host header from u.Host, request target from u.RequestURI()). It fails
// on any status but 101 (a *StatusError; no redirects), a wrong Sec-WebSocket-Accept, missing
// Upgrade or Connection, an unoffered protocol or any extension. Deadlines are cleared after; on
// error the caller closes conn.
func Client(conn net.Conn, u *url.URL, opt *Options) (*Conn, error) {
	o := opt.get()
	var k [16]byte
	if _, err := rand.Read(k[:]); err != nil {
		return nil, err
	}
	key := base64.StdEncoding.EncodeToString(k[:])
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"+
		"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
		u.RequestURI(), u.Host, key)
	if o.Base64 {
		req.WriteString("Sec-WebSocket-Protocol: base64\r\n")
	}
	extra := http.Header{} // the caller's headers, except those the handshake sets
	for name, v := range o.Header {
		if strings.ContainsAny(name, " \t\r\n:") {
			return nil, fmt.Errorf("websocket: bad header name %q", name)
		}
		switch k := http.CanonicalHeaderKey(name); k {
		case "Host", "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version",
			"Sec-Websocket-Protocol", "Sec-Websocket-Extensions":
		default:
			extra[k] = v
		}
	}
	extra.Write(&req) // values with line breaks are made harmless
	req.WriteString("\r\n")
	if strings.ContainsAny(u.Host+u.RequestURI(), " \r\n") {
		return nil, errors.New("websocket: bad URL")
	}

	conn.SetDeadline(time.Now().Add(o.HandshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, req.String()); err != nil {
		return nil, fmt.Errorf("websocket: writing handshake: %w", err)
	}
	lim := &io.LimitedReader{R: conn, N: maxResponseHead}
	br := bufio.NewReaderSize(lim, 1024)
	b64, err := readResponse(br, key, o.Base64)
	if lim.N == 0 && errors.Is(err, io.ErrUnexpectedEOF) { // cut by the limit
		return nil, errors.New("websocket: handshake response too large")
	}
	if err != nil {
		return nil, err
	}
	pre, _ := br.Peek(br.Buffered()) // frames the server sent right after its answer
	return newConn(conn, true, b64, &o, bytes.Clone(pre)), nil
}

// readResponse reads and checks the server's answer (section 4.2.2, 4.1)
// and reports whether base64 was accepted.
func readResponse(br *bufio.Reader, key string, offered bool) (bool, error) {
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return false, fmt.Errorf("websocket: reading handshake response: %w", err)
	}
	h := resp.Header
	proto := h.Values("Sec-WebSocket-Protocol")
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return false, &StatusError{Code: resp.StatusCode, Status: resp.Status}
	case !hasToken(h, "Upgrade", "websocket", strings.EqualFold):
		return false, errors.New("websocket: response lacks Upgrade: websocket")
	case !hasToken(h, "Connection", "upgrade", strings.EqualFold):
		return false, errors.New("websocket: response lacks Connection: Upgrade")
	case len(h.Values("Sec-WebSocket-Accept")) != 1 || h.Get("Sec-WebSocket-Accept") != acceptKey(key):
		return false, errors.New("websocket: wrong Sec-WebSocket-Accept")
	case len(h.Values("Sec-WebSocket-Extensions")) > 0:
		return false, errors.New("websocket: server chose an extension we did not offer")
	case len(proto) > 1 || len(proto) == 1 && (!offered || proto[0] != "base64"):
		return false, errors.New("websocket: server chose a protocol we did not offer")
	}
	return len(proto) == 1, nil
}
