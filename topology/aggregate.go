package topology

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"gopkg.in/yaml.v3"

	"github.com/exactly-dev/exactly/internal/suggest"
)

// ChangelogTopic is the internal topic backing the state store of aggregate
// step node in pipeline.
func ChangelogTopic(pipeline, node string) string {
	return pipeline + "-" + node + "-changelog"
}

// RepartitionTopic is the internal topic through which aggregate step node
// in pipeline sends records to the instance owning their group, when
// [Aggregate.GroupByKey] is false.
func RepartitionTopic(pipeline, node string) string {
	return pipeline + "-" + node + "-repartition"
}

// internalTopics lists the topics an aggregate step owns, with what each is
// for. Both are reserved whether or not the step repartitions, so that
// editing group_by never makes a topic clash appear.
func internalTopics(pipeline, node string) [][2]string {
	return [][2]string{
		{ChangelogTopic(pipeline, node), "changelog"},
		{RepartitionTopic(pipeline, node), "repartition"},
	}
}

// SingleGroupColumn is the name of the group column of an aggregate step
// whose group_by is a single expression.
const SingleGroupColumn = "key"

// Column names become fields of JSON documents and, likely, of database
// tables downstream, so they follow SQL's unquoted identifier rules.
var columnName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,63}$`)

// Kafka's limit on the length of topic names.
const maxTopicLen = 249

// Most decimal places a column may print (an int64 holds 18 digits).
const maxScale = 18

var (
	aggFuncs = []string{string(AggCount), string(AggSum), string(AggMin), string(AggMax), string(AggAvg), string(AggFirst), string(AggLast), string(AggCountDistinct)}
	emits    = []string{string(EmitOnUpdate), string(EmitOnCommit), string(EmitOnClose)}
)

// scaled lists the functions whose output is a number that scale applies
// to, and whose of must be numeric.
var scaled = []AggFunc{AggSum, AggAvg, AggMin, AggMax}

var wantNumeric = want{"numeric (int, uint or double)", func(t *cel.Type) bool {
	switch t.Kind() {
	case types.IntKind, types.UintKind, types.DoubleKind:
		return true
	}
	return isDyn(t)
}}

// aggregate decodes an aggregate operation.
func (p *parser) aggregate(v *yaml.Node, key string) *Aggregate {
	f := p.mapping(v, key, "aggregate", aggregateKeys)
	if f == nil {
		return nil
	}
	a := &Aggregate{Emit: EmitOnUpdate}
	// A misspelt key was already reported with a suggestion; reporting
	// the key it was meant to be as missing too would be noise.
	require := func(k string) *yaml.Node {
		if slices.Contains(f.hints, k) {
			return f.get(k)
		}
		return f.require(k)
	}
	groupNames := map[string]Pos{} // group column name -> position of its name
	if g := require("group_by"); g != nil {
		a.GroupBy, a.GroupByKey = p.groupBy(g, sub(key, "group_by"), groupNames)
	}
	if c := require("columns"); c != nil {
		a.Columns = p.columns(c, sub(key, "columns"), groupNames)
	}
	if e := f.get("emit"); e != nil {
		ekey := sub(key, "emit")
		if s, ok := p.str(e, ekey); ok {
			if slices.Contains(emits, s) {
				a.Emit = Emit(s)
			} else {
				p.errorf(p.pos(e), ekey, "unknown emit %q (want on_update, on_commit or on_close)%s", s, suggest.DidYouMean(s, emits))
			}
		}
	}
	if w := f.get("window"); w != nil {
		a.Window = p.window(w, sub(key, "window"))
	}
	if a.Emit == EmitOnClose && a.Window == nil {
		p.errorf(f.pos, sub(key, "emit"), "emit on_close needs a window: only windows close")
	}
	return a
}

// groupBy decodes group_by: one expression, whose column is named "key", or
// a mapping of column name to expression. It records the column names in
// names and reports whether group_by is exactly the expression key.
func (p *parser) groupBy(v *yaml.Node, key string, names map[string]Pos) ([]GroupColumn, bool) {
	d := deref(v)
	switch {
	case d.Kind == yaml.MappingNode:
		f := p.mapping(v, key, "group_by", nil)
		if len(f.order) == 0 {
			p.errorf(f.pos, key, "group_by needs at least one column")
		}
		var cols []GroupColumn
		for _, name := range f.order {
			ckey := sub(key, name)
			p.checkColumnName(f.keys[name], name, ckey)
			names[name] = p.pos(f.keys[name])
			cols = append(cols, GroupColumn{Name: name, Expr: p.expr(f.vals[name], ckey, wantAny, fmt.Sprintf("group column %q", name))})
		}
		return cols, false
	case d.Kind == yaml.ScalarNode && !isNull(d):
		names[SingleGroupColumn] = Pos{}
		x := p.expr(v, key, wantAny, "group_by")
		return []GroupColumn{{Name: SingleGroupColumn, Expr: x}}, strings.TrimSpace(d.Value) == VarKey
	}
	p.errorf(p.pos(v), key, "group_by must be an expression or a mapping of column names to expressions, got %s", describe(v))
	return nil, false
}

// columns decodes the aggregate columns. groups holds the group column
// names, which share the output row.
func (p *parser) columns(v *yaml.Node, key string, groups map[string]Pos) []Column {
	f := p.mapping(v, key, "columns", nil)
	if f == nil {
		return nil
	}
	if len(f.order) == 0 {
		p.errorf(f.pos, key, "columns needs at least one column")
	}
	var cols []Column
	for _, name := range f.order {
		ckey := sub(key, name)
		k := f.keys[name]
		p.checkColumnName(k, name, ckey)
		if at, clash := groups[name]; clash {
			if at.Line == 0 {
				p.errorf(p.pos(k), ckey, "column %q clashes with the group column %q of a single-expression group_by; rename the column or write group_by as a mapping of column names to expressions", name, SingleGroupColumn)
			} else {
				p.errorf(p.pos(k), ckey, "column %q is also a group column, defined at line %d; the columns of the output row need distinct names", name, at.Line)
			}
		}
		if c, ok := p.column(f.vals[name], ckey, name); ok {
			cols = append(cols, c)
		}
	}
	return cols
}

func (p *parser) checkColumnName(k *yaml.Node, name, key string) {
	if !columnName.MatchString(name) {
		p.errorf(p.pos(k), key, "invalid column name %q: use a letter or '_' followed by up to 63 letters, digits or '_'", name)
	}
}

// column decodes one aggregate column spec. It returns false when the spec
// is unusable (not a mapping, no valid fn).
func (p *parser) column(v *yaml.Node, key, name string) (Column, bool) {
	c := Column{Name: name, Scale: -1}
	if d := deref(v); d.Kind == yaml.ScalarNode && slices.Contains(aggFuncs, d.Value) {
		p.errorf(p.pos(v), key, "column %q must be a mapping, got a string; write {fn: %s}", name, d.Value)
		return c, false
	}
	f := p.mapping(v, key, fmt.Sprintf("column %q", name), columnKeys)
	if f == nil {
		return c, false
	}
	ok := false
	var fnv *yaml.Node
	if slices.Contains(f.hints, "fn") {
		fnv = f.get("fn")
	} else {
		fnv = f.require("fn")
	}
	if fnv != nil {
		if s, isStr := p.str(fnv, sub(key, "fn")); isStr {
			if slices.Contains(aggFuncs, s) {
				c.Func, ok = AggFunc(s), true
				c.fnPos, c.fnKey = p.pos(fnv), sub(key, "fn")
			} else {
				p.errorf(p.pos(fnv), sub(key, "fn"), "unknown fn %q (want count, count_distinct, sum, min, max, avg, first or last)%s", s, suggest.DidYouMean(s, aggFuncs))
			}
		}
	}

	if o := f.get("of"); o != nil {
		w, subject := wantAny, "of"
		if slices.Contains(scaled, c.Func) {
			w, subject = wantNumeric, "of for "+string(c.Func)
		}
		c.Of = p.expr(o, sub(key, "of"), w, subject)
		if c.Of != nil {
			c.OfPath = valuePath(c.Of.Text)
		}
	} else if ok && c.Func != AggCount && !slices.Contains(f.hints, "of") {
		p.errorf(f.pos, sub(key, "of"), "missing required key %q: %s needs an expression to aggregate (only count may omit it)", "of", c.Func)
	}
	if w := f.get("where"); w != nil {
		c.Where = p.expr(w, sub(key, "where"), wantBool, "where")
	}
	if s := f.get("scale"); s != nil {
		skey := sub(key, "scale")
		if n, valid := p.scale(s, skey); valid {
			if ok && !slices.Contains(scaled, c.Func) {
				p.errorf(p.pos(s), skey, "scale is only allowed for sum, avg, min and max, not %s", c.Func)
			} else {
				c.Scale = n
			}
		}
	}
	return c, ok
}

// scale decodes a scale: an integer from 0 to maxScale.
func (p *parser) scale(v *yaml.Node, key string) (int, bool) {
	d := deref(v)
	got := describe(v)
	if d.Kind == yaml.ScalarNode && d.ShortTag() == "!!int" {
		var n int
		if err := d.Decode(&n); err == nil && n >= 0 && n <= maxScale {
			return n, true
		}
		got = d.Value
	}
	p.errorf(p.pos(v), key, "scale must be an integer from 0 to %d, got %s", maxScale, got)
	return 0, false
}

// checkInternalTopics checks the topics each aggregate step owns: they must
// be valid Kafka topic names and must not be a topic the pipeline reads or
// writes. pipeline is the pipeline name, "" when it is unusable (already
// reported).
func (p *parser) checkInternalTopics(pipeline string) {
	if !pipelineName.MatchString(pipeline) {
		return
	}
	owner := map[string]*entry{}
	purpose := map[string]string{}
	for _, e := range p.steps {
		if (!e.node.Kind.Stateful() && e.node.Kind != KindJoin) || !e.named || !nodeName.MatchString(e.node.Name) {
			continue
		}
		// The repartition topic has the longer name.
		if n := len(RepartitionTopic(pipeline, e.node.Name)); n > maxTopicLen {
			p.errorf(e.namePos, e.path+".name", "%s step %q needs topics named <pipeline>-<step>-repartition, which would be %d characters long, more than Kafka's %d; shorten the pipeline or step name", e.node.Kind, e.node.Name, n, maxTopicLen)
		}
		for _, it := range internalTopics(pipeline, e.node.Name) {
			owner[it[0]], purpose[it[0]] = e, it[1]
		}
	}
	for _, e := range slices.Concat(p.sources, p.sinks) {
		if s := owner[e.node.Topic]; s != nil {
			p.errorf(e.topic, e.path+".topic", "topic %q is the %s topic of %s step %q; use another topic or rename the step", e.node.Topic, purpose[e.node.Topic], s.node.Kind, s.node.Name)
		}
	}
}

// resolveGroupByKey clears GroupByKey on aggregate steps whose input
// records may no longer be partitioned by their key: a key step or a
// repartitioning aggregate step upstream changed it, or the records come
// from several topics, whose partitions need not line up. steps must be in
// topological order.
func (p *parser) resolveGroupByKey(steps []*Node) {
	// Whether the records come from one topic is all that matters, so
	// each node keeps the first upstream topic and whether there are
	// more: constant work per edge, where the lists of topics cost the
	// number of topics per edge.
	type upstream struct {
		topic string
		many  bool
	}
	rekeyed := map[*Node]bool{} // output key may differ from the source record key
	topics := map[*Node]upstream{}
	add := func(n *Node, u upstream) {
		switch cur, ok := topics[n]; {
		case !ok:
			topics[n] = u
		case u.many || cur.topic != u.topic:
			topics[n] = upstream{cur.topic, true}
		}
	}
	for _, n := range steps {
		for _, in := range n.Inputs {
			p.graphOps++
			switch {
			case in.Kind == KindSource:
				add(n, upstream{topic: in.Topic})
				continue
			case in.Kind == KindKey, rekeyed[in]:
				rekeyed[n] = true
			case in.Repartitioned():
				rekeyed[n] = true
			}
			if u, ok := topics[in]; ok {
				add(n, u)
			}
		}
		if a := n.Aggregate; a != nil && a.GroupByKey && (rekeyed[n] || topics[n].many) {
			a.GroupByKey = false
		}
		if n.StreamJoin() && rekeyed[n] {
			// Either side rekeyed: both go through the step's
			// repartition topic, keyed by the join key.
			n.Join.Repartition = true
		}
		if j := n.Join; j != nil && j.Table != nil && !j.Table.Global && (rekeyed[n] || topics[n].many) {
			// Partition p of the input and of the table must hold the
			// same keys: regroup the records by their key first.
			j.Repartition = true
		}
	}
}

// fieldSelect matches an expression that only selects a field of the
// value: value.a or value.a.b.
var fieldSelect = regexp.MustCompile(`^\s*value((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*$`)

// valuePath returns the field path an expression selects from the value,
// or nil.
func valuePath(text string) []string {
	m := fieldSelect.FindStringSubmatch(text)
	if m == nil {
		return nil
	}
	return strings.Split(m[1][1:], ".")
}
