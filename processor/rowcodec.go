package processor

import (
	"strconv"
)

// Rows are stored as a JSON list of accumulators in column order, each an
// object {"n": count, "s": "exact sum", "v": value} without the members
// that are empty (see acc.toMap). Counts and sums, the common columns,
// have no "v": appendRowFast and decodeRowFast write and read that shape
// directly, byte for byte as the general path (maps through package
// format) does, which TestRowCodecMatchesGeneral checks. Anything else
// takes the general path.

// appendRowFast appends the encoding of accs, or reports false when some
// accumulator holds a value ("v") or a set ("d").
func appendRowFast(b []byte, accs []acc) ([]byte, bool) {
	b = append(b, '[')
	for i := range accs {
		a := &accs[i]
		if a.V != nil || a.D != nil || !plainDecimal(a.Sum) {
			return nil, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"n":`...)
		b = strconv.AppendInt(b, a.N, 10)
		if a.Sum != "" {
			b = append(b, `,"s":"`...)
			b = append(b, a.Sum...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, ']'), true
}

// plainDecimal reports whether s holds only characters JSON writes as
// they are inside a string: a decimal's digits, sign and point.
func plainDecimal(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// decodeRowFast decodes a row of exactly the shape appendRowFast writes,
// into ncols accumulators, or reports false.
func decodeRowFast(b []byte, ncols int) ([]acc, bool) {
	accs := make([]acc, ncols)
	i := 0
	expect := func(lit string) bool {
		if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
			return false
		}
		i += len(lit)
		return true
	}
	if !expect("[") {
		return nil, false
	}
	for c := range ncols {
		if c > 0 && !expect(",") {
			return nil, false
		}
		if !expect(`{"n":`) {
			return nil, false
		}
		start := i
		if i < len(b) && b[i] == '-' {
			i++
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		n, err := strconv.ParseInt(string(b[start:i]), 10, 64)
		if err != nil || (i-start > 1 && b[start] == '0') {
			return nil, false
		}
		accs[c].N = n
		if expect(`,"s":"`) {
			start := i
			for i < len(b) && b[i] != '"' {
				i++
			}
			if i == len(b) || !plainDecimal(string(b[start:i])) {
				return nil, false
			}
			accs[c].Sum = string(b[start:i])
			i++
		}
		if !expect("}") {
			return nil, false
		}
	}
	if !expect("]") || i != len(b) {
		return nil, false
	}
	return accs, true
}
