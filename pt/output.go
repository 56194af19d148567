package pt

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Output writes the lines of pt-spec 3.3, each whole in one Write (and Flush, if the writer has
// one) under a mutex; write errors are ignored, as no one is left to tell. No argument can
// break a line: an invalid name or address turns it into an error or LOG line, and free text
// is escaped to printable ASCII.
type Output struct {
	mu sync.Mutex
	w  io.Writer
}

// NewOutput returns an Output writing to w (os.Stdout in the programs).
func NewOutput(w io.Writer) *Output { return &Output{w: w} }

// line writes the non-empty parts joined by spaces and a newline in one Write, and returns the
// line without its newline.
func (o *Output) line(parts ...string) string {
	s := strings.Join(slices.DeleteFunc(parts, func(p string) bool { return p == "" }), " ")
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = io.WriteString(o.w, s+"\n")
	if f, ok := o.w.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
	return s
}

// errorLine prints "keyword [name] msg", name and msg escaped, and returns that line as an error.
func (o *Output) errorLine(keyword, name, msg string) error {
	return errors.New(o.line(keyword, escape(name, false), escape(msg, false)))
}

// Version, ProxyDone (TOR_PT_PROXY is accepted and will be used), CmethodsDone and SmethodsDone
// print "VERSION 1", "PROXY DONE", "CMETHODS DONE" and "SMETHODS DONE".
func (o *Output) Version()      { o.line("VERSION", "1") }
func (o *Output) ProxyDone()    { o.line("PROXY", "DONE") }
func (o *Output) CmethodsDone() { o.line("CMETHODS", "DONE") }
func (o *Output) SmethodsDone() { o.line("SMETHODS", "DONE") }

// VersionError (pt-spec asks for msg "no-version"), EnvError and ProxyError print
// "VERSION-ERROR msg", "ENV-ERROR msg" and "PROXY-ERROR msg", and return it as an error: the
// program must then exit. CmethodError and SmethodError print "CMETHOD-ERROR name msg" and
// "SMETHOD-ERROR name msg", and return it as an error.
func (o *Output) VersionError(msg string) error       { return o.errorLine("VERSION-ERROR", "", msg) }
func (o *Output) EnvError(msg string) error           { return o.errorLine("ENV-ERROR", "", msg) }
func (o *Output) ProxyError(msg string) error         { return o.errorLine("PROXY-ERROR", "", msg) }
func (o *Output) CmethodError(name, msg string) error { return o.errorLine("CMETHOD-ERROR", name, msg) }
func (o *Output) SmethodError(name, msg string) error { return o.errorLine("SMETHOD-ERROR", name, msg) }

// Cmethod prints "CMETHOD name socks addr", socks being "socks4" or "socks5". If name is not a
// transport name (pt-spec 3.1), socks is neither, or addr is not an IP address with a non-zero
// port, it prints a CMETHOD-ERROR line instead.
func (o *Output) Cmethod(name, socks string, addr net.Addr) {
	switch a, err := methodAddr(name, addr); {
	case err != nil:
		_ = o.CmethodError(name, err.Error())
	case socks != "socks4" && socks != "socks5":
		_ = o.CmethodError(name, fmt.Sprintf("invalid SOCKS version %q", socks))
	default:
		o.line("CMETHOD", name, socks, a)
	}
}

// Smethod prints "SMETHOD name addr", followed by " ARGS:k=v,..." when args is not empty
// (escaped as pt-spec 3.3.3 says, keys sorted). Invalid input (see Cmethod), or args holding a
// space or a control byte, which tor could not read back, gives an SMETHOD-ERROR line instead.
func (o *Output) Smethod(name string, addr net.Addr, args Args) {
	opt := ""
	if len(args) > 0 {
		opt = "ARGS:" + encodeSmethodArgs(args)
	}
	switch a, err := methodAddr(name, addr); {
	case err != nil:
		_ = o.SmethodError(name, err.Error())
	case opt != "" && !isWord.MatchString(opt):
		_ = o.SmethodError(name, "ARGS hold a space, a control byte or a non-ASCII byte")
	default:
		o.line("SMETHOD", name, a, opt)
	}
}

// Log prints `LOG SEVERITY=severity MESSAGE="msg"` with msg as a C-style quoted string. A
// severity that tor does not know is replaced by "error", and named in the message.
func (o *Output) Log(severity, msg string) {
	if levelIndex(severity) < 0 {
		msg = fmt.Sprintf("(invalid severity %q) %s", severity, msg)
		severity = "error"
	}
	o.line("LOG", "SEVERITY="+severity, "MESSAGE="+cQuote(msg))
}

// Status prints "STATUS TRANSPORT=transport K=V ..." (pt-spec 3.3.5) from the pairs in kv; tor
// logs it and passes it to controllers as a PT_STATUS event. Values are quoted as needed; an
// invalid name or key, or an odd number of kv, gives an error LOG line instead.
func (o *Output) Status(transport string, kv ...string) {
	ok := isName.MatchString(transport) && len(kv)%2 == 0
	parts := []string{"STATUS", "TRANSPORT=" + transport}
	for i := 0; ok && i < len(kv); i += 2 {
		ok = isName.MatchString(kv[i])
		parts = append(parts, kv[i]+"="+kvValue(kv[i+1]))
	}
	if !ok {
		o.Log("error", "STATUS not sent: invalid transport name or key")
		return
	}
	o.line(parts...)
}

// StatusVersion prints "STATUS TYPE=version IMPLEMENTATION=impl VERSION=version" (values quoted as
// in Status), which newer tors publish in the bridge's extra-info descriptor.
func (o *Output) StatusVersion(impl, version string) {
	o.line("STATUS", "TYPE=version", "IMPLEMENTATION="+kvValue(impl), "VERSION="+kvValue(version))
}

// kvValue is v bare when it is printable ASCII without space or quote, else C-quoted.
func kvValue(v string) string {
	if isWord.MatchString(v) && !strings.ContainsAny(v, `"'`) {
		return v
	}
	return cQuote(v)
}

// methodAddr checks a transport name and renders its listening address for a METHOD line.
func methodAddr(name string, addr net.Addr) (string, error) {
	if !isName.MatchString(name) {
		return "", fmt.Errorf("invalid transport name %q", name)
	}
	if addr == nil {
		return "", errors.New("no address")
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil || ap.Addr().Zone() != "" || ap.Port() == 0 {
		return "", fmt.Errorf("address %q is not IP:port", addr.String())
	}
	return ap.String(), nil
}

var (
	isName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) // a transport name (pt-spec 3.1)
	isWord    = regexp.MustCompile(`^[!-~]+$`)                 // printable ASCII, no space
	isKeyword = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)    // what SafeName quotes
)

// cQuote returns s as a C-style quoted string that tor's unescape_string reads back.
func cQuote(s string) string { return `"` + escape(s, true) + `"` }

// escape escapes '\' (and '"' if quote is set) with a backslash, newline as \n, and every other
// byte below 0x20 or above 0x7e as a three-digit octal escape. A NUL byte, which tor refuses in
// a LOG line, becomes the text "\000" (escaped: tor reads a backslash and three zeros).
func escape(s string, quote bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == '"' && quote:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == 0:
			b.WriteString(`\\000`)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
