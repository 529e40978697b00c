package format

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Protobuf messages become the values every other format produces, so
// that expressions and sinks do not care where a record came from:
//
//   - a message: map[string]any keyed by the fields' names as the .proto
//     file spells them (order_id, not orderId), every field present; a
//     field that can be unset (a message, an optional or oneof field) and
//     is unset is nil, one that cannot (a proto3 scalar) has its zero value
//   - every integer type: int64, as the json format reads integers (a
//     uint64 or fixed64 above 9223372036854775807: uint64); float,
//     double: float64; bool, string; bytes: []byte
//   - enum: the value's name; a number the enum does not declare (proto3
//     enums are open) its decimal text
//   - repeated: []any; map: map[string]any, integer and bool keys written
//     as their text (as the JSON mapping of protobuf does)
//   - google.protobuf.Timestamp: time.Time (UTC); Duration: time.Duration;
//     the wrappers (Int64Value...): their value, or nil when unset;
//     Struct, Value, ListValue: the JSON values they hold; Empty: an
//     empty map
//   - confluent.type.Decimal: Number, its exact decimal text
//
// Encoding takes the same values back (and is lenient where no
// information is lost: an int64 into a double field, a whole float64 into
// an integer field, a string into a bytes field, an RFC 3339 string into
// a Timestamp).

// protoMessageValue converts m as above.
func protoMessageValue(m protoreflect.Message) (any, error) {
	md := m.Descriptor()
	if wkt, ok := protoWellKnown[md.FullName()]; ok {
		return wkt.decode(m)
	}
	fields := md.Fields()
	out := make(map[string]any, fields.Len())
	for i := range fields.Len() {
		fd := fields.Get(i)
		v, err := protoFieldValue(m, fd)
		if err != nil {
			return nil, err
		}
		out[string(fd.Name())] = v
	}
	return out, nil
}

func protoFieldValue(m protoreflect.Message, fd protoreflect.FieldDescriptor) (any, error) {
	switch {
	case fd.IsList():
		l := m.Get(fd).List()
		out := make([]any, l.Len())
		for i := range l.Len() {
			v, err := protoSingular(fd, l.Get(i))
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case fd.IsMap():
		mp := m.Get(fd).Map()
		out := make(map[string]any, mp.Len())
		var err error
		mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			var e any
			if e, err = protoSingular(fd.MapValue(), v); err != nil {
				return false
			}
			out[k.String()] = e
			return true
		})
		return out, err
	case fd.HasPresence() && !m.Has(fd):
		return nil, nil
	}
	return protoSingular(fd, m.Get(fd))
}

// protoSingular converts one value of a field that is not a list or map
// (or one element of one).
func protoSingular(fd protoreflect.FieldDescriptor, v protoreflect.Value) (any, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return v.Bool(), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return v.Int(), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		// int, as the json format reads numbers, so that value.n + 1
		// works; uint only above int64's range.
		if u := v.Uint(); u > math.MaxInt64 {
			return u, nil
		}
		return int64(v.Uint()), nil
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return v.Float(), nil
	case protoreflect.StringKind:
		return v.String(), nil
	case protoreflect.BytesKind:
		if b := v.Bytes(); b != nil {
			return b, nil
		}
		return []byte{}, nil // an unset proto3 bytes field: empty, as a set one
	case protoreflect.EnumKind:
		return protoEnumName(fd.Enum(), v.Enum()), nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return protoMessageValue(v.Message())
	}
	return nil, fmt.Errorf("protobuf field %s has kind %s, which exactly does not read", fd.FullName(), fd.Kind())
}

func protoEnumName(ed protoreflect.EnumDescriptor, n protoreflect.EnumNumber) string {
	if ev := ed.Values().ByNumber(n); ev != nil {
		return string(ev.Name())
	}
	return strconv.FormatInt(int64(n), 10)
}

// protoWKT converts a well-known message type both ways.
type protoWKT struct {
	decode func(protoreflect.Message) (any, error)
	encode func(protoreflect.Message, any) error
}

var protoWellKnown map[protoreflect.FullName]protoWKT

func init() {
	protoWellKnown = map[protoreflect.FullName]protoWKT{
		"google.protobuf.Timestamp":   {decodeTimestamp, encodeTimestamp},
		"google.protobuf.Duration":    {decodeDuration, encodeDuration},
		"google.protobuf.Struct":      {decodeJSONHolder, encodeStruct},
		"google.protobuf.Value":       {decodeJSONValue, encodeJSONValue},
		"google.protobuf.ListValue":   {decodeJSONHolder, encodeListValue},
		"google.protobuf.Empty":       {func(protoreflect.Message) (any, error) { return map[string]any{}, nil }, encodeEmpty},
		"confluent.type.Decimal":      {decodeDecimal, encodeDecimal},
		"google.protobuf.DoubleValue": {decodeWrapper, encodeWrapper},
		"google.protobuf.FloatValue":  {decodeWrapper, encodeWrapper},
		"google.protobuf.Int64Value":  {decodeWrapper, encodeWrapper},
		"google.protobuf.UInt64Value": {decodeWrapper, encodeWrapper},
		"google.protobuf.Int32Value":  {decodeWrapper, encodeWrapper},
		"google.protobuf.UInt32Value": {decodeWrapper, encodeWrapper},
		"google.protobuf.BoolValue":   {decodeWrapper, encodeWrapper},
		"google.protobuf.StringValue": {decodeWrapper, encodeWrapper},
		"google.protobuf.BytesValue":  {decodeWrapper, encodeWrapper},
	}
}

// field returns the field numbered n of m's type; the well-known types
// are fixed, but a registry could serve a file of the same name that
// differs, so a missing field is an error, not a panic.
func protoField(m protoreflect.Message, n protoreflect.FieldNumber) (protoreflect.FieldDescriptor, error) {
	fd := m.Descriptor().Fields().ByNumber(n)
	if fd == nil {
		return nil, fmt.Errorf("protobuf type %s has no field %d; is the schema's copy of it changed?", m.Descriptor().FullName(), n)
	}
	return fd, nil
}

// protoFields returns the fields numbered ns (at most three) of m's type,
// in order, or protoField's error for the first one missing.
func protoFields(m protoreflect.Message, ns ...protoreflect.FieldNumber) (f [3]protoreflect.FieldDescriptor, err error) {
	for i, n := range ns {
		if f[i], err = protoField(m, n); err != nil {
			return f, err
		}
	}
	return f, nil
}

func decodeTimestamp(m protoreflect.Message) (any, error) {
	f, err := protoFields(m, 1, 2) // seconds, nanos
	if err != nil {
		return nil, err
	}
	sf, nf := f[0], f[1]
	return time.Unix(m.Get(sf).Int(), m.Get(nf).Int()).UTC(), nil
}

func encodeTimestamp(m protoreflect.Message, v any) error {
	var t time.Time
	switch v := v.(type) {
	case time.Time:
		t = v
	case string:
		var err error
		if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return fmt.Errorf("protobuf Timestamp needs a timestamp or RFC 3339 text, got %q: %w", v, ErrUnsupported)
		}
	default:
		return fmt.Errorf("protobuf Timestamp needs a timestamp, got %s: %w", typeName(v), ErrUnsupported)
	}
	f, err := protoFields(m, 1, 2) // seconds, nanos
	if err != nil {
		return err
	}
	sf, nf := f[0], f[1]
	m.Set(sf, protoreflect.ValueOfInt64(t.Unix()))
	m.Set(nf, protoreflect.ValueOfInt32(int32(t.Nanosecond())))
	return nil
}

func decodeDuration(m protoreflect.Message) (any, error) {
	f, err := protoFields(m, 1, 2) // seconds, nanos
	if err != nil {
		return nil, err
	}
	sf, nf := f[0], f[1]
	s, n := m.Get(sf).Int(), m.Get(nf).Int()
	if s > math.MaxInt64/int64(time.Second)-1 || s < math.MinInt64/int64(time.Second)+1 {
		return nil, fmt.Errorf("protobuf Duration of %d seconds is beyond the ±292 years a duration holds", s)
	}
	return time.Duration(s)*time.Second + time.Duration(n), nil
}

func encodeDuration(m protoreflect.Message, v any) error {
	d, ok := v.(time.Duration)
	if !ok {
		return fmt.Errorf("protobuf Duration needs a duration, got %s: %w", typeName(v), ErrUnsupported)
	}
	f, err := protoFields(m, 1, 2) // seconds, nanos
	if err != nil {
		return err
	}
	sf, nf := f[0], f[1]
	m.Set(sf, protoreflect.ValueOfInt64(int64(d/time.Second)))
	m.Set(nf, protoreflect.ValueOfInt32(int32(d%time.Second)))
	return nil
}

func decodeWrapper(m protoreflect.Message) (any, error) {
	fd, err := protoField(m, 1)
	if err != nil {
		return nil, err
	}
	return protoSingular(fd, m.Get(fd))
}

func encodeWrapper(m protoreflect.Message, v any) error {
	fd, err := protoField(m, 1)
	if err != nil {
		return err
	}
	pv, err := protoScalar(fd, v)
	if err != nil {
		return err
	}
	m.Set(fd, pv)
	return nil
}

// Struct, Value and ListValue hold JSON: a Value is one of null_value (1),
// number_value (2), string_value (3), bool_value (4), struct_value (5)
// and list_value (6); a Struct has a map fields (1); a ListValue a
// repeated values (1).

// decodeJSONHolder decodes a Struct or a ListValue: the value of its one
// field (1), a map or a list.
func decodeJSONHolder(m protoreflect.Message) (any, error) {
	fd, err := protoField(m, 1)
	if err != nil {
		return nil, err
	}
	return protoFieldValue(m, fd)
}

func encodeStruct(m protoreflect.Message, v any) error {
	_, ok := v.(map[string]any)
	return encodeJSONHolder(m, v, ok, "Struct needs a map")
}

func encodeListValue(m protoreflect.Message, v any) error {
	_, ok := v.([]any)
	return encodeJSONHolder(m, v, ok, "ListValue needs a list")
}

// encodeJSONHolder sets the one field (1) of a Struct or a ListValue to
// v if ok, that is if v is what the holder holds; else the error says
// what it needs.
func encodeJSONHolder(m protoreflect.Message, v any, ok bool, needs string) error {
	fd, err := protoField(m, 1)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("protobuf %s, got %s: %w", needs, typeName(v), ErrUnsupported)
	}
	return setProtoField(m, fd, v)
}

func decodeJSONValue(m protoreflect.Message) (any, error) {
	od := m.WhichOneof(m.Descriptor().Oneofs().ByName("kind"))
	if od == nil || od.Number() == 1 {
		return nil, nil
	}
	return protoFieldValue(m, od)
}

func encodeJSONValue(m protoreflect.Message, v any) error {
	var n protoreflect.FieldNumber
	switch x := v.(type) {
	case nil:
		n = 1
	case float64, int64, int, uint64, Number:
		n = 2
	case string:
		n = 3
	case bool:
		n = 4
	case map[string]any:
		n = 5
	case []any:
		n = 6
	case time.Time:
		n, v = 3, x.UTC().Format(time.RFC3339Nano)
	case []byte:
		n, v = 3, base64.StdEncoding.EncodeToString(x)
	default:
		return fmt.Errorf("protobuf Value cannot hold %s: %w", typeName(v), ErrUnsupported)
	}
	fd, err := protoField(m, n)
	if err != nil {
		return err
	}
	if n == 1 {
		m.Set(fd, protoreflect.ValueOfEnum(0))
		return nil
	}
	return setProtoField(m, fd, v)
}

func encodeEmpty(_ protoreflect.Message, v any) error {
	if mp, ok := v.(map[string]any); ok && len(mp) == 0 {
		return nil
	}
	return fmt.Errorf("protobuf Empty needs an empty map, got %s: %w", typeName(v), ErrUnsupported)
}

// confluent.type.Decimal: value (1) is the unscaled integer in big-endian
// two's complement, scale (3) the number of digits after the point;
// precision (2) is informational.

func decodeDecimal(m protoreflect.Message) (any, error) {
	f, err := protoFields(m, 1, 3) // value, scale
	if err != nil {
		return nil, err
	}
	vf, sf := f[0], f[1]
	b := m.Get(vf).Bytes()
	scale := m.Get(sf).Int()
	if scale < 0 || scale > 1000 {
		return nil, fmt.Errorf("confluent.type.Decimal scale %d is outside 0..1000", scale)
	}
	return Number(decimalFromBytes(b, int(scale))), nil
}

// decimalFromBytes reads a big-endian two's-complement unscaled value.
func decimalFromBytes(b []byte, scale int) string {
	u := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 { // negative
		u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return decimalText(u, scale)
}

// decimalText writes unscaled×10^-scale with exactly scale digits after
// the point.
func decimalText(u *big.Int, scale int) string {
	s := new(big.Int).Abs(u).String()
	neg := u.Sign() < 0
	if scale > 0 {
		if len(s) <= scale {
			s = strings.Repeat("0", scale-len(s)+1) + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func encodeDecimal(m protoreflect.Message, v any) error {
	var text string
	switch x := v.(type) {
	case Number:
		text = string(x)
	case int64:
		text = strconv.FormatInt(x, 10)
	case uint64:
		text = strconv.FormatUint(x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("confluent.type.Decimal cannot hold %v: %w", x, ErrUnsupported)
		}
		text = strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		text = x
	default:
		return fmt.Errorf("confluent.type.Decimal needs a number, got %s: %w", typeName(v), ErrUnsupported)
	}
	u, scale, ok := parseDecimal(text)
	if !ok {
		return fmt.Errorf("confluent.type.Decimal needs a decimal number, got %q: %w", text, ErrUnsupported)
	}
	f, err := protoFields(m, 1, 2, 3) // value, precision, scale
	if err != nil {
		return err
	}
	vf, pf, sf := f[0], f[1], f[2]
	m.Set(vf, protoreflect.ValueOfBytes(protoTwosComplement(u)))
	digits := len(new(big.Int).Abs(u).String())
	m.Set(pf, protoreflect.ValueOfUint32(uint32(max(digits, scale))))
	m.Set(sf, protoreflect.ValueOfInt32(int32(scale)))
	return nil
}

// parseDecimal reads [-]digits[.digits] into its unscaled integer and
// scale. An exponent is not taken: Number is always plain text.
func parseDecimal(s string) (*big.Int, int, bool) {
	digits, frac, _ := strings.Cut(s, ".")
	if strings.ContainsAny(frac, "+-") {
		return nil, 0, false
	}
	u, ok := new(big.Int).SetString(digits+frac, 10)
	if !ok || digits == "" || digits == "-" || digits == "+" {
		return nil, 0, false
	}
	return u, len(frac), true
}

// protoTwosComplement writes u in the fewest big-endian two's-complement bytes
// (Java's BigInteger.toByteArray, which Confluent's serializers use).
func protoTwosComplement(u *big.Int) []byte {
	if u.Sign() >= 0 {
		b := u.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -u-1 has the bits of u inverted; find the byte length that keeps the
	// sign bit set.
	n := (new(big.Int).Not(u).BitLen())/8 + 1
	mod := new(big.Int).Lsh(big.NewInt(1), uint(8*n))
	b := new(big.Int).Add(mod, u).Bytes()
	for len(b) < n {
		b = append([]byte{0xff}, b...)
	}
	return b
}

// setProtoMessage sets the fields of m from v, a map keyed by field name
// (or a value a well-known type takes). A key the message does not have
// is an error naming the fields it has.
func setProtoMessage(m protoreflect.Message, v any) error {
	md := m.Descriptor()
	if wkt, ok := protoWellKnown[md.FullName()]; ok {
		return wkt.encode(m, v)
	}
	mp, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("protobuf message %s needs a map, got %s: %w", md.FullName(), typeName(v), ErrUnsupported)
	}
	fields := md.Fields()
	for _, k := range sortedMapKeys(mp) {
		fd := fields.ByName(protoreflect.Name(k))
		if fd == nil {
			fd = fields.ByJSONName(k)
		}
		if fd == nil {
			return fmt.Errorf("protobuf message %s has no field %q (it has %s): %w", md.FullName(), k, protoFieldList(md), ErrUnsupported)
		}
		if mp[k] == nil {
			continue // unset
		}
		if err := setProtoField(m, fd, mp[k]); err != nil {
			return err
		}
	}
	return nil
}

func protoFieldList(md protoreflect.MessageDescriptor) string {
	fields := md.Fields()
	names := make([]string, fields.Len())
	for i := range names {
		names[i] = string(fields.Get(i).Name())
	}
	return orList(names)
}

func sortedMapKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// sorted, so that of two bad keys the same one is always reported
	slices.Sort(keys)
	return keys
}

func setProtoField(m protoreflect.Message, fd protoreflect.FieldDescriptor, v any) error {
	switch {
	case fd.IsList():
		vs, ok := v.([]any)
		if !ok {
			return fmt.Errorf("protobuf field %s is repeated and needs a list, got %s: %w", fd.FullName(), typeName(v), ErrUnsupported)
		}
		l := m.Mutable(fd).List()
		for _, e := range vs {
			if fd.Message() != nil {
				el := l.NewElement()
				if err := setProtoMessage(el.Message(), e); err != nil {
					return err
				}
				l.Append(el)
				continue
			}
			pv, err := protoScalar(fd, e)
			if err != nil {
				return err
			}
			l.Append(pv)
		}
		return nil
	case fd.IsMap():
		vs, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("protobuf field %s is a map and needs a map, got %s: %w", fd.FullName(), typeName(v), ErrUnsupported)
		}
		mp := m.Mutable(fd).Map()
		kd, vd := fd.MapKey(), fd.MapValue()
		for _, k := range sortedMapKeys(vs) {
			kv, err := protoMapKey(kd, k)
			if err != nil {
				return err
			}
			if vd.Message() != nil {
				el := mp.NewValue()
				if err := setProtoMessage(el.Message(), vs[k]); err != nil {
					return err
				}
				mp.Set(kv, el)
				continue
			}
			pv, err := protoScalar(vd, vs[k])
			if err != nil {
				return err
			}
			mp.Set(kv, pv)
		}
		return nil
	case fd.Message() != nil:
		return setProtoMessage(m.Mutable(fd).Message(), v)
	}
	pv, err := protoScalar(fd, v)
	if err != nil {
		return err
	}
	m.Set(fd, pv)
	return nil
}

func protoMapKey(fd protoreflect.FieldDescriptor, k string) (protoreflect.MapKey, error) {
	var v any = k
	switch fd.Kind() {
	case protoreflect.StringKind:
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(k)
		if err != nil {
			return protoreflect.MapKey{}, fmt.Errorf("protobuf map %s has bool keys, got %q: %w", fd.FullName(), k, ErrUnsupported)
		}
		v = b
	default:
		n, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			u, uerr := strconv.ParseUint(k, 10, 64)
			if uerr != nil {
				return protoreflect.MapKey{}, fmt.Errorf("protobuf map %s has integer keys, got %q: %w", fd.FullName(), k, ErrUnsupported)
			}
			v = u
		} else {
			v = n
		}
	}
	pv, err := protoScalar(fd, v)
	if err != nil {
		return protoreflect.MapKey{}, err
	}
	return pv.MapKey(), nil
}

// protoScalar converts v to a value of fd's scalar kind, with range
// checks: a value that does not fit is an error, never truncated.
func protoScalar(fd protoreflect.FieldDescriptor, v any) (protoreflect.Value, error) {
	bad := func() (protoreflect.Value, error) {
		return protoreflect.Value{}, fmt.Errorf("protobuf field %s (%s) cannot hold %s %v: %w", fd.FullName(), fd.Kind(), typeName(v), v, ErrUnsupported)
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if b, ok := v.(bool); ok {
			return protoreflect.ValueOfBool(b), nil
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if n, ok := protoInt64(v); ok && n >= math.MinInt32 && n <= math.MaxInt32 {
			return protoreflect.ValueOfInt32(int32(n)), nil
		}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if n, ok := protoInt64(v); ok {
			return protoreflect.ValueOfInt64(n), nil
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if n, ok := protoUint64(v); ok && n <= math.MaxUint32 {
			return protoreflect.ValueOfUint32(uint32(n)), nil
		}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if n, ok := protoUint64(v); ok {
			return protoreflect.ValueOfUint64(n), nil
		}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case int64:
			f = float64(x)
		case int:
			f = float64(x)
		case uint64:
			f = float64(x)
		case Number:
			var err error
			if f, err = strconv.ParseFloat(string(x), 64); err != nil {
				return bad()
			}
		default:
			return bad()
		}
		if fd.Kind() == protoreflect.FloatKind {
			return protoreflect.ValueOfFloat32(float32(f)), nil
		}
		return protoreflect.ValueOfFloat64(f), nil
	case protoreflect.StringKind:
		switch x := v.(type) {
		case string:
			return protoreflect.ValueOfString(x), nil
		case Number:
			return protoreflect.ValueOfString(string(x)), nil
		}
	case protoreflect.BytesKind:
		switch x := v.(type) {
		case []byte:
			return protoreflect.ValueOfBytes(x), nil
		case string:
			return protoreflect.ValueOfBytes([]byte(x)), nil
		}
	case protoreflect.EnumKind:
		ed := fd.Enum()
		switch x := v.(type) {
		case string:
			if ev := ed.Values().ByName(protoreflect.Name(x)); ev != nil {
				return protoreflect.ValueOfEnum(ev.Number()), nil
			}
			if n, err := strconv.ParseInt(x, 10, 32); err == nil && !ed.IsClosed() {
				return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
			}
			return protoreflect.Value{}, fmt.Errorf("protobuf enum %s has no value %q (it has %s): %w", ed.FullName(), x, protoEnumList(ed), ErrUnsupported)
		default:
			if n, ok := protoInt64(v); ok && n >= math.MinInt32 && n <= math.MaxInt32 {
				if ed.IsClosed() && ed.Values().ByNumber(protoreflect.EnumNumber(n)) == nil {
					return bad()
				}
				return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
			}
		}
	}
	return bad()
}

func protoEnumList(ed protoreflect.EnumDescriptor) string {
	vals := ed.Values()
	names := make([]string, vals.Len())
	for i := range names {
		names[i] = string(vals.Get(i).Name())
	}
	return orList(names)
}

// protoInt64 takes an integer value, or a float64 holding a whole number in
// range: never rounding.
func protoInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	case float64:
		if x == math.Trunc(x) && x >= -(1<<63) && x < 1<<63 {
			return int64(x), true
		}
	}
	return 0, false
}

func protoUint64(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint64:
		return x, true
	case int64:
		if x >= 0 {
			return uint64(x), true
		}
	case int:
		if x >= 0 {
			return uint64(x), true
		}
	case float64:
		if x == math.Trunc(x) && x >= 0 && x < 1<<64 {
			return uint64(x), true
		}
	}
	return 0, false
}
