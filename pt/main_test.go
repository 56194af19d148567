package pt

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the package if a goroutine running code of this package outlives the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaks := leakedGoroutines(10 * time.Second); leaks != "" {
			fmt.Fprintf(os.Stderr, "goroutines still running after the tests:\n\n%s\n", leaks)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines waits up to grace for every other goroutine with a frame of this package
// to end, and returns the stacks of those that did not.
func leakedGoroutines(grace time.Duration) string {
	const pkg = "/websocket/pt."
	deadline := time.Now().Add(grace)
	for {
		buf := make([]byte, 1<<20)
		stacks := strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n")
		var leaks []string
		for _, g := range stacks[1:] { // stacks[0] is this goroutine
			if strings.Contains(g, pkg) {
				leaks = append(leaks, g)
			}
		}
		if len(leaks) == 0 || time.Now().After(deadline) {
			return strings.Join(leaks, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// received returns the next value from ch, or fails the test after a generous wait: a peer that
// never answers (when loopback is down, say) must fail the test on its own deadline, not hang it.
func received[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("nothing received from the peer within 10 s")
	}
	var zero T
	return zero
}
