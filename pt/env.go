package pt

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Managed reports whether tor runs this program: TOR_PT_MANAGED_TRANSPORT_VER is not empty.
func Managed(getenv func(string) string) bool {
	return getenv("TOR_PT_MANAGED_TRANSPORT_VER") != ""
}

// ClientInfo is the configuration tor gives a client PT (pt-spec 3.2.1, 3.2.2).
type ClientInfo struct {
	MethodNames            []string // requested ∩ supported, in tor's order
	ProxyURL               *url.URL // TOR_PT_PROXY or nil
	StateLocation          string   // created 0700
	ExitOnStdinClose       bool
	OutboundV4, OutboundV6 net.IP // nil when unset
}

// Bindaddr is one transport a server PT must listen for.
type Bindaddr struct {
	MethodName string
	Addr       *net.TCPAddr
	Options    Args // from TOR_PT_SERVER_TRANSPORT_OPTIONS for this method; never nil
}

// ServerInfo is the configuration tor gives a server PT (pt-spec 3.2.1, 3.2.3).
type ServerInfo struct {
	Bindaddrs              []Bindaddr
	OrAddr                 *net.TCPAddr // TOR_PT_ORPORT (may be nil if only ExtORPort given)
	ExtendedOrAddr         *net.TCPAddr // nil when unset or empty
	AuthCookieFile         string
	StateLocation          string
	ExitOnStdinClose       bool
	OutboundV4, OutboundV6 net.IP // source addresses towards a non-loopback ORPort; nil when unset
}

// setupCommon negotiates the version and reads what both roles are given, as a ClientInfo
// without ProxyURL, MethodNames from the list named transports ("*": all of supported). It
// prints VERSION 1, or VERSION-ERROR / ENV-ERROR and returns an error.
func setupCommon(out *Output, getenv func(string) string, transports string,
	supported []string) (c *ClientInfo, err error) {
	c = &ClientInfo{}
	if !slices.Contains(strings.Split(getenv("TOR_PT_MANAGED_TRANSPORT_VER"), ","), "1") {
		return c, out.VersionError("no-version")
	}
	out.Version()
	c.StateLocation = getenv("TOR_PT_STATE_LOCATION")
	if !filepath.IsAbs(c.StateLocation) {
		return c, out.EnvError("TOR_PT_STATE_LOCATION must be set to an absolute path")
	}
	if err := os.MkdirAll(c.StateLocation, 0o700); err != nil {
		return c, out.EnvError(fmt.Sprintf("TOR_PT_STATE_LOCATION: cannot create the directory: %v", err))
	}
	c.ExitOnStdinClose = getenv("TOR_PT_EXIT_ON_STDIN_CLOSE") == "1"
	if c.OutboundV4, err = outboundAddr(out, getenv, "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "IPv4"); err != nil {
		return c, err
	}
	if c.OutboundV6, err = outboundAddr(out, getenv, "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "IPv6"); err != nil {
		return c, err
	}
	requested := getenv(transports)
	if requested == "" {
		return c, out.EnvError("no " + transports)
	}
	for _, name := range strings.Split(requested, ",") {
		for _, s := range supported {
			if (name == s || name == "*") && !slices.Contains(c.MethodNames, s) {
				c.MethodNames = append(c.MethodNames, s)
			}
		}
	}
	return c, nil
}

// ClientSetup prints VERSION 1 and returns a client's configuration, or prints VERSION-ERROR,
// ENV-ERROR or (for TOR_PT_PROXY) PROXY-ERROR and returns an error: the program must exit. The
// caller prints PROXY DONE once it knows it will use ProxyURL, and just CMETHODS DONE when
// MethodNames is empty (pt-spec 3.3.2).
func ClientSetup(out *Output, getenv func(string) string, supported []string) (*ClientInfo, error) {
	info, err := setupCommon(out, getenv, "TOR_PT_CLIENT_TRANSPORTS", supported)
	if err != nil {
		return nil, err
	}
	if s := getenv("TOR_PT_PROXY"); s != "" {
		if info.ProxyURL, err = ParseProxyURL(s); err != nil {
			return nil, out.ProxyError("TOR_PT_PROXY: " + err.Error())
		}
	}
	return info, nil
}

// outboundAddr reads an optional outbound bind address of family "IPv4", or "IPv6" (in
// brackets as pt-spec writes it, or bare). It prints ENV-ERROR for a malformed value.
func outboundAddr(out *Output, getenv func(string) string, name, family string) (net.IP, error) {
	s := getenv(name)
	if s == "" {
		return nil, nil
	}
	v6 := family == "IPv6"
	if v6 && strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.Is4() == v6 {
		return nil, out.EnvError(fmt.Sprintf("%s: %q is not an %s address", name, getenv(name), family))
	}
	return a.AsSlice(), nil
}

// ParseProxyURL checks a proxy URL (TOR_PT_PROXY, or a program's flag): socks5://[user:pass@]
// ip:port, socks4a://[user@]ip:port or http://[user:pass@]ip:port. pt-spec 3.2.2 gives an IP
// address, and a host name would need a DNS lookup outside the proxy, so names are refused.
// Error messages never repeat the URL, which may hold a password; the caller names the source.
func ParseProxyURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	host, hostErr := netip.ParseAddr(u.Hostname())
	port, portErr := strconv.ParseUint(u.Port(), 10, 16)
	user := u.User.Username()          // "" without u.User
	pass, hasPass := u.User.Password() // "", false without u.User
	switch {
	case u.Scheme != "socks5" && u.Scheme != "socks4a" && u.Scheme != "http":
		return nil, fmt.Errorf("unsupported proxy scheme %q (want socks5, socks4a or http)", u.Scheme)
	case u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("must have the form scheme://[user[:password]@]ip:port")
	case hostErr != nil || host.Zone() != "":
		return nil, errors.New("the proxy host must be an IP address")
	case portErr != nil || port == 0:
		return nil, errors.New("missing or invalid port")
	case u.Scheme == "socks4a" && hasPass:
		return nil, errors.New("a socks4a proxy takes a user name but no password")
	case u.Scheme == "socks5" && u.User != nil &&
		(len(user) < 1 || len(user) > 255 || len(pass) < 1 || len(pass) > 255):
		return nil, errors.New("socks5 user name and password must both be 1-255 bytes (RFC 1929)")
	}
	return u, nil
}

// ServerSetup prints VERSION 1 and returns a server's configuration, or prints VERSION-ERROR or
// ENV-ERROR and returns an error: the program must exit. A transport missing from
// TOR_PT_SERVER_BINDADDR (which may be omitted) gets 0.0.0.0:0, which tor publishes with its own
// address. When Bindaddrs is empty the caller prints just SMETHODS DONE.
func ServerSetup(out *Output, getenv func(string) string, supported []string) (*ServerInfo, error) {
	c, err := setupCommon(out, getenv, "TOR_PT_SERVER_TRANSPORTS", supported)
	if err != nil {
		return nil, err
	}
	info := &ServerInfo{StateLocation: c.StateLocation, ExitOnStdinClose: c.ExitOnStdinClose,
		OutboundV4: c.OutboundV4, OutboundV6: c.OutboundV6}
	binds := map[string]*net.TCPAddr{}
	if s := getenv("TOR_PT_SERVER_BINDADDR"); s != "" {
		for _, item := range strings.Split(s, ",") {
			name, addr, _ := strings.Cut(item, "-")
			a := tcpAddr(addr, true)
			if a == nil {
				return nil, out.EnvError(fmt.Sprintf("TOR_PT_SERVER_BINDADDR: %q is not name-ip:port", item))
			}
			if binds[name] != nil {
				return nil, out.EnvError(fmt.Sprintf("TOR_PT_SERVER_BINDADDR: %q appears twice", name))
			}
			binds[name] = a
		}
	}
	opts, err := ParseServerTransportOptions(getenv("TOR_PT_SERVER_TRANSPORT_OPTIONS"))
	if err != nil {
		return nil, out.EnvError(err.Error())
	}
	for _, name := range c.MethodNames {
		b := Bindaddr{name, cmp.Or(binds[name], &net.TCPAddr{IP: net.IPv4zero}), opts[name]}
		if b.Options == nil {
			b.Options = Args{}
		}
		info.Bindaddrs = append(info.Bindaddrs, b)
	}
	orPort, extPort := getenv("TOR_PT_ORPORT"), getenv("TOR_PT_EXTENDED_SERVER_PORT")
	info.OrAddr = tcpAddr(orPort, false)
	info.ExtendedOrAddr = tcpAddr(extPort, false)
	info.AuthCookieFile = getenv("TOR_PT_AUTH_COOKIE_FILE")
	switch {
	case info.OrAddr == nil && orPort != "":
		return nil, out.EnvError(fmt.Sprintf("TOR_PT_ORPORT: %q is not ip:port", orPort))
	case info.ExtendedOrAddr == nil && extPort != "":
		return nil, out.EnvError(fmt.Sprintf("TOR_PT_EXTENDED_SERVER_PORT: %q is not ip:port", extPort))
	case info.ExtendedOrAddr != nil && info.AuthCookieFile == "":
		return nil, out.EnvError("no TOR_PT_AUTH_COOKIE_FILE when TOR_PT_EXTENDED_SERVER_PORT is set")
	case info.OrAddr == nil && info.ExtendedOrAddr == nil:
		return nil, out.EnvError("neither TOR_PT_ORPORT nor TOR_PT_EXTENDED_SERVER_PORT is set")
	}
	return info, nil
}

// tcpAddr parses an IP address and port (IPv6 in brackets), or returns nil. Host names are
// refused, and so is port 0 unless allowPort0 is set.
func tcpAddr(s string, allowPort0 bool) *net.TCPAddr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 && !allowPort0 {
		return nil
	}
	return net.TCPAddrFromAddrPort(ap)
}
