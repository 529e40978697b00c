package format

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/exactly-dev/exactly/topology"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		f       topology.Format
		in      []byte
		want    any
		wantErr string
	}{
		{topology.FormatJSON, []byte(`{"id":1001,"amount":149.99,"big":1e3,"tags":["a",null,true]}`),
			map[string]any{"id": int64(1001), "amount": 149.99, "big": 1000.0, "tags": []any{"a", nil, true}}, ""},
		// Integers beyond int64 are uint64 when they fit, an error
		// when they do not: never a rounded double.
		{topology.FormatJSON, []byte(`18446744073709551615`), uint64(18446744073709551615), ""},
		{topology.FormatJSON, []byte(`9223372036854775808`), uint64(9223372036854775808), ""},
		{topology.FormatJSON, []byte(`-9223372036854775809`), nil, "does not fit in 64 bits"},
		{topology.FormatJSON, []byte(`123456789012345678901234`), nil, "does not fit in 64 bits"},
		{topology.FormatJSON, []byte(`1.2345678901234568e+23`), 1.2345678901234568e+23, ""},
		{topology.FormatJSON, []byte(`10.0`), 10.0, ""},
		{topology.FormatJSON, []byte(`1e400`), nil, "out of range"},
		{topology.FormatJSON, []byte(`"x"`), "x", ""},
		{topology.FormatJSON, nil, nil, ""},
		{topology.FormatJSON, []byte(`{"a":`), nil, "invalid JSON"},
		{topology.FormatJSON, []byte(`{} {}`), nil, "trailing data"},
		{topology.FormatJSON, []byte("\"\xff\""), nil, "invalid UTF-8 at byte 1"},
		{topology.FormatString, []byte("héllo"), "héllo", ""},
		{topology.FormatString, []byte("ok\xc3"), nil, "invalid UTF-8 at byte 2"},
		{topology.FormatBytes, []byte{0, 0xff}, []byte{0, 0xff}, ""},
		{topology.FormatBytes, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.f)+"/"+string(tt.in), func(t *testing.T) {
			got, err := Decode(tt.f, tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Decode(%s, %q) error = %v, want one containing %q", tt.f, tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode(%s, %q) = %#v, %v, want %#v", tt.f, tt.in, got, err, tt.want)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		f       topology.Format
		in      any
		want    string
		wantErr bool
	}{
		{topology.FormatJSON, map[string]any{"b": int64(2), "a": []any{1.5, "x", nil, true}}, `{"a":[1.5,"x",null,true],"b":2}`, false},
		{topology.FormatJSON, []byte("hi"), `"aGk="`, false},
		// A whole double keeps its fraction, so it reads back as a
		// double; an integer beyond int64 is written exactly.
		{topology.FormatJSON, map[string]any{"a": 3.0, "b": 1.7e12, "c": math.Copysign(0, -1), "d": 1e21, "e": uint64(18446744073709551615)},
			`{"a":3.0,"b":1700000000000.0,"c":-0.0,"d":1e+21,"e":18446744073709551615}`, false},
		{topology.FormatJSON, map[string]any{"f": func() {}}, "", true},
		{topology.FormatString, "abc", "abc", false},
		{topology.FormatString, int64(42), "42", false},
		{topology.FormatString, map[string]any{}, "", true},
		{topology.FormatBytes, "raw", "raw", false},
		{topology.FormatBytes, int64(1), "", true},
	}
	for _, tt := range tests {
		got, err := Encode(tt.f, tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("Encode(%s, %#v) error = %v, want ErrUnsupported", tt.f, tt.in, err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("Encode(%s, %#v) = %q, %v, want %q", tt.f, tt.in, got, err, tt.want)
		}
	}
	if b, err := Encode(topology.FormatJSON, nil); b != nil || err != nil {
		t.Errorf("Encode(json, nil) = %q, %v, want a Kafka null", b, err)
	}
}

// FuzzJSON checks that decoding never panics and that whatever decodes
// encodes again and decodes to the same value.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,2.5,"x"]`, `null`, `{"a":{"b":[true,false]}}`, `"\u00e9"`, `-0`, `1e400`, `10.0`, `1.7e12`, `18446744073709551615`, `-0.0`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(topology.FormatJSON, b)
		if err != nil {
			return
		}
		out, err := Encode(topology.FormatJSON, v)
		if err != nil {
			t.Fatalf("Encode(Decode(%q)) error: %v", b, err)
		}
		// The same value of the same type: a double stays a double
		// (10.0 is written 10.0, not 10) and an integer is never
		// rounded.
		v2, err := Decode(topology.FormatJSON, out)
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip of %q: %#v -> %q -> %#v, %v", b, v, out, v2, err)
		}
	})
}

func FuzzString(f *testing.F) {
	f.Add([]byte("hello"))
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(topology.FormatString, b)
		if err != nil {
			return
		}
		out, err := Encode(topology.FormatString, v)
		if err != nil || string(out) != string(b) {
			t.Fatalf("round trip of %q = %q, %v", b, out, err)
		}
	})
}
