package pt

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Args holds key=value arguments: per-bridge SOCKS arguments, server transport options, or
// SMETHOD ARGS. A key may occur more than once; its values are kept in the order given.
type Args map[string][]string

// Add appends value to the values of key.
func (a Args) Add(key, value string) { a[key] = append(a[key], value) }

// cut unescapes s (see ParseClientArgs) up to its first unescaped byte in stops, and returns
// the text, that byte (0 at the end of s) and what follows it.
func cut(s, stops string) (text string, stop byte, rest string, err error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 == len(s):
			return "", 0, "", errors.New("trailing backslash")
		case c == '\\':
			i++
			b.WriteByte(s[i])
		case strings.IndexByte(stops, c) >= 0:
			return b.String(), c, s[i+1:], nil
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), 0, "", nil
}

// keyValue reads "key=value" from s up to an unescaped ';' and returns the rest after it. An
// unescaped '=' inside the value belongs to the value.
func keyValue(s string) (key, value, rest string, err error) {
	key, stop, rest, err := cut(s, "=;")
	switch {
	case err != nil:
	case stop != '=':
		err = fmt.Errorf("missing '=' after key %s", SafeName(key))
	case key == "":
		err = errors.New("empty key")
	default:
		value, _, rest, err = cut(rest, ";")
	}
	return key, value, rest, err
}

// SafeName quotes s for an error or a log line when it looks like a keyword (1 to 32 letters,
// digits, '-' or '_'); anything else, such as a host name or a URL put where a keyword belongs,
// is shown only by its length, so that a misplaced bridge address never reaches a log.
func SafeName(s string) string {
	if isKeyword.MatchString(s) {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("(%d bytes, not shown)", len(s))
}

// ParseClientArgs parses per-bridge arguments as tor passes them through SOCKS (pt-spec 3.5):
// "k=v;k2=v2", where a backslash escapes the next byte (tor escapes '\', '=' and ';').
// Duplicate keys are kept in order; the empty string gives empty Args, and a final ';' is
// ignored. An empty key, an item without '=' (such as an empty item between two ';') or a
// trailing lone backslash is an error.
func ParseClientArgs(s string) (Args, error) {
	args := Args{}
	for s != "" {
		k, v, rest, err := keyValue(s)
		if err != nil {
			return nil, fmt.Errorf("client arguments: %w", err)
		}
		args.Add(k, v)
		s = rest
	}
	return args, nil
}

// ParseServerTransportOptions parses TOR_PT_SERVER_TRANSPORT_OPTIONS (pt-spec 3.2.3):
// "t:k=v;t:k2=v2", where a backslash escapes the next byte (tor escapes ':', ';', '=' and
// '\'). The result maps each transport name to its Args. The empty string gives an empty map.
func ParseServerTransportOptions(s string) (map[string]Args, error) {
	opts := map[string]Args{}
	for s != "" {
		t, stop, rest, err := cut(s, ":=;")
		var k, v string
		if err == nil && (stop != ':' || t == "") {
			err = fmt.Errorf("%q is not transport:key=value", s)
		}
		if err == nil {
			k, v, s, err = keyValue(rest)
		}
		if err != nil {
			return nil, fmt.Errorf("TOR_PT_SERVER_TRANSPORT_OPTIONS: %w", err)
		}
		if opts[t] == nil {
			opts[t] = Args{}
		}
		opts[t].Add(k, v)
	}
	return opts, nil
}

// encodeSmethodArgs renders args for the ARGS: option of an SMETHOD line (pt-spec 3.3.3):
// "k=v,k=v", backslash-escaped, keys sorted, values of one key in order.
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
