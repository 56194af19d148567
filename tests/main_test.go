// Package tests holds end-to-end tests of the two programs: against a fake tor
// written here (always run), and against real third-party peers (tor,
// Chromium, nginx, HAProxy, node ws, websockify; the Windows builds under
// wine) behind the "interop" build tag, which "make interop" runs after tests/install-deps.sh.
package tests

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// binDir holds websocket-client and websocket-server, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "websocket-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := 1
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "building the programs:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles both programs the way the Makefile does, into dir.
func build(dir string) error {
	for _, p := range []struct{ name, pkg string }{
		{"websocket-client", "../client"},
		{"websocket-server", "../server"},
	} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, p.name), p.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", p.name, err, out)
		}
	}
	return nil
}

// program returns the path of a built program: "websocket-client" or "websocket-server".
func program(name string) string { return filepath.Join(binDir, name) }

// interopTimeout bounds each wait in the interop tests (and roundTrip's):
// generous, the machine is small and shared.
const interopTimeout = 60 * time.Second

// listen opens a loopback listener closed at the end of the test.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// roundTrip writes n random bytes to c while reading n bytes back, and
// checks by SHA-256 that what came back is what went out (c is connected to
// an echo). It returns the hex digest.
func roundTrip(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	c.SetDeadline(time.Now().Add(interopTimeout))
	defer c.SetDeadline(time.Time{})
	werr := make(chan error, 1)
	go func() {
		// Several writes of odd sizes, so messages of many sizes go out.
		for off, step := 0, 1; off < n; off, step = off+step, step*3+1 {
			end := min(off+step, n)
			if _, err := c.Write(data[off:end]); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	h := sha256.New()
	got, err := io.CopyN(h, c, int64(n))
	if err != nil {
		t.Fatalf("read %d of %d bytes back: %v", got, n, err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	want := sha256.Sum256(data)
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("echo differs: SHA-256 %x, sent %x", h.Sum(nil), want)
	}
	return hex.EncodeToString(want[:8])
}
