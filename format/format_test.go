package format

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		f       string
		in      []byte
		want    any
		wantErr string
	}{
		{JSON, []byte(`{"id":1001,"amount":149.99,"big":1e3,"tags":["a",null,true]}`),
			map[string]any{"id": int64(1001), "amount": 149.99, "big": 1000.0, "tags": []any{"a", nil, true}}, ""},
		// Integers beyond int64 are uint64 when they fit, an error
		// when they do not: never a rounded double.
		{JSON, []byte(`18446744073709551615`), uint64(18446744073709551615), ""},
		{JSON, []byte(`9223372036854775808`), uint64(9223372036854775808), ""},
		{JSON, []byte(`-9223372036854775809`), nil, "does not fit in 64 bits"},
		{JSON, []byte(`123456789012345678901234`), nil, "does not fit in 64 bits"},
		{JSON, []byte(`1.2345678901234568e+23`), 1.2345678901234568e+23, ""},
		{JSON, []byte(`10.0`), 10.0, ""},
		{JSON, []byte(`1e400`), nil, "out of range"},
		{JSON, []byte(`"x"`), "x", ""},
		{JSON, nil, nil, ""},
		{JSON, []byte(`{"a":`), nil, "invalid JSON"},
		{JSON, []byte(`{} {}`), nil, "trailing data"},
		{JSON, []byte("\"\xff\""), nil, "invalid UTF-8 at byte 1"},
		{String, []byte("héllo"), "héllo", ""},
		{String, []byte("ok\xc3"), nil, "invalid UTF-8 at byte 2"},
		{Bytes, []byte{0, 0xff}, []byte{0, 0xff}, ""},
		{Bytes, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.f+"/"+string(tt.in), func(t *testing.T) {
			got, err := decode(tt.f, tt.in)
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
		f       string
		in      any
		want    string
		wantErr bool
	}{
		{JSON, map[string]any{"b": int64(2), "a": []any{1.5, "x", nil, true}}, `{"a":[1.5,"x",null,true],"b":2}`, false},
		{JSON, []byte("hi"), `"aGk="`, false},
		// A whole double keeps its fraction, so it reads back as a
		// double; an integer beyond int64 is written exactly.
		{JSON, map[string]any{"a": 3.0, "b": 1.7e12, "c": math.Copysign(0, -1), "d": 1e21, "e": uint64(18446744073709551615)},
			`{"a":3.0,"b":1700000000000.0,"c":-0.0,"d":1e+21,"e":18446744073709551615}`, false},
		{JSON, map[string]any{"f": func() {}}, "", true},
		{String, "abc", "abc", false},
		{String, int64(42), "42", false},
		{String, map[string]any{}, "", true},
		{Bytes, "raw", "raw", false},
		{Bytes, int64(1), "", true},
	}
	for _, tt := range tests {
		got, err := encode(tt.f, tt.in)
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
	if b, err := encode(JSON, nil); b != nil || err != nil {
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
		v, err := decode(JSON, b)
		if err != nil {
			return
		}
		out, err := encode(JSON, v)
		if err != nil {
			t.Fatalf("Encode(Decode(%q)) error: %v", b, err)
		}
		// The same value of the same type: a double stays a double
		// (10.0 is written 10.0, not 10) and an integer is never
		// rounded.
		v2, err := decode(JSON, out)
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip of %q: %#v -> %q -> %#v, %v", b, v, out, v2, err)
		}
	})
}

func FuzzString(f *testing.F) {
	f.Add([]byte("hello"))
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decode(String, b)
		if err != nil {
			return
		}
		out, err := encode(String, v)
		if err != nil || string(out) != string(b) {
			t.Fatalf("round trip of %q = %q, %v", b, out, err)
		}
	})
}

// decode and encode use the standard codec called name, as a source or
// sink of that format does.
func decode(name string, b []byte) (any, error) {
	c, err := Standard().New(name, PartValue, nil, Deps{})
	if err != nil {
		return nil, err
	}
	return c.Decode("t", NoHeaders, b)
}

func encode(name string, v any) ([]byte, error) {
	c, err := Standard().New(name, PartValue, nil, Deps{})
	if err != nil {
		return nil, err
	}
	return c.Encode("t", NoHeaders, v)
}
