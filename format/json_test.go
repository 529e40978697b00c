package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// stdlibDecode is the decoder decodeJSON replaced, kept as the oracle:
// encoding/json with UseNumber, integers that fit in int64 as int64, every
// other number as float64; except that, on purpose, an integer beyond
// int64 is a uint64 when it fits and an error when it does not, where
// encoding/json (and the old decoder) rounded it to a float64 and wrote
// 18446744073709551615 back as 18446744073709552000.
func stdlibDecode(b []byte) (any, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("invalid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return stdlibNumbers(v)
}

func stdlibNumbers(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		s := string(v)
		if !strings.ContainsAny(s, ".eE") {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n, nil
			}
			if n, err := strconv.ParseUint(s, 10, 64); err == nil {
				return n, nil
			}
			return nil, fmt.Errorf("integer %s beyond 64 bits", s)
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("number %s out of range", s)
		}
		return f, nil
	case map[string]any:
		for k, e := range v {
			c, err := stdlibNumbers(e)
			if err != nil {
				return nil, err
			}
			v[k] = c
		}
	case []any:
		for i, e := range v {
			c, err := stdlibNumbers(e)
			if err != nil {
				return nil, err
			}
			v[i] = c
		}
	}
	return v, nil
}

// checkAgainstStdlib fails when decodeJSON and encoding/json disagree on
// whether b is JSON or on its value, or when a decoded string or number
// encodes differently from encoding/json.
func checkAgainstStdlib(t *testing.T, b []byte) {
	t.Helper()
	got, err := decodeJSON(b)
	want, werr := stdlibDecode(b)
	if (err == nil) != (werr == nil) {
		t.Fatalf("decodeJSON(%q) error = %v; encoding/json says %v", b, err, werr)
	}
	if err != nil {
		if !strings.HasPrefix(err.Error(), "invalid JSON: ") {
			t.Fatalf("decodeJSON(%q) error %q does not start with %q", b, err, "invalid JSON: ")
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeJSON(%q) = %#v; encoding/json gives %#v", b, got, want)
	}
	walk(got, func(v any) {
		var mine []byte
		switch v := v.(type) {
		case string:
			mine = appendString(nil, v)
		case float64:
			mine = appendFloat(nil, v)
		default:
			return
		}
		std := stdlibEncode(v)
		if !bytes.Equal(mine, std) {
			t.Fatalf("encoding %#v (from %q) = %s; encoding/json writes %s", v, b, mine, std)
		}
	})
}

// stdlibEncode is encoding/json's text for v, but for a whole double, which
// appendFloat writes with a fraction on purpose (3.0, not 3) so that it
// reads back as a double.
func stdlibEncode(v any) []byte {
	std, _ := json.Marshal(v)
	if _, ok := v.(float64); ok && !bytes.ContainsAny(std, ".eE") {
		std = append(std, ".0"...)
	}
	return std
}

func walk(v any, f func(any)) {
	f(v)
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			f(k)
			walk(e, f)
		}
	case []any:
		for _, e := range v {
			walk(e, f)
		}
	}
}

var jsonCorpus = []string{
	`{"id":1001,"amount":149.99,"big":1e3,"tags":["a",null,true]}`,
	`{}`, `[]`, `[[]]`, `{"a":{}}`, ` {"a" : [ 1 , 2 ] } `, "\t\n\r 1 \n",
	`0`, `-0`, `-0.0`, `01`, `-`, `1.`, `.5`, `1e`, `1e+`, `1E-2`, `1e400`, `-1e400`, `1e-400`,
	`9223372036854775807`, `9223372036854775808`, `-9223372036854775808`, `-9223372036854775809`,
	`18446744073709551615`, `18446744073709551616`, `-18446744073709551615`, `10.0`, `1.7e12`, `3.0`, `-0.0`,
	`123456789012345678`, `1234567890123456789`, `0.000001`, `0.0000001`, `1e21`, `1e20`, `123456789012345678901234`,
	`"x"`, `""`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u00e9"`, `"\u00E9"`, `"\ud83d\ude00"`,
	`"\ud83d"`, `"\ude00"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`, `"\u12"`, `"\x"`, "\"a\x01\"", `"<>&"`,
	"\"\u2028\u2029\"", `"é"`, `"unterminated`, `"\`, `"\u`,
	`true`, `false`, `null`, `tru`, `nul`, `nulls`, `True`,
	`{"a":1,"a":2}`, `{"a" 1}`, `{"a":}`, `{,}`, `{"a":1,}`, `[1,]`, `[,1]`, `{1:2}`, `{"a":1 "b":2}`, `[1 2]`,
	``, ` `, `{} {}`, `1 2`, `[1]]`, `{"a":[}`, strings.Repeat("[", 50) + strings.Repeat("]", 50),
}

func TestDecodeMatchesStdlib(t *testing.T) {
	for _, s := range jsonCorpus {
		checkAgainstStdlib(t, []byte(s))
	}
}

// Deeper than encoding/json allows is an error for both.
func TestDecodeDepthLimit(t *testing.T) {
	deep := []byte(strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1))
	if _, err := decodeJSON(deep); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("decodeJSON(%d nested arrays) error = %v, want a depth error", maxDepth+1, err)
	}
	ok := []byte(strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth))
	if _, err := decodeJSON(ok); err != nil {
		t.Fatalf("decodeJSON(%d nested arrays) error = %v", maxDepth, err)
	}
}

func TestEncodeMatchesStdlib(t *testing.T) {
	strs := []string{"", "plain", `q"uote`, `back\slash`, "\b\f\n\r\t", "\x00\x01\x1f\x7f", "<a href=x&y>",
		"\u2028\u2029", "é€😀", "bad\xffutf8", "\xed\xa0\x80"}
	for _, s := range strs {
		std, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, std) {
			t.Errorf("appendString(%q) = %s; encoding/json writes %s", s, got, std)
		}
	}
	floats := []float64{0, math.Copysign(0, -1), 1, -1.5, 0.1, 1e-6, 9.99e-7, 1e-7, 1.5e-10, 1e20, 1e21, 1.2345678901234568e+23,
		math.MaxFloat64, math.SmallestNonzeroFloat64, 123456.789, 100}
	for _, f := range floats {
		std := stdlibEncode(f)
		if got := appendFloat(nil, f); !bytes.Equal(got, std) {
			t.Errorf("appendFloat(%v) = %s; encoding/json writes %s", f, got, std)
		}
	}
	// Map keys are sorted and escaped, however many there are.
	m := map[string]any{}
	for i := range 40 {
		m[fmt.Sprintf("k<%02d>", 39-i)] = int64(i)
	}
	got, err := encode(JSON, m)
	if err != nil {
		t.Fatal(err)
	}
	std, _ := json.Marshal(m) // encoding/json sorts map keys too
	if !bytes.Equal(got, std) {
		t.Errorf("Encode(40 keys) = %s\nencoding/json writes %s", got, std)
	}
}

// FuzzJSONAgainstStdlib holds decodeJSON to encoding/json: the same
// documents accepted, the same values, and strings and numbers encoded to
// the same bytes.
func FuzzJSONAgainstStdlib(f *testing.F) {
	for _, s := range jsonCorpus {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAgainstStdlib(t, b)
	})
}

func BenchmarkDecodeJSON(b *testing.B) {
	doc := []byte(`{"id":123456,"amount":456.7,"user":"u1234","pad":"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789"}`)
	b.Run("exactly", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := decodeJSON(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := stdlibDecode(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
