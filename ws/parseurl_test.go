package ws

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{"ws://bridge.example/", true},
		{"wss://bridge.example:8443/ws?k=v", true},
		{"ws://[2001:db8::1]:80/", true},
		{"ws://192.0.2.1", true},
		{"http://bridge.example/", false},        // not a WebSocket scheme
		{"wss:///path", false},                   // no host
		{"wss://user:pw@bridge.example/", false}, // user information
		{"ws://bridge.example/#frag", false},     // fragment (RFC 6455 section 3)
		{"ws://%zz/", false},                     // not a URL
		{"bridge.example/ws", false},             // no scheme
	} {
		u, err := ParseURL(tc.s)
		if (err == nil) != tc.ok {
			t.Errorf("ParseURL(%q): %v, want ok %v", tc.s, err, tc.ok)
		} else if tc.ok && u.String() != tc.s {
			t.Errorf("ParseURL(%q) = %q", tc.s, u)
		}
		if err != nil && (strings.Contains(err.Error(), "example") || strings.Contains(err.Error(), "192.0.2")) {
			t.Errorf("ParseURL(%q): the error repeats the URL: %v", tc.s, err)
		}
	}
}
