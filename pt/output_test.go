package pt

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
)

// lines runs f on an Output writing to a buffer and returns what was written.
func lines(f func(o *Output)) string {
	var b strings.Builder
	f(NewOutput(&b))
	return b.String()
}

func tcp(s string) *net.TCPAddr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

func TestOutputLines(t *testing.T) {
	tests := []struct {
		name string
		f    func(o *Output)
		want string
	}{
		{"version", func(o *Output) { o.Version() }, "VERSION 1\n"},
		{"version error", func(o *Output) { _ = o.VersionError("no-version") }, "VERSION-ERROR no-version\n"},
		{"env error", func(o *Output) { _ = o.EnvError("no TOR_PT_ORPORT") }, "ENV-ERROR no TOR_PT_ORPORT\n"},
		{"proxy done", func(o *Output) { o.ProxyDone() }, "PROXY DONE\n"},
		{"proxy error", func(o *Output) { _ = o.ProxyError("unsupported") }, "PROXY-ERROR unsupported\n"},
		{"cmethod", func(o *Output) { o.Cmethod("websocket", "socks5", tcp("127.0.0.1:1080")) },
			"CMETHOD websocket socks5 127.0.0.1:1080\n"},
		{"cmethod v6", func(o *Output) { o.Cmethod("websocket", "socks4", tcp("[::1]:9")) },
			"CMETHOD websocket socks4 [::1]:9\n"},
		{"cmethod error", func(o *Output) { _ = o.CmethodError("websocket", "no rocks") },
			"CMETHOD-ERROR websocket no rocks\n"},
		{"cmethods done", func(o *Output) { o.CmethodsDone() }, "CMETHODS DONE\n"},
		{"smethod", func(o *Output) { o.Smethod("websocket", tcp("0.0.0.0:80"), nil) },
			"SMETHOD websocket 0.0.0.0:80\n"},
		{"smethod args", func(o *Output) {
			o.Smethod("websocket", tcp("[2001:db8::1]:443"), Args{"b": {"1,2"}, "a": {"x=y", `\`}})
		}, `SMETHOD websocket [2001:db8::1]:443 ARGS:a=x\=y,a=\\,b=1\,2` + "\n"},
		{"smethod empty args", func(o *Output) { o.Smethod("websocket", tcp("1.2.3.4:5"), Args{}) },
			"SMETHOD websocket 1.2.3.4:5\n"},
		{"smethod error", func(o *Output) { _ = o.SmethodError("websocket", "no cows") },
			"SMETHOD-ERROR websocket no cows\n"},
		{"smethods done", func(o *Output) { o.SmethodsDone() }, "SMETHODS DONE\n"},
		{"log", func(o *Output) { o.Log("notice", `say "hi" \ now`) },
			`LOG SEVERITY=notice MESSAGE="say \"hi\" \\ now"` + "\n"},
		{"status", func(o *Output) { o.Status("websocket", "CONNECTIONS", "3", "NOTE", "a b") },
			`STATUS TRANSPORT=websocket CONNECTIONS=3 NOTE="a b"` + "\n"},
		{"status bad key", func(o *Output) { o.Status("websocket", "A=B", "1") },
			`LOG SEVERITY=error MESSAGE="STATUS not sent: invalid transport name or key"` + "\n"},
		{"status odd", func(o *Output) { o.Status("websocket", "A") },
			`LOG SEVERITY=error MESSAGE="STATUS not sent: invalid transport name or key"` + "\n"},
		{"status bad name", func(o *Output) { o.Status("web\nsocket") },
			`LOG SEVERITY=error MESSAGE="STATUS not sent: invalid transport name or key"` + "\n"},
		{"status version", func(o *Output) { o.StatusVersion("websocket-server", "1.0") },
			"STATUS TYPE=version IMPLEMENTATION=websocket-server VERSION=1.0\n"},
		{"status version quoted", func(o *Output) { o.StatusVersion("web socket", `1"`) },
			`STATUS TYPE=version IMPLEMENTATION="web socket" VERSION="1\""` + "\n"},
	}
	for _, tt := range tests {
		if got := lines(tt.f); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestOutputHostile feeds newlines, quotes, control bytes, non-ASCII and invalid names and
// addresses to every method: each call gives exactly the expected single line.
func TestOutputHostile(t *testing.T) {
	var nilTCP *net.TCPAddr
	zone := &net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 80, Zone: "eth0"}
	tests := []struct {
		name string
		f    func(o *Output)
		want string
	}{
		{"env error newline", func(o *Output) { _ = o.EnvError("a\nVERSION 1\r\x00\x7f\xff") },
			`ENV-ERROR a\nVERSION 1\015\\000\177\377` + "\n"},
		{"version error tab", func(o *Output) { _ = o.VersionError("\tno") }, `VERSION-ERROR \011no` + "\n"},
		{"proxy error quote", func(o *Output) { _ = o.ProxyError(`bad "x" \`) }, `PROXY-ERROR bad "x" \\` + "\n"},
		{"cmethod error name", func(o *Output) { _ = o.CmethodError("a\nb", "m\n") }, `CMETHOD-ERROR a\nb m\n` + "\n"},
		{"smethod error utf8", func(o *Output) { _ = o.SmethodError("ws", "é") }, `SMETHOD-ERROR ws \303\251` + "\n"},
		{"cmethod bad name", func(o *Output) { o.Cmethod("web-socket", "socks5", tcp("127.0.0.1:1")) },
			`CMETHOD-ERROR web-socket invalid transport name "web-socket"` + "\n"},
		{"cmethod name newline", func(o *Output) { o.Cmethod("ws\nCMETHOD x", "socks5", tcp("127.0.0.1:1")) },
			`CMETHOD-ERROR ws\nCMETHOD x invalid transport name "ws\\nCMETHOD x"` + "\n"},
		{"cmethod empty name", func(o *Output) { o.Cmethod("", "socks5", tcp("127.0.0.1:1")) },
			`CMETHOD-ERROR invalid transport name ""` + "\n"},
		{"cmethod digit name", func(o *Output) { o.Cmethod("1ws", "socks5", tcp("127.0.0.1:1")) },
			`CMETHOD-ERROR 1ws invalid transport name "1ws"` + "\n"},
		{"cmethod bad socks", func(o *Output) { o.Cmethod("ws", "socks5 x", tcp("127.0.0.1:1")) },
			`CMETHOD-ERROR ws invalid SOCKS version "socks5 x"` + "\n"},
		{"cmethod nil addr", func(o *Output) { o.Cmethod("ws", "socks5", nil) }, "CMETHOD-ERROR ws no address\n"},
		{"cmethod typed nil addr", func(o *Output) { o.Cmethod("ws", "socks5", nilTCP) },
			`CMETHOD-ERROR ws address "<nil>" is not IP:port` + "\n"},
		{"cmethod port 0", func(o *Output) { o.Cmethod("ws", "socks5", tcp("127.0.0.1:0")) },
			`CMETHOD-ERROR ws address "127.0.0.1:0" is not IP:port` + "\n"},
		{"cmethod unix", func(o *Output) { o.Cmethod("ws", "socks5", &net.UnixAddr{Name: "/x\ny", Net: "unix"}) },
			`CMETHOD-ERROR ws address "/x\\ny" is not IP:port` + "\n"},
		{"smethod zone", func(o *Output) { o.Smethod("ws", zone, nil) },
			`SMETHOD-ERROR ws address "[fe80::1%eth0]:80" is not IP:port` + "\n"},
		{"smethod args space", func(o *Output) { o.Smethod("ws", tcp("1.2.3.4:5"), Args{"k": {"a b"}}) },
			"SMETHOD-ERROR ws ARGS hold a space, a control byte or a non-ASCII byte\n"},
		{"smethod args newline", func(o *Output) { o.Smethod("ws", tcp("1.2.3.4:5"), Args{"k\n": {"v"}}) },
			"SMETHOD-ERROR ws ARGS hold a space, a control byte or a non-ASCII byte\n"},
		{"log control", func(o *Output) { o.Log("debug", "a\nb\r\tc\x01\x00\x7f\"é") },
			`LOG SEVERITY=debug MESSAGE="a\nb\015\011c\001\\000\177\"\303\251"` + "\n"},
		{"log bad severity", func(o *Output) { o.Log("loud\n", "m") },
			`LOG SEVERITY=error MESSAGE="(invalid severity \"loud\\n\") m"` + "\n"},
		{"status version control", func(o *Output) { o.StatusVersion("ws", "a\nb'") },
			`STATUS TYPE=version IMPLEMENTATION=ws VERSION="a\nb'"` + "\n"},
		{"status version empty", func(o *Output) { o.StatusVersion("", "") },
			`STATUS TYPE=version IMPLEMENTATION="" VERSION=""` + "\n"},
	}
	for _, tt := range tests {
		got := lines(tt.f)
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
		checkLines(t, got, 1)
	}
}

// checkLines fails unless out is n lines, each free of bytes outside printable ASCII.
func checkLines(t *testing.T, out string, n int) {
	t.Helper()
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != n {
		t.Errorf("want %d complete lines, got %q", n, out)
	}
	for i := 0; i < len(out); i++ {
		if c := out[i]; c != '\n' && (c < ' ' || c > '~') {
			t.Errorf("byte %#x at %d in %q", c, i, out)
			return
		}
	}
}

func TestOutputErrorsReturned(t *testing.T) {
	o := NewOutput(&strings.Builder{})
	for _, tt := range []struct {
		err  error
		want string
	}{
		{o.EnvError("m"), "ENV-ERROR m"},
		{o.VersionError("no-version"), "VERSION-ERROR no-version"},
		{o.ProxyError("p"), "PROXY-ERROR p"},
		{o.CmethodError("ws", "c"), "CMETHOD-ERROR ws c"},
		{o.SmethodError("ws", "s"), "SMETHOD-ERROR ws s"},
	} {
		if tt.err == nil || tt.err.Error() != tt.want {
			t.Errorf("error %v, want %q", tt.err, tt.want)
		}
	}
}

// flushWriter counts Flush calls and writes into a strings.Builder through a bufio.Writer.
type flushWriter struct {
	*bufio.Writer
	flushes int
}

func (f *flushWriter) Flush() error { f.flushes++; return f.Writer.Flush() }

func TestOutputFlushes(t *testing.T) {
	var b strings.Builder
	fw := &flushWriter{Writer: bufio.NewWriter(&b)}
	o := NewOutput(fw)
	o.Version()
	if b.String() != "VERSION 1\n" || fw.flushes != 1 {
		t.Errorf("after one line: %q, %d flushes", b.String(), fw.flushes)
	}
}

// writeCounter records each Write call as one string.
type writeCounter struct {
	mu     sync.Mutex
	writes []string
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// TestOutputConcurrent checks that each line is one Write, even from many goroutines.
func TestOutputConcurrent(t *testing.T) {
	w := &writeCounter{}
	o := NewOutput(w)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				o.Log("info", strings.Repeat("x", 100))
			}
		}()
	}
	wg.Wait()
	want := `LOG SEVERITY=info MESSAGE="` + strings.Repeat("x", 100) + "\"\n"
	if len(w.writes) != 1000 {
		t.Fatalf("%d writes, want 1000", len(w.writes))
	}
	for _, s := range w.writes {
		if s != want {
			t.Fatalf("write %q", s)
		}
	}
}

// unquoteC decodes a C-style quoted string the way tor's unescape_string does, returning false
// where tor would refuse it (including a decoded NUL, which tor's kvline parser refuses).
func unquoteC(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\n' || c == 0:
			return "", false
		case c != '\\':
			b.WriteByte(c)
		case i+1 >= len(s):
			return "", false
		default:
			i++
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '"', '\\', '\'':
				b.WriteByte(e)
			case '0', '1', '2', '3', '4', '5', '6', '7':
				n := int(e - '0')
				for k := 0; k < 2 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; k++ {
					i++
					n = n*8 + int(s[i]-'0')
				}
				if n > 255 || n == 0 {
					return "", false
				}
				b.WriteByte(byte(n))
			default:
				return "", false
			}
		}
	}
	return b.String(), true
}

func TestUnquoteC(t *testing.T) {
	for in, want := range map[string]string{
		`""`: "", `"a\"b"`: `a"b`, `"\\\n\r\t\'"`: "\\\n\r\t'", `"\101\1012"`: "AA2", `"\7"`: "\a",
	} {
		if got, ok := unquoteC(in); !ok || got != want {
			t.Errorf("unquoteC(%s) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{`"`, `"a`, `"\"`, `"\q"`, `"\400"`, `"\0"`, "\"a\nb\"", `"a"b"`} {
		if got, ok := unquoteC(in); ok {
			t.Errorf("unquoteC(%s) = %q, want refusal", in, got)
		}
	}
}

// FuzzLogQuote checks that cQuote's result holds only printable ASCII and that tor's unescaping
// gives back the input, with each NUL byte turned into the text \000.
func FuzzLogQuote(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\n\r\t", "\x00\x01\x7f\xff", "é\u2028", `\000`, "7\x007"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := cQuote(s)
		checkLines(t, q+"\n", 1)
		got, ok := unquoteC(q)
		if want := strings.ReplaceAll(s, "\x00", `\000`); !ok || got != want {
			t.Fatalf("cQuote(%q) = %s unquotes to %q, %v", s, q, got, ok)
		}
	})
}
