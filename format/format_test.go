package format

import (
	"errors"
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
		{topology.FormatJSON, []byte(`123456789012345678901234`), 1.2345678901234568e+23, ""},
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
	for _, s := range []string{`{"a":1}`, `[1,2.5,"x"]`, `null`, `{"a":{"b":[true,false]}}`, `"\u00e9"`, `-0`, `1e400`} {
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
		v2, err := Decode(topology.FormatJSON, out)
		if err != nil || !sameJSON(v, v2) {
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

// sameJSON compares decoded JSON values, treating an integral double and
// the equal int as the same number: JSON does not tell 1.0 from 1, and
// Encode writes an integral double without a fraction.
func sameJSON(a, b any) bool {
	switch a := a.(type) {
	case float64:
		switch b := b.(type) {
		case float64:
			return a == b
		case int64:
			return a == float64(b)
		}
		return false
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, v := range a {
			if w, ok := bm[k]; !ok || !sameJSON(v, w) {
				return false
			}
		}
		return true
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !sameJSON(a[i], bl[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}
