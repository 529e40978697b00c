// Package format turns the bytes of a Kafka record key or value into the
// values expressions see, and back.
//
// Decoded values are plain Go values that CEL's default type adapter
// understands: nil, bool, int64, float64, string, []byte, []any and
// map[string]any. Encoding accepts the same set (plus uint64 and
// time.Time), so a value that went through a pipeline unchanged encodes to
// what was decoded.
package format

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/exactly-dev/exactly/topology"
)

// Number is a decimal number kept as its exact text, such as "120.00".
// Aggregates produce it so that money sums print exactly, with the scale
// the pipeline asks for; JSON writes it as a number literal, the string
// format as its text.
type Number string

// ErrUnsupported is wrapped by every error for a value that the chosen
// format cannot represent, e.g. a map written with the string format.
var ErrUnsupported = errors.New("value not representable in this format")

// Decode decodes b according to f. A nil b (a Kafka null) decodes to nil
// in every format, so a tombstone stays a tombstone.
func Decode(f topology.Format, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	switch f {
	case topology.FormatBytes:
		return b, nil
	case topology.FormatString:
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("invalid UTF-8 at byte %d", invalidAt(b))
		}
		return string(b), nil
	case topology.FormatJSON, "":
		return decodeJSON(b)
	}
	return nil, fmt.Errorf("unknown format %q", f)
}

// Encode encodes v according to f. A nil v encodes to a Kafka null.
func Encode(f topology.Format, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	switch f {
	case topology.FormatBytes:
		switch v := v.(type) {
		case []byte:
			return v, nil
		case string:
			return []byte(v), nil
		}
		return nil, fmt.Errorf("bytes format needs bytes or string, got %s: %w", typeName(v), ErrUnsupported)
	case topology.FormatString:
		switch v := v.(type) {
		case string:
			return []byte(v), nil
		case []byte:
			if !utf8.Valid(v) {
				return nil, fmt.Errorf("string format: invalid UTF-8 at byte %d", invalidAt(v))
			}
			return v, nil
		case int64:
			return strconv.AppendInt(nil, v, 10), nil
		case uint64:
			return strconv.AppendUint(nil, v, 10), nil
		case float64:
			return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
		case bool:
			return strconv.AppendBool(nil, v), nil
		case Number:
			return []byte(v), nil
		}
		return nil, fmt.Errorf("string format needs a scalar, got %s: %w", typeName(v), ErrUnsupported)
	case topology.FormatJSON, "":
		var buf bytes.Buffer
		if err := appendJSON(&buf, v); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("unknown format %q", f)
}

func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// decodeJSON decodes one JSON document. Numbers written without a fraction
// or exponent that fit in int64 become int64, so `value.id + 1` stays an
// integer in CEL; every other number becomes float64.
func decodeJSON(b []byte) (any, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("invalid JSON: invalid UTF-8 at byte %d", invalidAt(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: trailing data after the document")
	}
	return convertNumbers(v)
}

func convertNumbers(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		s := string(v)
		if isInteger(s) {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n, nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: number %s out of range", s)
		}
		return f, nil
	case map[string]any:
		for k, e := range v {
			c, err := convertNumbers(e)
			if err != nil {
				return nil, err
			}
			v[k] = c
		}
	case []any:
		for i, e := range v {
			c, err := convertNumbers(e)
			if err != nil {
				return nil, err
			}
			v[i] = c
		}
	}
	return v, nil
}

func isInteger(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return true
}

// appendJSON writes v as JSON with map keys sorted, so equal values always
// encode to equal bytes (compacted changelogs and golden files rely on it).
func appendJSON(buf *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(v))
	case int64:
		buf.WriteString(strconv.FormatInt(v, 10))
	case int:
		buf.WriteString(strconv.Itoa(v))
	case uint64:
		buf.WriteString(strconv.FormatUint(v, 10))
	case Number:
		buf.WriteString(string(v))
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("json format cannot hold %v: %w", v, ErrUnsupported)
		}
		b, _ := json.Marshal(v)
		buf.Write(b)
	case string:
		b, _ := json.Marshal(v)
		buf.Write(b)
	case []byte:
		// JSON has no bytes: base64, as encoding/json and protobuf's JSON
		// mapping do.
		buf.WriteByte('"')
		buf.WriteString(base64.StdEncoding.EncodeToString(v))
		buf.WriteByte('"')
	case time.Time:
		b, _ := json.Marshal(v.UTC().Format(time.RFC3339Nano))
		buf.Write(b)
	case time.Duration:
		b, _ := json.Marshal(v.String())
		buf.Write(b)
	case []any:
		buf.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := appendJSON(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			buf.Write(kb)
			buf.WriteByte(':')
			if err := appendJSON(buf, v[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	default:
		return fmt.Errorf("json format cannot hold %s: %w", typeName(v), ErrUnsupported)
	}
	return nil
}

func typeName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "map"
	case []any:
		return "list"
	case string:
		return "string"
	case []byte:
		return "bytes"
	case int64, int:
		return "int"
	case uint64:
		return "uint"
	case float64, Number:
		return "double"
	case bool:
		return "bool"
	case time.Time:
		return "timestamp"
	}
	return fmt.Sprintf("%T", v)
}
