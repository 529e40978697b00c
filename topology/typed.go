package topology

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/internal/suggest"
)

// SourceTypes are the types of a source's keys and values, from its
// formats' schemas (format.Factory.Type); nil is dyn.
type SourceTypes struct {
	Key, Value *format.Type
}

// CheckTypes type-checks again the expressions that see a source's
// records as read, with key and value declared as the source's types:
// those of the steps fed by the source directly or through steps that
// keep the value as it is (filter, key, set_headers, drop_headers, route,
// dedupe). After a map, a flat_map, a join or an aggregate the value is
// the expression's own, and stays dyn, as Parse checked it. Parse (and
// the runtime) stay untyped: this only reports, with file:line:col, an
// expression that would fail on every record of the schema, such as a
// misspelt field (named with the record's fields) or adding a string to
// a number.
func CheckTypes(t *Topology, sources map[string]SourceTypes) error {
	c := &typeChecker{t: t, sources: sources, envs: map[*format.Type]*typedEnv{}, memo: map[*Node]*SourceTypes{}}
	for i, n := range t.Steps {
		in := c.input(n)
		if in == nil || in.Value == nil && in.Key == nil {
			continue
		}
		env, err := c.env(in)
		if err != nil {
			return err
		}
		key := fmt.Sprintf("steps[%d]", i)
		for _, e := range exprsOf(n, key) {
			c.check(env, e.key, e.expr)
		}
	}
	if len(c.errs) > 0 {
		slices.SortStableFunc(c.errs, func(a, b *Error) int { return comparePos(a.Pos, b.Pos) })
		return c.errs
	}
	return nil
}

func comparePos(a, b Pos) int {
	if a.Line != b.Line {
		return a.Line - b.Line
	}
	return a.Col - b.Col
}

type typeChecker struct {
	t       *Topology
	sources map[string]SourceTypes
	envs    map[*format.Type]*typedEnv
	memo    map[*Node]*SourceTypes
	errs    Errors
}

// input is the types of the records reaching n, nil when unknown.
func (c *typeChecker) input(n *Node) *SourceTypes {
	var got *SourceTypes
	for i, in := range n.Inputs {
		st := c.output(in)
		if st == nil {
			return nil
		}
		if i > 0 && (st.Key != got.Key || st.Value != got.Value) {
			return nil // a merge of different sources: dyn
		}
		got = st
	}
	return got
}

// output is the types of the records n emits, nil when unknown.
func (c *typeChecker) output(n *Node) *SourceTypes {
	if st, ok := c.memo[n]; ok {
		return st
	}
	c.memo[n] = nil // a cycle, if the graph had one, stays unknown
	var st *SourceTypes
	switch n.Kind {
	case KindSource:
		if s, ok := c.sources[n.Name]; ok {
			st = &s
		}
	case KindFilter, KindSetHeaders, KindDropHeaders, KindRoute, KindDedupe:
		st = c.input(n)
	case KindKey:
		if in := c.input(n); in != nil {
			st = &SourceTypes{Value: in.Value}
		}
	}
	c.memo[n] = st
	return st
}

type namedExpr struct {
	key  string
	expr *Expr
}

func exprsOf(n *Node, key string) []namedExpr {
	var out []namedExpr
	add := func(k string, e *Expr) {
		if e != nil {
			out = append(out, namedExpr{key + "." + k, e})
		}
	}
	switch n.Kind {
	case KindFilter, KindMap, KindFlatMap, KindKey:
		add(string(n.Kind), n.Expr)
	}
	for _, h := range n.Headers {
		add("set_headers."+h.Name, h.Expr)
	}
	for i, r := range n.Routes {
		add(fmt.Sprintf("route[%d].when", i), r.When)
	}
	if d := n.Dedupe; d != nil {
		add("dedupe.id", d.ID)
		add("dedupe.time", d.Time)
	}
	if a := n.Aggregate; a != nil {
		for _, g := range a.GroupBy {
			add("group_by."+g.Name, g.Expr)
		}
		for _, col := range a.Columns {
			add("columns."+col.Name+".of", col.Of)
			add("columns."+col.Name+".where", col.Where)
		}
	}
	return out
}

// typedEnv is a CEL environment with key and value typed, and the record
// types of their schemas.
type typedEnv struct {
	env  *cel.Env
	prov *recordProvider
}

func (c *typeChecker) env(st *SourceTypes) (*typedEnv, error) {
	if e, ok := c.envs[st.Value]; ok && st.Key == nil {
		return e, nil
	}
	// The provider replaces the one cel.Types(DecimalType) registered
	// the type name decimal in (type(x) == decimal): register it again.
	base, err := types.NewRegistry(DecimalType)
	if err != nil {
		return nil, err
	}
	prov := &recordProvider{Registry: base, records: map[string]*format.Type{}}
	kt, vt := prov.celType(st.Key), prov.celType(st.Value)
	env, err := newEnv(kt, vt, cel.CustomTypeProvider(prov))
	if err != nil {
		return nil, err
	}
	e := &typedEnv{env: env, prov: prov}
	if st.Key == nil {
		c.envs[st.Value] = e
	}
	return e, nil
}

var (
	undefinedField = regexp.MustCompile(`undefined field '([^']*)'`)
	// mixedBranches: a ?: whose branches the checker cannot unify.
	mixedBranches = regexp.MustCompile(`'_\?_:_' applied to '\(bool, ([^,]+), ([^)]+)\)'`)
)

// branchesHint says how to give both branches of a ?: one type. The
// untyped check at load takes such an expression (its values are dyn
// there); against a schema CEL wants one type.
func branchesHint(a, b string) string {
	if a == "decimal" || b == "decimal" {
		return " (both branches of ?: need one type: convert the other with decimal(...), e.g. decimal(0))"
	}
	return fmt.Sprintf(" (both branches of ?: need one type, here %s and %s: convert one, e.g. with double(...) or string(...))", a, b)
}

func (c *typeChecker) check(env *typedEnv, key string, e *Expr) {
	// compileExact: a decimal compared with a number is no error.
	_, iss := compileExact(env.env, e.Text)
	if iss.Err() == nil {
		return
	}
	for _, ce := range iss.Errors() {
		msg, _, _ := strings.Cut(ce.Message, "\n")
		msg = strings.TrimSuffix(msg, " (in container '')")
		if m := undefinedField.FindStringSubmatch(msg); m != nil {
			msg += env.prov.fieldsHint(m[1])
		}
		if m := mixedBranches.FindStringSubmatch(msg); m != nil {
			msg += branchesHint(m[1], m[2])
		}
		pos := e.Pos
		if loc := ce.Location; loc != nil && loc.Line() == 1 && loc.Column() >= 0 {
			pos = columnIn(e, loc.Column())
		}
		c.errs = append(c.errs, &Error{Pos: pos, Key: key, Msg: "against the schema: " + msg})
	}
}

// columnIn is the file position of column col (0-based) of e's text, when
// e is written on one line of its file as is (plain or quoted); else e's
// own position.
func columnIn(e *Expr, col int) Pos {
	if strings.ContainsAny(e.Text, "\r\n") || e.Pos.File == "" {
		return e.Pos
	}
	data, err := os.ReadFile(e.Pos.File)
	if err != nil {
		return e.Pos
	}
	lines := strings.Split(string(data), "\n")
	if e.Pos.Line < 1 || e.Pos.Line > len(lines) {
		return e.Pos
	}
	line := []rune(lines[e.Pos.Line-1])
	text := []rune(e.Text)
	for _, skip := range []int{0, 1} {
		start := e.Pos.Col - 1 + skip
		if start >= 0 && start+len(text) <= len(line) && string(line[start:start+len(text)]) == e.Text {
			p := e.Pos
			p.Col = start + 1 + col
			return p
		}
	}
	return e.Pos
}

// recordProvider serves the record types of a schema as CEL object
// types, so the checker knows their fields; everything else goes to the
// standard registry. Only the checker uses it: at run time records are
// maps, which field selection reads the same way.
type recordProvider struct {
	*types.Registry
	records map[string]*format.Type

	mu     sync.Mutex
	misses map[string][]string // field -> records it was looked up in and missing from
}

func (p *recordProvider) celType(t *format.Type) *cel.Type {
	if t == nil {
		return cel.DynType
	}
	var ct *cel.Type
	switch t.Kind {
	case format.KindNull:
		return cel.NullType
	case format.KindBool:
		ct = cel.BoolType
	case format.KindInt:
		ct = cel.IntType
	case format.KindDouble:
		ct = cel.DoubleType
	case format.KindString:
		ct = cel.StringType
	case format.KindDecimal:
		ct = DecimalType
	case format.KindBytes:
		ct = cel.BytesType
	case format.KindTimestamp:
		ct = cel.TimestampType
	case format.KindDuration:
		ct = cel.DurationType
	case format.KindList:
		ct = cel.ListType(p.celType(t.Elem))
	case format.KindMap:
		ct = cel.MapType(cel.StringType, p.celType(t.Elem))
	case format.KindRecord:
		if _, ok := p.records[t.Name]; !ok {
			p.records[t.Name] = t
			for _, f := range t.Fields {
				p.celType(f.Type) // register nested records
			}
		}
		ct = cel.ObjectType(t.Name)
	default:
		return cel.DynType
	}
	if t.Nullable {
		switch t.Kind {
		case format.KindBool, format.KindInt, format.KindDouble, format.KindString, format.KindBytes:
			return cel.NullableType(ct)
		}
		return cel.DynType // null or a value: checked per record
	}
	return ct
}

func (p *recordProvider) FindStructType(name string) (*types.Type, bool) {
	if _, ok := p.records[name]; ok {
		return types.NewTypeTypeWithParam(types.NewObjectType(name)), true
	}
	return p.Registry.FindStructType(name)
}

func (p *recordProvider) FindStructFieldNames(name string) ([]string, bool) {
	r, ok := p.records[name]
	if !ok {
		return p.Registry.FindStructFieldNames(name)
	}
	names := make([]string, len(r.Fields))
	for i, f := range r.Fields {
		names[i] = f.Name
	}
	return names, true
}

func (p *recordProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	r, ok := p.records[name]
	if !ok {
		return p.Registry.FindStructFieldType(name, field)
	}
	for _, f := range r.Fields {
		if f.Name == field {
			return &types.FieldType{Type: p.celType(f.Type)}, true
		}
	}
	p.mu.Lock()
	if p.misses == nil {
		p.misses = map[string][]string{}
	}
	if !slices.Contains(p.misses[field], name) {
		p.misses[field] = append(p.misses[field], name)
	}
	p.mu.Unlock()
	return nil, false
}

// fieldsHint names the fields of the record field was missing from, and
// the likeliest one meant.
func (p *recordProvider) fieldsHint(field string) string {
	p.mu.Lock()
	names := p.misses[field]
	p.mu.Unlock()
	if len(names) == 0 {
		return ""
	}
	r := p.records[names[0]]
	fields, _ := p.FindStructFieldNames(r.Name)
	return fmt.Sprintf("; record %s has %s%s", r.Name, strings.Join(fields, ", "), suggest.DidYouMean(field, fields))
}
