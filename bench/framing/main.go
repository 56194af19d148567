//go:build linux

// Command framing measures what the download direction's framing costs, apart from
// everything else in the programs: two relays in a chain, the first putting each unit it
// reads into WebSocket binary frames (as websocket-server does with tor's bytes), the second
// taking the frames' payload out (as websocket-client does), by copying or by splice(2).
// There is no handshake, masking, control frame or bound here: the least work a framing
// relay can do, to compare with relays that move bytes without frames ("raw", which splices,
// and "copy"). framing.sh runs the chains and reports each relay's CPU per GiB.
//
//	framing source -to ADDR -mib N          send N MiB, print its SHA-256 and MB/s
//	framing sink -listen ADDR               print each connection's byte count and SHA-256
//	framing relay -mode MODE -listen ADDR -to ADDR [-unit B -frame B -pipe B -local-buf B -ws-buf B]
//
// Modes: raw, copy (no frames); frame-move (frames moved behind their headers in one buffer,
// as ws.Conn.ReadFrom does), frame-writev (headers and payload gathered by writev),
// frame-splice (socket → pipe, each header sent with MSG_MORE before its payload spliced
// out), frame-splice2 (two pipes: headers written into the second between payloads moved pipe
// to pipe, one splice to the socket per unit); unframe-writev (payloads gathered by writev),
// unframe-splice (socket → pipe, each header read from the pipe, payload spliced out),
// unframe-splice2 (payloads moved to a second pipe, one splice to the socket per unit).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// The relays' settings; frames are at most 65,535 bytes, so every header is 4 bytes.
var (
	unit     = 128 << 10 // bytes read from the source socket at once
	frame    = 32 << 10  // payload bytes per frame
	pipeSize = 1 << 20   // F_SETPIPE_SZ of each pipe
)

const headerLen = 4 // 0x82, 126, then a 16-bit length

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: framing source|sink|relay [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	listen := fs.String("listen", "", "address to listen on")
	to := fs.String("to", "", "address to connect to")
	mib := fs.Int("mib", 256, "MiB to send")
	mode := fs.String("mode", "raw", "relay mode")
	localBuf := fs.Int("local-buf", 0, "SO_RCVBUF/SO_SNDBUF of the tor-side sockets (0: the system's)")
	wsBuf := fs.Int("ws-buf", 0, "SO_RCVBUF/SO_SNDBUF of the WebSocket-side sockets (0: the system's)")
	fs.IntVar(&unit, "unit", unit, "bytes read at once")
	fs.IntVar(&frame, "frame", frame, "payload bytes per frame (at most 65535)")
	fs.IntVar(&pipeSize, "pipe", pipeSize, "pipe size")
	fs.Parse(os.Args[2:])
	if frame < 1 || frame > 65535 {
		log.Fatal("-frame must be 1 to 65535")
	}
	switch os.Args[1] {
	case "source":
		source(*to, *mib)
	case "sink":
		sink(*listen)
	case "relay":
		// The first relay (frame-*) accepts on tor's side and dials the WebSocket; the second
		// (unframe-*) accepts the WebSocket and dials tor's side, as the programs do downstream.
		acceptBuf, dialBuf := *localBuf, *wsBuf
		if strings.HasPrefix(*mode, "unframe") {
			acceptBuf, dialBuf = *wsBuf, *localBuf
		}
		relay(*mode, *listen, *to, acceptBuf, dialBuf)
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}

func source(to string, mib int) {
	c, err := net.Dial("tcp", to)
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i*7 + i>>11)
	}
	sum := sha256.New()
	start := time.Now()
	for i := 0; i < mib*4; i++ {
		if _, err := c.Write(buf); err != nil {
			log.Fatal(err)
		}
		sum.Write(buf)
	}
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c) // until the first relay closes: everything has left it
	fmt.Printf("%.0f MB/s %x\n", float64(mib)*1.048576/time.Since(start).Seconds(), sum.Sum(nil))
}

func sink(listen string) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			sum := sha256.New()
			n, _ := io.CopyBuffer(sum, struct{ io.Reader }{c}, make([]byte, 256<<10))
			c.Close()
			fmt.Printf("%d %x\n", n, sum.Sum(nil))
		}()
	}
}

func relay(mode, listen, to string, acceptBuf, dialBuf int) {
	lc := net.ListenConfig{Control: buffers(acceptBuf)}
	ln, err := lc.Listen(context.Background(), "tcp", listen)
	if err != nil {
		log.Fatal(err)
	}
	dialer := net.Dialer{Control: buffers(dialBuf)}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func(src *net.TCPConn) {
			defer src.Close()
			d, err := dialer.Dial("tcp", to)
			if err != nil {
				log.Print(err)
				return
			}
			dst := d.(*net.TCPConn)
			defer dst.Close()
			if err := move(mode, dst, src); err != nil && err != io.EOF {
				log.Printf("%s: %v", mode, err)
				return
			}
			dst.CloseWrite()
			io.Copy(io.Discard, dst) // until the far end closes
		}(c.(*net.TCPConn))
	}
}

func move(mode string, dst, src *net.TCPConn) error {
	switch mode {
	case "raw":
		_, err := io.Copy(dst, src) // splices
		return err
	case "copy":
		_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, unit))
		return err
	case "frame-move":
		return frameMove(dst, src)
	case "frame-writev":
		return frameWritev(dst, src)
	case "unframe-writev":
		return unframeWritev(dst, src)
	case "frame-splice", "frame-splice2", "unframe-splice", "unframe-splice2":
		two := strings.HasSuffix(mode, "2")
		p, q, err := pipes(two)
		if err != nil {
			return err
		}
		defer p.close()
		if two {
			defer q.close()
		}
		in, _ := src.SyscallConn()
		out, _ := dst.SyscallConn()
		if strings.HasPrefix(mode, "frame") {
			return frameSplice(in, out, p, q, two)
		}
		return unframeSplice(in, out, p, q, two)
	}
	return fmt.Errorf("unknown mode %q", mode)
}

func buffers(size int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		if size > 0 {
			rc.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, size)
			})
		}
		return nil
	}
}

func putHeader(h []byte, size int) {
	h[0], h[1] = 0x82, 126
	binary.BigEndian.PutUint16(h[2:], uint16(size))
}

// frameMove reads a unit after room for its first header, moves every frame behind its own
// header (from the last), and writes them all at once.
func frameMove(dst, src *net.TCPConn) error {
	buf := make([]byte, unit+(unit/frame+1)*headerLen)
	for {
		n, err := src.Read(buf[headerLen : headerLen+unit])
		frames := (n + frame - 1) / frame
		for i := frames - 1; i >= 0; i-- {
			from := headerLen + i*frame
			size := min(frame, n-i*frame)
			at := i * (headerLen + frame)
			copy(buf[at+headerLen:], buf[from:from+size])
			putHeader(buf[at:], size)
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n+frames*headerLen]); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
	}
}

// frameWritev reads a unit and writes each frame's header and payload with one writev.
func frameWritev(dst, src *net.TCPConn) error {
	buf := make([]byte, unit)
	headers := make([]byte, (unit/frame+1)*headerLen)
	var out net.Buffers
	for {
		n, err := src.Read(buf)
		out = out[:0]
		for at, i := 0, 0; at < n; at, i = at+frame, i+1 {
			h := headers[i*headerLen : (i+1)*headerLen]
			putHeader(h, min(frame, n-at))
			out = append(out, h, buf[at:min(at+frame, n)])
		}
		if _, werr := out.WriteTo(dst); werr != nil {
			return werr
		}
		if err != nil {
			return err
		}
	}
}

// unframeWritev reads a unit of frames and writes their payloads with one writev; a header
// cut at the unit's end is kept for the next read.
func unframeWritev(dst, src *net.TCPConn) error {
	buf := make([]byte, unit+headerLen)
	have, need := 0, 0 // bytes in buf; payload bytes left of the current frame
	var out net.Buffers
	for {
		n, err := src.Read(buf[have:])
		have += n
		at := 0
		out = out[:0]
		for at < have {
			if need > 0 {
				k := min(need, have-at)
				out = append(out, buf[at:at+k])
				at, need = at+k, need-k
				continue
			}
			if have-at < headerLen {
				break
			}
			need = int(binary.BigEndian.Uint16(buf[at+2:]))
			at += headerLen
		}
		if _, werr := out.WriteTo(dst); werr != nil {
			return werr
		}
		have = copy(buf, buf[at:have])
		if err != nil {
			return err
		}
	}
}

const (
	spliceMove     = 1
	spliceNonblock = 2
	spliceMore     = 4
	setPipeSize    = 1031 // F_SETPIPE_SZ
)

type pipe struct{ r, w int }

func newPipe() (pipe, error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		return pipe{}, err
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(p[0]), setPipeSize, uintptr(pipeSize)); errno != 0 {
		return pipe{}, errno
	}
	return pipe{p[0], p[1]}, nil
}

func (p pipe) close() { syscall.Close(p.r); syscall.Close(p.w) }

// spliceIn moves up to max bytes from the socket into the pipe, waiting for the socket.
func spliceIn(rc syscall.RawConn, p pipe, max int) (int, error) {
	var n int64
	var err error
	if rerr := rc.Read(func(fd uintptr) bool {
		n, err = syscall.Splice(int(fd), nil, p.w, nil, max, spliceMove|spliceNonblock)
		return err != syscall.EAGAIN
	}); rerr != nil {
		return 0, rerr
	}
	if err == nil && n == 0 {
		err = io.EOF
	}
	return int(n), err
}

// spliceOut moves exactly n bytes from the pipe into the socket, waiting for the socket.
func spliceOut(rc syscall.RawConn, p pipe, n int, more bool) error {
	flags := spliceMove | spliceNonblock
	if more {
		flags |= spliceMore
	}
	for n > 0 {
		var m int64
		var err error
		if werr := rc.Write(func(fd uintptr) bool {
			m, err = syscall.Splice(p.r, nil, int(fd), nil, n, flags)
			return err != syscall.EAGAIN
		}); werr != nil {
			return werr
		}
		if err != nil {
			return err
		}
		n -= int(m)
	}
	return nil
}

// pipeToPipe moves exactly n bytes, which from holds, into to, which has room for them.
func pipeToPipe(from, to pipe, n int) error {
	for n > 0 {
		m, err := syscall.Splice(from.r, nil, to.w, nil, n, spliceMove|spliceNonblock)
		if err != nil {
			return err
		}
		n -= int(m)
	}
	return nil
}

func pipes(two bool) (p, q pipe, err error) {
	if p, err = newPipe(); err != nil || !two {
		return p, p, err
	}
	if q, err = newPipe(); err != nil {
		p.close()
	}
	return p, q, err
}

// frameSplice splices a unit from the socket into a pipe; then, one pipe: each frame's header
// is sent with MSG_MORE and its payload spliced after it; two pipes: the headers are written
// into the second pipe between the payloads moved into it, and the second pipe goes to the
// socket in one splice.
func frameSplice(in, out syscall.RawConn, p, q pipe, two bool) error {
	var h [headerLen]byte
	for {
		n, err := spliceIn(in, p, unit)
		if err != nil {
			return err
		}
		total := n
		for left := n; left > 0; left -= min(frame, left) {
			size := min(frame, left)
			putHeader(h[:], size)
			if two {
				if _, err := syscall.Write(q.w, h[:]); err != nil {
					return err
				}
				if err := pipeToPipe(p, q, size); err != nil {
					return err
				}
				total += headerLen
				continue
			}
			var serr error
			out.Write(func(fd uintptr) bool {
				_, serr = syscall.SendmsgN(int(fd), h[:], nil, nil, syscall.MSG_MORE)
				return serr != syscall.EAGAIN
			})
			if serr != nil {
				return serr
			}
			if err := spliceOut(out, p, size, left > frame); err != nil {
				return err
			}
		}
		if two {
			if err := spliceOut(out, q, total, false); err != nil {
				return err
			}
		}
	}
}

// unframeSplice splices what the socket holds into a pipe and reads each header from it;
// one pipe: each payload is spliced to the socket; two pipes: the payloads are moved into the
// second pipe, which goes to the socket in one splice per unit.
func unframeSplice(in, out syscall.RawConn, p, q pipe, two bool) error {
	var h [headerLen]byte
	inPipe, headerHave, need := 0, 0, 0
	for {
		n, err := spliceIn(in, p, min(unit, pipeSize-inPipe))
		if err != nil {
			return err
		}
		inPipe += n
		queued := 0
		for inPipe > 0 {
			if need == 0 { // a header, perhaps cut at the unit's end
				k, err := syscall.Read(p.r, h[headerHave:min(headerLen, headerHave+inPipe)])
				if err != nil {
					return err
				}
				inPipe, headerHave = inPipe-k, headerHave+k
				if headerHave == headerLen {
					need, headerHave = int(binary.BigEndian.Uint16(h[2:])), 0
				}
				continue
			}
			k := min(need, inPipe)
			if two {
				err = pipeToPipe(p, q, k)
				queued += k
			} else {
				err = spliceOut(out, p, k, false)
			}
			if err != nil {
				return err
			}
			inPipe, need = inPipe-k, need-k
		}
		if queued > 0 {
			if err := spliceOut(out, q, queued, false); err != nil {
				return err
			}
		}
	}
}
