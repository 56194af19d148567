package main

// In-process benchmarks of our tunnel, for profiles: the same two hops as the
// programs (TCP → pt.Relay → ws.Client conn ⇄ ws.Upgrade conn → pt.Relay → TCP),
// built from the product's ws and pt packages, without SOCKS or the Extended
// ORPort. Run them with
//
//	go test -run '^$' -bench Tunnel -cpuprofile cpu.out && go tool pprof -top cpu.out
//
// They measure the product's code paths, not the programs: the figures that
// count are the harness's.

import (
	"flag"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/pt"
	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

// listen starts a loopback listener that hands each connection to serve.
func listen(tb testing.TB, serve func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

// ourTunnel starts a target, a server hop and a client hop; it returns the
// client hop's address.
func ourTunnel(tb testing.TB, b64 bool) string {
	target := listen(tb, serveTarget)
	opt := &ws.Options{Base64: b64}
	srvLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := ws.Upgrade(w, r, opt)
		if err != nil {
			return
		}
		or, err := net.Dial("tcp", target)
		if err != nil {
			conn.Close()
			return
		}
		pt.Relay(conn, or, pt.RelayOptions{})
	})}
	go srv.Serve(srvLn)
	tb.Cleanup(func() { srv.Close() })
	u := &url.URL{Scheme: "ws", Host: srvLn.Addr().String(), Path: "/"}
	return listen(tb, func(c net.Conn) {
		tcp, err := net.Dial("tcp", u.Host)
		if err != nil {
			c.Close()
			return
		}
		conn, err := ws.Client(tcp, u, opt)
		if err != nil {
			tcp.Close()
			c.Close()
			return
		}
		pt.Relay(c, conn, pt.RelayOptions{})
	})
}

func benchTunnel(b *testing.B, b64, up bool) {
	entry := ourTunnel(b, b64)
	conn, err := tunnel{entry: entry}.dial(5e9)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	const chunk = 32 << 10
	b.SetBytes(chunk)
	b.ReportAllocs()
	b.ResetTimer()
	if up {
		err = upload(conn, int64(b.N)*chunk, chunk)
	} else {
		err = download(conn, int64(b.N)*chunk)
	}
	if err != nil {
		b.Fatal(err)
	}
}

func BenchmarkTunnelUpload(b *testing.B)         { benchTunnel(b, false, true) }
func BenchmarkTunnelDownload(b *testing.B)       { benchTunnel(b, false, false) }
func BenchmarkTunnelUploadBase64(b *testing.B)   { benchTunnel(b, true, true) }
func BenchmarkTunnelDownloadBase64(b *testing.B) { benchTunnel(b, true, false) }

var idleProfile = flag.String("idleprofile", "", "BenchmarkIdleTunnels: write a heap profile (every allocation sampled) here while the tunnels are open")

// BenchmarkIdleTunnels opens b.N idle tunnels in-process (run it with
// -benchtime=2000x) and reports the Go heap and goroutine stacks they hold,
// per tunnel, for client and server hops, target and load generator together.
// The harness measures the programs' RSS; this says where it goes.
func BenchmarkIdleTunnels(b *testing.B) {
	if *idleProfile != "" {
		runtime.MemProfileRate = 1
	}
	entry := ourTunnel(b, false)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	conns := make([]net.Conn, 0, b.N)
	defer func() { closeAll(conns) }()
	for i := 0; i < b.N; i++ {
		c, err := openEcho(tunnel{entry: entry}, 5e9)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	n := float64(b.N)
	b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n, "heap-B/tunnel")
	b.ReportMetric(float64(after.StackInuse-before.StackInuse)/n, "stack-B/tunnel")
	b.ReportMetric(float64(runtime.NumGoroutine())/n, "goroutines/tunnel")
	if *idleProfile != "" {
		f, err := os.Create(*idleProfile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTunnel checks that the in-process tunnel carries data both ways, so that
// the benchmarks measure a working path.
func TestTunnel(t *testing.T) {
	for _, b64 := range []bool{false, true} {
		conn, err := tunnel{entry: ourTunnel(t, b64)}.dial(5e9)
		if err != nil {
			t.Fatal(err)
		}
		if err := upload(conn, 1<<20, 1000); err != nil {
			t.Fatalf("base64 %v upload: %v", b64, err)
		}
		if err := download(conn, 1<<20); err != nil {
			t.Fatalf("base64 %v download: %v", b64, err)
		}
		conn.Close()
	}
}
