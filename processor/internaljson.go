package processor

import (
	"bytes"

	"github.com/exactly-dev/exactly/format"
)

// Exact decimals across the pipeline's own topics and buffers. A record
// written to a repartition topic or a join buffer is JSON, which has one
// number type: an Avro or Protobuf decimal (format.Number) written as a
// plain number literal came back a double, so after a repartition
// value.amount * value.qty was double arithmetic (0.10 * 3 gave
// 0.30000000000000004 and its sum with it), value.amount * 3 == 0.9 was
// false, and a decimal of more than 17 digits lost its cents; the same
// pipeline without a repartition answered exactly. So these internal
// values write a decimal as {"exactly.decimal": "0.10"}, and read it back
// as the same Number. Values without decimals (every JSON source's) are
// written and read as before.

// decimalTag is the one key of the object that stands for a decimal.
const decimalTag = "exactly.decimal"

var decimalTagJSON = []byte(`"` + decimalTag + `"`)

// encodeInternal is format.EncodeJSON for values the pipeline writes for
// itself (repartition topics, join buffers): decimals are tagged.
func encodeInternal(v any) ([]byte, error) {
	if hasNumber(v) {
		v = tagNumbers(v)
	}
	return format.EncodeJSON(v)
}

// decodeInternal reads what encodeInternal wrote. tagged reports that b
// held decimals: b is then not the value's plain JSON (a JSON sink must
// not write it as is).
func decodeInternal(b []byte) (v any, tagged bool, err error) {
	v, err = format.DecodeJSON(b)
	if err != nil || !bytes.Contains(b, decimalTagJSON) {
		return v, false, err
	}
	return untagNumbers(v), true, nil
}

func hasNumber(v any) bool {
	switch v := v.(type) {
	case format.Number:
		return true
	case map[string]any:
		for _, e := range v {
			if hasNumber(e) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasNumber(e) {
				return true
			}
		}
	}
	return false
}

func tagNumbers(v any) any {
	switch v := v.(type) {
	case format.Number:
		return map[string]any{decimalTag: string(v)}
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = tagNumbers(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = tagNumbers(e)
		}
		return out
	}
	return v
}

// untagNumbers turns tagged decimals in v (freshly decoded, so changed in
// place) back into Numbers.
func untagNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if s, ok := v[decimalTag].(string); ok && len(v) == 1 {
			return format.Number(s)
		}
		for k, e := range v {
			v[k] = untagNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = untagNumbers(e)
		}
	}
	return v
}
