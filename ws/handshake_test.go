package ws

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// req builds a request from header lines joined by CRLF.
func req(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

const (
	goodKey    = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 1.3 sample
	goodAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

func TestUpgradeRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		raw    string
		status int
	}{
		{"POST", req("POST / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
			goodKey, "Sec-WebSocket-Version: 13", "Content-Length: 0"), 405},
		{"HTTP/1.0", req("GET / HTTP/1.0", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
			goodKey, "Sec-WebSocket-Version: 13"), 400},
		{"no Upgrade", req("GET / HTTP/1.1", "Host: x", "Connection: Upgrade",
			goodKey, "Sec-WebSocket-Version: 13"), 400},
		{"Upgrade: h2c", req("GET / HTTP/1.1", "Host: x", "Upgrade: h2c", "Connection: Upgrade",
			goodKey, "Sec-WebSocket-Version: 13"), 400},
		{"no Connection", req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket",
			goodKey, "Sec-WebSocket-Version: 13"), 400},
		{"Connection: keep-alive", req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket",
			"Connection: keep-alive", goodKey, "Sec-WebSocket-Version: 13"), 400},
		{"no key", req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
			"Sec-WebSocket-Version: 13"), 400},
		{"key not base64", req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
			"Sec-WebSocket-Key: !!!!dGhlIHNhbXBsZSBub25j", "Sec-WebSocket-Version: 13"), 400},
		{"key of 15 bytes", req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j", "Sec-WebSocket-Version: 13"), 400},
		{"key of 17 bytes", req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZTEy", "Sec-WebSocket-Version: 13"), 400},
		{"two keys", req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
			goodKey, goodKey, "Sec-WebSocket-Version: 13"), 400},
		{"version 12", req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
			goodKey, "Sec-WebSocket-Version: 12"), 426},
		{"no version (hixie-76)", req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
			goodKey), 426},
		{"two versions", req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
			goodKey, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"), 426},
	} {
		for _, rd := range readers {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				h, r, err := newHijackRecorder([]byte(tc.raw), rd.wrap)
				if err != nil {
					t.Fatal(err)
				}
				c, err := Upgrade(h, r, &Options{Base64: true})
				if c != nil || err == nil || h.hijacked {
					t.Fatalf("accepted: %v %v hijacked=%v", c, err, h.hijacked)
				}
				if h.Code != tc.status {
					t.Errorf("status %d, want %d", h.Code, tc.status)
				}
				if v := h.Header().Get("Sec-WebSocket-Version"); (tc.status == 426) != (v == "13") {
					t.Errorf("Sec-WebSocket-Version %q with status %d", v, tc.status)
				}
				if tc.status == 405 && h.Header().Get("Allow") != "GET" {
					t.Error("405 without Allow: GET")
				}
			})
		}
	}
}

func TestUpgradeAccepts(t *testing.T) {
	chromium := []string{"GET /ws HTTP/1.1", "Host: 127.0.0.1:8080", "Connection: Upgrade",
		"Pragma: no-cache", "Cache-Control: no-cache",
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Upgrade: websocket", "Origin: http://example.com", "Sec-WebSocket-Version: 13",
		"Accept-Encoding: gzip, deflate, br", "Accept-Language: en-US,en;q=0.9", goodKey,
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"}
	firstFrame := cat([]byte{0x82, 0x82}, z4, []byte("hi")) // FIN|Binary, MASK|len 2, key, "hi"
	for _, tc := range []struct {
		name   string
		raw    string
		base64 bool // server option
		proto  bool // answer names base64
	}{
		{"chromium with permessage-deflate", req(chromium...), true, false},
		{"chromium offering base64", req(append(chromium, "Sec-WebSocket-Protocol: chat, base64")...), true, true},
		{"base64 offered but not enabled", req(append(chromium, "Sec-WebSocket-Protocol: base64")...), false, false},
		{"base64 on a second protocol line", req(append(chromium, "Sec-WebSocket-Protocol: chat",
			"Sec-WebSocket-Protocol: base64")...), true, true},
		{"BASE64 is another protocol", req(append(chromium, "Sec-WebSocket-Protocol: BASE64")...), true, false},
		{"firefox keep-alive, Upgrade", req("GET / HTTP/1.1", "Host: x", "Upgrade: WebSocket",
			"Connection: keep-alive, Upgrade", goodKey, "Sec-WebSocket-Version: 13"), true, false},
		{"tokens on several lines", req("GET / HTTP/1.1", "Host: x", "Upgrade: foo", "Upgrade: websocket",
			"Connection: keep-alive", "Connection: upgrade", goodKey, "Sec-WebSocket-Version: 13"), true, false},
		{"hybi version 8", req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
			goodKey, "Sec-WebSocket-Version: 8"), true, false},
		{"hybi version 7", req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
			goodKey, "Sec-WebSocket-Version: 7"), true, false},
	} {
		for _, rd := range readers {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				// The first frame arrives in the same write as the request.
				h, r, err := newHijackRecorder(append([]byte(tc.raw), firstFrame...), rd.wrap)
				if err != nil {
					t.Fatal(err)
				}
				c, err := Upgrade(h, r, &Options{Base64: tc.base64})
				if err != nil {
					t.Fatalf("Upgrade: %v", err)
				}
				want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
					"Sec-WebSocket-Accept: " + goodAccept + "\r\n"
				if tc.proto {
					want += "Sec-WebSocket-Protocol: base64\r\n"
				}
				if got := h.out.String(); got != want+"\r\n" {
					t.Fatalf("answer %q, want %q", got, want+"\r\n")
				}
				if c.Subprotocol() != map[bool]string{true: "base64"}[tc.proto] {
					t.Errorf("Subprotocol %q", c.Subprotocol())
				}
				buf := make([]byte, 2)
				if n, err := io.ReadFull(c, buf); string(buf[:n]) != "hi" || err != nil {
					t.Errorf("first frame: %q, %v", buf[:n], err)
				}
			})
		}
	}
}

// FuzzUpgradeRequest: any request bytes give a refusal or a 101; never a
// panic, and a refusal never hijacks.
func FuzzUpgradeRequest(f *testing.F) {
	f.Add([]byte(req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
		goodKey, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: base64")))
	f.Add([]byte(req("GET / HTTP/1.1", "Upgrade: websocket,,", "Connection: ,upgrade",
		"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==", "Sec-WebSocket-Version: 7")))
	f.Add([]byte(req("POST / HTTP/1.0", "Sec-WebSocket-Version: 99")))
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, r, err := newHijackRecorder(raw, func(r io.Reader) io.Reader { return r })
		if err != nil {
			return // net/http refuses it before us
		}
		c, err := Upgrade(h, r, &Options{Base64: true})
		if (c == nil) != (err != nil) || (err != nil) == h.hijacked {
			t.Fatalf("conn %v err %v hijacked %v", c, err, h.hijacked)
		}
		if err != nil && h.Code < 400 {
			t.Fatalf("refusal with status %d", h.Code)
		}
		if c != nil && !strings.HasPrefix(h.out.String(), "HTTP/1.1 101 ") {
			t.Fatalf("answer %q", h.out.String())
		}
	})
}

// resp builds a server answer for the sample key.
func resp(lines ...string) string { return req(lines...) }

var ok101 = []string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
	"Sec-WebSocket-Accept: " + goodAccept}

func TestClientResponse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		raw     string
		offered bool
		b64     bool
		errPart string // "" for success
	}{
		{"101", resp(ok101...), false, false, ""},
		{"101 with base64", resp(append(ok101, "Sec-WebSocket-Protocol: base64")...), true, true, ""},
		{"base64 offered, none chosen", resp(ok101...), true, false, ""},
		{"tokens in lists, any case", resp("HTTP/1.1 101 OK", "Upgrade: foo, WebSocket",
			"Connection: keep-alive, upgrade", "Sec-WebSocket-Accept: "+goodAccept), false, false, ""},
		{"200", resp("HTTP/1.1 200 OK", "Content-Length: 0"), false, false, "200 OK"},
		{"302", resp("HTTP/1.1 302 Found", "Location: ws://127.0.0.1:1/", "Content-Length: 0"), false, false, "302"},
		{"404", resp("HTTP/1.1 404 Not Found", "Content-Length: 0"), false, false, "404"},
		{"bad accept", resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
			"Sec-WebSocket-Accept: fM0KjD7ixoxkl4PEXU6tNaTveSg="), false, false, "Accept"},
		{"two accepts", resp(append(ok101, "Sec-WebSocket-Accept: "+goodAccept)...), false, false, "Accept"},
		{"no accept", resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket",
			"Connection: Upgrade"), false, false, "Accept"},
		{"no Upgrade", resp("HTTP/1.1 101 Switching Protocols", "Connection: Upgrade",
			"Sec-WebSocket-Accept: "+goodAccept), false, false, "Upgrade"},
		{"no Connection", resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket",
			"Sec-WebSocket-Accept: "+goodAccept), false, false, "Connection"},
		{"protocol not offered", resp(append(ok101, "Sec-WebSocket-Protocol: base64")...), false, false, "protocol"},
		{"other protocol", resp(append(ok101, "Sec-WebSocket-Protocol: chat")...), true, false, "protocol"},
		{"two protocols", resp(append(ok101, "Sec-WebSocket-Protocol: base64, chat")...), true, false, "protocol"},
		{"extension", resp(append(ok101, "Sec-WebSocket-Extensions: permessage-deflate")...), false, false, "extension"},
		{"not HTTP", "SSH-2.0-OpenSSH_9.6\r\n", false, false, "reading"},
	} {
		for _, rd := range readers {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				frame := []byte{0x82, 0x01, 'x'} // FIN|Binary len 1 "x", right after the answer
				br := bufio.NewReader(rd.wrap(bytes.NewReader(append([]byte(tc.raw), frame...))))
				b64, err := readResponse(br, "dGhlIHNhbXBsZSBub25jZQ==", tc.offered)
				if tc.errPart != "" {
					if err == nil || !strings.Contains(err.Error(), tc.errPart) {
						t.Fatalf("err %v, want one with %q", err, tc.errPart)
					}
					return
				}
				if err != nil || b64 != tc.b64 {
					t.Fatalf("b64 %v err %v", b64, err)
				}
				if rest, _ := io.ReadAll(br); !bytes.Equal(rest, frame) {
					t.Errorf("bytes after the answer: % x", rest)
				}
			})
		}
	}
}

// FuzzClientResponse: any answer bytes give an error or a Conn, bounded.
func FuzzClientResponse(f *testing.F) {
	f.Add([]byte(resp(ok101...)))
	f.Add([]byte(resp(append(ok101, "Sec-WebSocket-Protocol: base64")...)))
	f.Add([]byte("HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 101\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x82\x01x"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		lim := &io.LimitedReader{R: bytes.NewReader(raw), N: maxResponseHead}
		_, err := readResponse(bufio.NewReaderSize(lim, 1024), "dGhlIHNhbXBsZSBub25jZQ==", true)
		if err == nil && !bytes.Contains(raw, []byte(goodAccept)) {
			t.Fatalf("accepted without the right accept key: %q", raw)
		}
	})
}

// fakeServer answers each connection's first request with answer(key).
func fakeServer(t *testing.T, answer func(key string) string) (addr string, requests chan *http.Request) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	requests = make(chan *http.Request, 10)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); received(t, done) })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r, err := http.ReadRequest(bufio.NewReader(c))
			if err == nil {
				requests <- r
				io.WriteString(c, answer(r.Header.Get("Sec-WebSocket-Key")))
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			io.Copy(io.Discard, c) // until the client has read the answer and closed
			c.Close()
		}
	}()
	return ln.Addr().String(), requests
}

func TestClientFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  func(key string) string
		errPart string
	}{
		{"302 not followed", func(string) string {
			return resp("HTTP/1.1 302 Found", "Location: /other", "Content-Length: 0")
		}, "302"},
		{"bad accept", func(string) string { return resp(ok101...) }, "Accept"},
		{"extension", func(key string) string {
			return resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
				"Sec-WebSocket-Accept: "+acceptKey(key), "Sec-WebSocket-Extensions: permessage-deflate")
		}, "extension"},
		{"huge header", func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nX: " + strings.Repeat("a", 1<<20) + "\r\n\r\n"
		}, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, requests := fakeServer(t, tc.answer)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_, err = Client(nc, mustURL(t, "ws://"+addr+"/path?q=1"), &Options{Base64: true,
				Header: http.Header{"User-Agent": {"test/1"}, "Host": {"other"},
					"sec-websocket-protocol": {"chat"}}}) // the last two are ignored
			if err == nil || !strings.Contains(err.Error(), tc.errPart) {
				t.Fatalf("err %v, want one with %q", err, tc.errPart)
			}
			var se *StatusError
			if isStatus := errors.As(err, &se); isStatus != (tc.name == "302 not followed") || isStatus && (se.Code != 302 || se.Status != "302 Found") {
				t.Errorf("err %#v: a StatusError for the 302 answer only", err)
			}
			r := received(t, requests)
			if r.Host != addr || r.RequestURI != "/path?q=1" || r.Header.Get("User-Agent") != "test/1" ||
				len(r.Header.Values("Sec-WebSocket-Protocol")) != 1 || r.Header.Get("Sec-WebSocket-Protocol") != "base64" || r.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Errorf("request %v %v %v", r.Host, r.RequestURI, r.Header)
			}
			if len(requests) != 0 {
				t.Error("a second request was made")
			}
		})
	}
}

func TestClientSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String()) // the backlog accepts; nobody answers
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	_, err = Client(nc, mustURL(t, "ws://"+ln.Addr().String()+"/"), &Options{HandshakeTimeout: 200 * time.Millisecond})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("the handshake timeout was not applied")
	}
	// The deadline is cleared after the handshake, failed or not: a read
	// now waits for data rather than failing at once.
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sc.Write([]byte("x"))
	if n, err := nc.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("read after the failed handshake: %d, %v", n, err)
	}
}

// Both handshakes clear their deadlines: a tunnel idle for longer than
// HandshakeTimeout still carries data both ways.
func TestDeadlinesClearedAfterHandshake(t *testing.T) {
	opt := &Options{HandshakeTimeout: 100 * time.Millisecond}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, opt)
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err == nil {
			c.Write(buf)
		}
	}))
	defer srv.Close()
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := Client(nc, mustURL(t, "ws://"+srv.Listener.Addr().String()+"/"), opt)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // past both handshakes' deadlines
	buf := make([]byte, 4)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo after idling: %q, %v", buf, err)
	}
	c.Close()
}

// Through net/http's server: a frame sent in the same write as the request
// reaches Read; a refused request gets an HTTP answer on a live connection.
func TestUpgradeOverHTTPServer(t *testing.T) {
	ch := make(chan *Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := Upgrade(w, r, nil)
		ch <- c
	}))
	defer srv.Close()
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	bad := req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade", goodKey,
		"Sec-WebSocket-Version: 12")
	good := req("GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade", goodKey,
		"Sec-WebSocket-Version: 13")
	frame := cat([]byte{0x82, 0x83}, z4, []byte("abc")) // FIN|Binary, MASK|len 3, key, "abc"
	br := bufio.NewReader(nc)
	io.WriteString(nc, bad)
	r, err := http.ReadResponse(br, nil)
	if err != nil || r.StatusCode != 426 || r.Header.Get("Sec-WebSocket-Version") != "13" {
		t.Fatalf("refusal: %v %v", r, err)
	}
	io.Copy(io.Discard, r.Body)
	if c := received(t, ch); c != nil {
		t.Fatal("refused request hijacked")
	}
	nc.Write(append([]byte(good), frame...)) // the same connection, one write
	if r, err = http.ReadResponse(br, nil); err != nil || r.StatusCode != 101 {
		t.Fatalf("answer: %v %v", r, err)
	}
	c := received(t, ch)
	defer c.conn.Close()
	buf := make([]byte, 3)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "abc" {
		t.Fatalf("first frame: %q %v", buf, err)
	}
}

// A frame in the same segment as the 101 answer is the first frame read.
func TestClientKeepsBytesAfterAnswer(t *testing.T) {
	addr, _ := fakeServer(t, func(key string) string {
		return resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
			"Sec-WebSocket-Accept: "+acceptKey(key)) + "\x82\x02ok" // FIN|Binary, len 2, "ok"
	})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := Client(nc, mustURL(t, "ws://"+addr+"/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if string(got) != "ok" || err != io.ErrUnexpectedEOF { // the fake server just hangs up
		t.Fatalf("read %q, %v", got, err)
	}
}
