package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// cmdRelayTCP is one hop of the raw or the copy chain: accept TCP, dial -to, move
// the bytes both ways with move.
func cmdRelayTCP(name string, args []string, move func(dst io.Writer, src io.Reader)) error {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	to := fs.String("to", "", "address to connect to")
	fs.Parse(args)
	return serveTCP(*listen, func(c net.Conn) {
		defer c.Close()
		d, err := net.Dial("tcp", *to)
		if err != nil {
			return
		}
		defer d.Close()
		done := make(chan struct{})
		go func() { copyHalfClose(d, c, move); close(done) }()
		copyHalfClose(c, d, move)
		<-done
	})
}

// moveSpliced is the raw chain's io.Copy: between TCP sockets on Linux, splice(2)
// through a pipe, so the bytes never enter the relay's memory.
func moveSpliced(dst io.Writer, src io.Reader) { io.Copy(dst, src) }

// moveCopied is the copy chain's: read into a 32 KiB buffer of the relay's own, then
// write it, the least a program can do while the bytes pass through its memory (as
// they must when it unmasks them). Wrapping both sides hides ReaderFrom and WriterTo,
// through which io.CopyBuffer would splice.
func moveCopied(dst io.Writer, src io.Reader) {
	io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, 32<<10))
}

// serveTCP listens on addr and runs handle for each connection in a goroutine.
// Out of file descriptors, it waits and retries (as net/http's server does), so
// that a relay survives a load it cannot hold.
func serveTCP(addr string, handle func(net.Conn)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			time.Sleep(10 * time.Millisecond)
			continue
		} else if err != nil {
			return err
		}
		go handle(c)
	}
}

// copyHalfClose moves src to dst with move, then half-closes dst so that EOF
// travels on.
func copyHalfClose(dst, src net.Conn, move func(dst io.Writer, src io.Reader)) {
	move(dst, src)
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	} else {
		dst.Close()
	}
}

// Gorilla relays. Buffer sizes are flags; the defaults are gorilla's default read
// buffer (4 KiB) and a 32 KiB write buffer taken from a pool only while a message is
// being written (Dialer/Upgrader.WriteBufferPool), the memory-conscious setting
// gorilla's documentation recommends for many connections.
type gorillaOpts struct {
	base64       bool
	rbuf, wbuf   int
	chunk        int
	writeBufPool sync.Pool
}

func (o *gorillaOpts) flags(fs *flag.FlagSet) {
	fs.BoolVar(&o.base64, "base64", false, "carry data as base64 text messages (subprotocol base64)")
	fs.IntVar(&o.rbuf, "rbuf", 0, "gorilla ReadBufferSize (0: gorilla's default, 4096)")
	fs.IntVar(&o.wbuf, "wbuf", 32<<10, "gorilla WriteBufferSize")
	fs.IntVar(&o.chunk, "chunk", 32<<10, "bytes read from TCP per message")
}

func (o *gorillaOpts) protocols() []string {
	if o.base64 {
		return []string{"base64"}
	}
	return nil
}

func cmdGorillaClient(args []string) error {
	var o gorillaOpts
	fs := flag.NewFlagSet("relay-gorilla-client", flag.ExitOnError)
	o.flags(fs)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	url := fs.String("url", "", "ws:// URL of the server relay")
	fs.Parse(args)
	dialer := websocket.Dialer{
		ReadBufferSize: o.rbuf, WriteBufferSize: o.wbuf, WriteBufferPool: &o.writeBufPool,
		Subprotocols: o.protocols(),
	}
	return serveTCP(*listen, func(c net.Conn) {
		defer c.Close()
		ws, _, err := dialer.Dial(*url, nil)
		if err != nil {
			return
		}
		gorillaPipe(c, ws, &o)
	})
}

func cmdGorillaServer(args []string) error {
	var o gorillaOpts
	fs := flag.NewFlagSet("relay-gorilla-server", flag.ExitOnError)
	o.flags(fs)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	to := fs.String("to", "", "address to connect to")
	fs.Parse(args)
	up := websocket.Upgrader{
		ReadBufferSize: o.rbuf, WriteBufferSize: o.wbuf, WriteBufferPool: &o.writeBufPool,
		Subprotocols: o.protocols(),
	}
	return http.ListenAndServe(*listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		c, err := net.Dial("tcp", *to)
		if err != nil {
			return
		}
		defer c.Close()
		gorillaPipe(c, ws, &o)
	}))
}

// gorillaPipe relays TCP ↔ WebSocket with idiomatic gorilla calls: WriteMessage
// per TCP read, NextReader per received message, reused buffers (no per-message
// allocation by the relay itself). It returns when either direction ends.
func gorillaPipe(c net.Conn, ws *websocket.Conn, o *gorillaOpts) {
	done := make(chan struct{}, 2)
	go func() { // TCP → WebSocket
		defer func() { done <- struct{}{} }()
		buf := make([]byte, o.chunk)
		var enc []byte
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if o.base64 {
					enc = grow(enc, base64.StdEncoding.EncodedLen(n))
					base64.StdEncoding.Encode(enc, buf[:n])
					err = ws.WriteMessage(websocket.TextMessage, enc)
				} else {
					err = ws.WriteMessage(websocket.BinaryMessage, buf[:n])
				}
			}
			if err != nil {
				ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
				return
			}
		}
	}()
	go func() { // WebSocket → TCP
		defer func() { done <- struct{}{} }()
		buf := make([]byte, o.chunk)
		var msg bytes.Buffer
		for {
			_, r, err := ws.NextReader()
			if err != nil {
				return
			}
			if o.base64 {
				msg.Reset()
				if _, err := msg.ReadFrom(r); err != nil {
					return
				}
				buf = grow(buf, base64.StdEncoding.DecodedLen(msg.Len()))
				n, err := base64.StdEncoding.Decode(buf, msg.Bytes())
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
				continue
			}
			for {
				n, err := r.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err == io.EOF {
					break
				} else if err != nil {
					return
				}
			}
		}
	}()
	<-done
	c.Close()
	ws.Close()
	<-done
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
