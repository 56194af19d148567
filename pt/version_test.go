package pt

import (
	"runtime/debug"
	"testing"
)

func TestVersion(t *testing.T) {
	built := func(v string) *debug.BuildInfo { return &debug.BuildInfo{Main: debug.Module{Version: v}} }
	for _, tc := range []struct {
		name, linked string
		bi           *debug.BuildInfo
		ok           bool
		want         string
	}{
		{"ldflags win", "0.1.0", built("v0.2.0"), true, "0.1.0"},
		{"go install module@version", "", built("v0.2.0"), true, "v0.2.0"},
		{"pseudo-version from VCS", "", built("v0.0.0-20261202104400-596f162abcde"), true, "v0.0.0-20261202104400-596f162abcde"},
		{"built in the source tree", "", built("(devel)"), true, "dev"},
		{"no module version", "", built(""), true, "dev"},
		{"no build information", "", nil, false, "dev"},
	} {
		if got := versionFrom(tc.linked, tc.bi, tc.ok); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// A test binary has build information whose main module is "(devel)" or empty.
	if got := Version(""); got != "dev" {
		t.Errorf("Version(\"\") in a test binary: %q, want dev", got)
	}
	if got := Version("1.2.3"); got != "1.2.3" {
		t.Errorf("Version(1.2.3): %q", got)
	}
}
