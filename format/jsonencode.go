package format

import (
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendJSON appends v as JSON with map keys sorted, so equal values always
// encode to equal bytes (compacted changelogs and golden files rely on it).
// Strings and numbers are written byte for byte as encoding/json writes
// them (HTML-safe escapes included), except that a whole double keeps a
// fraction (see appendFloat); TestEncodeMatchesStdlib and the fuzz
// targets hold it to that.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case Number:
		return append(b, v...), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return b, fmt.Errorf("json format cannot hold %v: %w", v, ErrUnsupported)
		}
		return appendFloat(b, v), nil
	case string:
		return appendString(b, v), nil
	case []byte:
		// JSON has no bytes: base64, as encoding/json and protobuf's JSON
		// mapping do.
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v)
		return append(b, '"'), nil
	case time.Time:
		return appendString(b, v.UTC().Format(time.RFC3339Nano)), nil
	case time.Duration:
		return appendString(b, v.String()), nil
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		var stack [16]string
		keys := stack[:0]
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendJSON(b, v[k]); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	}
	return b, fmt.Errorf("json format cannot hold %s: %w", typeName(v), ErrUnsupported)
}

// appendFloat writes f as encoding/json does (the shortest text that
// reads back as f, in exponent form only below 1e-6 or from 1e21, with
// the exponent's leading zero dropped: 1e-07 → 1e-7) with one difference:
// a whole number keeps a fraction, 3.0 rather than 3, as Python's json
// module writes it (encoding/json and JavaScript write 3). Written as 3,
// a double would come back from the next reader (another exactly pipeline
// included) as an integer, and a schema expecting a float, or an
// expression, would see another type.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	fmt := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmt = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, fmt, -1, 64)
	if fmt == 'f' {
		if !slices.Contains(b[start:], '.') {
			b = append(b, '.', '0')
		}
		return b
	}
	if fmt == 'e' {
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString writes s quoted as encoding/json does by default: short
// escapes for \b \f \n \r \t, \u00XX for other control characters, <, >
// and & escaped for HTML, U+2028 and U+2029 escaped for JavaScript, and
// invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendJSON appends v as EncodeJSON writes it (nil as null).
func AppendJSON(b []byte, v any) ([]byte, error) { return appendJSON(b, v) }

// AppendJSONString appends s as a JSON string, as EncodeJSON writes strings.
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }

// AppendJSONFloat appends a finite f as EncodeJSON writes doubles.
func AppendJSONFloat(b []byte, f float64) []byte { return appendFloat(b, f) }
