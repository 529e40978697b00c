package format

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects, as encoding/json
// does, so a hostile record cannot exhaust the stack.
const maxDepth = 10000

// decodeJSON decodes one JSON document. Numbers written without a fraction
// or exponent that fit in int64 become int64, so `value.id + 1` stays an
// integer in CEL; larger ones that fit in uint64 become uint64 (CEL uint);
// an integer beyond both is an error rather than a rounded double. Every
// number written with a fraction or exponent becomes float64, so `10.0`
// stays a double (and is written back as 10.0, see appendFloat).
//
// It accepts exactly what encoding/json accepts, except integers beyond
// 64 bits, and yields the values encoding/json (with UseNumber, numbers
// converted as above) yields; FuzzJSONAgainstStdlib holds it to that. It exists because decoding is
// the largest cost of a JSON record in the hot path: it makes one pass,
// allocates no scanner state, and copies the document's text once, so
// every string without escapes is a slice of that copy rather than an
// allocation of its own.
func decodeJSON(b []byte) (any, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("invalid JSON: invalid UTF-8 at byte %d", invalidAt(b))
	}
	d := decoder{b: b}
	d.ws()
	if d.i == len(b) {
		return nil, errors.New("invalid JSON: no document (empty or only whitespace)")
	}
	v, err := d.value()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	d.ws()
	if d.i < len(b) {
		return nil, errors.New("invalid JSON: trailing data after the document")
	}
	return v, nil
}

type decoder struct {
	b     []byte
	i     int
	depth int
	text  string // string(b), made on the first string that needs it
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) errAt(what string) error {
	if d.i >= len(d.b) {
		return fmt.Errorf("unexpected end of input, want %s", what)
	}
	// The character, not its first byte: %q of the byte 0xc3 that
	// starts a 'ü' shows 'Ã'.
	if r, n := utf8.DecodeRune(d.b[d.i:]); r != utf8.RuneError || n > 1 {
		return fmt.Errorf("unexpected %q at byte %d, want %s", r, d.i, what)
	}
	return fmt.Errorf("unexpected byte 0x%02x at byte %d, want %s", d.b[d.i], d.i, what)
}

func (d *decoder) value() (any, error) {
	if d.i >= len(d.b) {
		return nil, d.errAt("a value")
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		return s, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case c == 't':
		return d.literal("true", true)
	case c == 'f':
		return d.literal("false", false)
	case c == 'n':
		return d.literal("null", nil)
	}
	return nil, d.errAt("a value")
}

func (d *decoder) literal(lit string, v any) (any, error) {
	if len(d.b)-d.i < len(lit) || string(d.b[d.i:d.i+len(lit)]) != lit {
		return nil, d.errAt(lit)
	}
	d.i += len(lit)
	return v, nil
}

func (d *decoder) enter() error {
	d.depth++
	if d.depth > maxDepth {
		return fmt.Errorf("nested deeper than %d at byte %d", maxDepth, d.i)
	}
	return nil
}

func (d *decoder) object() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.i++ // {
	m := make(map[string]any, 8)
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		d.depth--
		return m, nil
	}
	for {
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, d.errAt("an object key")
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.ws()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, d.errAt("':' after an object key")
		}
		d.i++
		d.ws()
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		m[k] = v
		d.ws()
		if d.i >= len(d.b) {
			return nil, d.errAt("',' or '}'")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
			d.ws()
		case '}':
			d.i++
			d.depth--
			return m, nil
		default:
			return nil, d.errAt("',' or '}'")
		}
	}
}

func (d *decoder) array() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.i++ // [
	l := []any{}
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		d.depth--
		return l, nil
	}
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		l = append(l, v)
		d.ws()
		if d.i >= len(d.b) {
			return nil, d.errAt("',' or ']'")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
			d.ws()
		case ']':
			d.i++
			d.depth--
			return l, nil
		default:
			return nil, d.errAt("',' or ']'")
		}
	}
}

// str reads a string starting at its opening quote.
func (d *decoder) str() (string, error) {
	start := d.i + 1
	for i := start; i < len(d.b); i++ {
		switch c := d.b[i]; {
		case c == '"':
			d.i = i + 1
			if d.text == "" {
				d.text = string(d.b)
			}
			return d.text[start:i], nil
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			d.i = i
			return "", d.errAt("a string character (control characters must be escaped)")
		}
	}
	d.i = len(d.b)
	return "", d.errAt("'\"' closing a string")
}

// escaped reads a string with escapes, from start (after the quote),
// decoding them as encoding/json does: a lone or unpaired surrogate
// becomes U+FFFD.
func (d *decoder) escaped(start int) (string, error) {
	out := make([]byte, 0, 32)
	i := start
	for i < len(d.b) {
		c := d.b[i]
		switch {
		case c == '"':
			d.i = i + 1
			return string(out), nil
		case c < 0x20:
			d.i = i
			return "", d.errAt("a string character (control characters must be escaped)")
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(d.b) {
			d.i = len(d.b)
			return "", d.errAt("an escape")
		}
		switch e := d.b[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(d.b[i+2:])
			if r < 0 {
				d.i = i
				return "", d.errAt(`\u and four hex digits`)
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if len(d.b)-i >= 6 && d.b[i] == '\\' && d.b[i+1] == 'u' {
					if r2 := hex4(d.b[i+2:]); r2 >= 0 {
						if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
							out = utf8.AppendRune(out, dec)
							i += 6
							continue
						}
					}
				}
				r = unicode.ReplacementChar
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			d.i = i
			return "", d.errAt("a valid escape")
		}
		i += 2
	}
	d.i = len(d.b)
	return "", d.errAt("'\"' closing a string")
}

// hex4 decodes the four hex digits at the start of b, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// number reads a number by JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() (any, error) {
	start := d.i
	i := d.i
	neg := d.b[i] == '-'
	if neg {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(d.b) && d.b[i] >= '0' && d.b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	intStart := i
	switch {
	case i < len(d.b) && d.b[i] == '0':
		i++
	case digits() == 0:
		d.i = i
		return nil, d.errAt("a digit")
	}
	intEnd := i
	integer := true
	if i < len(d.b) && d.b[i] == '.' {
		integer = false
		i++
		if digits() == 0 {
			d.i = i
			return nil, d.errAt("a digit after '.'")
		}
	}
	if i < len(d.b) && (d.b[i] == 'e' || d.b[i] == 'E') {
		integer = false
		i++
		if i < len(d.b) && (d.b[i] == '+' || d.b[i] == '-') {
			i++
		}
		if digits() == 0 {
			d.i = i
			return nil, d.errAt("a digit in the exponent")
		}
	}
	d.i = i
	if integer && intEnd-intStart <= 18 {
		// Fits in int64 for sure: no parsing of a string.
		var n int64
		for _, c := range d.b[intStart:intEnd] {
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return n, nil
	}
	text := d.b[start:i]
	if integer {
		if n, err := strconv.ParseInt(string(text), 10, 64); err == nil {
			return n, nil
		}
		if !neg {
			if n, err := strconv.ParseUint(string(text), 10, 64); err == nil {
				return n, nil
			}
		}
		// As a double it would be rounded (12345678901234567890123
		// becomes 12345678901234567000000 when written back): an
		// error, so the record is dead-lettered whole, not altered.
		return nil, fmt.Errorf("integer %s at byte %d does not fit in 64 bits (%d to %d) and would be rounded; write it as a string, or with a fraction to make it a double", text, start, int64(math.MinInt64), uint64(math.MaxUint64))
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return nil, fmt.Errorf("number %s out of range", text)
	}
	return f, nil
}
