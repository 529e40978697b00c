// Package format turns the bytes of a Kafka record key or value into the
// values expressions see, and back.
//
// A format is a [Codec] made by a [Factory] from the format's options; a
// [Registry] maps format names to factories, and [Standard] holds every
// format exactly has: json, string and bytes, and the Schema Registry
// formats avro, protobuf and json_schema. Package topology checks a
// pipeline's format names and options against it offline; package
// processor makes one codec per source and sink part from it.
//
// Decoded values are plain Go values that CEL's default type adapter
// understands: nil, bool, int64, uint64, float64, string, []byte, []any
// and map[string]any. Encoding accepts the same set (plus time.Time), so
// a value that went through a pipeline unchanged encodes to an equal
// value of the same type: an integer stays an integer and is never
// rounded, a double stays a double (10.0 is written 10.0). The text may
// still differ (1.7e12 is written 1700000000000.0, keys are sorted): the
// processor writes a value no step replaced as the input's own bytes.
package format

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// The names of the formats in Standard.
const (
	// JSON decodes a JSON document. Integers without a fraction or
	// exponent become int64 (uint64 beyond int64; beyond uint64 they
	// are a decode error, never rounded), other numbers float64,
	// objects map[string]any, arrays []any, null nil.
	JSON = "json"
	// String decodes UTF-8 text into a string; invalid UTF-8 is a decode
	// error.
	String = "string"
	// Bytes passes bytes through untouched as []byte.
	Bytes = "bytes"
)

// Number is a decimal number kept as its exact text, such as "120.00".
// Aggregates produce it so that money sums print exactly, with the scale
// the pipeline asks for; JSON writes it as a number literal, the string
// format as its text.
type Number string

// ErrUnsupported is wrapped by every error for a value that the chosen
// format cannot represent, e.g. a map written with the string format.
var ErrUnsupported = errors.New("value not representable in this format")

// DecodeJSON decodes b as the json format does, for the pipeline's own
// records and state (repartition topics, changelogs), whose format is
// always json. A nil b decodes to nil.
func DecodeJSON(b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	return decodeJSON(b)
}

// EncodeJSON encodes v as the json format does. A nil v encodes to nil.
func EncodeJSON(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	b, err := appendJSON(make([]byte, 0, 64), v)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// The standard formats take no options and need no dependencies; each
// has one codec, shared. Their methods have pointer receivers: a value
// receiver would put a compiler-made wrapper between the interface call
// and the method, about 20 instructions per record part.
var (
	jsonFactory   = Factory{Name: JSON, New: func(Part, Options, Deps) (Codec, error) { return &jsonCodec{}, nil }}
	stringFactory = Factory{Name: String, New: func(Part, Options, Deps) (Codec, error) { return &stringCodec{}, nil }}
	bytesFactory  = Factory{Name: Bytes, New: func(Part, Options, Deps) (Codec, error) { return &bytesCodec{}, nil }}
)

type jsonCodec struct{}

func (*jsonCodec) Decode(_ string, _ Headers, b []byte) (any, error) { return DecodeJSON(b) }
func (*jsonCodec) Encode(_ string, _ Headers, v any) ([]byte, error) { return EncodeJSON(v) }

type stringCodec struct{}

func (*stringCodec) Decode(_ string, _ Headers, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("invalid UTF-8 at byte %d", invalidAt(b))
	}
	return string(b), nil
}

func (*stringCodec) Encode(_ string, _ Headers, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
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
}

type bytesCodec struct{}

func (*bytesCodec) Decode(_ string, _ Headers, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	return b, nil
}

func (*bytesCodec) Encode(_ string, _ Headers, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return v, nil
	case string:
		return []byte(v), nil
	}
	return nil, fmt.Errorf("bytes format needs bytes or string, got %s: %w", typeName(v), ErrUnsupported)
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
