package ws

import (
	"errors"
	"net/url"
)

// ParseURL parses s as a WebSocket URL (RFC 6455 section 3): scheme ws or wss, a host, and
// neither user information nor a fragment, which the ws-URI grammar has no place for. The
// error does not repeat s, which may name a bridge.
func ParseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, errors.New("want ws://HOST[:PORT]/PATH or wss://HOST[:PORT]/PATH")
	}
	return u, nil
}
