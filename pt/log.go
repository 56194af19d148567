package pt

import (
	"cmp"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
)

// levelIndex returns the rank of a severity of pt-spec's LOG line (0 is the most severe), or
// -1 for an unknown name.
func levelIndex(level string) int {
	return slices.Index([]string{"error", "warning", "notice", "info", "debug"}, level)
}

// Logger writes log messages to a writer or to tor, scrubbed unless unsafe (see NewLogger, scrub).
type Logger struct {
	out    *Output
	mu     sync.Mutex // serializes writes to w, and Reopen
	w      io.Writer
	file   string // OpenLogger's file, which Reopen reopens
	limit  int    // levelIndex of the least severe level logged
	unsafe bool
}

// NewLogger returns a Logger that writes "2006-01-02 15:04:05 [level] msg" lines (local time)
// to w, or LOG lines through out when w is nil. Messages less severe than minLevel ("error",
// "warning", "notice", "info" or "debug") are dropped. With unsafe set, addresses are kept.
func NewLogger(out *Output, w io.Writer, minLevel string, unsafe bool) (*Logger, error) {
	limit := levelIndex(minLevel)
	if limit < 0 {
		return nil, fmt.Errorf("unknown log level %q (want error, warning, notice, info or debug)", minLevel)
	}
	if w == nil && out == nil {
		return nil, errors.New("logger needs a writer or an Output")
	}
	return &Logger{out: out, w: w, limit: limit, unsafe: unsafe}, nil
}

// CommandLine registers the flags both programs share on fs, parses args, and returns the
// Output (os.Stdout in managed mode, else io.Discard: no tor reads the lines) and the Logger of
// OpenLogger. When done is true the program exits with code: after -help (0), -version (0, the
// version printed), a bad flag, a stray argument or a log that cannot be opened (2, explained).
func CommandLine(fs *flag.FlagSet, args []string, version string, managed bool) (out *Output, l *Logger, code int, done bool) {
	file := fs.String("log", "", "log to `file` instead of tor (managed) or stderr (standalone)")
	level := fs.String("log-level", "notice", "error, warning, notice, info or debug")
	unsafe := fs.Bool("unsafe-logging", false, "do not scrub addresses from logs")
	showVersion := fs.Bool("version", false, "print the version and exit")
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		return nil, nil, 0, true
	case err != nil:
		return nil, nil, 2, true
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return nil, nil, 2, true
	case *showVersion:
		fmt.Println(fs.Name(), version)
		return nil, nil, 0, true
	}
	out = NewOutput(io.Discard)
	if managed {
		out = NewOutput(os.Stdout)
	}
	l, err := OpenLogger(out, *file, *level, *unsafe, managed)
	if err != nil {
		fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
		return nil, nil, 2, true
	}
	return out, l, 0, false
}

// Version is a program's version: linked when set (the Makefile's -ldflags "-X main.version=..."),
// else the main module's version in the build information if any (go install MODULE@v1.2.3), else "dev".
func Version(linked string) string {
	if bi, ok := debug.ReadBuildInfo(); linked == "" && ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return cmp.Or(linked, "dev")
}

// OpenLogger is NewLogger for a program's -log flag: it appends to file (created 0600) when file
// is not empty, else writes LOG lines through out in managed mode, else writes to os.Stderr.
func OpenLogger(out *Output, file, minLevel string, unsafe, managed bool) (*Logger, error) {
	var w io.Writer = os.Stderr
	if managed {
		w = nil
	}
	if file != "" && levelIndex(minLevel) >= 0 { // a bad level makes no file
		f, err := openLogFile(file)
		if err != nil {
			return nil, err
		}
		w = f
	}
	l, err := NewLogger(out, w, minLevel, unsafe)
	if err == nil {
		l.file = file
	}
	return l, err
}

func openLogFile(file string) (*os.File, error) {
	return os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
}

// Reopen opens the log file again by its name and closes the old one, for logrotate (SIGHUP).
// It does nothing for a Logger that OpenLogger did not give a file; on error the old file stays.
func (l *Logger) Reopen() error {
	if l.file == "" {
		return nil
	}
	f, err := openLogFile(l.file)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.w.(io.Closer)
	l.w = f
	l.mu.Unlock()
	return old.Close()
}

// log writes a message at level, scrubbed unless l is unsafe, with kept appended after scrubbing.
func (l *Logger) log(level, kept, format string, a ...any) {
	if levelIndex(level) > l.limit {
		return
	}
	msg := fmt.Sprintf(format, a...)
	if !l.unsafe {
		msg = scrub(msg)
	}
	msg += kept
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		l.out.Log(level, msg)
		return
	}
	_, _ = io.WriteString(l.w, time.Now().Format("2006-01-02 15:04:05")+" ["+level+"] "+escape(msg, false)+"\n")
}

// Errorf, Warnf, Noticef, Infof and Debugf log a message at their level.
func (l *Logger) Errorf(format string, a ...any)  { l.log("error", "", format, a...) }
func (l *Logger) Warnf(format string, a ...any)   { l.log("warning", "", format, a...) }
func (l *Logger) Noticef(format string, a ...any) { l.log("notice", "", format, a...) }
func (l *Logger) Infof(format string, a ...any)   { l.log("info", "", format, a...) }
func (l *Logger) Debugf(format string, a ...any)  { l.log("debug", "", format, a...) }

// Listening logs "prefix listening on ADDRESS" at notice level with ln's address never scrubbed:
// it is the program's own, which the operator chose and needs to see. It takes a listener, not
// an address, so that no peer's address can be passed.
func (l *Logger) Listening(prefix string, ln net.Listener) {
	l.log("notice", " listening on "+ln.Addr().String(), "%s", prefix)
}

// HTTPServer returns a WebSocket listener's http.Server: HTTP/1.1 only, request heads bounded to
// 16 KiB and to timeout (with any TLS handshake), idle connections closed after timeout, and
// net/http's messages logged to l at debug level, scrubbed (they carry client addresses).
func HTTPServer(handler http.Handler, timeout time.Duration, l *Logger) *http.Server {
	return &http.Server{Handler: handler, ReadHeaderTimeout: timeout, IdleTimeout: timeout,
		MaxHeaderBytes: 16 << 10, ErrorLog: log.New(debugWriter{l}, "", 0),
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}} // no HTTP/2
}

type debugWriter struct{ l *Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.l.Debugf("%s", strings.TrimSpace(string(p))) // net/http starts its messages with "http: "
	return len(p), nil
}

// addrToken matches a run of hex digits, dots and colons holding at least one dot or colon,
// with an optional IPv6 zone and an optional "]" and port: every textual IPv4 or IPv6 address,
// bare or bracketed, with or without port, falls inside one match.
var addrToken = regexp.MustCompile(`\[?[0-9A-Fa-f.:]*[.:][0-9A-Fa-f.:]*(?:%[\w.~-]*)?(?:\](?::\d+)?)?`)

var dottedQuad = regexp.MustCompile(`\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}`) // an IPv4 address

// scrub replaces by "[scrubbed]" every addrToken holding a dotted quad (IPv4, also in IPv6),
// "::" or seven colons (IPv6). It errs towards scrubbing: versions like 0.4.9.8 and colon
// fingerprints go too; times like 15:04:05 and 1.2.3 stay. Integer IPv4 forms are not seen.
// A token ending in an odd number of colons ends with punctuation, as in "1.2.3.4:80: refused":
// that colon stays outside "[scrubbed]" ("::" ends an address such as "fe80::").
func scrub(msg string) string {
	return addrToken.ReplaceAllStringFunc(msg, func(tok string) string {
		addr, tail := tok, ""
		if n := len(tok) - len(strings.TrimRight(tok, ":")); n%2 == 1 {
			addr, tail = tok[:len(tok)-1], ":"
		}
		if strings.Contains(addr, "::") || strings.Count(addr, ":") >= 7 || dottedQuad.MatchString(addr) {
			return "[scrubbed]" + tail
		}
		return tok
	})
}

// Limited logs a warning that remote peers can cause as often as they like: the first at once,
// then, at the end of each interval that had more, one line with their count and the last one.
type Limited struct {
	log   *Logger
	every time.Duration
	mu    sync.Mutex
	open  bool // an interval is running: warnings are counted
	n     int
	last  string
}

// Limited returns a Limited that writes to l with the given interval.
func (l *Logger) Limited(every time.Duration) *Limited { return &Limited{log: l, every: every} }

func (r *Limited) Warnf(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open {
		r.n, r.last = r.n+1, msg
		return
	}
	r.log.Warnf("%s", msg)
	r.open = true
	time.AfterFunc(r.every, r.flush)
}

// flush ends an interval: it writes the count line, and opens the next interval, if there were
// warnings in it.
func (r *Limited) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open = r.n > 0; r.open {
		r.log.Warnf("%s (%d times in the last %v)", r.last, r.n, r.every)
		r.n = 0
		time.AfterFunc(r.every, r.flush)
	}
}
