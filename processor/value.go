package processor

import (
	"fmt"
	"strconv"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/topology"
)

// native converts an expression result to the plain Go values package
// format encodes: nil, bool, int64, uint64, float64, string, []byte,
// time.Time, time.Duration, format.Number (a decimal), []any and
// map[string]any.
func native(v ref.Val) (any, error) {
	switch v := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(v), nil
	case types.Int:
		return int64(v), nil
	case types.Uint:
		return uint64(v), nil
	case types.Double:
		return float64(v), nil
	case types.String:
		return string(v), nil
	case types.Bytes:
		return []byte(v), nil
	case types.Timestamp:
		return v.Time, nil
	case types.Duration:
		return v.Duration, nil
	case topology.Decimal:
		return v.Number(), nil
	case *types.Err:
		return nil, v
	}
	// A decoded value passed through unchanged is already plain.
	switch raw := v.Value().(type) {
	case map[string]any:
		return raw, nil
	case []any:
		// A decoded list is; a concatenation's Value() is not (its
		// null becomes a protobuf enum, its maps stay CEL maps), and
		// goes through its elements below.
		if plainList(raw) {
			return raw, nil
		}
	}
	// A map or list the expression built: walk its Go value directly,
	// not through the reflective iterator.
	switch raw := v.Value().(type) {
	case map[ref.Val]ref.Val:
		out := make(map[string]any, len(raw))
		for k, e := range raw {
			val, err := native(e)
			if err != nil {
				return nil, err
			}
			ks, err := mapKey(k)
			if err != nil {
				return nil, err
			}
			out[ks] = val
		}
		return out, nil
	case []ref.Val:
		out := make([]any, len(raw))
		for i, e := range raw {
			val, err := native(e)
			if err != nil {
				return nil, err
			}
			out[i] = val
		}
		return out, nil
	}
	switch v := v.(type) {
	case traits.Mapper:
		out := make(map[string]any)
		it := v.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			val, err := native(v.Get(k))
			if err != nil {
				return nil, err
			}
			ks, err := mapKey(k)
			if err != nil {
				return nil, err
			}
			out[ks] = val
		}
		return out, nil
	case traits.Lister:
		n, ok := v.Size().(types.Int)
		if !ok {
			return nil, fmt.Errorf("list of unknown size")
		}
		out := make([]any, n)
		for i := types.Int(0); i < n; i++ {
			e, err := native(v.Get(i))
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("result of type %s cannot leave the pipeline", v.Type().(ref.Type).TypeName())
}

// mapKey turns a CEL map key into a JSON object key.
func mapKey(k ref.Val) (string, error) {
	switch k := k.(type) {
	case types.String:
		return string(k), nil
	case types.Int:
		return strconv.FormatInt(int64(k), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(k), 10), nil
	case types.Bool:
		return strconv.FormatBool(bool(k)), nil
	}
	return "", fmt.Errorf("map key of type %s", k.Type().(ref.Type).TypeName())
}

// plainList reports whether every element of l, at any depth, is a value
// package format encodes as native() would give it.
func plainList(l []any) bool {
	for _, e := range l {
		switch e := e.(type) {
		case nil, bool, int64, uint64, float64, string, []byte, time.Time, time.Duration, format.Number, map[string]any:
		case []any:
			if !plainList(e) {
				return false
			}
		default:
			return false
		}
	}
	return true
}
