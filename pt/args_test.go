package pt

import (
	"reflect"
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
	for _, in := range []string{"k", "=v", "k=v;", ";k=v", "k=v;;j=w", `k=v\`, `k\=v`, "k=v;j", `\`, "k=1;=2"} {
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
	}
	for _, tt := range tests {
		got, err := ParseServerTransportOptions(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseServerTransportOptions(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"k=v", ":k=v", "t:=v", "t:k", "t:k=v;", "t:k=v;u", `t:k=v\`, "t=k:v", "t;k=v"} {
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
