package topology

import (
	"fmt"
	"math"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/env"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/stdlib"
	"github.com/google/cel-go/common/types"
	celref "github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// Mixed arithmetic. JSON has one number type, and whether a producer
// writes a price as 10 or 10.0 is an accident of its language, yet the
// decoder must make one an int and the other a double (integers stay
// exact). Standard CEL refuses to mix them (no coercion, by design): with
// price written as 10, value.price * double(value.qty) failed with "no
// such overload" on that record only. So +, -, * and / also accept an int
// or uint on one side and a double on the other, and give the double
// result (as JavaScript, Python and SQL do); int with int stays integer
// arithmetic (7 / 2 is 3), int with uint stays an error.
//
// cel-go binds each of these operators to one function for all its
// overloads, and an environment cannot replace that binding, so the
// standard library is loaded without them and they are declared again
// here: the standard overloads under their standard ids (the cost
// estimator knows them by id), the mixed ones, and one binding that does
// the standard thing unless the operands are mixed numbers.

// arithmetic lists the operators that mix numbers, each with its symbol
// for messages, the double operation and the standard one.
var arithmetic = []struct {
	fn, sym string
	f       func(a, b float64) float64
	std     func(l, r celref.Val) (celref.Val, bool)
}{
	{operators.Add, "+", func(a, b float64) float64 { return a + b }, func(l, r celref.Val) (celref.Val, bool) {
		if a, ok := l.(traits.Adder); ok {
			return a.Add(r), true
		}
		return nil, false
	}},
	{operators.Subtract, "-", func(a, b float64) float64 { return a - b }, func(l, r celref.Val) (celref.Val, bool) {
		if s, ok := l.(traits.Subtractor); ok {
			return s.Subtract(r), true
		}
		return nil, false
	}},
	{operators.Multiply, "*", func(a, b float64) float64 { return a * b }, func(l, r celref.Val) (celref.Val, bool) {
		if m, ok := l.(traits.Multiplier); ok {
			return m.Multiply(r), true
		}
		return nil, false
	}},
	{operators.Divide, "/", func(a, b float64) float64 { return a / b }, func(l, r celref.Val) (celref.Val, bool) {
		if d, ok := l.(traits.Divider); ok {
			return d.Divide(r), true
		}
		return nil, false
	}},
}

// mixedArithmetic returns the environment options that load the standard
// library without the arithmetic operators and declare them again with
// mixed overloads. They must be the first options of cel.NewCustomEnv.
func mixedArithmetic() []cel.EnvOption {
	subset := env.NewLibrarySubset()
	for _, a := range arithmetic {
		subset.AddExcludedFunctions(env.NewFunction(a.fn))
	}
	for _, c := range comparisons {
		subset.AddExcludedFunctions(env.NewFunction(c.fn))
	}
	subset.AddExcludedFunctions(env.NewFunction(operators.Negate))
	opts := []cel.EnvOption{cel.StdLib(cel.StdLibSubset(subset))}
	pairs, results := decimalPairs()
	for _, a := range arithmetic {
		fopts := stdOverloads(a.fn)
		for _, pair := range [][2]*cel.Type{
			{cel.IntType, cel.DoubleType}, {cel.DoubleType, cel.IntType},
			{cel.UintType, cel.DoubleType}, {cel.DoubleType, cel.UintType},
		} {
			id := fmt.Sprintf("%s_%s_%s", overloadPrefix[a.fn], pair[0], pair[1])
			fopts = append(fopts, cel.Overload(id, pair[:], cel.DoubleType))
		}
		for i, pair := range pairs {
			id := fmt.Sprintf("%s_%s_%s", overloadPrefix[a.fn], pair[0], pair[1])
			fopts = append(fopts, cel.Overload(id, pair[:], results[i]))
		}
		fopts = append(fopts, cel.SingletonBinaryBinding(binary(a.fn, a.sym, a.f, a.std)))
		opts = append(opts, cel.Function(a.fn, fopts...))
	}
	for _, c := range comparisons {
		fopts := stdOverloads(c.fn)
		for _, pair := range pairs {
			id := fmt.Sprintf("%s_%s_%s", c.prefix, pair[0], pair[1])
			fopts = append(fopts, cel.Overload(id, pair[:], cel.BoolType))
		}
		fopts = append(fopts, cel.SingletonBinaryBinding(compare(c.sym, c.holds)))
		opts = append(opts, cel.Function(c.fn, fopts...))
	}
	return append(opts, cel.Function(operators.Negate, append(stdOverloads(operators.Negate),
		cel.Overload("negate_decimal", []*cel.Type{DecimalType}, DecimalType),
		cel.SingletonUnaryBinding(negate))...))
}

// stdOverloads declares the standard library's overloads of fn again,
// under their standard ids (the cost estimator knows them by id).
func stdOverloads(fn string) []cel.FunctionOpt {
	var fopts []cel.FunctionOpt
	for _, fd := range stdlib.Functions() {
		if fd.Name() != fn {
			continue
		}
		for _, o := range fd.OverloadDecls() {
			fopts = append(fopts, cel.Overload(o.ID(), o.ArgTypes(), o.ResultType()))
		}
	}
	return fopts
}

// negate is the standard unary minus, and a decimal's. (The standard
// binding asks the value's type for the negater trait, which an opaque
// type cannot declare.)
func negate(v celref.Val) celref.Val {
	switch v := v.(type) {
	case Decimal:
		return v.Negate()
	case types.Bool:
		return types.MaybeNoSuchOverloadErr(v)
	case traits.Negater:
		return v.Negate()
	}
	return types.MaybeNoSuchOverloadErr(v)
}

// comparisons lists the relations, which compare decimals with numbers
// on either side (decimal.go) and are otherwise standard.
var comparisons = []struct {
	fn, prefix, sym string
	holds           func(cmp int) bool
}{
	{operators.Less, "less", "<", func(c int) bool { return c < 0 }},
	{operators.LessEquals, "less_equals", "<=", func(c int) bool { return c <= 0 }},
	{operators.Greater, "greater", ">", func(c int) bool { return c > 0 }},
	{operators.GreaterEquals, "greater_equals", ">=", func(c int) bool { return c >= 0 }},
}

// compare is the run-time function of one relation: the standard one
// (NaN compares false; a value that cannot be ordered is an error),
// with a decimal on either side compared by value.
func compare(sym string, holds func(int) bool) func(l, r celref.Val) celref.Val {
	return func(l, r celref.Val) celref.Val {
		if isNaN(l) || isNaN(r) {
			return types.False
		}
		if d, ok := l.(Decimal); ok {
			c, ok := compareDecimal(d, r)
			if !ok {
				return noSuchOverload(l, sym, r)
			}
			return types.Bool(holds(c))
		}
		if d, ok := r.(Decimal); ok {
			c, ok := compareDecimal(d, l)
			if !ok {
				return noSuchOverload(l, sym, r)
			}
			return types.Bool(holds(-c))
		}
		cmp, ok := l.(traits.Comparer)
		if !ok {
			return noSuchOverload(l, sym, r)
		}
		switch c := cmp.Compare(r).(type) {
		case types.Int:
			return types.Bool(holds(int(c)))
		default:
			if isNoSuchOverload(c) {
				return noSuchOverload(l, sym, r)
			}
			return c
		}
	}
}

func isNaN(v celref.Val) bool {
	d, ok := v.(types.Double)
	return ok && math.IsNaN(float64(d))
}

var overloadPrefix = map[string]string{
	operators.Add: "add", operators.Subtract: "subtract", operators.Multiply: "multiply", operators.Divide: "divide",
}

// binary is the run-time function of one arithmetic operator. Operands
// are never errors or unknowns: the interpreter returns those before
// calling it.
func binary(fn, sym string, f func(a, b float64) float64, std func(l, r celref.Val) (celref.Val, bool)) func(l, r celref.Val) celref.Val {
	return func(l, r celref.Val) celref.Val {
		if out, ok := decimalArith(fn, l, r); ok {
			return out
		}
		if a, b, ok := mixedNumbers(l, r); ok {
			return types.Double(f(a, b))
		}
		out, ok := std(l, r)
		if ok && !isNoSuchOverload(out) {
			return out
		}
		return noSuchOverload(l, sym, r)
	}
}

// mixedNumbers returns l and r as doubles when one is a double and the
// other an int or uint.
func mixedNumbers(l, r celref.Val) (float64, float64, bool) {
	switch l := l.(type) {
	case types.Double:
		switch r := r.(type) {
		case types.Int:
			return float64(l), float64(r), true
		case types.Uint:
			return float64(l), float64(r), true
		}
	case types.Int:
		if r, ok := r.(types.Double); ok {
			return float64(l), float64(r), true
		}
	case types.Uint:
		if r, ok := r.(types.Double); ok {
			return float64(l), float64(r), true
		}
	}
	return 0, 0, false
}

func isNoSuchOverload(v celref.Val) bool {
	e, ok := v.(*types.Err)
	return ok && e.Error() == "no such overload"
}

// noSuchOverload names the operator and the operand types, which cel-go's
// own message does not: "no such overload: string * int".
func noSuchOverload(l celref.Val, sym string, r celref.Val) celref.Val {
	lt, rt := celTypeName(l), celTypeName(r)
	if celIsNumber(l) && celIsNumber(r) {
		return types.NewErr("no such overload: %s %s %s; convert one side with int(), uint() or double()", lt, sym, rt)
	}
	return types.NewErr("no such overload: %s %s %s", lt, sym, rt)
}

func celIsNumber(v celref.Val) bool {
	switch v.(type) {
	case types.Int, types.Uint, types.Double, Decimal:
		return true
	}
	return false
}

func celTypeName(v celref.Val) string {
	if t, ok := v.Type().(celref.Type); ok {
		return t.TypeName()
	}
	return fmt.Sprintf("%T", v)
}
