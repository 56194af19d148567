package pt

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// envFunc returns a getenv reading m.
func envFunc(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// with returns a copy of base with the changes applied; a change to "-" deletes the variable.
func with(base map[string]string, changes ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(changes); i += 2 {
		if changes[i+1] == "-" {
			delete(m, changes[i])
		} else {
			m[changes[i]] = changes[i+1]
		}
	}
	return m
}

func TestManaged(t *testing.T) {
	if Managed(envFunc(nil)) {
		t.Error("Managed without TOR_PT_MANAGED_TRANSPORT_VER")
	}
	if !Managed(envFunc(map[string]string{"TOR_PT_MANAGED_TRANSPORT_VER": "1"})) {
		t.Error("not Managed with TOR_PT_MANAGED_TRANSPORT_VER=1")
	}
}

func TestClientSetupErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{
		"TOR_PT_MANAGED_TRANSPORT_VER": "1",
		"TOR_PT_STATE_LOCATION":        filepath.Join(dir, "state"),
		"TOR_PT_CLIENT_TRANSPORTS":     "websocket",
	}
	const v = "VERSION 1\n"
	tests := []struct {
		env  map[string]string
		want string
	}{
		{with(base, "TOR_PT_MANAGED_TRANSPORT_VER", "2,3"), "VERSION-ERROR no-version\n"},
		{with(base, "TOR_PT_MANAGED_TRANSPORT_VER", " 1"), "VERSION-ERROR no-version\n"},
		{with(base, "TOR_PT_MANAGED_TRANSPORT_VER", "-"), "VERSION-ERROR no-version\n"},
		{with(base, "TOR_PT_STATE_LOCATION", "-"), v + "ENV-ERROR TOR_PT_STATE_LOCATION must be set to an absolute path\n"},
		{with(base, "TOR_PT_STATE_LOCATION", "state"), v + "ENV-ERROR TOR_PT_STATE_LOCATION must be set to an absolute path\n"},
		{with(base, "TOR_PT_STATE_LOCATION", filepath.Join(file, "sub")),
			v + "ENV-ERROR TOR_PT_STATE_LOCATION: cannot create the directory: mkdir " + file + ": not a directory\n"},
		{with(base, "TOR_PT_CLIENT_TRANSPORTS", "-"), v + "ENV-ERROR no TOR_PT_CLIENT_TRANSPORTS\n"},
		{with(base, "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "::1"),
			v + `ENV-ERROR TOR_PT_OUTBOUND_BIND_ADDRESS_V4: "::1" is not an IPv4 address` + "\n"},
		{with(base, "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "[192.0.2.1]"),
			v + `ENV-ERROR TOR_PT_OUTBOUND_BIND_ADDRESS_V4: "[192.0.2.1]" is not an IPv4 address` + "\n"},
		{with(base, "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "192.0.2"),
			v + `ENV-ERROR TOR_PT_OUTBOUND_BIND_ADDRESS_V4: "192.0.2" is not an IPv4 address` + "\n"},
		{with(base, "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "192.0.2.1\n"),
			v + `ENV-ERROR TOR_PT_OUTBOUND_BIND_ADDRESS_V4: "192.0.2.1\\n" is not an IPv4 address` + "\n"},
		{with(base, "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "192.0.2.1"),
			v + `ENV-ERROR TOR_PT_OUTBOUND_BIND_ADDRESS_V6: "192.0.2.1" is not an IPv6 address` + "\n"},
		{with(base, "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "[::1"),
			v + `ENV-ERROR TOR_PT_OUTBOUND_BIND_ADDRESS_V6: "[::1" is not an IPv6 address` + "\n"},
		{with(base, "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "[fe80::1%eth0]"),
			v + `ENV-ERROR TOR_PT_OUTBOUND_BIND_ADDRESS_V6: "[fe80::1%eth0]" is not an IPv6 address` + "\n"},
		{with(base, "TOR_PT_PROXY", "ftp://127.0.0.1:21"),
			v + `PROXY-ERROR TOR_PT_PROXY: unsupported proxy scheme "ftp" (want socks5, socks4a or http)` + "\n"},
		{with(base, "TOR_PT_PROXY", "socks4://127.0.0.1:21"),
			v + `PROXY-ERROR TOR_PT_PROXY: unsupported proxy scheme "socks4" (want socks5, socks4a or http)` + "\n"},
		{with(base, "TOR_PT_PROXY", "127.0.0.1:1080"), v + "PROXY-ERROR TOR_PT_PROXY: not a valid URL\n"},
		{with(base, "TOR_PT_PROXY", "socks5://u:secret@%zz:1"), v + "PROXY-ERROR TOR_PT_PROXY: not a valid URL\n"},
		{with(base, "TOR_PT_PROXY", "socks5://u:secret@proxy.example:1080"),
			v + "PROXY-ERROR TOR_PT_PROXY: the proxy host must be an IP address\n"},
		{with(base, "TOR_PT_PROXY", "socks5://[fe80::1%25eth0]:1080"),
			v + "PROXY-ERROR TOR_PT_PROXY: the proxy host must be an IP address\n"},
		{with(base, "TOR_PT_PROXY", "socks5://127.0.0.1"), v + "PROXY-ERROR TOR_PT_PROXY: missing or invalid port\n"},
		{with(base, "TOR_PT_PROXY", "socks5://127.0.0.1:0"), v + "PROXY-ERROR TOR_PT_PROXY: missing or invalid port\n"},
		{with(base, "TOR_PT_PROXY", "socks5://127.0.0.1:65536"), v + "PROXY-ERROR TOR_PT_PROXY: missing or invalid port\n"},
		{with(base, "TOR_PT_PROXY", "http://127.0.0.1:8080/path"),
			v + "PROXY-ERROR TOR_PT_PROXY: must have the form scheme://[user[:password]@]ip:port\n"},
		{with(base, "TOR_PT_PROXY", "http://127.0.0.1:8080?q"),
			v + "PROXY-ERROR TOR_PT_PROXY: must have the form scheme://[user[:password]@]ip:port\n"},
		{with(base, "TOR_PT_PROXY", "http:127.0.0.1:8080"),
			v + "PROXY-ERROR TOR_PT_PROXY: must have the form scheme://[user[:password]@]ip:port\n"},
		{with(base, "TOR_PT_PROXY", "socks4a://u:secret@127.0.0.1:1"),
			v + "PROXY-ERROR TOR_PT_PROXY: a socks4a proxy takes a user name but no password\n"},
		{with(base, "TOR_PT_PROXY", "socks5://u@127.0.0.1:1"),
			v + "PROXY-ERROR TOR_PT_PROXY: socks5 user name and password must both be 1-255 bytes (RFC 1929)\n"},
		{with(base, "TOR_PT_PROXY", "socks5://u:"+strings.Repeat("p", 256)+"@127.0.0.1:1"),
			v + "PROXY-ERROR TOR_PT_PROXY: socks5 user name and password must both be 1-255 bytes (RFC 1929)\n"},
	}
	for _, tt := range tests {
		var b strings.Builder
		info, err := ClientSetup(NewOutput(&b), envFunc(tt.env), []string{"websocket"})
		if info != nil || err == nil || b.String() != tt.want {
			t.Errorf("env %q:\n got %q, %v, %v\nwant %q", tt.env, b.String(), info, err, tt.want)
		}
		last := tt.want[strings.LastIndex(strings.TrimSuffix(tt.want, "\n"), "\n")+1:]
		if err != nil && err.Error()+"\n" != last {
			t.Errorf("error %q does not match the line %q", err, last)
		}
	}
}

func TestClientSetup(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "a", "state")
	base := map[string]string{
		"TOR_PT_MANAGED_TRANSPORT_VER": "3,1a,1",
		"TOR_PT_STATE_LOCATION":        state,
		"TOR_PT_CLIENT_TRANSPORTS":     "obfs4,websocket,meek,websocket",
	}
	tests := []struct {
		env  map[string]string
		want ClientInfo
	}{
		{base, ClientInfo{MethodNames: []string{"websocket", "meek"}, StateLocation: state}},
		{with(base, "TOR_PT_CLIENT_TRANSPORTS", "obfs4"), ClientInfo{StateLocation: state}},
		{with(base, "TOR_PT_CLIENT_TRANSPORTS", "websocket,*"), ClientInfo{MethodNames: []string{"websocket", "meek"}, StateLocation: state}},
		{with(base, "TOR_PT_EXIT_ON_STDIN_CLOSE", "1", "TOR_PT_CLIENT_TRANSPORTS", "meek"),
			ClientInfo{MethodNames: []string{"meek"}, StateLocation: state, ExitOnStdinClose: true}},
		{with(base, "TOR_PT_EXIT_ON_STDIN_CLOSE", "yes", "TOR_PT_CLIENT_TRANSPORTS", "meek"),
			ClientInfo{MethodNames: []string{"meek"}, StateLocation: state}},
		{with(base, "TOR_PT_CLIENT_TRANSPORTS", "meek", "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "192.0.2.1",
			"TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "[2001:db8::1]"),
			ClientInfo{MethodNames: []string{"meek"}, StateLocation: state,
				OutboundV4: net.IP{192, 0, 2, 1}, OutboundV6: net.ParseIP("2001:db8::1")}},
		{with(base, "TOR_PT_CLIENT_TRANSPORTS", "meek", "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "::1"),
			ClientInfo{MethodNames: []string{"meek"}, StateLocation: state, OutboundV6: net.IPv6loopback}},
	}
	for _, tt := range tests {
		var b strings.Builder
		info, err := ClientSetup(NewOutput(&b), envFunc(tt.env), []string{"meek", "websocket"})
		if err != nil || b.String() != "VERSION 1\n" || !reflect.DeepEqual(*info, tt.want) {
			t.Errorf("env %q:\n got %q, %+v, %v\nwant %+v", tt.env, b.String(), info, err, tt.want)
		}
	}
	if fi, err := os.Stat(state); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory: %v, %v", fi, err)
	}
}

func TestClientSetupProxy(t *testing.T) {
	base := map[string]string{
		"TOR_PT_MANAGED_TRANSPORT_VER": "1",
		"TOR_PT_STATE_LOCATION":        t.TempDir(),
		"TOR_PT_CLIENT_TRANSPORTS":     "websocket",
	}
	for _, proxy := range []string{
		"socks5://127.0.0.1:9050",
		"socks5://user:pass@127.0.0.1:1",
		"socks5://u%3Ab:p%40@[::1]:1080",
		"socks4a://[::1]:1",
		"socks4a://user@127.0.0.1:1",
		"http://127.0.0.1:8080",
		"http://user:pass@127.0.0.1:8080/",
		"http://user@127.0.0.1:8080",
	} {
		var b strings.Builder
		info, err := ClientSetup(NewOutput(&b), envFunc(with(base, "TOR_PT_PROXY", proxy)), []string{"websocket"})
		if err != nil || b.String() != "VERSION 1\n" || info.ProxyURL == nil || info.ProxyURL.String() != proxy {
			t.Errorf("TOR_PT_PROXY=%s: %q, %+v, %v", proxy, b.String(), info, err)
		}
	}
}

func TestServerSetupErrors(t *testing.T) {
	base := map[string]string{
		"TOR_PT_MANAGED_TRANSPORT_VER": "1",
		"TOR_PT_STATE_LOCATION":        t.TempDir(),
		"TOR_PT_SERVER_TRANSPORTS":     "websocket",
		"TOR_PT_SERVER_BINDADDR":       "websocket-127.0.0.1:8080",
		"TOR_PT_ORPORT":                "127.0.0.1:9001",
		"TOR_PT_EXTENDED_SERVER_PORT":  "",
	}
	const v = "VERSION 1\n"
	tests := []struct {
		env  map[string]string
		want string
	}{
		{with(base, "TOR_PT_MANAGED_TRANSPORT_VER", "2"), "VERSION-ERROR no-version\n"},
		{with(base, "TOR_PT_STATE_LOCATION", ""), v + "ENV-ERROR TOR_PT_STATE_LOCATION must be set to an absolute path\n"},
		{with(base, "TOR_PT_SERVER_TRANSPORTS", "-"), v + "ENV-ERROR no TOR_PT_SERVER_TRANSPORTS\n"},
		{with(base, "TOR_PT_SERVER_BINDADDR", "websocket127.0.0.1:8080"),
			v + `ENV-ERROR TOR_PT_SERVER_BINDADDR: "websocket127.0.0.1:8080" is not name-ip:port` + "\n"},
		{with(base, "TOR_PT_SERVER_BINDADDR", "websocket-127.0.0.1"),
			v + `ENV-ERROR TOR_PT_SERVER_BINDADDR: "websocket-127.0.0.1" is not name-ip:port` + "\n"},
		{with(base, "TOR_PT_SERVER_BINDADDR", "websocket-localhost:80"),
			v + `ENV-ERROR TOR_PT_SERVER_BINDADDR: "websocket-localhost:80" is not name-ip:port` + "\n"},
		{with(base, "TOR_PT_SERVER_BINDADDR", "websocket-::1:80"),
			v + `ENV-ERROR TOR_PT_SERVER_BINDADDR: "websocket-::1:80" is not name-ip:port` + "\n"},
		{with(base, "TOR_PT_SERVER_BINDADDR", "websocket-127.0.0.1:80,"),
			v + `ENV-ERROR TOR_PT_SERVER_BINDADDR: "" is not name-ip:port` + "\n"},
		{with(base, "TOR_PT_SERVER_BINDADDR", "websocket-127.0.0.1:80,websocket-127.0.0.1:81"),
			v + `ENV-ERROR TOR_PT_SERVER_BINDADDR: "websocket" appears twice` + "\n"},
		{with(base, "TOR_PT_SERVER_TRANSPORT_OPTIONS", "websocket:path"),
			v + `ENV-ERROR TOR_PT_SERVER_TRANSPORT_OPTIONS: missing '=' after key "path"` + "\n"},
		{with(base, "TOR_PT_SERVER_TRANSPORT_OPTIONS", `websocket:k=v\`),
			v + `ENV-ERROR TOR_PT_SERVER_TRANSPORT_OPTIONS: trailing backslash` + "\n"},
		{with(base, "TOR_PT_ORPORT", "localhost:9001"), v + `ENV-ERROR TOR_PT_ORPORT: "localhost:9001" is not ip:port` + "\n"},
		{with(base, "TOR_PT_ORPORT", ":9001"), v + `ENV-ERROR TOR_PT_ORPORT: ":9001" is not ip:port` + "\n"},
		{with(base, "TOR_PT_ORPORT", "127.0.0.1:0"), v + `ENV-ERROR TOR_PT_ORPORT: "127.0.0.1:0" is not ip:port` + "\n"},
		{with(base, "TOR_PT_ORPORT", "-"), v + "ENV-ERROR neither TOR_PT_ORPORT nor TOR_PT_EXTENDED_SERVER_PORT is set\n"},
		{with(base, "TOR_PT_EXTENDED_SERVER_PORT", "127.0.0.1:4200"),
			v + "ENV-ERROR no TOR_PT_AUTH_COOKIE_FILE when TOR_PT_EXTENDED_SERVER_PORT is set\n"},
		{with(base, "TOR_PT_EXTENDED_SERVER_PORT", "127.0.0.1:99999", "TOR_PT_AUTH_COOKIE_FILE", "/c"),
			v + `ENV-ERROR TOR_PT_EXTENDED_SERVER_PORT: "127.0.0.1:99999" is not ip:port` + "\n"},
	}
	for _, tt := range tests {
		var b strings.Builder
		info, err := ServerSetup(NewOutput(&b), envFunc(tt.env), []string{"websocket"})
		if info != nil || err == nil || b.String() != tt.want {
			t.Errorf("env %q:\n got %q, %v, %v\nwant %q", tt.env, b.String(), info, err, tt.want)
		}
	}
}

func TestServerSetup(t *testing.T) {
	state := t.TempDir()
	base := map[string]string{
		"TOR_PT_MANAGED_TRANSPORT_VER": "1",
		"TOR_PT_STATE_LOCATION":        state,
		"TOR_PT_SERVER_TRANSPORTS":     "websocket",
		"TOR_PT_SERVER_BINDADDR":       "websocket-127.0.0.1:8080",
		"TOR_PT_ORPORT":                "127.0.0.1:9001",
		"TOR_PT_EXTENDED_SERVER_PORT":  "",
	}
	or := tcp("127.0.0.1:9001")
	tests := []struct {
		env  map[string]string
		want ServerInfo
	}{
		{base, ServerInfo{Bindaddrs: []Bindaddr{{"websocket", tcp("127.0.0.1:8080"), Args{}}}, OrAddr: or, StateLocation: state}},
		{with(base, "TOR_PT_SERVER_BINDADDR", "-", "TOR_PT_EXIT_ON_STDIN_CLOSE", "1"),
			ServerInfo{Bindaddrs: []Bindaddr{{"websocket", &net.TCPAddr{IP: net.IPv4zero}, Args{}}}, OrAddr: or,
				StateLocation: state, ExitOnStdinClose: true}},
		{with(base, "TOR_PT_SERVER_TRANSPORTS", "obfs4,websocket,meek", "TOR_PT_SERVER_BINDADDR",
			"obfs4-192.0.2.1:1,websocket-[::1]:80,meek-[2001:db8::2]:0",
			"TOR_PT_SERVER_TRANSPORT_OPTIONS", `obfs4:a=b;websocket:path=/ws;meek:x=1;websocket:k=a\;b`),
			ServerInfo{Bindaddrs: []Bindaddr{
				{"websocket", tcp("[::1]:80"), Args{"path": {"/ws"}, "k": {"a;b"}}},
				{"meek", tcp("[2001:db8::2]:0"), Args{"x": {"1"}}},
			}, OrAddr: or, StateLocation: state}},
		{with(base, "TOR_PT_SERVER_TRANSPORTS", "obfs4"), ServerInfo{OrAddr: or, StateLocation: state}},
		{with(base, "TOR_PT_OUTBOUND_BIND_ADDRESS_V4", "192.0.2.1", "TOR_PT_OUTBOUND_BIND_ADDRESS_V6", "[2001:db8::1]"),
			ServerInfo{Bindaddrs: []Bindaddr{{"websocket", tcp("127.0.0.1:8080"), Args{}}}, OrAddr: or, StateLocation: state,
				OutboundV4: net.IP{192, 0, 2, 1}, OutboundV6: net.ParseIP("2001:db8::1")}},
		{with(base, "TOR_PT_ORPORT", "-", "TOR_PT_EXTENDED_SERVER_PORT", "[::1]:4200", "TOR_PT_AUTH_COOKIE_FILE", "/var/c"),
			ServerInfo{Bindaddrs: []Bindaddr{{"websocket", tcp("127.0.0.1:8080"), Args{}}},
				ExtendedOrAddr: tcp("[::1]:4200"), AuthCookieFile: "/var/c", StateLocation: state}},
	}
	for _, tt := range tests {
		var b strings.Builder
		info, err := ServerSetup(NewOutput(&b), envFunc(tt.env), []string{"websocket", "meek"})
		// %+v shows addresses as strings: 4- and 16-byte forms of one IPv4 address compare equal.
		if err != nil || b.String() != "VERSION 1\n" || fmt.Sprintf("%+v", *info) != fmt.Sprintf("%+v", tt.want) {
			t.Errorf("env %q:\n got %q, %+v, %v\nwant %+v", tt.env, b.String(), info, err, tt.want)
		}
	}
}

// checkSetupOutput checks the output of a Setup: only VERSION 1 on success; on error exactly one
// error line, last, of an allowed kind; never a control byte.
func checkSetupOutput(t *testing.T, out string, err error, kinds ...string) {
	t.Helper()
	checkLines(t, out, strings.Count(out, "\n"))
	ls := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if err == nil {
		if out != "VERSION 1\n" {
			t.Fatalf("success printed %q", out)
		}
		return
	}
	last := ls[len(ls)-1]
	errLines := 0
	for _, l := range ls {
		if strings.Contains(strings.SplitN(l, " ", 2)[0], "ERROR") {
			errLines++
		}
	}
	ok := false
	for _, k := range kinds {
		ok = ok || strings.HasPrefix(last, k+" ")
	}
	if !ok || errLines != 1 || len(ls) > 2 || (len(ls) == 2 && ls[0] != "VERSION 1") {
		t.Fatalf("error %v printed %q", err, out)
	}
}

func FuzzClientSetup(f *testing.F) {
	f.Add("1", "websocket", "", "", "", "1")
	f.Add("1,2", "obfs4,websocket", "socks5://u:p@127.0.0.1:1", "192.0.2.1", "[::1]", "0")
	f.Add("2", "", "http://x\n", "::1", "1.2.3.4", "")
	f.Add("1", "websocket", "socks4a://\x00@[::1]:1", "1.2.3.4\n", "[]", "1")
	state := filepath.Join(f.TempDir(), "state")
	f.Fuzz(func(t *testing.T, ver, transports, proxy, v4, v6, exit string) {
		env := map[string]string{
			"TOR_PT_MANAGED_TRANSPORT_VER": ver, "TOR_PT_STATE_LOCATION": state,
			"TOR_PT_CLIENT_TRANSPORTS": transports, "TOR_PT_PROXY": proxy,
			"TOR_PT_OUTBOUND_BIND_ADDRESS_V4": v4, "TOR_PT_OUTBOUND_BIND_ADDRESS_V6": v6,
			"TOR_PT_EXIT_ON_STDIN_CLOSE": exit,
		}
		var b strings.Builder
		info, err := ClientSetup(NewOutput(&b), envFunc(env), []string{"websocket"})
		if (info == nil) == (err == nil) {
			t.Fatalf("info %v, err %v", info, err)
		}
		checkSetupOutput(t, b.String(), err, "VERSION-ERROR", "ENV-ERROR", "PROXY-ERROR")
		if err == nil && len(info.MethodNames) > 1 {
			t.Fatalf("MethodNames %q", info.MethodNames)
		}
	})
}

func FuzzServerSetup(f *testing.F) {
	f.Add("1", "websocket", "websocket-127.0.0.1:80", "websocket:k=v", "127.0.0.1:9001", "", "")
	f.Add("1", "websocket", "websocket-[::1]:0", "", "", "127.0.0.1:1", "/c")
	f.Add("1", "websocket,websocket", "websocket-1.2.3.4:5,websocket-1.2.3.4:5", ";", "x", "[::1]", "")
	f.Add("0", "\n", "-", `\`, "1.1.1.1:1\n", "\x00", "\n")
	state := filepath.Join(f.TempDir(), "state")
	f.Fuzz(func(t *testing.T, ver, transports, bindaddr, options, orport, ext, cookie string) {
		env := map[string]string{
			"TOR_PT_MANAGED_TRANSPORT_VER": ver, "TOR_PT_STATE_LOCATION": state,
			"TOR_PT_SERVER_TRANSPORTS": transports, "TOR_PT_SERVER_BINDADDR": bindaddr,
			"TOR_PT_SERVER_TRANSPORT_OPTIONS": options, "TOR_PT_ORPORT": orport,
			"TOR_PT_EXTENDED_SERVER_PORT": ext, "TOR_PT_AUTH_COOKIE_FILE": cookie,
		}
		var b strings.Builder
		info, err := ServerSetup(NewOutput(&b), envFunc(env), []string{"websocket"})
		if (info == nil) == (err == nil) {
			t.Fatalf("info %v, err %v", info, err)
		}
		checkSetupOutput(t, b.String(), err, "VERSION-ERROR", "ENV-ERROR")
		if err == nil {
			if info.OrAddr == nil && info.ExtendedOrAddr == nil || len(info.Bindaddrs) > 1 {
				t.Fatalf("info %+v", info)
			}
			for _, ba := range info.Bindaddrs {
				if ba.Addr == nil || ba.Options == nil {
					t.Fatalf("bindaddr %+v", ba)
				}
			}
		}
	})
}
