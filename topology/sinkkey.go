package topology

import (
	"errors"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"

	"github.com/exactly-dev/exactly/format"
)

// SinkPartType is SinkType for part of the sink's records, derived for
// the sink's format of that part (its key_format for keys).
//
// A key's type: a source's is its key schema's (a key_format with no
// schema: string for string, bytes for bytes, else dyn); a key step's is
// its expression's (a map literal a record named <pipeline>.<step>); an
// aggregate's is its group: the one group_by expression's type, or a
// record <pipeline>.<step>_key of the group columns when there are
// several, or of the group columns and window_start when windowed (how
// the rows are keyed); every other step keeps the key it gets (a join
// this stream's, a table-table join its from table's).
func SinkPartType(t *Topology, sources map[string]SourceTypes, sink *Node, part format.Part) (*format.Type, error) {
	typ, _, err := newDeriver(t, sources, sink, part)
	return typ, err
}

// newDeriver derives the type of part of sink's records, and returns the
// deriver that did, which knows where each record field was made.
func newDeriver(t *Topology, sources map[string]SourceTypes, sink *Node, part format.Part) (*format.Type, *deriver, error) {
	d := &deriver{c: &typeChecker{t: t, sources: sources, envs: map[*format.Type]*typedEnv{}, memo: map[*Node]*SourceTypes{}},
		sink: sink, memo: map[*Node]*format.Type{}, keyMemo: map[*Node]*format.Type{}, part: part, format: sink.Format.Name}
	var typ *format.Type
	var err error
	if part == format.PartKey {
		d.format = sink.KeyFormat.Name
		typ, err = d.keyType(sink)
	} else {
		typ, err = d.value(sink)
	}
	return typ, d, err
}

// knownKey is the type of the keys n reads, nil when dyn or not
// derivable: expressions over values see key typed when it can be.
func (d *deriver) knownKey(n *Node) *format.Type {
	var got *format.Type
	for i, in := range n.Inputs {
		if n.Join != nil && in == n.Join.Stream {
			continue
		}
		saved := d.part
		d.part = format.PartKey
		t, err := d.keyType(in)
		d.part = saved
		if err != nil || i > 0 && t != got {
			return nil
		}
		got = t
	}
	return got
}

// keyType is the type of the keys n emits (of its input for a sink),
// nil when dyn.
func (d *deriver) keyType(n *Node) (*format.Type, error) {
	if t, ok := d.keyMemo[n]; ok {
		return t, nil
	}
	t, err := d.deriveKey(n)
	if err != nil {
		return nil, err
	}
	d.keyMemo[n] = t
	return t, nil
}

func (d *deriver) keyInput(n *Node) (*format.Type, error) {
	var got *format.Type
	first := true
	for _, in := range n.Inputs {
		if n.Join != nil && in == n.Join.Stream {
			continue // keyed as this stream
		}
		t, err := d.keyType(in)
		if lateOnly(n, in) {
			t, err = d.keyInput(in) // late records keep their key
		}
		if err != nil {
			return nil, err
		}
		if !first && t != got {
			return nil, d.errf(n.Pos, d.key(n), "its input %s merges steps whose keys have different types: the type is dyn", n.Name)
		}
		got, first = t, false
	}
	return got, nil
}

func (d *deriver) deriveKey(n *Node) (*format.Type, error) {
	switch n.Kind {
	case KindSource:
		if t := d.c.sources[n.Name].Key; t != nil {
			return t, nil
		}
		switch n.KeyFormat.Name {
		case format.String:
			return &format.Type{Kind: format.KindString}, nil
		case format.Bytes:
			return &format.Type{Kind: format.KindBytes}, nil
		}
		return nil, nil
	case KindSink:
		t, err := d.keyInput(n)
		if err == nil && t == nil {
			err = d.errf(n.Pos, strings.TrimSuffix(d.key(n), ".format")+".key_format", "the keys reaching it are dyn (a source whose key_format has no schema, not re-keyed by a key step with typed fields)")
		}
		return t, err
	case KindKey:
		return d.keyStepType(n)
	case KindAggregate:
		return d.groupType(n)
	case KindFilter, KindMap, KindFlatMap, KindSetHeaders, KindDropHeaders, KindRoute, KindDedupe, KindJoin:
		return d.keyInput(n)
	}
	return nil, d.errf(n.Pos, d.key(n), "a %s step's key type cannot be derived", n.Kind)
}

// keyEnv is the typed environment of the records n reads, for keys: a
// value whose type cannot be derived is dyn there.
func (d *deriver) keyEnv(n *Node) (*typedEnv, error) {
	kt, err := d.keyInput(n)
	if err != nil {
		return nil, err
	}
	saved := d.part
	d.part = format.PartValue
	vt, err := d.input(n)
	d.part = saved
	if err != nil {
		vt = nil
	}
	return d.c.env(&SourceTypes{Key: kt, Value: vt})
}

func (d *deriver) keyStepType(n *Node) (*format.Type, error) {
	env, err := d.keyEnv(n)
	if err != nil {
		return nil, err
	}
	return d.exprType(env, n.Expr, d.key(n)+".key", d.recordName(n))
}

// exprType is the type of e, a map literal a record called name.
func (d *deriver) exprType(env *typedEnv, e *Expr, key, name string) (*format.Type, error) {
	a, err := d.compile(env, e, key)
	if err != nil {
		return nil, err
	}
	native := a.NativeRep()
	root := native.Expr()
	if root.Kind() == ast.MapKind && allStringKeys(root) {
		return d.literal(e, native, root, env.prov, name, key)
	}
	t, why := d.exprType2(env.prov, native, root)
	if t == nil {
		return nil, d.errf(e.Pos, key, "it is %s: convert it (int(...), double(...), string(...)) or make it a map literal so its type is known", why)
	}
	return t, nil
}

// groupType is the key of an aggregate's rows (processor/aggregate.go
// rowOf): the group value, or a record of the group columns (and
// window_start, as text).
func (d *deriver) groupType(n *Node) (*format.Type, error) {
	agg := n.Aggregate
	env, err := d.keyEnv(n)
	if err != nil {
		return nil, err
	}
	rec := &format.Type{Kind: format.KindRecord, Name: d.recordName(n) + "_key"}
	for _, g := range agg.GroupBy {
		k := d.key(n) + ".aggregate.group_by"
		if len(agg.GroupBy) > 1 || g.Name != SingleGroupColumn {
			k += "." + g.Name
		}
		a, err := d.compile(env, g.Expr, k)
		if err != nil {
			return nil, err
		}
		t, why := d.fromCEL(env.prov, a.OutputType())
		if t == nil {
			return nil, d.errf(g.Expr.Pos, k, "it is %s: convert it (int(...), double(...), string(...)) so its type is known", why)
		}
		d.madeAt(rec.Name, g.Name, g.Expr.Pos, k)
		rec.Fields = append(rec.Fields, format.Field{Name: g.Name, Type: t})
	}
	if agg.Window != nil {
		rec.Fields = append(rec.Fields, format.Field{Name: "window_start", Type: &format.Type{Kind: format.KindString}})
	} else if len(rec.Fields) == 1 {
		return rec.Fields[0].Type, nil
	}
	return rec, nil
}

// joinType is the type of a join's output: its output expression over
// value (this stream's, or the from table's rows), key and table (the
// table's rows: a table source's schema or an aggregate's rows) or other
// (the other stream's values). A side that may be missing (table or
// other in a left join, either in an outer one) is typed as its record
// with every field nullable: CEL has no nullable record (it would be
// dyn), but compares a record with null, so table == null ? null :
// table.name is a nullable string, as it is at run time.
func (d *deriver) joinType(n *Node) (*format.Type, error) {
	j := n.Join
	var vt *format.Type
	first := true
	for _, in := range n.Inputs {
		if in == j.Stream {
			continue
		}
		t, err := d.value(in)
		if err != nil {
			return nil, err
		}
		if !first && t != vt {
			return nil, d.errf(n.Pos, d.key(n), "its input %s merges steps of different types: the type is dyn", n.Name)
		}
		vt, first = t, false
	}
	name, side := VarTable, j.Table
	if j.Stream != nil {
		name, side = VarOther, j.Stream
	}
	var ot *format.Type
	if side != nil {
		var err error
		if ot, err = d.value(side); err != nil {
			return nil, err
		}
	}
	if j.Type == JoinLeft || j.Type == JoinOuter {
		ot = fieldsNullable(ot)
	}
	if j.Type == JoinOuter {
		vt = fieldsNullable(vt)
	}
	base, err := types.NewRegistry()
	if err != nil {
		return nil, err
	}
	prov := &recordProvider{Registry: base, records: map[string]*format.Type{}}
	kt, vct, oct := prov.celType(d.knownKey(n)), prov.celType(vt), prov.celType(ot)
	env, err := newEnv(kt, vct, cel.CustomTypeProvider(prov), cel.Variable(name, oct))
	if err != nil {
		return nil, err
	}
	return d.exprType(&typedEnv{env: env, prov: prov}, j.Output, d.key(n)+".join.output", d.recordName(n))
}

// exprType2 is the format type of subexpression v of native: as its CEL
// type says, except that c ? null : x (or c ? x : null) is x's type made
// nullable, where CEL's type of it is null.
func (d *deriver) exprType2(prov *recordProvider, native *ast.AST, v ast.Expr) (*format.Type, string) {
	if v.Kind() == ast.CallKind && v.AsCall().FunctionName() == operators.Conditional && len(v.AsCall().Args()) == 3 {
		a, b := v.AsCall().Args()[1], v.AsCall().Args()[2]
		if isNullLiteral(a) {
			a, b = b, a
		}
		if isNullLiteral(b) && !isNullLiteral(a) {
			t, why := d.exprType2(prov, native, a)
			if t == nil {
				return nil, why
			}
			return nullable(t), ""
		}
	}
	return d.fromCEL(prov, native.GetType(v.ID()))
}

func isNullLiteral(e ast.Expr) bool {
	return e.Kind() == ast.LiteralKind && e.AsLiteral() == types.NullValue
}

// fedBy is the type of the values in sends n: its output's, or for the
// sink of a window's late records (late: {to: SINK}) the window's input
// records'.
func (d *deriver) fedBy(n, in *Node) (*format.Type, error) {
	if in.Kind != KindAggregate || in.Aggregate.Window == nil || in.Aggregate.Window.LateTo != n {
		return d.value(in)
	}
	if !lateOnly(n, in) {
		return nil, d.errf(n.Pos, d.key(n), "it gets both the rows of %s and its late records, which are of different types", in.Name)
	}
	return d.input(in)
}

// lateOnly reports whether sink n gets only the late records of in.
func lateOnly(n, in *Node) bool {
	return in.Aggregate != nil && in.Aggregate.Window != nil && in.Aggregate.Window.LateTo == n && !slices.Contains(in.Outputs, n)
}

// fieldAt is where a derived record's field was made.
type fieldAt struct {
	pos Pos
	key string
}

func (d *deriver) madeAt(record, field string, pos Pos, key string) {
	if d.fieldPos == nil {
		d.fieldPos = map[[2]string]fieldAt{}
	}
	d.fieldPos[[2]string{record, field}] = fieldAt{pos, key}
}

// SinkSchema is the schema derived for part of sink's records, in the
// sink's format there (avro, protobuf or json_schema; see
// format.DeriveSchema), of the type SinkPartType derives. A field the
// format has no type for is an *Error at the expression that made it. A
// protobuf sink's message option, when set, names the message.
func SinkSchema(t *Topology, sources map[string]SourceTypes, sink *Node, part format.Part) (string, error) {
	typ, d, err := newDeriver(t, sources, sink, part)
	if err != nil {
		return "", err
	}
	f := sink.Format
	if part == format.PartKey {
		f = sink.KeyFormat
	}
	root := ""
	if msg, ok := f.Options["message"].(string); ok && f.Name == format.Protobuf && typ != nil && typ.Kind == format.KindRecord {
		root = typ.Name
		typ = messageNamed(typ, msg)
	}
	text, err := format.DeriveSchema(f.Name, part, typ)
	var fe *format.FieldError
	if errors.As(err, &fe) {
		rec := fe.Record
		if root != "" && rec == typ.Name {
			rec = root
		}
		if at, ok := d.fieldPos[[2]string{rec, fe.Field}]; ok {
			return "", d.errf(at.pos, at.key, "%v", fe.Err)
		}
	}
	return text, err
}

// messageNamed is record t renamed after a protobuf sink's message
// option (a full name, or a name in the derived file's package), so that
// the derived file has the message the sink writes, and the record_name
// subject strategies name the subject after it.
func messageNamed(t *format.Type, msg string) *format.Type {
	msg = strings.TrimPrefix(msg, ".")
	if !strings.Contains(msg, ".") {
		if i := strings.LastIndexByte(t.Name, '.'); i >= 0 {
			msg = t.Name[:i] + "." + msg
		}
	}
	c := *t
	c.Name = msg
	return &c
}

// fieldsNullable is record t with every field nullable (t itself when it
// is not a record).
func fieldsNullable(t *format.Type) *format.Type {
	if t == nil || t.Kind != format.KindRecord {
		return t
	}
	c := *t
	c.Fields = make([]format.Field, len(t.Fields))
	for i, f := range t.Fields {
		c.Fields[i] = format.Field{Name: f.Name, Type: nullable(f.Type)}
	}
	return &c
}
