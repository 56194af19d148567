package pt

import (
	"net"
	"strings"
	"testing"
)

// TestLoggerListening checks that the program's own listening address is logged as it is, at
// notice level, while the rest of the message is still scrubbed.
func TestLoggerListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var b strings.Builder
	l, err := NewLogger(NewOutput(&b), nil, "notice", false)
	if err != nil {
		t.Fatal(err)
	}
	l.Listening("prog 192.0.2.1", ln)
	want := `LOG SEVERITY=notice MESSAGE="prog [scrubbed] listening on ` + ln.Addr().String() + `"` + "\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
	quiet, err := NewLogger(NewOutput(&b), nil, "warning", false)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	quiet.Listening("prog", ln)
	if b.Len() != 0 {
		t.Errorf("logged below the level: %q", b.String())
	}
}
