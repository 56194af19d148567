package pt

import "testing"

// TestVersion covers the linked version and a test binary, whose build information has no
// module version; tests/version_test.go installs a program as MODULE/client@v0.1.0.
func TestVersion(t *testing.T) {
	if got := Version(""); got != "dev" {
		t.Errorf("Version(\"\") in a test binary: %q, want dev", got)
	}
	if got := Version("1.2.3"); got != "1.2.3" {
		t.Errorf("Version(\"1.2.3\"): %q", got)
	}
}
