package pt

import (
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestParseClientArgs(t *testing.T) {
	tests := []struct {
		in   string
		want Args
	}{
		{"", Args{}},
		{"k=v", Args{"k": {"v"}}},
		{"k=", Args{"k": {""}}},
		{"k=v;", Args{"k": {"v"}}}, // a trailing ';' ends the last item
		{"url=ws://a/b;front=f", Args{"url": {"ws://a/b"}, "front": {"f"}}},
		// duplicates are kept in order
		{"k=1;j=x;k=2", Args{"k": {"1", "2"}, "j": {"x"}}},
		// escaped \ = ; in key and value
		{`a\=b=c\;d;e\\=f\\`, Args{`a=b`: {`c;d`}, `e\`: {`f\`}}},
		// an unescaped '=' inside a value is part of the value
		{"k=a=b", Args{"k": {"a=b"}}},
		// a backslash escapes any byte
		{`k=\x`, Args{"k": {"x"}}},
	}
	for _, tt := range tests {
		got, err := ParseClientArgs(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseClientArgs(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"k", "=v", ";k=v", "k=v;;j=w", `k=v\`, `k\=v`, "k=v;j", `\`, "k=1;=2"} {
		if got, err := ParseClientArgs(in); err == nil {
			t.Errorf("ParseClientArgs(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseServerTransportOptions(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]Args
	}{
		{"", map[string]Args{}},
		{"websocket:path=/ws", map[string]Args{"websocket": {"path": {"/ws"}}}},
		{"a:k=1;b:k=2;a:k=3;a:j=", map[string]Args{"a": {"k": {"1", "3"}, "j": {""}}, "b": {"k": {"2"}}}},
		// escaped : ; = \ in transport, key and value
		{`t\:1:k\;=v\:\=\\`, map[string]Args{"t:1": {"k;": {`v:=\`}}}},
		// ':' is allowed unescaped after the transport name
		{"t:k=a:b", map[string]Args{"t": {"k": {"a:b"}}}},
		{"t:k=v;", map[string]Args{"t": {"k": {"v"}}}},
	}
	for _, tt := range tests {
		got, err := ParseServerTransportOptions(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseServerTransportOptions(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"k=v", ":k=v", "t:=v", "t:k", "t:k=v;;", "t:k=v;u", `t:k=v\`, "t=k:v", "t;k=v"} {
		if got, err := ParseServerTransportOptions(in); err == nil {
			t.Errorf("ParseServerTransportOptions(%q) = %v, want an error", in, got)
		}
	}
}

func TestEncodeSmethodArgs(t *testing.T) {
	args := Args{"b": {"x,y", "2"}, "a=": {`c\d`}}
	// keys sorted; values of one key in order; \ = , escaped
	want := `a\==c\\d,b=x\,y,b=2`
	if got := encodeSmethodArgs(args); got != want {
		t.Errorf("encodeSmethodArgs = %q, want %q", got, want)
	}
	if got := encodeSmethodArgs(Args{}); got != "" {
		t.Errorf("encodeSmethodArgs(empty) = %q", got)
	}
}

// encodeArgs renders args the way tor does for ParseClientArgs (sep ';', no transport) or for
// ParseServerTransportOptions (each pair prefixed with "transport:"), escaping every special
// byte. Keys are sorted so that the output is deterministic.
func encodeArgs(transport string, args Args) []string {
	esc := strings.NewReplacer(`\`, `\\`, `=`, `\=`, `;`, `\;`, `:`, `\:`).Replace
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var items []string
	for _, k := range keys {
		for _, v := range args[k] {
			item := esc(k) + "=" + esc(v)
			if transport != "" {
				item = esc(transport) + ":" + item
			}
			items = append(items, item)
		}
	}
	return items
}

func FuzzParseClientArgs(f *testing.F) {
	for _, s := range []string{"", "k=v", "a=1;b=2;a=3", `a\=b=c\;d;e\\=f\\`, "k", "=v", "k=v;", `k=v\`, "k=a=b", `\;=\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := ParseClientArgs(s)
		if err != nil {
			return
		}
		for k := range args {
			if k == "" {
				t.Fatalf("ParseClientArgs(%q) gave an empty key", s)
			}
		}
		again, err := ParseClientArgs(strings.Join(encodeArgs("", args), ";"))
		if err != nil || !reflect.DeepEqual(again, args) {
			t.Fatalf("round trip of %q: %v, %v; want %v", s, again, err, args)
		}
	})
}

func FuzzParseServerTransportOptions(f *testing.F) {
	for _, s := range []string{"", "t:k=v", "a:k=1;b:k=2;a:k=3", `t\:1:k\;=v\:\=\\`, "t:k", ":k=v", "t:k=v;", `t:k=v\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		opts, err := ParseServerTransportOptions(s)
		if err != nil {
			return
		}
		var items []string
		for transport, args := range opts {
			if transport == "" || len(args) == 0 {
				t.Fatalf("ParseServerTransportOptions(%q) gave %v", s, opts)
			}
			items = append(items, encodeArgs(transport, args)...)
		}
		again, err := ParseServerTransportOptions(strings.Join(items, ";"))
		if err != nil || !reflect.DeepEqual(again, opts) {
			t.Fatalf("round trip of %q: %v, %v; want %v", s, again, err, opts)
		}
	})
}

// FuzzEncodeSmethodArgs checks that SMETHOD ARGS split back into the original pairs when read
// the way pt-spec 3.3.3 describes (',' between pairs, first unescaped '=' ends the key).
func FuzzEncodeSmethodArgs(f *testing.F) {
	f.Add("k", "v", "k", "w")
	f.Add(`a=,\`, `,=\`, "b", "")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		args := Args{}
		args.Add(k1, v1)
		args.Add(k2, v2)
		enc := encodeSmethodArgs(args)
		got := Args{}
		rest := enc
		for {
			k, stop, r, err := cut(rest, "=,")
			if err != nil || stop != '=' {
				t.Fatalf("encodeSmethodArgs(%v) = %q: bad key", args, enc)
			}
			v, stop, r, err := cut(r, ",")
			if err != nil {
				t.Fatal(err)
			}
			got.Add(k, v)
			if stop == 0 {
				break
			}
			rest = r
		}
		if !reflect.DeepEqual(got, args) {
			t.Fatalf("encodeSmethodArgs(%v) = %q, reads back as %v", args, enc, got)
		}
	})
}

func TestArgsAdd(t *testing.T) {
	a := Args{}
	a.Add("k", "1")
	a.Add("k", "2")
	if !reflect.DeepEqual(a, Args{"k": {"1", "2"}}) {
		t.Errorf("Add gave %v", a)
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"url":                     `"url"`,
		"max-conns":               `"max-conns"`,
		"":                        "(0 bytes, not shown)",
		"wss://bridge.example/ws": "(23 bytes, not shown)",
		"bridge.example":          "(14 bytes, not shown)",
		"192.0.2.1":               "(9 bytes, not shown)",
		"a\nb":                    "(3 bytes, not shown)",
		strings.Repeat("k", 33):   "(33 bytes, not shown)",
		strings.Repeat("k", 32):   `"` + strings.Repeat("k", 32) + `"`,
	} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %s, want %s", in, got, want)
		}
	}
}
