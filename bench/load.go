package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// cmdLoad is a load-generator child: it opens n echo tunnels (each proven by a
// one-byte round trip), prints "OPEN ok errors first-error", waits for a line on
// stdin, then makes every tunnel carry -rounds echoes of -size bytes at the same
// time and checks them, prints "DONE ok errors first-error", and closes
// everything when stdin ends.
func cmdLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	entry := fs.String("entry", "", "address of the chain's entry")
	socks := fs.String("socks", "", "SOCKS5 target (for ours), empty for a plain TCP entry")
	n := fs.Int("n", 1000, "tunnels")
	size := fs.Int("size", 1024, "bytes per echo")
	rounds := fs.Int("rounds", 4, "echoes per tunnel")
	par := fs.Int("par", 32, "tunnels being opened at the same time")
	timeout := fs.Duration("timeout", 60*time.Second, "deadline of each phase")
	fs.Parse(args)
	raiseNofile()
	t := tunnel{*entry, *socks}
	stdin := bufio.NewReader(os.Stdin)

	conns := make([]net.Conn, *n)
	var st stats
	sem := make(chan struct{}, *par)
	var wg sync.WaitGroup
	for i := range conns {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			c, err := openEcho(t, *timeout)
			st.add(err)
			conns[i] = c
		}(i)
	}
	wg.Wait()
	fmt.Println("OPEN", st.line())
	if _, err := stdin.ReadString('\n'); err != nil {
		return closeAll(conns)
	}

	st = stats{}
	deadline := time.Now().Add(*timeout)
	for i, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func(i int, c net.Conn) {
			defer wg.Done()
			c.SetDeadline(deadline)
			st.add(echoRounds(c, pattern[i%1024:][:*size], *rounds))
		}(i, c)
	}
	wg.Wait()
	fmt.Println("DONE", st.line())
	io.Copy(io.Discard, stdin)
	return closeAll(conns)
}

// openEcho dials a tunnel, asks the target to echo, and proves the whole chain
// with a one-byte round trip.
func openEcho(t tunnel, timeout time.Duration) (net.Conn, error) {
	c, err := t.dial(timeout)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(timeout))
	if err := request(c, opEcho, 0); err != nil {
		c.Close()
		return nil, err
	}
	if err := echoRounds(c, []byte{'x'}, 1); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func echoRounds(c net.Conn, msg []byte, rounds int) error {
	got := make([]byte, len(msg))
	for r := 0; r < rounds; r++ {
		if _, err := c.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		if !bytes.Equal(got, msg) {
			return errors.New("echo: data differs")
		}
	}
	return nil
}

func closeAll(conns []net.Conn) error {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	return nil
}

// stats counts outcomes and keeps the first error's text.
type stats struct {
	mu      sync.Mutex
	ok, bad int
	first   string
}

func (s *stats) add(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.ok++
		return
	}
	s.bad++
	if s.first == "" {
		s.first = err.Error()
	}
}

func (s *stats) line() string {
	return fmt.Sprintf("%d %d %s", s.ok, s.bad, s.first)
}

// cmdBulk moves -size MiB through one tunnel and prints MB/s: a driver for
// profiling a running chain by hand (perf, strace).
func cmdBulk(args []string) error {
	fs := flag.NewFlagSet("bulk", flag.ExitOnError)
	entry := fs.String("entry", "", "address of the chain's entry")
	socks := fs.String("socks", "", "SOCKS5 target (for ours), empty for a plain TCP entry")
	size := fs.Int64("size", 1024, "MiB")
	up := fs.Bool("up", false, "upload (default: download)")
	fs.Parse(args)
	c, err := tunnel{*entry, *socks}.dial(10 * time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	if *up {
		err = upload(c, *size<<20, 32<<10)
	} else {
		err = download(c, *size<<20)
	}
	if err != nil {
		return err
	}
	fmt.Printf("%.0f MB/s\n", float64(*size<<20)/1e6/time.Since(start).Seconds())
	return nil
}
