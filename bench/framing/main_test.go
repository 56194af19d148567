//go:build linux

package main

import (
	"bytes"
	"io"
	"math/rand"
	"net"
	"testing"
	"time"
)

// Every framing mode with every unframing mode delivers the bytes sent, in order, with frames
// and units of sizes that cut headers and payloads at every kind of place.
func TestChains(t *testing.T) {
	defer func(u, f, p int) { unit, frame, pipeSize = u, f, p }(unit, frame, pipeSize)
	unit, frame, pipeSize = 48<<10, 5000, 1<<20
	msg := make([]byte, 3<<20)
	rand.New(rand.NewSource(1)).Read(msg)
	for _, first := range []string{"frame-move", "frame-writev", "frame-splice", "frame-splice2"} {
		for _, second := range []string{"unframe-writev", "unframe-splice", "unframe-splice2"} {
			sink := make(chan []byte, 1)
			end := serve(t, "", func(c *net.TCPConn) error {
				got, err := io.ReadAll(c)
				sink <- got
				return err
			})
			mid := serve(t, second, nil, end)
			entry := serve(t, first, nil, mid)
			c, err := net.Dial("tcp", entry)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				c.Write(msg)
				c.(*net.TCPConn).CloseWrite()
			}()
			select {
			case got := <-sink:
				if !bytes.Equal(got, msg) {
					t.Errorf("%s, %s: %d bytes delivered, differing from the %d sent", first, second, len(got), len(msg))
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("%s, %s: nothing delivered within 20 s", first, second)
			}
			c.Close()
		}
	}
}

// serve accepts one connection and either hands it to end or moves it to the address in to by
// mode; it returns its address.
func serve(t *testing.T, mode string, end func(*net.TCPConn) error, to ...string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		src := c.(*net.TCPConn)
		defer src.Close()
		if end != nil {
			end(src)
			return
		}
		d, err := net.Dial("tcp", to[0])
		if err != nil {
			t.Error(err)
			return
		}
		defer d.Close()
		if err := move(mode, d.(*net.TCPConn), src); err != nil && err != io.EOF {
			t.Errorf("%s: %v", mode, err)
		}
		d.(*net.TCPConn).CloseWrite()
	}()
	return ln.Addr().String()
}
