package topology

import (
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	"gopkg.in/yaml.v3"
)

// NewEnv returns the CEL environment every topology expression is checked
// against: the Var* variables, the standard library with arithmetic that
// mixes int and double (see mixedArithmetic) and the cel-go extensions
// for strings, math, base64 and lists. The runtime must bind exactly
// these variables. A *cel.Env is safe for concurrent use.
func NewEnv() (*cel.Env, error) { return newEnv(cel.DynType, cel.DynType) }

// newEnv is NewEnv with key and value of the given types, plus extra
// options (a type provider for record types): CheckTypes uses it.
func newEnv(key, value *cel.Type, extra ...cel.EnvOption) (*cel.Env, error) {
	dec, err := decimalOptions()
	if err != nil {
		return nil, err
	}
	extra = append(append(dec, equalityOptions()...), extra...)
	return cel.NewCustomEnv(append(append(mixedArithmetic(),
		cel.Variable(VarKey, key),
		cel.Variable(VarValue, value),
		cel.Variable(VarHeaders, cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable(VarTimestamp, cel.TimestampType),
		cel.Variable(VarTopic, cel.StringType),
		cel.Variable(VarPartition, cel.IntType),
		cel.Variable(VarOffset, cel.IntType),
		// JSON numbers decode to int or double depending on how they
		// are written, so value.price > 10 must work either way.
		cel.CrossTypeNumericComparisons(true),
		// Record timestamps carry the host's time zone; make
		// timestamp.getHours() and friends mean UTC everywhere instead
		// of depending on where the daemon runs.
		cel.DefaultUTCTimeZone(true),
		ext.Strings(),
		ext.Math(),
		ext.Encoders(),
		ext.Lists(),
	), extra...)...)
}

// joinEnv is NewEnv plus the table variable of a join's output.
var joinEnv = sync.OnceValues(func() (*cel.Env, error) {
	env, err := sharedEnv()
	if err != nil {
		return nil, err
	}
	return env.Extend(cel.Variable(VarTable, cel.DynType))
})

// streamJoinEnv is NewEnv plus the other variable of a stream-stream
// join's output.
var streamJoinEnv = sync.OnceValues(func() (*cel.Env, error) {
	env, err := sharedEnv()
	if err != nil {
		return nil, err
	}
	return env.Extend(cel.Variable(VarOther, cel.DynType))
})

// equalityRewriter applies exactEquality (decimal.go) to every
// expression the runtime evaluates.
var equalityRewriter = func() *cel.StaticOptimizer {
	o, err := cel.NewStaticOptimizer(exactEquality{})
	if err != nil {
		panic(err)
	}
	return o
}()

// sharedEnv builds the environment once per process: building it is far
// more expensive than a small topology's whole parse.
var sharedEnv = sync.OnceValues(NewEnv)

// want is the type an expression's result must have.
type want struct {
	desc string // for messages: "must be a <desc> expression"
	ok   func(*cel.Type) bool
}

// dyn is accepted everywhere: value and key are dyn, and whether
// value.status is a bool can only be known per record.
func isDyn(t *cel.Type) bool {
	return t.Kind() == types.DynKind || t.Kind() == types.AnyKind
}

var (
	wantAny  = want{}
	wantBool = want{"bool", func(t *cel.Type) bool {
		return t.Kind() == types.BoolKind || isDyn(t)
	}}
	wantList = want{"list", func(t *cel.Type) bool {
		return t.Kind() == types.ListKind || isDyn(t)
	}}
	wantHeader = want{"string or bytes", func(t *cel.Type) bool {
		return t.Kind() == types.StringKind || t.Kind() == types.BytesKind || isDyn(t)
	}}
)

// expr compiles the expression in YAML value v. subject names it in type
// errors ("filter must be a bool expression"). It returns nil, having
// reported why, when the expression is not usable.
func (p *parser) expr(v *yaml.Node, key string, w want, subject string) *Expr {
	d := deref(v)
	if d.Kind != yaml.ScalarNode || isNull(d) {
		hint := ""
		if d.Style&yaml.FlowStyle != 0 {
			// {"id": value.id} unquoted is a YAML mapping, not CEL.
			hint = "; quote expressions that start with { or ["
		}
		p.errorf(p.pos(v), key, "expected an expression, got %s%s", describe(v), hint)
		return nil
	}
	text := d.Value
	if strings.TrimSpace(text) == "" {
		p.errorf(p.pos(v), key, "empty expression")
		return nil
	}
	ast, iss := compileExact(p.env, text)
	if iss.Err() != nil {
		for _, e := range iss.Errors() {
			msg, _, _ := strings.Cut(e.Message, "\n")
			// Containers are not used; naming the empty one is noise.
			msg = strings.TrimSuffix(msg, " (in container '')")
			p.errorf(p.exprPos(v, e.Location), key, "invalid expression: %s", msg)
		}
		return nil
	}
	if ast, iss = equalityRewriter.Optimize(p.env, ast); iss.Err() != nil {
		msg, _, _ := strings.Cut(iss.Err().Error(), "\n")
		p.errorf(p.pos(v), key, "invalid expression: %s", msg)
		return nil
	}
	t := ast.OutputType()
	if w.ok != nil && !w.ok(t) {
		p.errorf(p.pos(v), key, "%s must be a %s expression, got %s", subject, w.desc, t)
		return nil
	}
	popts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	tracked := false
	if p.costLimit > 0 && !withinCost(p.env, ast, p.costLimit) {
		popts = append(popts, cel.CostLimit(p.costLimit), rewrittenCosts)
		tracked = true
	}
	prg, err := p.env.Program(ast, popts...)
	if err != nil {
		msg, _, _ := strings.Cut(err.Error(), "\n")
		p.errorf(p.pos(v), key, "invalid expression: %s", msg)
		return nil
	}
	return &Expr{Text: text, Pos: p.pos(v), Program: prg, Type: t, CostTracked: tracked}
}

// withinCost reports whether the checker proves that no evaluation of ast
// can cost more than limit, whatever the record: then tracking the cost of
// each evaluation (a third of a small expression's run time) buys
// nothing. Sizes of record fields are unknown, so anything whose cost
// grows with them (size(), comprehensions, string functions) is estimated
// at the maximum and stays tracked.
func withinCost(env *cel.Env, ast *cel.Ast, limit uint64) bool {
	est, err := env.EstimateCost(ast, unknownSizes{})
	return err == nil && est.Max <= limit
}

// unknownSizes knows nothing of the sizes of variables and the costs of
// calls, so the checker's estimate is its worst case.
type unknownSizes struct{}

func (unknownSizes) EstimateSize(checker.AstNode) *checker.SizeEstimate { return nil }
func (unknownSizes) EstimateCallCost(_, overloadID string, _ *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	return estimateRewritten(overloadID, args)
}

// exprPos maps a location inside an expression onto the file. That is only
// exact when the expression is a single-line plain or quoted scalar written
// verbatim in the file (no escapes, no folding); otherwise the scalar's own
// position is the best honest answer.
func (p *parser) exprPos(v *yaml.Node, loc common.Location) Pos {
	pos := p.pos(v)
	d := deref(v)
	if d != v || loc == nil || loc.Line() != 1 || loc.Column() < 0 || strings.ContainsAny(d.Value, "\r\n") {
		return pos
	}
	var skip int // characters before the text: the opening quote, if any
	switch {
	case d.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return pos
	case d.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0:
		skip = 1
	}
	if d.Line < 1 || d.Line > len(p.lines) || d.Column < 1 {
		return pos
	}
	line := []rune(p.lines[d.Line-1])
	start := d.Column - 1 + skip
	text := []rune(d.Value)
	if start+len(text) > len(line) || string(line[start:start+len(text)]) != d.Value {
		return pos
	}
	pos.Col = d.Column + skip + loc.Column()
	return pos
}
