package topology

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	celref "github.com/google/cel-go/common/types/ref"

	"github.com/exactly-dev/exactly/format"
)

// evalDecimal compiles text as the parser does (checked, then equality
// rewritten) and evaluates it with value bound.
func evalDecimal(t *testing.T, text string, value any) celref.Val {
	t.Helper()
	env, err := sharedEnv()
	if err != nil {
		t.Fatal(err)
	}
	ast, iss := env.Compile(text)
	if iss.Err() != nil {
		t.Fatalf("%s: %v", text, iss.Err())
	}
	if ast, iss = equalityRewriter.Optimize(env, ast); iss.Err() != nil {
		t.Fatalf("%s: %v", text, iss.Err())
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := prg.Eval(activation(value))
	if err != nil {
		return nil
	}
	return out
}

// TestDecimalExpressions: a format.Number in a record (an Avro or
// Protobuf decimal) is an exact decimal to expressions, whichever side of
// an operator it is on.
func TestDecimalExpressions(t *testing.T) {
	order := map[string]any{
		"amount": format.Number("120.50"),
		"fee":    format.Number("0.10"),
		"qty":    int64(3),
		"rate":   0.5,
		"lines":  []any{map[string]any{"price": format.Number("19.99")}},
		"zero":   format.Number("0.00"),
	}
	for _, tc := range []struct {
		expr string
		want any // bool, or the exact text of a decimal result, or float64
	}{
		{"value.amount > 100", true},
		{"100 < value.amount", true},
		{"value.amount >= 120.5", true},
		{"120.5 <= value.amount", true},
		{"value.amount < 120.5", false},
		{"value.amount == 120.5", true},
		{"120.5 == value.amount", true},
		{"value.amount == decimal('120.500')", true},
		{"value.amount != 120", true},
		{"120 != value.amount", true},
		{"value.zero == 0", true},
		{"0 == value.zero", true},
		{"value.amount in [1, 120.50]", true},
		{"value.amount == 'x'", false},
		{"value.amount + value.fee", "120.60"},
		{"value.amount - value.fee", "120.40"},
		{"value.amount * value.qty", "361.50"},
		{"value.qty * value.amount", "361.50"},
		{"1 - value.fee", "0.90"},
		{"value.amount / 4", "30.125"},
		{"value.fee + value.fee + value.fee == 0.3", true}, // 0.1+0.1+0.1 != 0.3 in doubles
		{"-value.fee", "-0.10"},
		{"value.amount * value.rate", 60.25},
		{"value.lines[0].price * 2", "39.98"},
		{"string(value.amount)", "120.50"},
		{"double(value.amount)", 120.5},
		{"int(value.amount)", int64(120)},
		{"int(-value.amount)", int64(-120)},
		{"decimal(0.1) + decimal(0.2) == decimal('0.3')", true},
		{"decimal(7) / decimal(3)", "2.333333333333333333333333333333333"},
		{"type(value.amount) == decimal", true},
	} {
		out := evalDecimal(t, tc.expr, order)
		if out == nil {
			t.Errorf("%s: error, want %v", tc.expr, tc.want)
			continue
		}
		var got any = out.Value()
		if d, ok := out.(Decimal); ok {
			got = string(d.Number())
		}
		if _, ok := tc.want.(string); ok && tc.expr[:6] == "string" {
			got = fmt.Sprint(out.Value())
		}
		if got != tc.want {
			t.Errorf("%s = %v (%T), want %v", tc.expr, got, got, tc.want)
		}
	}
	for _, bad := range []string{"value.amount / value.zero", "value.amount + 'x'", "value.amount < 'x'", "decimal('abc')"} {
		if out := evalDecimal(t, bad, order); out != nil {
			t.Errorf("%s = %v, want an error", bad, out)
		}
	}
}

// TestDecimalArithmeticAgainstRationals checks +, -, *, the comparisons
// and equality of random decimals (either side, with ints) against exact
// rational arithmetic (math/big), an implementation independent of the
// one expressions use.
func TestDecimalArithmeticAgainstRationals(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 14))
	gen := func() string {
		scale := rng.IntN(5)
		n := rng.Int64N(2_000_000_000_000) - 1_000_000_000_000
		if rng.IntN(10) == 0 {
			n = rng.Int64N(5) - 2
		}
		s := big.NewInt(n).String()
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		for len(s) <= scale {
			s = "0" + s
		}
		if scale > 0 {
			s = s[:len(s)-scale] + "." + s[len(s)-scale:]
		}
		if neg {
			s = "-" + s
		}
		return s
	}
	rat := func(s string) *big.Rat {
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("rat %q", s)
		}
		return r
	}
	for i := 0; i < 400; i++ {
		a, b := gen(), gen()
		k := rng.Int64N(2001) - 1000
		v := map[string]any{"a": format.Number(a), "b": format.Number(b), "k": k}
		ra, rb, rk := rat(a), rat(b), new(big.Rat).SetInt64(k)
		arith := map[string]*big.Rat{
			"value.a + value.b": new(big.Rat).Add(ra, rb),
			"value.a - value.b": new(big.Rat).Sub(ra, rb),
			"value.a * value.b": new(big.Rat).Mul(ra, rb),
			"value.k * value.a": new(big.Rat).Mul(rk, ra),
			"value.k - value.b": new(big.Rat).Sub(rk, rb),
		}
		for expr, want := range arith {
			out, ok := evalDecimal(t, expr, v).(Decimal)
			if !ok {
				t.Fatalf("%s with a=%s b=%s k=%d: not a decimal", expr, a, b, k)
			}
			if got := rat(string(out.Number())); got.Cmp(want) != 0 {
				t.Fatalf("%s with a=%s b=%s k=%d = %s, want %s", expr, a, b, k, out.Number(), want.FloatString(8))
			}
		}
		cmpAB, cmpKA := ra.Cmp(rb), rk.Cmp(ra)
		rel := map[string]bool{
			"value.a < value.b":  cmpAB < 0,
			"value.a <= value.b": cmpAB <= 0,
			"value.a > value.b":  cmpAB > 0,
			"value.a >= value.b": cmpAB >= 0,
			"value.a == value.b": cmpAB == 0,
			"value.k < value.a":  cmpKA < 0,
			"value.k >= value.a": cmpKA >= 0,
			"value.k == value.a": cmpKA == 0,
			"value.a != value.k": cmpKA != 0,
		}
		for expr, want := range rel {
			if got := evalDecimal(t, expr, v); got == nil || got.Value() != want {
				t.Fatalf("%s with a=%s b=%s k=%d = %v, want %v", expr, a, b, k, got, want)
			}
		}
	}
}

// TestDecimalEqualityInsideValues: a decimal inside a list or a map
// compares by value with numbers whichever side it is on, as it does
// alone (CEL's list and map equality asks the left element, and an int
// knows no decimals).
func TestDecimalEqualityInsideValues(t *testing.T) {
	v := map[string]any{
		"amount": format.Number("120.50"),
		"list":   []any{format.Number("1.0"), format.Number("2.50")},
		"m":      map[string]any{"a": format.Number("1.00")},
		"nested": []any{[]any{format.Number("3.0")}},
	}
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{"[value.amount] == [120.5]", true},
		{"[120.5] == [value.amount]", true},
		{"[120.5] != [value.amount]", false},
		{"[1, 2.5] == value.list", true},
		{"value.list == [1, 2.5]", true},
		{"[1, 2] == value.list", false},
		{"{'a': 1} == value.m", true},
		{"value.m == {'a': 1}", true},
		{"{'a': 2} == value.m", false},
		{"{'b': 1} == value.m", false},
		{"[[3]] == value.nested", true},
		{"[3] in value.nested", true},
		{"[4] in value.nested", false},
		{"[1, 2.5] == [1, 2.5]", true},
		{"['x'] == ['x']", true},
		{"['x', 1] == ['x', 2]", false},
	} {
		out := evalDecimal(t, tc.expr, v)
		if out == nil || out.Value() != tc.want {
			t.Errorf("%s = %v, want %v", tc.expr, out, tc.want)
		}
	}
}

// TestDecimalConversionsAtTheEdges: a decimal beyond a double's range
// converts to an infinity (as Python's float(Decimal('1e400'))), not to
// NaN, which compares false with everything; a zero result has no sign
// (SQL's NUMERIC has no negative zero).
func TestDecimalConversionsAtTheEdges(t *testing.T) {
	v := map[string]any{"big": format.Number("1" + strings.Repeat("0", 400)), "zero": format.Number("0.00")}
	for _, tc := range []struct {
		expr string
		want any
	}{
		{"double(value.big) > 1.0", true},
		{"double(value.big) == double('inf')", true},
		{"double(-value.big) == double('-inf')", true},
		{"value.big * 1.0 > 1.0", true},
		{"string(decimal(-1) * value.zero)", "0.00"},
		{"string(value.zero * -3)", "0.00"},
		{"string(-value.zero)", "0.00"},
		{"string(decimal('-0.0'))", "0.0"},
		{"string(decimal(-5) - decimal(-5))", "0"},
	} {
		out := evalDecimal(t, tc.expr, v)
		if out == nil || out.Value() != tc.want {
			t.Errorf("%s = %v, want %v", tc.expr, out, tc.want)
		}
	}
}

// TestRewrittenEqualityCost: == and in, rewritten for decimals, cost what
// the standard operators cost (in: the list's size; ==: the smaller
// operand's size), in the checker's estimate (so an expression whose cost
// grows with the record stays tracked) and as the program runs (so
// limits.max_eval_cost still stops a quadratic membership test).
func TestRewrittenEqualityCost(t *testing.T) {
	parse := func(expr string) *Topology {
		t.Helper()
		topo, err := Parse("t.yaml", []byte("name: t\nlimits: {max_eval_cost: 1000}\nsources:\n  - {name: in, topic: in}\nsteps:\n  - name: m\n    map: '"+strings.ReplaceAll(expr, "'", "''")+"'\nsinks:\n  - {name: out, topic: out}\n"))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return topo
	}
	for _, tc := range []struct {
		expr    string
		tracked bool
	}{
		{"value.a in value.l", true},
		{"value.s == value.t", true},
		{"value.s != value.t", true},
		{"value.n == 10 || value.k in [1, 2]", false},
	} {
		if got := parse(tc.expr).Steps[0].Expr.CostTracked; got != tc.tracked {
			t.Errorf("%s: CostTracked = %v, want %v", tc.expr, got, tc.tracked)
		}
	}
	l := make([]any, 40)
	for i := range l {
		l[i] = int64(i)
	}
	// 40 membership tests of a 40-element list: 1600 and the loop's own
	// cost, over 1000 (the loop alone is about 300).
	prg := parse("value.l.exists(x, x in value.l && x < 0)").Steps[0].Expr.Program
	if out, _, err := prg.Eval(activation(map[string]any{"l": l})); err == nil {
		t.Errorf("exists over in of 40 elements = %v, want the cost limit exceeded", out)
	}
}

// TestDecimalComparedWithNumbers: ==, != and in between an expression of
// type decimal and a number (or lists and maps of them) are accepted
// where the checker knows the decimal's type, as the runtime answers
// them: at Parse (decimal(...) == 0) and in validate --registry's typed
// check (value.amount in [1, 2]); a real type error still is one.
func TestDecimalComparedWithNumbers(t *testing.T) {
	good := []struct {
		expr string
		want bool
	}{
		{"decimal(value.s) == 12", true},
		{"12 == decimal(value.s)", true},
		{"decimal(value.s) != 12.5", true},
		{"decimal(value.s) in [1, 12]", true},
		{"[decimal(value.s)] == [12]", true},
		{"{'a': decimal(value.s)} == {'a': 12u}", true},
		{"decimal(value.s) == decimal('12.00') && 'x' == value.t", true},
	}
	doc := "name: t\nsources:\n  - {name: in, topic: in}\nsteps:\n"
	for i, tc := range good {
		doc += fmt.Sprintf("  - {name: s%d, filter: %q}\n", i, tc.expr)
	}
	doc += "sinks:\n  - {name: out, topic: out}\n"
	topo, err := Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for i, tc := range good {
		out, _, err := topo.Steps[i].Expr.Program.Eval(activation(map[string]any{"s": "12.0", "t": "x"}))
		if err != nil || out.Value() != tc.want {
			t.Errorf("%s = %v, %v; want %v", tc.expr, out, err, tc.want)
		}
	}

	order := &format.Type{Kind: format.KindRecord, Name: "shop.Order", Fields: []format.Field{
		{Name: "amount", Type: &format.Type{Kind: format.KindDecimal}},
		{Name: "qty", Type: &format.Type{Kind: format.KindInt}},
		{Name: "name", Type: &format.Type{Kind: format.KindString}},
	}}
	typed := []struct {
		expr string
		bad  string // the error, "" for none
	}{
		{"value.amount == 10", ""},
		{"value.amount in [1, 2]", ""},
		{"value.qty in [value.amount]", ""},
		{"[value.amount] == [1]", ""},
		{"{'a': value.amount} != {'a': 1.5}", ""},
		{"type(value.amount) == decimal && type(decimal(1)) == decimal", ""},
		{"value.amount in [1, 2] && value.amount + 'x' == 'y'", "'_+_' applied to '(decimal, string)'"},
		{"value.amount == 1 && value.nme == 'x'", "undefined field 'nme'"},
		{"(value.qty > 1 ? value.amount : 0) > 5", "convert the other with decimal(...)"},
		{"(value.qty > 1 ? value.name : 0) == 5", "here string and int"},
		{"(value.qty > 1 ? value.amount : decimal(0)) > 5", ""},
	}
	doc = "name: t\nsources:\n  - {name: in, topic: in, format: avro}\nsteps:\n"
	for i, tc := range typed {
		doc += fmt.Sprintf("  - {name: s%d, filter: %q}\n", i, tc.expr)
	}
	doc += "sinks:\n  - {name: out, topic: out}\n"
	topo, err = Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	err = CheckTypes(topo, map[string]SourceTypes{"in": {Value: order}})
	for i, tc := range typed {
		var got []string
		if errs, ok := err.(Errors); ok {
			for _, e := range errs {
				if e.Key == fmt.Sprintf("steps[%d].filter", i) {
					got = append(got, e.Msg)
				}
			}
		}
		switch {
		case tc.bad == "" && len(got) > 0:
			t.Errorf("%s: typed check %q, want no error", tc.expr, got)
		case tc.bad != "" && (len(got) != 1 || !strings.Contains(got[0], tc.bad)):
			t.Errorf("%s: typed check %q, want one error with %q", tc.expr, got, tc.bad)
		}
	}
}
