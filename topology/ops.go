package topology

import (
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// opSpec is one operation a step can do: its key in a step, what it is
// for, how its value is decoded and checked, and what describe shows.
// Adding an operation is one entry here (with its Kind and Node fields)
// plus its runtime step in package processor.
type opSpec struct {
	kind Kind
	// summary is the operation's one-line description (describe, tools).
	summary string
	// doc is the operation's entry in the reference (doc.go): what its
	// value is and does. It names every key in keys.
	doc string
	// keys are the keys of the operation's mapping, when its value is
	// one (for the reference's coverage test).
	keys []string
	// decode decodes the operation's value into e's node; when primary
	// is false it only checks it (a step with several operations).
	decode func(p *parser, e *entry, v *yaml.Node, key string, primary bool)
	// describe writes what describe shows under the step; s is its plan
	// when it is stateful.
	describe func(p *printer, n *Node, s *StatefulStep)
}

// opSpecs are the operations, in the reference's order.
var opSpecs = []opSpec{
	{kind: KindFilter, summary: "keeps the records for which a bool expression is true", doc: "a bool expression; records for which it is false are dropped.", decode: decodeExpr(KindFilter, wantBool), describe: describeExpr},
	{kind: KindMap, summary: "replaces the value by an expression's result", doc: "an expression whose result becomes the record value.", decode: decodeExpr(KindMap, wantAny), describe: describeExpr},
	{kind: KindFlatMap, summary: "replaces the record by one record per element of a list expression", doc: "a list expression; each element becomes the value of one output record (an empty list drops the record).", decode: decodeExpr(KindFlatMap, wantList), describe: describeExpr},
	{kind: KindKey, summary: "replaces the key by an expression's result", doc: "an expression whose result becomes the record key.", decode: decodeExpr(KindKey, wantAny), describe: describeExpr},
	{kind: KindRoute, summary: "sends each record to the first branch whose when is true", doc: "a non-empty list of branches, each with an optional when (a bool expression) and a to (the name of a step or sink); see below.", keys: branchKeys,
		decode: func(p *parser, e *entry, v *yaml.Node, key string, primary bool) {
			routes, tos := p.routes(v, key)
			if primary {
				e.node.Routes, e.tos = routes, tos
			}
		}, describe: describeRoute},
	{kind: KindSetHeaders, summary: "sets headers to expressions' results", doc: "a mapping from header name to an expression yielding string or bytes; each sets that header on the record.",
		decode: func(p *parser, e *entry, v *yaml.Node, key string, primary bool) {
			hs := p.headers(v, key)
			if primary {
				e.node.Headers = hs
			}
		}, describe: describeSetHeaders},
	{kind: KindDropHeaders, summary: "removes headers by name", doc: "a non-empty list of header names; every header with one of them is removed from the record.", decode: decodeDropHeaders, describe: func(p *printer, n *Node, _ *StatefulStep) {
		p.line(2, "drop_headers: %s", strings.Join(n.DropHeaders, ", "))
	}},
	{kind: KindJoin, summary: "looks up each record's key in a table source and makes the value from both; from a table source, joins two tables on the key or a foreign key (an upsert stream)", doc: "a stream-table join, a mapping with table (the name of a table source), type (inner, the default: a record whose key has no row is dropped; left: it is output with table null) and output (an expression over the record's variables and table, the row's value, whose result becomes the value). The lookup is the record key as read (bytes) in the table as the task has it when the record is processed: after a start or a rebalance the table partition is caught up to its high watermark before any record of that partition is joined; a row that changes later does not make earlier records join again. Partition p of the input and of the table is one task: an input keyed as read from one topic needs the table's partition count; otherwise (a key step upstream) the records go through the step's repartition topic first, keyed as the table's keys are. A join step whose from is a table source is a table-table join: type may also be outer, value is the from table's row and table the other's (either null where a side has none), and the output is an upsert stream: on every change of either table, the key's joined row, or a tombstone when it stops existing (an output of null means no row). With on (an expression over the from row giving the other table's key; inner or left only), it is a foreign-key join, keyed as the from table, through the step's subscription and response topics; otherwise the tables join on their keys and must be co-partitioned. The tables of a table-table join are restored up to the group's committed offsets.", keys: joinKeys,
		decode: decodeJoin, describe: describeJoin},
	{kind: KindAggregate, summary: "keeps one row per group (and window), in a store backed by a changelog", doc: "keeps one row per group and outputs it as records change it; see Aggregates below.", keys: aggregateKeys,
		decode: func(p *parser, e *entry, v *yaml.Node, key string, primary bool) {
			a := p.aggregate(v, key)
			if primary {
				e.node.Aggregate = a
			}
		}, describe: describeAggregate},
	{kind: KindDedupe, summary: "drops records whose id was seen within a ttl, in a store backed by a changelog", doc: "drops records whose id was seen before, within a ttl; see below.", keys: dedupeKeys,
		decode: func(p *parser, e *entry, v *yaml.Node, key string, primary bool) {
			d := p.dedupe(v, key)
			if primary {
				e.node.Dedupe = d
			}
		}, describe: describeDedupe},
}

var (
	joinKeys  = []string{"table", "type", "on", "output"}
	joinTypes = []string{string(JoinInner), string(JoinLeft), string(JoinOuter)}
)

// decodeJoin decodes a join: the table source's name (resolved when the
// graph is linked), the type and the output expression, which also sees
// table.
func decodeJoin(p *parser, e *entry, v *yaml.Node, key string, primary bool) {
	f := p.mapping(v, key, "join", joinKeys)
	if f == nil {
		return
	}
	j := &Join{Type: JoinInner}
	var table ref
	if x := f.require("table"); x != nil {
		if s, ok := p.str(x, sub(key, "table")); ok {
			table = ref{name: s, pos: p.pos(x), key: sub(key, "table")}
		}
	}
	if x := f.get("type"); x != nil {
		tkey := sub(key, "type")
		if s, ok := p.str(x, tkey); ok {
			if slices.Contains(joinTypes, s) {
				j.Type = JoinType(s)
			} else {
				p.errorf(p.pos(x), tkey, "unknown join type %q (want %s)", s, strings.Join(joinTypes, " or "))
			}
		}
	}
	if x := f.get("on"); x != nil {
		j.On = p.expr(x, sub(key, "on"), wantAny, "on")
	}
	if x := f.require("output"); x != nil {
		env, err := joinEnv()
		if err != nil {
			p.errorf(p.pos(x), sub(key, "output"), "cannot create the join's expression environment: %v", err)
		} else {
			saved := p.env
			p.env = env
			j.Output = p.expr(x, sub(key, "output"), wantAny, "output")
			p.env = saved
		}
	}
	if primary {
		e.node.Join, e.table = j, table
	}
}

func describeJoin(p *printer, n *Node, _ *StatefulStep) {
	j := n.Join
	if j.Left != nil {
		describeTableJoin(p, n)
		return
	}
	p.line(2, "join: %s with table %s (topic %s)", j.Type, j.Table.Name, j.Table.Topic)
	p.expr(2, "output: ", j.Output)
	if j.Repartition {
		p.line(2, "input: regrouped by key through its repartition topic (the key changes upstream; see repartition topics)")
	}
	if j.Table.Global {
		p.line(2, "lookup: the record key, encoded as the table's keys are, in the global table (read whole by every instance)")
	} else {
		p.line(2, "lookup: the record key, as read, in the table's store (the table as the task has it when the record is processed)")
	}
}

// decodeDropHeaders decodes a non-empty list of header names.
func decodeDropHeaders(p *parser, e *entry, v *yaml.Node, key string, primary bool) {
	items, ok := p.list(v, key)
	if !ok {
		return
	}
	if len(items) == 0 {
		p.errorf(p.pos(v), key, "drop_headers needs at least one header name")
	}
	var names []string
	for i, it := range items {
		ikey := index(key, i)
		name, ok := p.str(it, ikey)
		switch {
		case !ok:
		case name == "":
			p.errorf(p.pos(it), ikey, "header name must not be empty")
		case slices.Contains(names, name):
			p.errorf(p.pos(it), ikey, "header %q is listed twice", name)
		default:
			names = append(names, name)
		}
	}
	if primary {
		e.node.DropHeaders = names
	}
}

// decodeExpr decodes an operation whose value is one expression.
func decodeExpr(k Kind, w want) func(p *parser, e *entry, v *yaml.Node, key string, primary bool) {
	return func(p *parser, e *entry, v *yaml.Node, key string, primary bool) {
		x := p.expr(v, key, w, string(k))
		if primary {
			e.node.Expr = x
		}
	}
}

func specOf(k Kind) *opSpec {
	for i := range opSpecs {
		if opSpecs[i].kind == k {
			return &opSpecs[i]
		}
	}
	return nil
}

// operationKeys are the operations' keys in a step.
func operationKeys() []string {
	out := make([]string, len(opSpecs))
	for i, s := range opSpecs {
		out[i] = string(s.kind)
	}
	return out
}

// Operation is an operation a step can do, for references and tools.
type Operation struct {
	Kind    Kind
	Summary string
}

// Operations returns every operation a step can do, in the reference's
// order.
func Operations() []Operation {
	out := make([]Operation, len(opSpecs))
	for i, s := range opSpecs {
		out[i] = Operation{s.kind, s.summary}
	}
	return out
}
