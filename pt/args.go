package pt

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Args holds key=value arguments: per-bridge SOCKS arguments, server transport options, or
// SMETHOD ARGS. A key may occur more than once; its values are kept in the order given.
type Args map[string][]string

// Get returns the first value of key and whether key is present.
func (a Args) Get(key string) (string, bool) {
	v := a[key]
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// Add appends value to the values of key.
func (a Args) Add(key, value string) {
	a[key] = append(a[key], value)
}

var errTrailingBackslash = errors.New("trailing backslash")

// unescapeUntil reads s up to its first unescaped byte that is in stops. It returns the text
// before that byte with escapes removed, and the rest of s starting at that byte ("" when no
// stop byte occurs). A backslash escapes any one byte; a backslash at the end is an error.
func unescapeUntil(s, stops string) (text, rest string, err error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			i++
			if i == len(s) {
				return "", "", errTrailingBackslash
			}
			b.WriteByte(s[i])
		case strings.IndexByte(stops, c) >= 0:
			return b.String(), s[i:], nil
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "", nil
}

// parseKeyValues parses "k=v;k=v" where each key may be preceded by "transport:" when
// withTransport is set, calling add for each pair. s must not be empty.
func parseKeyValues(s string, withTransport bool, add func(transport, key, value string)) error {
	for {
		var transport, key, value string
		var err error
		rest := s
		if withTransport {
			transport, rest, err = unescapeUntil(rest, ":=;")
			if err != nil {
				return err
			}
			if rest == "" || rest[0] != ':' {
				return fmt.Errorf("missing ':' after transport name in %q", s)
			}
			if transport == "" {
				return errors.New("empty transport name")
			}
			rest = rest[1:]
		}
		key, rest, err = unescapeUntil(rest, "=;")
		if err != nil {
			return err
		}
		if rest == "" || rest[0] != '=' {
			return fmt.Errorf("missing '=' after key %q", key)
		}
		if key == "" {
			return errors.New("empty key")
		}
		value, rest, err = unescapeUntil(rest[1:], ";")
		if err != nil {
			return err
		}
		add(transport, key, value)
		if rest == "" {
			return nil
		}
		s = rest[1:] // skip ';'; an empty item after it is a missing '='
	}
}

// ParseClientArgs parses per-bridge arguments as tor passes them through SOCKS (pt-spec 3.5):
// "k=v;k2=v2", where a backslash escapes the next byte (tor escapes '\', '=' and ';').
// Duplicate keys are kept in order. The empty string gives empty Args. An empty key, an item
// without '=' (including an empty item) or a trailing lone backslash is an error.
func ParseClientArgs(s string) (Args, error) {
	args := Args{}
	if s == "" {
		return args, nil
	}
	err := parseKeyValues(s, false, func(_, k, v string) { args.Add(k, v) })
	if err != nil {
		return nil, fmt.Errorf("client arguments: %w", err)
	}
	return args, nil
}

// ParseServerTransportOptions parses TOR_PT_SERVER_TRANSPORT_OPTIONS (pt-spec 3.2.3):
// "t:k=v;t:k2=v2", where a backslash escapes the next byte (tor escapes ':', ';', '=' and
// '\'). The result maps each transport name to its Args. The empty string gives an empty map.
func ParseServerTransportOptions(s string) (map[string]Args, error) {
	opts := map[string]Args{}
	if s == "" {
		return opts, nil
	}
	err := parseKeyValues(s, true, func(t, k, v string) {
		if opts[t] == nil {
			opts[t] = Args{}
		}
		opts[t].Add(k, v)
	})
	if err != nil {
		return nil, fmt.Errorf("TOR_PT_SERVER_TRANSPORT_OPTIONS: %w", err)
	}
	return opts, nil
}

// encodeSmethodArgs renders args for the ARGS: option of an SMETHOD line (pt-spec 3.3.3):
// "k=v,k=v" with '\', '=' and ',' escaped by a backslash. Keys are sorted so the line is
// deterministic; the values of one key keep their order.
func encodeSmethodArgs(args Args) string {
	escape := strings.NewReplacer(`\`, `\\`, `=`, `\=`, `,`, `\,`).Replace
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		for _, v := range args[k] {
			parts = append(parts, escape(k)+"="+escape(v))
		}
	}
	return strings.Join(parts, ",")
}
