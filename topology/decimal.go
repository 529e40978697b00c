package topology

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/cockroachdb/apd/v3"
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	celref "github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"

	"github.com/exactly-dev/exactly/format"
)

// Exact decimals. Avro and Protobuf decimals (money, mostly) decode to
// format.Number, their exact text; expressions see them as values of the
// CEL type decimal, so value.amount > 100 and value.amount * value.qty
// are exact and compare as numbers, and a decimal an expression returns
// leaves the pipeline as the same exact Number (a sink writes 120.50,
// an aggregate sums it exactly).
//
//   - decimal with decimal, int or uint: +, -, * are exact; / rounds
//     half-even to 34 significant digits (IEEE decimal128, as Java's
//     MathContext.DECIMAL128); dividing by zero is an error.
//   - decimal with double: the double result, as SQL's numeric with float.
//   - comparisons (<, <=, >, >=, ==, !=, in) are by value with any
//     number: 10.0 == 10.00 == 10.
//   - decimal(x) makes one from a string ("12.30"), int, uint or double
//     (its shortest text: 0.1 is 0.1); double(d), int(d) (truncated
//     toward zero, as int(double)) and string(d) (its exact text) convert
//     back.

// DecimalType is the CEL type of exact decimals.
var DecimalType = cel.OpaqueType("decimal")

// Decimal is a CEL value of DecimalType.
type Decimal struct{ d apd.Decimal }

// NewDecimal returns the decimal of n's text, or an error when n is not
// a finite decimal number.
func NewDecimal(n format.Number) (Decimal, error) {
	var v Decimal
	if _, _, err := v.d.SetString(string(n)); err != nil || v.d.Form != apd.Finite {
		return Decimal{}, fmt.Errorf("%q is not a decimal number", string(n))
	}
	v.unsignZero()
	return v, nil
}

// unsignZero makes a negative zero (-1 * 0.00, "-0") zero: SQL's NUMERIC
// has none, and a sink would print the sign.
func (d *Decimal) unsignZero() {
	if d.d.IsZero() {
		d.d.Negative = false
	}
}

// Number is d's exact text, as sinks write it.
func (d Decimal) Number() format.Number { return format.Number(d.d.Text('f')) }

// ConvertToNative implements ref.Val.
func (d Decimal) ConvertToNative(t reflect.Type) (any, error) {
	switch t {
	case reflect.TypeFor[format.Number](), reflect.TypeFor[any]():
		return d.Number(), nil
	case reflect.TypeFor[string]():
		return string(d.Number()), nil
	case reflect.TypeFor[float64]():
		return d.float(), nil
	}
	return nil, fmt.Errorf("a decimal cannot be converted to %v", t)
}

// ConvertToType implements ref.Val.
func (d Decimal) ConvertToType(t celref.Type) celref.Val {
	switch t.TypeName() {
	case DecimalType.TypeName():
		return d
	case types.TypeType.TypeName():
		return DecimalType
	case types.StringType.TypeName():
		return types.String(d.Number())
	case types.DoubleType.TypeName():
		return types.Double(d.float())
	case types.IntType.TypeName():
		return d.toInt()
	}
	return types.NewErr("type conversion error from decimal to '%s'", t.TypeName())
}

// Equal implements ref.Val: equal by value to any number.
func (d Decimal) Equal(other celref.Val) celref.Val {
	c, ok := compareDecimal(d, other)
	return types.Bool(ok && c == 0)
}

// Type implements ref.Val.
func (d Decimal) Type() celref.Type { return DecimalType }

// Value implements ref.Val: the exact Number.
func (d Decimal) Value() any { return d.Number() }

// Compare implements traits.Comparer.
func (d Decimal) Compare(other celref.Val) celref.Val {
	c, ok := compareDecimal(d, other)
	if !ok {
		return types.MaybeNoSuchOverloadErr(other)
	}
	return types.Int(c)
}

// Negate implements traits.Negater.
func (d Decimal) Negate() celref.Val {
	var out Decimal
	out.d.Neg(&d.d)
	out.unsignZero()
	return out
}

// IsZeroValue implements traits.Zeroer.
func (d Decimal) IsZeroValue() bool { return d.d.IsZero() }

// float is d's nearest double: beyond the double range an infinity, as
// IEEE conversions and Python's float(Decimal) give (strconv reports the
// range error with the infinity).
func (d Decimal) float() float64 {
	f, err := d.d.Float64()
	if err != nil && !math.IsInf(f, 0) {
		return math.NaN()
	}
	return f
}

func (d Decimal) toInt() celref.Val {
	var t apd.Decimal
	c := decimalExact
	c.Rounding = apd.RoundDown
	if _, err := c.RoundToIntegralValue(&t, &d.d); err != nil {
		return types.NewErr("decimal %s: %v", d.short(), err)
	}
	i, err := t.Int64()
	if err != nil {
		return types.NewErr("decimal %s does not fit an int", d.short())
	}
	return types.Int(i)
}

var (
	// decimalExact has room for any product of two decimals of the
	// formats' sizes (Avro and Confluent protobuf decimals hold at most
	// 38 digits, or Avro's bytes any number; 100 covers the sane ones),
	// and reports a result it had to round.
	decimalExact = apd.BaseContext.WithPrecision(100)
	// decimalQuo is decimal128's 34 digits, rounded half-even.
	decimalQuo = func() apd.Context {
		c := *apd.BaseContext.WithPrecision(34)
		c.Rounding = apd.RoundHalfEven
		return c
	}()
)

// asDecimal returns v as a decimal when it is a decimal, an int or a uint.
func asDecimal(v celref.Val) (Decimal, bool) {
	var out Decimal
	switch v := v.(type) {
	case Decimal:
		return v, true
	case types.Int:
		out.d.SetInt64(int64(v))
	case types.Uint:
		if _, _, err := out.d.SetString(strconv.FormatUint(uint64(v), 10)); err != nil {
			return Decimal{}, false
		}
	default:
		return Decimal{}, false
	}
	return out, true
}

// compareDecimal compares d with a number: a decimal, int, uint, or
// double (by its shortest text, as decimal(x) makes it). ok is false for
// anything else, and for NaN.
func compareDecimal(d Decimal, other celref.Val) (int, bool) {
	if o, ok := other.(types.Double); ok {
		f := float64(o)
		switch {
		case math.IsNaN(f):
			return 0, false
		case math.IsInf(f, 1):
			return -1, true
		case math.IsInf(f, -1):
			return 1, true
		}
		od, err := decimalOfDouble(f)
		if err != nil {
			return 0, false
		}
		return d.d.Cmp(&od.d), true
	}
	o, ok := asDecimal(other)
	if !ok {
		return 0, false
	}
	return d.d.Cmp(&o.d), true
}

func decimalOfDouble(f float64) (Decimal, error) {
	var out Decimal
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return out, fmt.Errorf("%v is not a finite number", f)
	}
	_, _, err := out.d.SetString(strconv.FormatFloat(f, 'g', -1, 64))
	return out, err
}

// decimalArith is the arithmetic operator fn on l and r when either is a
// decimal (handled false otherwise): exact with a decimal, int or uint, a
// double with a double.
func decimalArith(fn string, l, r celref.Val) (out celref.Val, handled bool) {
	_, ld := l.(Decimal)
	_, rd := r.(Decimal)
	if !ld && !rd {
		return nil, false
	}
	if _, ok := l.(types.Double); ok {
		return doubleArith(fn, float64(l.(types.Double)), r.(Decimal).float()), true
	}
	if _, ok := r.(types.Double); ok {
		return doubleArith(fn, l.(Decimal).float(), float64(r.(types.Double))), true
	}
	a, ok1 := asDecimal(l)
	b, ok2 := asDecimal(r)
	if !ok1 || !ok2 {
		return nil, false
	}
	var res Decimal
	var cond apd.Condition
	var err error
	switch fn {
	case operators.Add:
		cond, err = decimalExact.Add(&res.d, &a.d, &b.d)
	case operators.Subtract:
		cond, err = decimalExact.Sub(&res.d, &a.d, &b.d)
	case operators.Multiply:
		cond, err = decimalExact.Mul(&res.d, &a.d, &b.d)
	case operators.Divide:
		if b.d.IsZero() {
			return types.NewErr("division by zero"), true
		}
		if _, err = decimalQuo.Quo(&res.d, &a.d, &b.d); err == nil {
			err = keepScale(&res.d, &a.d)
		}
	default:
		return nil, false
	}
	if err == nil && cond.Inexact() {
		err = fmt.Errorf("the result has more than %d digits", decimalExact.Precision)
	}
	if err != nil {
		return types.NewErr("decimal %s %s %s: %v", a.short(), opSymbol[fn], b.short(), err), true
	}
	res.unsignZero()
	return res, true
}

// short is d's text for messages: its exact text, or in exponent form
// when that would run to more than a line (1E+99999 has 100000 digits).
func (d Decimal) short() string {
	if e := d.d.Exponent; e > 40 || e < -40 {
		return d.d.Text('G')
	}
	return string(d.Number())
}

// keepScale drops q's trailing zeros (a quotient has 34 digits) but
// keeps as many decimal places as the dividend a had: 10.00 / 4 is 2.50,
// 120.50 / 4 is 30.125, 7 / 3 is 34 digits.
func keepScale(q, a *apd.Decimal) error {
	q.Reduce(q)
	if q.Exponent > 0 {
		if _, err := decimalExact.Quantize(q, q, 0); err != nil {
			return err
		}
	}
	if a.Exponent < 0 && q.Exponent > a.Exponent {
		_, err := decimalExact.Quantize(q, q, a.Exponent)
		return err
	}
	return nil
}

var opSymbol = map[string]string{operators.Add: "+", operators.Subtract: "-", operators.Multiply: "*", operators.Divide: "/"}

func doubleArith(fn string, a, b float64) celref.Val {
	switch fn {
	case operators.Add:
		return types.Double(a + b)
	case operators.Subtract:
		return types.Double(a - b)
	case operators.Multiply:
		return types.Double(a * b)
	}
	return types.Double(a / b)
}

// decimalAdapter makes format.Number values decimals, in records at any
// depth; everything else is the standard registry's.
type decimalAdapter struct{ *types.Registry }

func (a decimalAdapter) NativeToValue(v any) celref.Val {
	switch v := v.(type) {
	case format.Number:
		d, err := NewDecimal(v)
		if err != nil {
			return types.NewErr("%v", err)
		}
		return d
	case map[string]any:
		return types.NewStringInterfaceMap(a, v)
	case []any:
		return types.NewDynamicList(a, v)
	}
	return a.Registry.NativeToValue(v)
}

// decimalOptions declares the decimal type and its functions.
func decimalOptions() ([]cel.EnvOption, error) {
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, err
	}
	unary := func(f func(celref.Val) celref.Val) cel.OverloadOpt { return cel.UnaryBinding(f) }
	return []cel.EnvOption{
		cel.CustomTypeAdapter(decimalAdapter{reg}),
		cel.Types(DecimalType),
		cel.Function("decimal",
			cel.Overload("decimal_to_decimal", []*cel.Type{DecimalType}, DecimalType, unary(func(v celref.Val) celref.Val { return v })),
			cel.Overload("string_to_decimal", []*cel.Type{cel.StringType}, DecimalType, unary(func(v celref.Val) celref.Val {
				d, err := NewDecimal(format.Number(v.(types.String)))
				if err != nil {
					return types.NewErr("decimal(): %v", err)
				}
				return d
			})),
			cel.Overload("int_to_decimal", []*cel.Type{cel.IntType}, DecimalType, unary(func(v celref.Val) celref.Val {
				d, _ := asDecimal(v)
				return d
			})),
			cel.Overload("uint_to_decimal", []*cel.Type{cel.UintType}, DecimalType, unary(func(v celref.Val) celref.Val {
				d, _ := asDecimal(v)
				return d
			})),
			cel.Overload("double_to_decimal", []*cel.Type{cel.DoubleType}, DecimalType, unary(func(v celref.Val) celref.Val {
				d, err := decimalOfDouble(float64(v.(types.Double)))
				if err != nil {
					return types.NewErr("decimal(): %v", err)
				}
				return d
			})),
		),
		cel.Function("double", cel.Overload("decimal_to_double", []*cel.Type{DecimalType}, cel.DoubleType,
			unary(func(v celref.Val) celref.Val { return types.Double(v.(Decimal).float()) }))),
		cel.Function("int", cel.Overload("decimal_to_int", []*cel.Type{DecimalType}, cel.IntType,
			unary(func(v celref.Val) celref.Val { return v.(Decimal).toInt() }))),
		cel.Function("string", cel.Overload("decimal_to_string", []*cel.Type{DecimalType}, cel.StringType,
			unary(func(v celref.Val) celref.Val { return types.String(v.(Decimal).Number()) }))),
	}, nil
}

// numberTypes are the CEL types a decimal mixes with.
var numberTypes = []*cel.Type{cel.IntType, cel.UintType, cel.DoubleType}

// decimalPairs are the argument pairs of a binary operator with a
// decimal, and the result type of arithmetic on them.
func decimalPairs() (pairs [][2]*cel.Type, result []*cel.Type) {
	pairs = append(pairs, [2]*cel.Type{DecimalType, DecimalType})
	result = append(result, DecimalType)
	for _, t := range numberTypes {
		res := DecimalType
		if t == cel.DoubleType {
			res = cel.DoubleType
		}
		pairs = append(pairs, [2]*cel.Type{DecimalType, t}, [2]*cel.Type{t, DecimalType})
		result = append(result, res, res)
	}
	return pairs, result
}

// exactEquality rewrites a == b and a != b, where a decimal may be on
// either side, into calls that compare decimals with numbers by value
// whichever side they are on. The interpreter plans == itself, as
// a.Equal(b): 100 == value.amount would ask the int, which knows no
// decimals and says false.
type exactEquality struct{}

const (
	fnEq = "@exactly_eq"
	fnNe = "@exactly_ne"
	fnIn = "@exactly_in"
)

// isListWithoutNumbers: e is a list literal of constants none of which
// is a number.
func isListWithoutNumbers(e ast.Expr) bool {
	if e.Kind() != ast.ListKind {
		return false
	}
	for _, el := range e.AsList().Elements() {
		if el.Kind() != ast.LiteralKind {
			return false
		}
		switch el.AsLiteral().(type) {
		case types.Int, types.Uint, types.Double:
			return false
		}
	}
	return true
}

// exactIn is x in c with list elements compared as exactEq does.
func exactIn(x, c celref.Val) celref.Val {
	l, ok := c.(traits.Lister)
	if !ok {
		if m, ok := c.(traits.Container); ok {
			return m.Contains(x)
		}
		return types.MaybeNoSuchOverloadErr(c)
	}
	for it := l.Iterator(); it.HasNext() == types.True; {
		if exactEq(x, it.Next()) == types.True {
			return types.True
		}
	}
	return types.False
}

func (exactEquality) Optimize(ctx *cel.OptimizerContext, a *ast.AST) *ast.AST {
	for _, e := range ast.MatchDescendants(ast.NavigateAST(a), ast.KindMatcher(ast.CallKind)) {
		call := e.AsCall()
		fn := ""
		args := call.Args()
		switch call.FunctionName() {
		case operators.Equals:
			fn = fnEq
		case operators.NotEquals:
			fn = fnNe
		case operators.In:
			// A list literal without numbers keeps the interpreter's
			// own membership test (a hash set for constants).
			if !mayBeDecimal(a.GetType(args[0].ID())) || isListWithoutNumbers(args[1]) {
				continue
			}
			e.SetKindCase(ctx.NewCall(fnIn, args[0], args[1]))
			continue
		default:
			continue
		}
		if !mayBeDecimal(a.GetType(args[0].ID())) || !mayBeDecimal(a.GetType(args[1].ID())) {
			continue
		}
		e.SetKindCase(ctx.NewCall(fn, args[0], args[1]))
	}
	return a
}

// mayBeDecimal: a value of type t may be a decimal or a number, or a
// list or map that may hold one.
func mayBeDecimal(t *cel.Type) bool {
	if t == nil {
		return true
	}
	switch t.Kind() {
	case types.DynKind, types.AnyKind, types.IntKind, types.UintKind, types.DoubleKind, types.OpaqueKind:
		return true
	case types.ListKind:
		return len(t.Parameters()) != 1 || mayBeDecimal(t.Parameters()[0])
	case types.MapKind:
		return len(t.Parameters()) != 2 || mayBeDecimal(t.Parameters()[1])
	}
	return false
}

// exactEq is l == r with decimals equal by value to numbers on either
// side, also as elements of lists and values of maps (CEL's list and map
// equality asks the left element's Equal, and an int knows no decimals:
// [1] == [value.amount] would be false).
func exactEq(l, r celref.Val) celref.Val {
	if d, ok := r.(Decimal); ok {
		return d.Equal(l)
	}
	switch l := l.(type) {
	case Decimal:
		return l.Equal(r)
	case traits.Lister:
		if r, ok := r.(traits.Lister); ok {
			return listEq(l, r)
		}
	case traits.Mapper:
		if r, ok := r.(traits.Mapper); ok {
			return mapEq(l, r)
		}
	}
	return types.Equal(l, r)
}

func listEq(l, r traits.Lister) celref.Val {
	if l.Size().Equal(r.Size()) != types.True {
		return types.False
	}
	for i, n := types.Int(0), l.Size().(types.Int); i < n; i++ {
		if exactEq(l.Get(i), r.Get(i)) != types.True {
			return types.False
		}
	}
	return types.True
}

func mapEq(l, r traits.Mapper) celref.Val {
	if l.Size().Equal(r.Size()) != types.True {
		return types.False
	}
	for it := l.Iterator(); it.HasNext() == types.True; {
		k := it.Next()
		rv, found := r.Find(k)
		if !found || exactEq(l.Get(k), rv) != types.True {
			return types.False
		}
	}
	return types.True
}

// The rewritten calls cost what the operators they replace cost in
// cel-go (checker/cost.go, interpreter/runtimecost.go): in the list's
// size, == and != a tenth of the smaller operand's size (1 for scalars).
// Without this they would cost 1, and limits.max_eval_cost would neither
// track value.a in value.list nor stop a quadratic membership test.

// estimateRewritten is the checker's estimate of a rewritten call, nil
// for any other.
func estimateRewritten(overloadID string, args []checker.AstNode) *checker.CallEstimate {
	size := func(a checker.AstNode) checker.SizeEstimate {
		if s := a.ComputedSize(); s != nil {
			return *s
		}
		return checker.UnknownSizeEstimate()
	}
	if len(args) != 2 {
		return nil
	}
	switch overloadID {
	case fnIn + "_dyn":
		s := size(args[1])
		return &checker.CallEstimate{CostEstimate: checker.CostEstimate{Min: s.Min, Max: s.Max}}
	case fnEq + "_dyn", fnNe + "_dyn":
		m := min(size(args[0]).Max, size(args[1]).Max)
		est := checker.CostEstimate{Max: m}
		if m > 0 {
			est.Min = 1
		}
		return &checker.CallEstimate{CostEstimate: est.MultiplyByCostFactor(common.StringTraversalCostFactor)}
	}
	return nil
}

// rewrittenCosts counts the rewritten calls' cost as programs run.
var rewrittenCosts = func() cel.ProgramOption {
	in := func(args []celref.Val, _ celref.Val) *uint64 {
		c := actualSize(args[1])
		return &c
	}
	eq := func(args []celref.Val, _ celref.Val) *uint64 {
		c := uint64(math.Ceil(float64(min(actualSize(args[0]), actualSize(args[1]))) * common.StringTraversalCostFactor))
		return &c
	}
	return cel.CostTrackerOptions(
		interpreter.OverloadCostTracker(fnIn+"_dyn", in),
		interpreter.OverloadCostTracker(fnEq+"_dyn", eq),
		interpreter.OverloadCostTracker(fnNe+"_dyn", eq),
	)
}()

// actualSize is cel-go's size of a value for costs: a list's, map's or
// string's size, else 1.
func actualSize(v celref.Val) uint64 {
	if s, ok := v.(traits.Sizer); ok {
		if n, ok := s.Size().(types.Int); ok && n >= 0 {
			return uint64(n)
		}
	}
	return 1
}

// compileExact is env.Compile, except that ==, != and in between an
// expression the checker knows to be a decimal and a number (or lists
// and maps of them: [value.amount] == [1]) are accepted, as the runtime
// answers them. CEL declares each of these operators with one overload of
// the same type on both sides, which cannot be widened (another overload
// collides with it), so the checker refuses decimal(x) == 0 although
// value.amount == 0 (value is dyn) passes. When those are the only
// complaints among others, the expression is checked again with every ==,
// != and in calling exactEquality's functions, which take any operands,
// and the other errors stand.
func compileExact(env *cel.Env, text string) (*cel.Ast, *cel.Issues) {
	checked, iss := env.Compile(text)
	if iss.Err() == nil || !anyDecimalComparison(iss) {
		return checked, iss
	}
	parsed, piss := env.Parse(text)
	if piss.Err() != nil {
		return checked, iss
	}
	f := ast.NewExprFactory()
	for _, e := range ast.MatchDescendants(ast.NavigateAST(parsed.NativeRep()), ast.KindMatcher(ast.CallKind)) {
		call := e.AsCall()
		fn, ok := map[string]string{operators.Equals: fnEq, operators.NotEquals: fnNe, operators.In: fnIn}[call.FunctionName()]
		if ok && len(call.Args()) == 2 {
			e.SetKindCase(f.NewCall(e.ID(), fn, call.Args()...))
		}
	}
	return env.Check(parsed)
}

// decimalComparison is the checker's complaint about ==, != or in between
// operands of different types.
var decimalComparison = regexp.MustCompile(`no matching overload for '(?:_==_|_!=_|@in)' applied to '\(([^']*)\)'`)

// numberTypeWords are the words of the types a decimal compares with.
var numberTypeWords = regexp.MustCompile(`map\(string, |[a-z_.]+`)

// anyDecimalComparison: an error of iss is a comparison of a decimal
// with numbers (or lists and maps of them), which exactEquality answers.
func anyDecimalComparison(iss *cel.Issues) bool {
	for _, e := range iss.Errors() {
		if isDecimalComparison(e.Message) {
			return true
		}
	}
	return false
}

func isDecimalComparison(msg string) bool {
	m := decimalComparison.FindStringSubmatch(msg)
	if m == nil || !strings.Contains(m[1], "decimal") {
		return false
	}
	for _, w := range numberTypeWords.FindAllString(m[1], -1) {
		switch w {
		case "map(string, ", "decimal", "int", "uint", "double", "dyn", "list", "map":
		default:
			return false
		}
	}
	return true
}

// equalityOptions declares the functions exactEquality calls.
func equalityOptions() []cel.EnvOption {
	dd := []*cel.Type{cel.DynType, cel.DynType}
	return []cel.EnvOption{
		cel.Function(fnEq, cel.Overload(fnEq+"_dyn", dd, cel.BoolType, cel.BinaryBinding(exactEq))),
		cel.Function(fnIn, cel.Overload(fnIn+"_dyn", dd, cel.BoolType, cel.BinaryBinding(exactIn))),
		cel.Function(fnNe, cel.Overload(fnNe+"_dyn", dd, cel.BoolType, cel.BinaryBinding(func(l, r celref.Val) celref.Val {
			if b, ok := exactEq(l, r).(types.Bool); ok {
				return !b
			}
			return exactEq(l, r)
		}))),
	}
}
