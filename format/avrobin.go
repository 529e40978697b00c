package format

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/apd/v3"
	"github.com/hamba/avro/v2"
)

// The Avro binary encoding (Avro 1.11 specification, "Binary Encoding"),
// walked over a schema parsed by hamba/avro, to and from the plain values
// of package format. It is written here rather than taken from hamba's
// generic decoder so that logical types map to what CEL expressions
// expect (decimal to Number, timestamps to time.Time, enums to string, a
// union to its branch's value), and so that every length is checked
// against the bytes left: a record is untrusted input.
//
// Values:
//
//	null                      nil
//	boolean                   bool
//	int, long                 int64
//	float, double             float64
//	string, uuid              string
//	bytes, fixed              []byte
//	decimal (bytes, fixed)    Number, exact, with the schema's scale
//	date                      time.Time, midnight UTC
//	time-millis, time-micros  time.Duration since midnight
//	timestamp-*               time.Time, UTC (local-timestamp-* too)
//	enum                      string, the symbol
//	array                     []any
//	map, record               map[string]any
//	union                     the value of its branch (nil for null)

// errAvro marks a payload that does not decode with its writer schema.
func avroMismatch(format string, args ...any) error {
	return classed("schema_mismatch", fmt.Errorf("avro: %w: %s", ErrSchemaMismatch, fmt.Sprintf(format, args...)))
}

// maxAvroDepth bounds nesting, so a recursive schema and a crafted
// payload cannot exhaust the stack.
const maxAvroDepth = 256

type avroReader struct {
	b     []byte
	depth int
}

func (r *avroReader) long() (int64, error) {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		if n == 0 {
			return 0, avroMismatch("truncated: a number runs past the end")
		}
		return 0, avroMismatch("a number longer than 64 bits")
	}
	r.b = r.b[n:]
	return v, nil
}

func (r *avroReader) bytes() ([]byte, error) {
	n, err := r.long()
	if err != nil {
		return nil, err
	}
	if n < 0 || n > int64(len(r.b)) {
		return nil, avroMismatch("a length of %d, but %d bytes are left", n, len(r.b))
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b, nil
}

func (r *avroReader) fixed(size int) ([]byte, error) {
	if size > len(r.b) {
		return nil, avroMismatch("truncated: fixed of %d bytes, %d left", size, len(r.b))
	}
	b := r.b[:size:size]
	r.b = r.b[size:]
	return b, nil
}

// count reads a block count of an array or map; a negative count is
// followed by the block's size in bytes, which is skipped over.
func (r *avroReader) count() (int64, error) {
	n, err := r.long()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		if n == math.MinInt64 {
			return 0, avroMismatch("bad block count")
		}
		n = -n
		if _, err := r.long(); err != nil {
			return 0, err
		}
	}
	// Each item takes at least... nothing (null items), so bound by the
	// bytes left generously to stop a 2^62 count from looping.
	if n > int64(len(r.b))+1<<16 {
		return 0, avroMismatch("a block of %d items in %d bytes", n, len(r.b))
	}
	return n, nil
}

func decodeAvro(s avro.Schema, b []byte) (any, error) {
	r := &avroReader{b: b}
	v, err := r.value(s)
	if err != nil {
		return nil, err
	}
	if len(r.b) > 0 {
		return nil, avroMismatch("%d bytes left over after the value: written with another schema?", len(r.b))
	}
	return v, nil
}

func (r *avroReader) value(s avro.Schema) (any, error) {
	r.depth++
	defer func() { r.depth-- }()
	if r.depth > maxAvroDepth {
		return nil, avroMismatch("nested deeper than %d", maxAvroDepth)
	}
	switch s := s.(type) {
	case *avro.NullSchema:
		return nil, nil
	case *avro.RefSchema:
		return r.value(s.Schema())
	case *avro.PrimitiveSchema:
		return r.primitive(s)
	case *avro.RecordSchema:
		m := make(map[string]any, len(s.Fields()))
		for _, f := range s.Fields() {
			v, err := r.value(f.Type())
			if err != nil {
				return nil, fieldErr(f.Name(), err)
			}
			m[f.Name()] = v
		}
		return m, nil
	case *avro.EnumSchema:
		i, err := r.long()
		if err != nil {
			return nil, err
		}
		sym, ok := s.Symbol(int(i))
		if i < 0 || i > math.MaxInt32 || !ok {
			return nil, avroMismatch("enum %s has no symbol %d", s.FullName(), i)
		}
		return sym, nil
	case *avro.ArraySchema:
		var out []any
		for {
			n, err := r.count()
			if err != nil {
				return nil, err
			}
			if n == 0 {
				break
			}
			for range n {
				v, err := r.value(s.Items())
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
		}
		if out == nil {
			out = []any{}
		}
		return out, nil
	case *avro.MapSchema:
		out := map[string]any{}
		for {
			n, err := r.count()
			if err != nil {
				return nil, err
			}
			if n == 0 {
				break
			}
			for range n {
				k, err := r.bytes()
				if err != nil {
					return nil, err
				}
				v, err := r.value(s.Values())
				if err != nil {
					return nil, err
				}
				out[string(k)] = v
			}
		}
		return out, nil
	case *avro.UnionSchema:
		i, err := r.long()
		if err != nil {
			return nil, err
		}
		ts := s.Types()
		if i < 0 || i >= int64(len(ts)) {
			return nil, avroMismatch("union branch %d of %d", i, len(ts))
		}
		return r.value(ts[i])
	case *avro.FixedSchema:
		b, err := r.fixed(s.Size())
		if err != nil {
			return nil, err
		}
		if d, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			return decimalNumber(b, d.Scale()), nil
		}
		return b, nil
	}
	return nil, fmt.Errorf("avro: schema type %s not supported", s.Type())
}

func fieldErr(name string, err error) error {
	var ce *ClassError
	if errors.As(err, &ce) {
		return &ClassError{Class: ce.Class, Err: fmt.Errorf("field %s: %w", name, ce.Err)}
	}
	return fmt.Errorf("field %s: %w", name, err)
}

func logicalOf(s *avro.PrimitiveSchema) avro.LogicalType {
	if l := s.Logical(); l != nil {
		return l.Type()
	}
	return ""
}

var unixEpoch = time.Unix(0, 0).UTC()

func (r *avroReader) primitive(s *avro.PrimitiveSchema) (any, error) {
	switch s.Type() {
	case avro.Boolean:
		if len(r.b) < 1 {
			return nil, avroMismatch("truncated: boolean past the end")
		}
		v := r.b[0]
		r.b = r.b[1:]
		if v > 1 {
			return nil, avroMismatch("boolean byte %d", v)
		}
		return v == 1, nil
	case avro.Int, avro.Long:
		v, err := r.long()
		if err != nil {
			return nil, err
		}
		if s.Type() == avro.Int && (v < math.MinInt32 || v > math.MaxInt32) {
			return nil, avroMismatch("int %d out of 32-bit range", v)
		}
		switch logicalOf(s) {
		case avro.Date:
			return unixEpoch.AddDate(0, 0, int(v)), nil
		case avro.TimeMillis:
			return time.Duration(v) * time.Millisecond, nil
		case avro.TimeMicros:
			return time.Duration(v) * time.Microsecond, nil
		case avro.TimestampMillis, avro.LocalTimestampMillis:
			return time.UnixMilli(v).UTC(), nil
		case avro.TimestampMicros, avro.LocalTimestampMicros:
			return time.UnixMicro(v).UTC(), nil
		}
		return v, nil
	case avro.Float:
		if len(r.b) < 4 {
			return nil, avroMismatch("truncated: float past the end")
		}
		v := math.Float32frombits(binary.LittleEndian.Uint32(r.b))
		r.b = r.b[4:]
		return float64(v), nil
	case avro.Double:
		if len(r.b) < 8 {
			return nil, avroMismatch("truncated: double past the end")
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
		r.b = r.b[8:]
		return v, nil
	case avro.String:
		b, err := r.bytes()
		if err != nil {
			return nil, err
		}
		if !utf8.Valid(b) {
			return nil, avroMismatch("string is not valid UTF-8")
		}
		return string(b), nil
	case avro.Bytes:
		b, err := r.bytes()
		if err != nil {
			return nil, err
		}
		if d, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			return decimalNumber(b, d.Scale()), nil
		}
		return b, nil
	}
	return nil, fmt.Errorf("avro: primitive %s not supported", s.Type())
}

// decimalNumber is the two's-complement big-endian unscaled value b with
// scale digits after the point, as exact text.
func decimalNumber(b []byte, scale int) Number {
	u := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(len(b)*8)))
	}
	d := apd.NewWithBigInt(new(apd.BigInt).SetMathBigInt(u), int32(-scale))
	return Number(d.Text('f'))
}

// avroWriter appends the binary encoding of plain values to b.
type avroWriter struct {
	b     []byte
	depth int
}

func (w *avroWriter) long(v int64) { w.b = binary.AppendVarint(w.b, v) }

func (w *avroWriter) bytes(b []byte) {
	w.long(int64(len(b)))
	w.b = append(w.b, b...)
}

// avroUnfit is a value that the sink's schema cannot hold.
func avroUnfit(v any, s avro.Schema, why string) error {
	if why != "" {
		why = ": " + why
	}
	return classed("schema_mismatch", fmt.Errorf("avro: %w: %s %s does not fit %s%s", ErrSchemaMismatch, typeName(v), short(v), schemaName(s), why))
}

func short(v any) string {
	s := fmt.Sprint(v)
	if m, ok := v.(map[string]any); ok {
		keys := sortedKeys(Options(m))
		s = "{" + strings.Join(keys, ", ") + "}"
	}
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func schemaName(s avro.Schema) string {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	if n, ok := s.(avro.NamedSchema); ok {
		return string(s.Type()) + " " + n.FullName()
	}
	if p, ok := s.(*avro.PrimitiveSchema); ok && p.Logical() != nil {
		return string(p.Logical().Type())
	}
	if u, ok := s.(*avro.UnionSchema); ok {
		names := make([]string, len(u.Types()))
		for i, t := range u.Types() {
			names[i] = schemaName(t)
		}
		return "union [" + strings.Join(names, ", ") + "]"
	}
	return string(s.Type())
}

func encodeAvro(s avro.Schema, v any) ([]byte, error) {
	w := &avroWriter{b: make([]byte, 0, 64)}
	if err := w.value(s, v); err != nil {
		return nil, err
	}
	return w.b, nil
}

func (w *avroWriter) value(s avro.Schema, v any) error {
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > maxAvroDepth {
		return avroUnfit(v, s, fmt.Sprintf("nested deeper than %d", maxAvroDepth))
	}
	switch s := s.(type) {
	case *avro.NullSchema:
		if v != nil {
			return avroUnfit(v, s, "")
		}
		return nil
	case *avro.RefSchema:
		return w.value(s.Schema(), v)
	case *avro.PrimitiveSchema:
		return w.primitive(s, v)
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return avroUnfit(v, s, "want a map")
		}
		for _, f := range s.Fields() {
			fv, ok := m[f.Name()]
			if !ok {
				switch {
				case f.HasDefault():
					d, err := fromDefault(f.Type(), f.Default())
					if err != nil {
						return fieldErr(f.Name(), err)
					}
					fv = d
				case nullable(f.Type()):
					fv = nil
				default:
					return classed("schema_mismatch", fmt.Errorf("avro: %w: record %s needs field %s, which the value lacks (it has %s)", ErrSchemaMismatch, s.FullName(), f.Name(), short(v)))
				}
			}
			if err := w.value(f.Type(), fv); err != nil {
				return fieldErr(f.Name(), err)
			}
		}
		return nil
	case *avro.EnumSchema:
		str, ok := v.(string)
		if !ok {
			return avroUnfit(v, s, "want a symbol")
		}
		for i, sym := range s.Symbols() {
			if sym == str {
				w.long(int64(i))
				return nil
			}
		}
		return avroUnfit(v, s, "symbols are "+strings.Join(s.Symbols(), ", "))
	case *avro.ArraySchema:
		l, ok := v.([]any)
		if !ok {
			return avroUnfit(v, s, "want a list")
		}
		if len(l) > 0 {
			w.long(int64(len(l)))
			for _, e := range l {
				if err := w.value(s.Items(), e); err != nil {
					return err
				}
			}
		}
		w.long(0)
		return nil
	case *avro.MapSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return avroUnfit(v, s, "want a map")
		}
		if len(m) > 0 {
			w.long(int64(len(m)))
			for _, k := range sortedKeys(Options(m)) { // sorted: equal maps, equal bytes
				w.bytes([]byte(k))
				if err := w.value(s.Values(), m[k]); err != nil {
					return err
				}
			}
		}
		w.long(0)
		return nil
	case *avro.UnionSchema:
		i := unionBranch(s, v)
		if i < 0 {
			return avroUnfit(v, s, "")
		}
		w.long(int64(i))
		return w.value(s.Types()[i], v)
	case *avro.FixedSchema:
		if d, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			b, err := unscaled(v, s, d.Scale())
			if err != nil {
				return err
			}
			if len(b) > s.Size() {
				return avroUnfit(v, s, fmt.Sprintf("needs %d bytes", len(b)))
			}
			w.b = append(w.b, signExtend(b, s.Size())...)
			return nil
		}
		b, ok := v.([]byte)
		if !ok || len(b) != s.Size() {
			return avroUnfit(v, s, fmt.Sprintf("want %d bytes", s.Size()))
		}
		w.b = append(w.b, b...)
		return nil
	}
	return fmt.Errorf("avro: schema type %s not supported", s.Type())
}

func nullable(s avro.Schema) bool {
	switch s := s.(type) {
	case *avro.NullSchema:
		return true
	case *avro.UnionSchema:
		for _, t := range s.Types() {
			if t.Type() == avro.Null {
				return true
			}
		}
	}
	return false
}

// unionBranch picks the branch of u for v: the first whose type holds v
// exactly, else the first that converts it.
func unionBranch(u *avro.UnionSchema, v any) int {
	for exact := range 2 {
		for i, t := range u.Types() {
			if fits(t, v, exact == 0) {
				return i
			}
		}
	}
	return -1
}

// fits reports whether v can be written as s; exact asks for the value's
// own kind (an int64 for a long, not for a double).
func fits(s avro.Schema, v any, exact bool) bool {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	if v == nil {
		return s.Type() == avro.Null
	}
	switch s := s.(type) {
	case *avro.PrimitiveSchema:
		l := logicalOf(s)
		switch v.(type) {
		case time.Time:
			return l == avro.Date || strings.Contains(string(l), "timestamp")
		case time.Duration:
			return l == avro.TimeMillis || l == avro.TimeMicros
		case Number:
			return l == avro.Decimal || !exact && (s.Type() == avro.Double || s.Type() == avro.Float || s.Type() == avro.String)
		case int64, uint64:
			return (s.Type() == avro.Long || s.Type() == avro.Int) && l == "" || !exact && (s.Type() == avro.Double || s.Type() == avro.Float || l == avro.Decimal)
		case float64:
			return s.Type() == avro.Double || s.Type() == avro.Float || !exact && l == avro.Decimal
		case string:
			return s.Type() == avro.String || !exact && s.Type() == avro.Bytes && l == ""
		case []byte:
			return s.Type() == avro.Bytes && l == "" || !exact && s.Type() == avro.String
		case bool:
			return s.Type() == avro.Boolean
		}
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if !exact {
			return true
		}
		for k := range m {
			found := false
			for _, f := range s.Fields() {
				if f.Name() == k {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	case *avro.MapSchema:
		_, ok := v.(map[string]any)
		return ok
	case *avro.ArraySchema:
		_, ok := v.([]any)
		return ok
	case *avro.EnumSchema:
		str, ok := v.(string)
		if !ok {
			return false
		}
		for _, sym := range s.Symbols() {
			if sym == str {
				return true
			}
		}
	case *avro.FixedSchema:
		if _, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			_, isNum := v.(Number)
			return isNum || !exact
		}
		b, ok := v.([]byte)
		return ok && len(b) == s.Size()
	}
	return false
}

func (w *avroWriter) primitive(s *avro.PrimitiveSchema, v any) error {
	l := logicalOf(s)
	switch s.Type() {
	case avro.Boolean:
		b, ok := v.(bool)
		if !ok {
			return avroUnfit(v, s, "")
		}
		if b {
			w.b = append(w.b, 1)
		} else {
			w.b = append(w.b, 0)
		}
		return nil
	case avro.Int, avro.Long:
		var n int64
		switch l {
		case avro.Date:
			t, ok := v.(time.Time)
			if !ok {
				return avroUnfit(v, s, "want a timestamp")
			}
			days := t.Unix() / 86400
			if t.Unix() < 0 && t.Unix()%86400 != 0 {
				days--
			}
			n = days
		case avro.TimeMillis, avro.TimeMicros:
			d, ok := v.(time.Duration)
			if !ok {
				return avroUnfit(v, s, "want a duration")
			}
			if l == avro.TimeMillis {
				n = d.Milliseconds()
			} else {
				n = d.Microseconds()
			}
		case avro.TimestampMillis, avro.LocalTimestampMillis, avro.TimestampMicros, avro.LocalTimestampMicros:
			switch t := v.(type) {
			case time.Time:
				if strings.HasSuffix(string(l), "millis") {
					n = t.UnixMilli()
				} else {
					n = t.UnixMicro()
				}
			case int64:
				n = t // already in the schema's unit
			default:
				return avroUnfit(v, s, "want a timestamp")
			}
		default:
			var ok bool
			if n, ok = asInt64(v); !ok {
				return avroUnfit(v, s, "want a whole number")
			}
		}
		if s.Type() == avro.Int && (n < math.MinInt32 || n > math.MaxInt32) {
			return avroUnfit(v, s, "out of 32-bit range")
		}
		w.long(n)
		return nil
	case avro.Float, avro.Double:
		f, ok := asFloat64(v)
		if !ok {
			return avroUnfit(v, s, "want a number")
		}
		if s.Type() == avro.Float {
			w.b = binary.LittleEndian.AppendUint32(w.b, math.Float32bits(float32(f)))
		} else {
			w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(f))
		}
		return nil
	case avro.String:
		switch x := v.(type) {
		case string:
			w.bytes([]byte(x))
		case []byte:
			if !utf8.Valid(x) {
				return avroUnfit(v, s, "invalid UTF-8")
			}
			w.bytes(x)
		case Number:
			w.bytes([]byte(x))
		default:
			return avroUnfit(v, s, "want a string")
		}
		return nil
	case avro.Bytes:
		if d, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			b, err := unscaled(v, s, d.Scale())
			if err != nil {
				return err
			}
			w.bytes(b)
			return nil
		}
		switch x := v.(type) {
		case []byte:
			w.bytes(x)
		case string:
			w.bytes([]byte(x))
		default:
			return avroUnfit(v, s, "want bytes")
		}
		return nil
	}
	return fmt.Errorf("avro: primitive %s not supported", s.Type())
}

func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case float64:
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x), true
		}
	case Number:
		n, err := strconv.ParseInt(string(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func asFloat64(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil
	}
	return 0, false
}

// unscaled is v as the two's-complement big-endian unscaled integer of a
// decimal of scale; a value with more fractional digits than scale (other
// than zeros) does not fit: rounding money silently is not ours to do.
func unscaled(v any, s avro.Schema, scale int) ([]byte, error) {
	var text string
	switch x := v.(type) {
	case Number:
		text = string(x)
	case string:
		text = x
	case int64:
		text = strconv.FormatInt(x, 10)
	case uint64:
		text = strconv.FormatUint(x, 10)
	case float64:
		text = strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return nil, avroUnfit(v, s, "want a decimal")
	}
	d, _, err := apd.NewFromString(text)
	if err != nil || d.Form != apd.Finite {
		return nil, avroUnfit(v, s, "not a decimal number")
	}
	var q apd.Decimal
	ctx := apd.BaseContext.WithPrecision(1000)
	ctx.Traps = apd.InvalidOperation
	cond, err := ctx.Quantize(&q, d, int32(-scale))
	if err != nil || cond.Inexact() || cond.Rounded() && q.Cmp(d) != 0 {
		return nil, avroUnfit(v, s, fmt.Sprintf("more than %d digits after the point", scale))
	}
	u := q.Coeff.MathBigInt()
	if q.Negative {
		u.Neg(u)
	}
	return twosComplement(u), nil
}

func twosComplement(u *big.Int) []byte {
	if u.Sign() >= 0 {
		b := u.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -u in n bytes: 2^(8n) + u, with n large enough for the sign bit.
	n := (u.BitLen() + 8) / 8
	m := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(n*8)), u)
	b := m.Bytes()
	for len(b) < n {
		b = append([]byte{0xff}, b...)
	}
	if b[0]&0x80 == 0 {
		b = append([]byte{0xff}, b...)
	}
	return b
}

func signExtend(b []byte, size int) []byte {
	if len(b) >= size {
		return b
	}
	pad := byte(0)
	if len(b) > 0 && b[0]&0x80 != 0 {
		pad = 0xff
	}
	out := make([]byte, size)
	for i := range size - len(b) {
		out[i] = pad
	}
	copy(out[size-len(b):], b)
	return out
}

// fromDefault turns a field's default (as hamba parsed it from the
// schema's JSON) into the value decoding would give.
func fromDefault(s avro.Schema, def any) (any, error) {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	if u, ok := s.(*avro.UnionSchema); ok { // a union's default is of its first branch
		return fromDefault(u.Types()[0], def)
	}
	if def == nil {
		return nil, nil
	}
	if rv := reflect.ValueOf(def); rv.Kind() == reflect.Array { // fixed
		b := make([]byte, rv.Len())
		reflect.Copy(reflect.ValueOf(b), rv)
		def = b
	}
	// Encode the JSON-shaped default and decode it: one path for every
	// logical type.
	w := &avroWriter{}
	if err := w.value(s, jsonDefault(s, def)); err != nil {
		return nil, fmt.Errorf("bad default: %w", err)
	}
	return (&avroReader{b: w.b}).value(s)
}

// jsonDefault converts the Go types hamba gives defaults (int, int32,
// float32, map of any) to ours, before the logical type is applied.
func jsonDefault(s avro.Schema, def any) any {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	switch x := def.(type) {
	case int:
		def = int64(x)
	case int32:
		def = int64(x)
	case float32:
		def = float64(x)
	}
	switch s := s.(type) {
	case *avro.PrimitiveSchema:
		switch logicalOf(s) {
		case avro.Date:
			if n, ok := asInt64(def); ok {
				return unixEpoch.AddDate(0, 0, int(n))
			}
		case avro.TimeMillis:
			if n, ok := asInt64(def); ok {
				return time.Duration(n) * time.Millisecond
			}
		case avro.TimeMicros:
			if n, ok := asInt64(def); ok {
				return time.Duration(n) * time.Microsecond
			}
		case avro.Decimal:
			if b, ok := def.([]byte); ok {
				return decimalNumber(b, s.Logical().(*avro.DecimalLogicalSchema).Scale())
			}
		}
	case *avro.FixedSchema:
		if d, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			if b, ok := def.([]byte); ok {
				return decimalNumber(b, d.Scale())
			}
		}
	case *avro.RecordSchema:
		if m, ok := def.(map[string]any); ok {
			out := make(map[string]any, len(m))
			for _, f := range s.Fields() {
				if v, ok := m[f.Name()]; ok {
					out[f.Name()] = jsonDefault(f.Type(), v)
				}
			}
			return out
		}
	case *avro.ArraySchema:
		if l, ok := def.([]any); ok {
			out := make([]any, len(l))
			for i, e := range l {
				out[i] = jsonDefault(s.Items(), e)
			}
			return out
		}
	case *avro.MapSchema:
		if m, ok := def.(map[string]any); ok {
			out := make(map[string]any, len(m))
			for k, e := range m {
				out[k] = jsonDefault(s.Values(), e)
			}
			return out
		}
	}
	return def
}
