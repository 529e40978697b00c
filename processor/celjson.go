package processor

import (
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/topology"
)

// rawJSON is a value already encoded as JSON: a map step whose only
// output is a JSON sink writes its result straight from CEL's values
// (appendCEL), skipping the Go map native() would build only for the sink
// to encode it.
type rawJSON []byte

// appendCEL appends v as JSON exactly as format.EncodeJSON(native(v))
// would, or reports false for anything it does not handle the same way
// (errors, NaN, odd map keys): the caller then takes that path, with its
// errors.
func appendCEL(b []byte, v ref.Val) ([]byte, bool) {
	switch v := v.(type) {
	case types.Null:
		return append(b, "null"...), true
	case types.Bool:
		return strconv.AppendBool(b, bool(v)), true
	case types.Int:
		return strconv.AppendInt(b, int64(v), 10), true
	case types.Uint:
		return strconv.AppendUint(b, uint64(v), 10), true
	case types.Double:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false
		}
		return format.AppendJSONFloat(b, f), true
	case types.String:
		return format.AppendJSONString(b, string(v)), true
	case types.Bytes:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, []byte(v))
		return append(b, '"'), true
	case types.Timestamp:
		return format.AppendJSONString(b, v.Time.UTC().Format(time.RFC3339Nano)), true
	case types.Duration:
		return format.AppendJSONString(b, v.Duration.String()), true
	case topology.Decimal:
		return append(b, v.Number()...), true
	case *types.Err:
		return nil, false
	}
	switch raw := v.Value().(type) {
	case map[string]any:
		// A decoded value passed through unchanged.
		out, err := format.AppendJSON(b, raw)
		return out, err == nil
	case []any:
		if !plainList(raw) {
			return nil, false // a concatenation: native() walks it
		}
		out, err := format.AppendJSON(b, raw)
		return out, err == nil
	case map[ref.Val]ref.Val:
		var stack [16]string
		keys := stack[:0]
		for k := range raw {
			ks, err := mapKey(k)
			if err != nil {
				return nil, false
			}
			keys = append(keys, ks)
		}
		slices.Sort(keys)
		for i := 1; i < len(keys); i++ {
			if keys[i] == keys[i-1] {
				return nil, false // 1 and "1": which wins is up to native()
			}
		}
		b = append(b, '{')
		for i, ks := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = format.AppendJSONString(b, ks)
			b = append(b, ':')
			e, ok := raw[types.String(ks)]
			if !ok {
				return nil, false // the key was not a string
			}
			var good bool
			if b, good = appendCEL(b, e); !good {
				return nil, false
			}
		}
		return append(b, '}'), true
	case []ref.Val:
		b = append(b, '[')
		for i, e := range raw {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendCEL(b, e); !ok {
				return nil, false
			}
		}
		return append(b, ']'), true
	}
	return nil, false
}
