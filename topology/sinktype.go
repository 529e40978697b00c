package topology

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"

	"github.com/exactly-dev/exactly/format"
)

// SinkType derives the type of the values that reach sink, from the CEL
// types of the steps before it, for a sink whose schema is neither given
// nor registered (an avro sink writes with a schema made from it). A map
// step's value is a record of its map literal's fields, each of its
// expression's type; an aggregate's rows are a record of the group
// columns, window_start and window_end, then the columns (count and
// count_distinct: int; sum, avg, min and max with scale: decimal of that
// scale; min, max, first and last: their of's type; nullable with where
// or an of that may be null); a join's is its output
// expression's (see SinkPartType). Filters, keys, headers, routes and
// dedupes keep the type they get; a source's is its schema's
// (sources, as CheckTypes takes them). A value whose type is too dynamic
// to write down (dyn, or a step it cannot see through) is an *Error at
// the expression or the sink that made it so, saying what to change.
func SinkType(t *Topology, sources map[string]SourceTypes, sink *Node) (*format.Type, error) {
	return SinkPartType(t, sources, sink, format.PartValue)
}

type deriver struct {
	c    *typeChecker
	sink *Node
	memo map[*Node]*format.Type
	// part is the part of the sink's records derived, format the name
	// of its format there (avro has no duration and no decimal of
	// varying scale; protobuf and json_schema have).
	part    format.Part
	format  string
	keyMemo map[*Node]*format.Type
	// fieldPos is where each record field derived was made (by record
	// name and field), for errors about it from the format.
	fieldPos map[[2]string]fieldAt
}

func (d *deriver) errf(pos Pos, key, f string, args ...any) *Error {
	if d.part == format.PartKey {
		return &Error{Pos: pos, Key: key, Msg: fmt.Sprintf("sink %s has no key schema given or registered, and ", d.sink.Name) + fmt.Sprintf(f, args...) + "; give the sink's key_format a schema (schema or schema_file), or register one under its key subject"}
	}
	return &Error{Pos: pos, Key: key, Msg: fmt.Sprintf("sink %s has no schema given or registered, and ", d.sink.Name) + fmt.Sprintf(f, args...) + "; give the sink a schema (schema or schema_file), or register one under its subject"}
}

// value is the type of the values n emits (of its input for a sink), nil
// when dyn.
func (d *deriver) value(n *Node) (*format.Type, error) {
	if t, ok := d.memo[n]; ok {
		return t, nil
	}
	t, err := d.derive(n)
	if err != nil {
		return nil, err
	}
	d.memo[n] = t
	return t, nil
}

func (d *deriver) input(n *Node) (*format.Type, error) {
	var got *format.Type
	for i, in := range n.Inputs {
		t, err := d.fedBy(n, in)
		if err != nil {
			return nil, err
		}
		if i > 0 && t != got {
			return nil, d.errf(n.Pos, d.key(n), "its input %s merges steps of different types (%s and %s): the type is dyn", n.Name, n.Inputs[0].Name, in.Name)
		}
		got = t
	}
	return got, nil
}

func (d *deriver) key(n *Node) string {
	for i, s := range d.c.t.Steps {
		if s == n {
			return fmt.Sprintf("steps[%d]", i)
		}
	}
	for i, s := range d.c.t.Sinks {
		if s == n {
			return fmt.Sprintf("sinks[%d].format", i)
		}
	}
	for i, s := range d.c.t.Sources {
		if s == n {
			return fmt.Sprintf("sources[%d].format", i)
		}
	}
	return n.Name
}

func (d *deriver) derive(n *Node) (*format.Type, error) {
	switch n.Kind {
	case KindSource:
		// nil (dyn) when its format has no schema: a map after it may
		// still make typed fields of it.
		return d.c.sources[n.Name].Value, nil
	case KindSink:
		t, err := d.input(n)
		if err == nil && t == nil {
			err = d.errf(n.Pos, d.key(n), "the values reaching it are dyn (a source whose format has no schema, not passed through a map with typed fields)")
		}
		return t, err
	case KindFilter, KindKey, KindSetHeaders, KindDropHeaders, KindRoute, KindDedupe:
		return d.input(n)
	case KindMap:
		return d.mapType(n)
	case KindAggregate:
		return d.aggregateType(n)
	case KindJoin:
		return d.joinType(n)
	}
	return nil, d.errf(n.Pos, d.key(n), "a %s step's output type cannot be derived", n.Kind)
}

// env is the typed environment of the values n reads.
func (d *deriver) env(n *Node) (*typedEnv, error) {
	in, err := d.input(n)
	if err != nil {
		return nil, err
	}
	return d.c.env(&SourceTypes{Key: d.knownKey(n), Value: in})
}

func (d *deriver) compile(env *typedEnv, e *Expr, key string) (*cel.Ast, error) {
	a, iss := compileExact(env.env, e.Text) // a decimal compared with a number is no error
	if iss.Err() != nil {
		msg, _, _ := strings.Cut(iss.Err().Error(), "\n")
		return nil, &Error{Pos: e.Pos, Key: key, Msg: "against the schema: " + msg}
	}
	return a, nil
}

func (d *deriver) mapType(n *Node) (*format.Type, error) {
	env, err := d.env(n)
	if err != nil {
		return nil, err
	}
	key := d.key(n) + ".map"
	a, err := d.compile(env, n.Expr, key)
	if err != nil {
		return nil, err
	}
	native := a.NativeRep()
	root := native.Expr()
	if root.Kind() != ast.MapKind {
		return nil, d.errf(n.Expr.Pos, key, "the map's value is not a map literal ({\"field\": expression, ...}), so its fields are not known")
	}
	return d.literal(n.Expr, native, root, env.prov, d.recordName(n), key)
}

// literal is the record type of map literal m (its keys constant
// strings), a nested map literal a nested record named after its field.
func (d *deriver) literal(e *Expr, native *ast.AST, m ast.Expr, prov *recordProvider, name, key string) (*format.Type, error) {
	rec := &format.Type{Kind: format.KindRecord, Name: name}
	for _, ent := range m.AsMap().Entries() {
		me := ent.AsMapEntry()
		k := me.Key()
		if k.Kind() != ast.LiteralKind || k.AsLiteral().Type() != types.StringType {
			return nil, d.errf(d.at(e, native, k.ID()), key, "a field name of the map literal is not a constant string, so its fields are not known")
		}
		field := string(k.AsLiteral().(types.String))
		v := me.Value()
		var ft *format.Type
		if v.Kind() == ast.MapKind && allStringKeys(v) {
			var err error
			if ft, err = d.literal(e, native, v, prov, name+"_"+avroName(field), key); err != nil {
				return nil, err
			}
		} else {
			var why string
			if ft, why = d.exprType2(prov, native, v); ft == nil {
				return nil, d.errf(d.at(e, native, k.ID()), key, "field %q is %s: convert it (int(...), double(...), string(...)) so its type is known", field, why)
			}
		}
		if me.IsOptional() {
			ft = nullable(ft)
		}
		d.madeAt(name, field, d.at(e, native, k.ID()), key)
		rec.Fields = append(rec.Fields, format.Field{Name: field, Type: ft})
	}
	return rec, nil
}

func allStringKeys(m ast.Expr) bool {
	for _, ent := range m.AsMap().Entries() {
		k := ent.AsMapEntry().Key()
		if k.Kind() != ast.LiteralKind || k.AsLiteral().Type() != types.StringType {
			return false
		}
	}
	return true
}

// at is the file position of the subexpression id of e.
func (d *deriver) at(e *Expr, native *ast.AST, id int64) Pos {
	if loc := native.SourceInfo().GetStartLocation(id); loc.Line() == 1 && loc.Column() >= 0 {
		return columnIn(e, loc.Column())
	}
	return e.Pos
}

func (d *deriver) aggregateType(n *Node) (*format.Type, error) {
	env, err := d.env(n)
	if err != nil {
		return nil, err
	}
	agg := n.Aggregate
	rec := &format.Type{Kind: format.KindRecord, Name: d.recordName(n)}
	typeOf := func(e *Expr, key string) (*format.Type, error) {
		a, err := d.compile(env, e, key)
		if err != nil {
			return nil, err
		}
		t, why := d.fromCEL(env.prov, a.OutputType())
		if t == nil {
			return nil, d.errf(e.Pos, key, "it is %s: convert it (int(...), double(...), string(...)) so its type is known", why)
		}
		return t, nil
	}
	base := d.key(n) + ".aggregate"
	for _, g := range agg.GroupBy {
		k := base + ".group_by"
		if len(agg.GroupBy) > 1 || g.Name != SingleGroupColumn {
			k += "." + g.Name
		}
		t, err := typeOf(g.Expr, k)
		if err != nil {
			return nil, err
		}
		d.madeAt(rec.Name, g.Name, g.Expr.Pos, k)
		rec.Fields = append(rec.Fields, format.Field{Name: g.Name, Type: t})
	}
	if agg.Window != nil {
		// Window bounds are written as RFC 3339 text (as in JSON).
		rec.Fields = append(rec.Fields,
			format.Field{Name: "window_start", Type: &format.Type{Kind: format.KindString}},
			format.Field{Name: "window_end", Type: &format.Type{Kind: format.KindString}})
	}
	for _, col := range agg.Columns {
		k := base + ".columns." + col.Name
		var t *format.Type
		switch {
		case col.Func == AggCount || col.Func == AggCountDistinct:
			// count_distinct counts too: an int, not its of's type.
			t = &format.Type{Kind: format.KindInt}
		case col.Scale >= 0 && (col.Func == AggSum || col.Func == AggAvg || col.Func == AggMin || col.Func == AggMax):
			t = &format.Type{Kind: format.KindDecimal, Scale: col.Scale}
		case (col.Func == AggSum || col.Func == AggAvg) && d.format != format.Avro:
			// Number, its scale per value: confluent.type.Decimal
			// and JSON numbers carry it.
			t = &format.Type{Kind: format.KindDecimal}
		case col.Func == AggSum || col.Func == AggAvg:
			return nil, d.errf(col.Of.Pos, k, "a %s without scale has as many decimal places as its inputs, which no Avro decimal holds: give the column a scale", col.Func)
		default:
			if t, err = typeOf(col.Of, k+".of"); err != nil {
				return nil, err
			}
		}
		if col.Where != nil && col.Func != AggCount && col.Func != AggCountDistinct {
			t = nullable(t) // no value passed where: null, as in SQL
		}
		if col.Of != nil && col.Func != AggCount && col.Func != AggCountDistinct && !t.Nullable {
			// Aggregates skip nulls, so a group that has seen only
			// nulls has a null sum, avg, min or max (SQL).
			a, err := d.compile(env, col.Of, k+".of")
			if err != nil {
				return nil, err
			}
			if ot := a.OutputType(); ot.Kind() == types.DynKind || ot.Kind() == types.NullTypeKind || isNullableWrapper(ot) {
				t = nullable(t)
			}
		}
		d.madeAt(rec.Name, col.Name, col.fnPos, k)
		rec.Fields = append(rec.Fields, format.Field{Name: col.Name, Type: t})
	}
	return rec, nil
}

func nullable(t *format.Type) *format.Type {
	c := *t
	c.Nullable = true
	return &c
}

// fromCEL is fromCEL for d's format: protobuf and json_schema have
// durations, and decimals of any scale (confluent.type.Decimal carries
// its scale per value, a JSON number its digits).
func (d *deriver) fromCEL(prov *recordProvider, ct *cel.Type) (*format.Type, string) {
	return fromCEL(prov, ct, d.format != format.Avro)
}

// fromCEL is the format type of CEL type ct, or nil and why not; flexible:
// the format has durations and decimals of any scale.
func fromCEL(prov *recordProvider, ct *cel.Type, flexible bool) (*format.Type, string) {
	t, why := fromCELType(prov, ct, flexible)
	if t != nil && !t.Nullable && isNullableWrapper(ct) {
		t = nullable(t)
	}
	return t, why
}

// isNullableWrapper: ct is a nullable wrapper (cel.NullableType, as
// recordProvider.celType types a field that is a union with null in its
// schema). A wrapper has its value's kind and name, so only its accepting
// null tells it apart: value.country of ["null", "string"] must derive a
// nullable string, or a record whose country is null cannot be written
// (and protobuf would write "").
func isNullableWrapper(ct *cel.Type) bool {
	switch ct.Kind() {
	case types.BoolKind, types.IntKind, types.UintKind, types.DoubleKind, types.StringKind, types.BytesKind:
		return ct.IsAssignableType(cel.NullType)
	}
	return false
}

func fromCELType(prov *recordProvider, ct *cel.Type, flexible bool) (*format.Type, string) {
	if ct == nil {
		return nil, "of no known type"
	}
	switch ct.Kind() {
	case types.BoolKind:
		return &format.Type{Kind: format.KindBool}, ""
	case types.IntKind, types.UintKind:
		return &format.Type{Kind: format.KindInt}, ""
	case types.DoubleKind:
		return &format.Type{Kind: format.KindDouble}, ""
	case types.StringKind:
		return &format.Type{Kind: format.KindString}, ""
	case types.BytesKind:
		return &format.Type{Kind: format.KindBytes}, ""
	case types.TimestampKind:
		return &format.Type{Kind: format.KindTimestamp}, ""
	case types.DurationKind:
		if flexible {
			return &format.Type{Kind: format.KindDuration}, ""
		}
	case types.NullTypeKind:
		return &format.Type{Kind: format.KindNull, Nullable: true}, ""
	case types.ListKind:
		e, why := fromCEL(prov, ct.Parameters()[0], flexible)
		if e == nil {
			return nil, "a list of values " + why
		}
		return &format.Type{Kind: format.KindList, Elem: e}, ""
	case types.MapKind:
		if ct.Parameters()[0].Kind() != types.StringKind {
			return nil, "a map whose keys are not strings"
		}
		e, why := fromCEL(prov, ct.Parameters()[1], flexible)
		if e == nil {
			return nil, "a map of values " + why
		}
		return &format.Type{Kind: format.KindMap, Elem: e}, ""
	case types.StructKind:
		if r, ok := prov.records[ct.TypeName()]; ok {
			return r, ""
		}
	case types.OpaqueKind:
		if ct.TypeName() == DecimalType.TypeName() {
			if flexible {
				return &format.Type{Kind: format.KindDecimal}, ""
			}
			return nil, "a decimal, whose scale only a schema fixes"
		}
	}
	// Nullable wrappers (a union with null in the schema).
	for _, w := range []struct {
		t *cel.Type
		k format.Kind
	}{{cel.NullableType(cel.BoolType), format.KindBool}, {cel.NullableType(cel.IntType), format.KindInt}, {cel.NullableType(cel.DoubleType), format.KindDouble}, {cel.NullableType(cel.StringType), format.KindString}, {cel.NullableType(cel.BytesType), format.KindBytes}} {
		if ct.IsExactType(w.t) {
			return &format.Type{Kind: w.k, Nullable: true}, ""
		}
	}
	if ct.Kind() == types.DurationKind {
		return nil, "a duration, which the Avro sink has no type for"
	}
	return nil, "dyn (its type is only known per record)"
}

// recordName is the Avro full name of the record a step makes:
// <pipeline>.<step>, made Avro names.
func (d *deriver) recordName(n *Node) string {
	return avroName(d.c.t.Name) + "." + avroName(n.Name)
}

var notAvroName = regexp.MustCompile(`[^A-Za-z0-9_]`)

// avroName turns a node name into an Avro name ([A-Za-z_][A-Za-z0-9_]*).
func avroName(s string) string {
	s = notAvroName.ReplaceAllString(s, "_")
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		s = "_" + s
	}
	return s
}
