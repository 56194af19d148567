// Package tests holds end-to-end tests of the two programs: against a fake tor
// written here (always run), and against real third-party peers (tor,
// Chromium, nginx, HAProxy, node ws, websockify; the Windows builds under
// wine) behind the "interop" build tag, which "make interop" runs after tests/install-deps.sh.
package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
