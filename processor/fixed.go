package processor

import (
	"math"
	"math/bits"
	"strconv"

	"github.com/exactly-dev/exactly/format"
)

// The fast path of sum and avg: most sums (money, counts, measurements
// with a few decimals) fit in 18 significant digits, where a decimal is an
// int64 m and an exponent e (m × 10^e) and adding is integer arithmetic.
// The results are exactly apd's (same digits, same exponent, same text),
// which TestFixedMatchesDecimal checks; anything that does not fit, or
// does not parse as a plain decimal, takes the apd path.

// fixed is m × 10^e, e ≤ 0.
type fixed struct {
	m int64
	e int32
}

var pow10 = func() (p [19]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// parseFixed parses decimal text ("-12.50", "1e-07", "5e+02") as apd
// would, normalising a positive exponent into m (a sum starts at 0e0, so
// apd's sums never keep one either). ok is false when it does not fit.
func parseFixed(s []byte) (f fixed, ok bool) {
	i := 0
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	var m uint64
	digits, frac := 0, 0
	seenDot := false
	start := i
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if m == 0 && c == '0' {
				// Leading zeros add no significant digit.
			} else {
				digits++
			}
			if digits > 18 {
				return fixed{}, false
			}
			m = m*10 + uint64(c-'0')
			if seenDot {
				frac++
			}
		case c == '.' && !seenDot:
			seenDot = true
		default:
			goto exp
		}
	}
exp:
	if i == start || (seenDot && i == start+1) {
		return fixed{}, false
	}
	e := -frac
	if i < len(s) {
		if s[i] != 'e' && s[i] != 'E' {
			return fixed{}, false
		}
		x, err := strconv.Atoi(string(s[i+1:]))
		if err != nil || x > 100 || x < -100 {
			return fixed{}, false
		}
		e += x
	}
	if e > 0 {
		if e > 18 || m > math.MaxInt64/uint64(pow10[e]) {
			return fixed{}, false
		}
		m *= uint64(pow10[e])
		e = 0
	}
	if e < -18 || m > math.MaxInt64 {
		return fixed{}, false
	}
	f = fixed{m: int64(m), e: int32(e)}
	if neg {
		f.m = -f.m
	}
	return f, true
}

// rescale returns f with exponent e ≤ f.e, or false if m overflows.
func (f fixed) rescale(e int32) (int64, bool) {
	d := f.e - e
	if d == 0 {
		return f.m, true
	}
	if d > 18 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(abs64(f.m)), uint64(pow10[d]))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	if f.m < 0 {
		return -int64(lo), true
	}
	return int64(lo), true
}

func abs64(m int64) int64 {
	if m < 0 {
		return -m
	}
	return m
}

// add returns a+b at the smaller exponent, as apd's Add does.
func (a fixed) add(b fixed) (fixed, bool) {
	e := min(a.e, b.e)
	am, ok1 := a.rescale(e)
	bm, ok2 := b.rescale(e)
	if !ok1 || !ok2 || am == math.MinInt64 || bm == math.MinInt64 {
		return fixed{}, false
	}
	s := am + bm
	if (am > 0 && bm > 0 && s < 0) || (am < 0 && bm < 0 && s >= 0) {
		return fixed{}, false
	}
	return fixed{m: s, e: e}, true
}

// text writes f as apd's Text('f') does: all -e fraction digits, a zero
// before the point, no exponent.
func (f fixed) text() string {
	var buf [48]byte
	b := buf[:0]
	if f.m < 0 {
		b = append(b, '-')
	}
	var db [20]byte
	digits := strconv.AppendUint(db[:0], uint64(abs64(f.m)), 10)
	fr := int(-f.e)
	if fr == 0 {
		return string(append(b, digits...))
	}
	if len(digits) <= fr {
		b = append(b, '0', '.')
		for range fr - len(digits) {
			b = append(b, '0')
		}
		return string(append(b, digits...))
	}
	b = append(b, digits[:len(digits)-fr]...)
	b = append(b, '.')
	return string(append(b, digits[len(digits)-fr:]...))
}

// fixedOf turns a numeric input value into a fixed, if it fits. Strings
// are not numbers here, whatever they hold: toDecimal refuses them, and
// so must the fast path (a stored sum goes through parseFixed).
func fixedOf(v any) (fixed, bool) {
	var buf [32]byte
	switch v := v.(type) {
	case int64:
		if v == math.MinInt64 {
			return fixed{}, false
		}
		return fixed{m: v}, true
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fixed{}, false
		}
		return parseFixed(strconv.AppendFloat(buf[:0], v, 'g', -1, 64))
	case format.Number:
		return parseFixed([]byte(v))
	}
	return fixed{}, false
}

// equal reports whether a and b are the same number (100.00 equals 100).
func (a fixed) equal(b fixed) bool {
	e := min(a.e, b.e)
	x, ok1 := a.rescale(e)
	y, ok2 := b.rescale(e)
	return ok1 && ok2 && x == y
}
