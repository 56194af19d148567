package pt

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestScrub(t *testing.T) {
	scrubbed := []string{
		"1.2.3.4", "192.0.2.1:443", "255.255.255.255:65535", "0.0.0.0", "010.001.2.3",
		"::", "::1", "[::1]", "[::1]:80", "2001:db8::1", "[2001:db8::1]:443", "2001:DB8::A:b",
		"2001:0db8:0000:0000:0000:0000:0000:0001", "1:2:3:4:5:6:7:8", "[1:2:3:4:5:6:7:8]:9",
		"1::", "fe80::1%eth0", "[fe80::1%eth0]:80", "fe80::1%25eth0", "::ffff:192.0.2.1",
		"[::ffff:192.0.2.1]:80", "1:2:3:4:5:6:1.2.3.4", "64:ff9b::192.0.2.33",
		"abc1.2.3.4", "1.2.3.4.5", "0.4.9.8", // conservative: all dotted quads go
	}
	for _, a := range scrubbed {
		for _, msg := range []string{a, "from " + a + ".", "(" + a + ")", "x=" + a + ",y", "ws://" + a + "/p", a + "\n" + a} {
			got := scrub(msg)
			if strings.Contains(got, a) || !strings.Contains(got, "[scrubbed]") {
				t.Errorf("scrub(%q) = %q", msg, got)
			}
			// No remaining digit sequence from the address: the whole token went.
			if strings.Contains(got, strings.Trim(a, "[]")) {
				t.Errorf("scrub(%q) = %q keeps a part", msg, got)
			}
		}
	}
	// Exact results: the colon after an address, as Go's error messages put it, stays.
	for msg, want := range map[string]string{
		"a [2001:db8::1]:443 b 1.2.3.4:5 c":          "a [scrubbed] b [scrubbed] c",
		"dial tcp 127.0.0.1:33867: connect: refused": "dial tcp [scrubbed]: connect: refused",
		"dial tcp [::1]:80: connect: refused":        "dial tcp [scrubbed]: connect: refused",
		"lookup 2001:db8::1: error":                  "lookup [scrubbed]: error",
		"::1:":                                       "[scrubbed]:",
		"[::1]:80:":                                  "[scrubbed]:",
		"1.2.3.4:80:":                                "[scrubbed]:",
		"1.2.3.4:":                                   "[scrubbed]:",
		"fe80:: x":                                   "[scrubbed] x",
		"fe80::: x":                                  "[scrubbed]: x",
		"::ffff:192.0.2.1: x":                        "[scrubbed]: x",
		"[fe80::1%eth0]:80: x":                       "[scrubbed]: x",
		"1:2:3:4:5:6:7:8: x":                         "[scrubbed]: x",
		"at 15:04:05: done":                          "at 15:04:05: done",
		"read tcp 192.0.2.1:80->[::1]:9: i/o timeout": "read tcp [scrubbed]->[scrubbed]: i/o timeout",
	} {
		if got := scrub(msg); got != want {
			t.Errorf("scrub(%q) = %q, want %q", msg, got, want)
		}
	}
	kept := []string{
		"", "hello world", "15:04:05", "2006-01-02 15:04:05.123", "version 1.2.3", "ratio 1:2",
		"port 443", "read 1.5 KiB", "HTTP/1.1 101", "a:b:c", "e.g. this", "100%", "deadbeef",
		"status 1009: message too big", "Sec-WebSocket-Version: 13",
	}
	for _, msg := range kept {
		if got := scrub(msg); got != msg {
			t.Errorf("scrub(%q) = %q, want it unchanged", msg, got)
		}
	}
}

// TestScrubFormatted checks that the addresses Go itself formats are scrubbed.
func TestScrubFormatted(t *testing.T) {
	for _, a := range []net.Addr{
		&net.TCPAddr{IP: net.IPv4(203, 0, 113, 7), Port: 1234},
		&net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 1234},
		&net.TCPAddr{IP: net.ParseIP("fe80::7"), Port: 1, Zone: "wlan0"},
		&net.UDPAddr{IP: net.ParseIP("::ffff:203.0.113.7"), Port: 53},
		&net.IPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6")},
	} {
		err := &net.OpError{Op: "dial", Net: "tcp", Addr: a, Err: fmt.Errorf("connection refused")}
		if got := scrub(err.Error()); strings.Contains(got, a.String()) || !strings.Contains(got, "[scrubbed]") {
			t.Errorf("scrub(%q) = %q", err.Error(), got)
		}
	}
}

func FuzzScrub(f *testing.F) {
	f.Add("from 192.0.2.1:80 at 15:04:05")
	f.Add("[2001:db8::1]:443")
	f.Add("dial 2001:db8::1: x ::1: fe80:::")
	f.Fuzz(func(t *testing.T, s string) {
		got := scrub(s)
		if ipv4Like.MatchString(got) || strings.Contains(got, "::") {
			t.Fatalf("scrub(%q) = %q keeps an address", s, got)
		}
	})
}

// ipv4Like finds a dotted quad in a scrubbed message.
var ipv4Like = regexp.MustCompile(`\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}`)

var stamp = `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`

func TestLoggerFile(t *testing.T) {
	var b strings.Builder
	l, err := NewLogger(nil, &b, "info", false)
	if err != nil {
		t.Fatal(err)
	}
	l.Errorf("e %s", "192.0.2.1:80")
	l.Warnf("w %d", 1)
	l.Noticef("n\nnext")
	l.Infof("i")
	l.Debugf("d") // below info: dropped
	want := regexp.MustCompile(`^` + stamp + ` \[error\] e \[scrubbed\]\n` +
		stamp + ` \[warning\] w 1\n` +
		stamp + ` \[notice\] n\\nnext\n` +
		stamp + ` \[info\] i\n$`)
	if !want.MatchString(b.String()) {
		t.Errorf("log file:\n%s", b.String())
	}
}

// TestHTTPErrorLog checks that HTTPServer's ErrorLog sends net/http's messages to the debug
// level, one line each, without the client addresses they carry.
func TestHTTPErrorLog(t *testing.T) {
	var b strings.Builder
	l, err := NewLogger(nil, &b, "debug", false)
	if err != nil {
		t.Fatal(err)
	}
	HTTPServer(nil, time.Second, l).ErrorLog.Printf("http: TLS handshake error from %s: EOF", "192.0.2.1:5555")
	want := `^` + stamp + ` \[debug\] http: TLS handshake error from \[scrubbed\]: EOF\n$`
	if !regexp.MustCompile(want).MatchString(b.String()) {
		t.Errorf("log: %q", b.String())
	}
	b.Reset()
	quiet, _ := NewLogger(nil, &b, "info", false)
	HTTPServer(nil, time.Second, quiet).ErrorLog.Printf("http: superfluous response.WriteHeader call")
	if b.Len() != 0 {
		t.Errorf("logged above debug: %q", b.String())
	}
}

func TestLoggerUnsafe(t *testing.T) {
	var b strings.Builder
	l, err := NewLogger(nil, &b, "debug", true)
	if err != nil {
		t.Fatal(err)
	}
	l.Debugf("from %s", "[2001:db8::1]:80")
	if !regexp.MustCompile(`^` + stamp + ` \[debug\] from \[2001:db8::1\]:80\n$`).MatchString(b.String()) {
		t.Errorf("log: %q", b.String())
	}
}

func TestLoggerManaged(t *testing.T) {
	var b strings.Builder
	l, err := NewLogger(NewOutput(&b), nil, "warning", false)
	if err != nil {
		t.Fatal(err)
	}
	l.Errorf("bad \"peer\" %v", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 5})
	l.Warnf("w\n")
	l.Noticef("dropped")
	l.Infof("dropped")
	l.Debugf("dropped")
	want := `LOG SEVERITY=error MESSAGE="bad \"peer\" [scrubbed]"` + "\n" + `LOG SEVERITY=warning MESSAGE="w\n"` + "\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestLoggerLevels(t *testing.T) {
	for i, level := range []string{"error", "warning", "notice", "info", "debug"} {
		var b strings.Builder
		l, err := NewLogger(nil, &b, level, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []func(string, ...any){l.Errorf, l.Warnf, l.Noticef, l.Infof, l.Debugf} {
			f("m")
		}
		if n := strings.Count(b.String(), "\n"); n != i+1 {
			t.Errorf("level %s: %d lines, want %d", level, n, i+1)
		}
	}
	for _, bad := range []string{"", "warn", "ERROR", "trace"} {
		if l, err := NewLogger(nil, &strings.Builder{}, bad, false); err == nil || l != nil {
			t.Errorf("NewLogger level %q: %v, %v", bad, l, err)
		}
	}
	if l, err := NewLogger(nil, nil, "notice", false); err == nil || l != nil {
		t.Errorf("NewLogger without writer nor Output: %v, %v", l, err)
	}
}

func BenchmarkScrub(b *testing.B) {
	msg := "connection from [2001:db8::1]:443 to 192.0.2.1:80 failed at 15:04:05 after 1.5 s"
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		scrub(msg)
	}
}

func TestOpenLogger(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pt.log")
	for i := 0; i < 2; i++ { // the second logger appends
		l, err := OpenLogger(nil, file, "notice", false, true)
		if err != nil {
			t.Fatal(err)
		}
		l.Noticef("line %d from 192.0.2.1:80", i)
	}
	b, err := os.ReadFile(file)
	want := regexp.MustCompile(`^` + stamp + ` \[notice\] line 0 from \[scrubbed\]\n` + stamp + ` \[notice\] line 1 from \[scrubbed\]\n$`)
	if err != nil || !want.Match(b) {
		t.Errorf("log file: %q, %v", b, err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log file mode: %v, %v; want 0600", fi.Mode(), err)
	}

	var out strings.Builder
	l, err := OpenLogger(NewOutput(&out), "", "notice", false, true)
	if err != nil {
		t.Fatal(err)
	}
	l.Warnf("managed")
	if got := out.String(); got != "LOG SEVERITY=warning MESSAGE=\"managed\"\n" {
		t.Errorf("managed, no file: %q", got)
	}
	if l, err := OpenLogger(NewOutput(&out), "", "notice", false, false); err != nil || l.w != os.Stderr {
		t.Errorf("standalone, no file: writer %v, %v; want os.Stderr", l.w, err)
	}

	bad := filepath.Join(t.TempDir(), "not-made.log")
	if l, err := OpenLogger(nil, bad, "chatty", false, false); err == nil || l != nil {
		t.Errorf("OpenLogger with level chatty: %v, %v", l, err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a bad level still made the log file: %v", err)
	}
	if l, err := OpenLogger(nil, t.TempDir(), "notice", false, false); err == nil || l != nil {
		t.Errorf("OpenLogger on a directory: %v, %v", l, err)
	}
}

// TestLimited: the first warning at once, then one line per interval with the count, and
// nothing once an interval passes without warnings.
func TestLimited(t *testing.T) {
	var b lockedBuffer
	l, err := NewLogger(nil, &b, "info", false)
	if err != nil {
		t.Fatal(err)
	}
	r := l.Limited(100 * time.Millisecond)
	lines := func() []string { return strings.Split(strings.TrimSpace(b.String()), "\n") }
	for i := 0; i < 5; i++ {
		r.Warnf("accepting: too many open files (%d)", i)
	}
	if got := lines(); len(got) != 1 || !strings.HasSuffix(got[0], "[warning] accepting: too many open files (0)") {
		t.Fatalf("after 5 warnings: %q, want the first alone", got)
	}
	poll := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: log %q", what, lines())
			}
		}
	}
	poll("no count line", func() bool { return len(lines()) == 2 })
	if got := lines()[1]; !strings.HasSuffix(got, "accepting: too many open files (4) (4 times in the last 100ms)") {
		t.Errorf("count line %q", got)
	}
	poll("the interval never closed", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return !r.open })
	r.Warnf("again")
	if got := lines(); len(got) != 3 || !strings.HasSuffix(got[2], "again") {
		t.Errorf("after a quiet interval: %q, want the warning at once", got)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
