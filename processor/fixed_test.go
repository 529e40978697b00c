package processor

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/apd/v3"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/topology"
)

// apdSum is the sum the way the apd path computes it, text after every
// step (the stored form).
func apdSum(t *testing.T, vs []any) []string {
	t.Helper()
	var out []string
	sum := ""
	for _, v := range vs {
		d, err := toDecimal(v)
		if err != nil {
			t.Fatal(err)
		}
		s := new(apd.Decimal)
		if sum != "" {
			if s, err = parseDecimal(sum); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := decCtx.Add(s, s, d); err != nil {
			t.Fatal(err)
		}
		sum = s.Text('f')
		out = append(out, sum)
	}
	return out
}

// TestFixedMatchesDecimal folds sequences of numbers through acc.update
// (fast path where it fits) and checks every stored sum, and the column's
// result, against apd alone.
func TestFixedMatchesDecimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	gens := []func() any{
		func() any { return float64(rng.IntN(100000)) / 100 },            // money
		func() any { return -float64(rng.IntN(100000)) / 100 },           // refunds
		func() any { return int64(rng.IntN(1000)) - 500 },                // ints
		func() any { return rng.Float64() * 1e-5 },                       // tiny: exponent form
		func() any { return rng.NormFloat64() * 1e12 },                   // large
		func() any { return float64(rng.IntN(10)) * 1e6 },                // 5e+06 style
		func() any { return []any{1e21, -1e21, 1.5e300}[rng.IntN(3)] },   // overflow: apd path
		func() any { return int64(math.MaxInt64 - int64(rng.IntN(10))) }, // int64 edge
		func() any { return math.Copysign(0, -1) },                       // -0
		func() any { return 0.1 },                                        // 0.1 + 0.2 ...
	}
	col := &topology.Column{Name: "s", Func: topology.AggSum, Scale: -1}
	for round := range 300 {
		var vs []any
		for range 1 + rng.IntN(40) {
			if round%3 == 0 { // one generator per sequence, or mixed
				vs = append(vs, gens[round%len(gens)]())
			} else {
				vs = append(vs, gens[rng.IntN(len(gens))]())
			}
		}
		want := apdSum(t, vs)
		var a acc
		for i, v := range vs {
			if _, err := a.update(topology.AggSum, v, true); err != nil {
				t.Fatal(err)
			}
			if a.Sum != want[i] {
				t.Fatalf("sum of %v: %q, apd gives %q", vs[:i+1], a.Sum, want[i])
			}
		}
		got, err := a.result(col)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := parseDecimal(want[len(want)-1])
		wantOut, _ := decimalOut(d, -1)
		if got.(format.Number) != wantOut {
			t.Fatalf("result of %v = %v, want %v", vs, got, wantOut)
		}
	}
}

func TestParseFixed(t *testing.T) {
	tests := []struct {
		in   string
		want fixed
		ok   bool
	}{
		{"0", fixed{0, 0}, true},
		{"-12.50", fixed{-1250, -2}, true},
		{"1.5e-07", fixed{15, -8}, true},
		{"5e+06", fixed{5000000, 0}, true},
		{"0.001", fixed{1, -3}, true},
		{"123456789012345678", fixed{123456789012345678, 0}, true},
		{"1234567890123456789", fixed{}, false},
		{"1e+21", fixed{}, false},
		{"", fixed{}, false},
		{"-", fixed{}, false},
		{".", fixed{}, false},
		{"1.2.3", fixed{}, false},
		{"NaN", fixed{}, false},
	}
	for _, tt := range tests {
		got, ok := parseFixed([]byte(tt.in))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseFixed(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// A string is not a number to sum, however numeric it looks or short it
// is: the fast path refuses it as the decimal path does.
func TestSumRefusesStrings(t *testing.T) {
	for _, v := range []any{"12.5", "7", "1e2", "abc", "123456789012345678901234"} {
		var a acc
		if _, err := a.update(topology.AggSum, v, true); err == nil {
			t.Errorf("sum of %q: no error, sum %q; want \"want a number\"", v, a.Sum)
		}
		if _, err := a.update(topology.AggAvg, v, true); err == nil {
			t.Errorf("avg of %q: no error; want \"want a number\"", v)
		}
	}
}
