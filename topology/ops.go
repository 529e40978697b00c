package topology

import (
	"slices"
	"strings"
	"time"

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
	{kind: KindJoin, summary: "looks up each record's key in a table source and makes the value from both; from a table source, joins two tables on the key or a foreign key (an upsert stream); with stream, pairs records of two streams close in event time", doc: "a stream-table join, a mapping with table (the name of a table source, or of an aggregate step without a window: see Tables and their changes), type (inner, the default: a record whose key has no row is dropped; left: it is output with table null) and output (an expression over the record's variables and table, the row's value, whose result becomes the value). The lookup is the record key as read (bytes) in the table as the task has it when the record is processed: after a start or a rebalance the table partition is caught up to its high watermark before any record of that partition is joined; a row that changes later does not make earlier records join again (a table that steps also read with from is caught up to the group's committed offset instead, and its later records apply as they are read again). Partition p of the input and of the table is one task: an input keyed as read from one topic needs the table's partition count; otherwise (a key step upstream) the records go through the step's repartition topic first, keyed as the table's keys are. A join step whose from is a table source is a table-table join: type may also be outer, value is the from table's row and table the other's (either null where a side has none), and the output is an upsert stream: on every change of either table, the key's joined row, or a tombstone when it stops existing (an output of null means no row). With on (an expression over the from row giving the other table's key; inner or left only), it is a foreign-key join, keyed as the from table, through the step's subscription and response topics; otherwise the tables join on their keys and must be co-partitioned. The tables of a table-table join are restored up to the group's committed offsets. With stream (the name of another source or step) instead of table it is a stream-stream windowed join on the record key and the record timestamp (event time): a record of the step's input (value) joins each record of the other stream (other) with the same key whose time is at most within before or after its own (or before and after separately, Go durations); type is inner, left (unmatched input records are output with other null) or outer (unmatched records of both, the missing side null). Both sides wait in a changelog-backed store. The task's event-time clock is the minimum over the two sides of the latest time each has read; a record more than grace (default 0) behind it is late (dropped, counted). Unmatched records are output only once their window closes (the clock passed their time plus within plus grace), then leave the store with tombstones. idle_timeout (default off): a side that sent nothing for that long (wall clock) stops holding the clock back, and when both are quiet the clock moves on by wall clock. ttl (default off, at least 1s; stream-stream joins only): a record buffered that long (wall clock) leaves the store, unmatched. Both sides keyed as their topics were written must be co-partitioned; after a key step on either side both go through the step's repartition topic, keyed by the join key.", keys: joinKeys,
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
	joinKeys  = []string{"table", "stream", "type", "on", "output", "within", "before", "after", "grace", "idle_timeout", "ttl"}
	joinTypes = []string{string(JoinInner), string(JoinLeft), string(JoinOuter)}
	// streamJoinKeys apply to stream-stream joins only.
	streamJoinKeys = []string{"within", "before", "after", "grace", "idle_timeout", "ttl"}
)

// decodeJoin decodes a join: the table source's name or the other
// stream's (resolved when the graph is linked), the type, the output
// expression, which also sees table (or other), and for a stream-stream
// join its time bounds.
func decodeJoin(p *parser, e *entry, v *yaml.Node, key string, primary bool) {
	f := p.mapping(v, key, "join", joinKeys)
	if f == nil {
		return
	}
	j := &Join{Type: JoinInner}
	var table, stream ref
	tx, sx := f.get("table"), f.get("stream")
	switch {
	case tx != nil && sx != nil:
		p.errorf(p.pos(sx), sub(key, "stream"), "a join has a table or a stream, not both; split it into two join steps")
	case tx == nil && sx == nil:
		p.errorf(f.pos, key, "join needs table (a table source: a stream-table join) or stream (another stream: a stream-stream windowed join)")
	}
	if tx != nil {
		if s, ok := p.str(tx, sub(key, "table")); ok {
			table = ref{name: s, pos: p.pos(tx), key: sub(key, "table")}
		}
	}
	isStream := sx != nil && tx == nil
	if isStream {
		if s, ok := p.str(sx, sub(key, "stream")); ok {
			stream = ref{name: s, pos: p.pos(sx), key: sub(key, "stream")}
		}
	}
	if x := f.get("type"); x != nil {
		tkey := sub(key, "type")
		j.TypePos = p.pos(x)
		// Outer is for table-table and stream-stream joins: the linked
		// graph tells which a join is (checkJoinTypes).
		if s, ok := p.str(x, tkey); ok {
			if slices.Contains(joinTypes, s) {
				j.Type = JoinType(s)
			} else {
				p.errorf(p.pos(x), tkey, "unknown join type %q (want %s)", s, strings.Join(joinTypes, " or "))
			}
		}
	}
	if isStream {
		p.streamJoinBounds(f, j, key)
	} else {
		for _, k := range streamJoinKeys {
			x := f.get(k)
			switch {
			case x == nil:
			case k == "ttl":
				// The table's store is a copy of its topic, restored
				// from it at every start: a row dropped by a ttl
				// would come back, so rows leave by tombstones or the
				// topic's retention.
				p.errorf(p.pos(x), sub(key, k), "ttl applies to stream-stream joins: a table's rows are its topic's latest values, read again from the topic at every start; remove rows with tombstones (null values) or the topic's retention (cleanup.policy compact,delete)")
			default:
				p.errorf(p.pos(x), sub(key, k), "%s applies to stream-stream joins (stream: ...), not to a join with a table", k)
			}
		}
	}
	if x := f.get("on"); x != nil && isStream {
		p.errorf(p.pos(x), sub(key, "on"), "on joins a table by a field of its rows (a foreign-key join); a stream-stream join pairs records by their key: set the key with a key step before the join")
	} else if x != nil {
		j.On = p.expr(x, sub(key, "on"), wantAny, "on")
	}
	if x := f.require("output"); x != nil {
		mk, name := joinEnv, VarTable
		if isStream {
			mk, name = streamJoinEnv, VarOther
		}
		env, err := mk()
		if err != nil {
			p.errorf(p.pos(x), sub(key, "output"), "cannot create the join's expression environment (%s): %v", name, err)
		} else {
			saved := p.env
			p.env = env
			j.Output = p.expr(x, sub(key, "output"), wantAny, "output")
			p.env = saved
		}
	}
	if primary {
		e.node.Join, e.table, e.stream = j, table, stream
	}
}

// streamJoinBounds decodes within (or before and after), grace,
// idle_timeout and ttl of a stream-stream join.
func (p *parser) streamJoinBounds(f *fields, j *Join, key string) {
	wx, bx, ax := f.get("within"), f.get("before"), f.get("after")
	switch {
	case wx != nil && (bx != nil || ax != nil):
		p.errorf(p.pos(wx), sub(key, "within"), "within sets before and after both; give within alone, or before and after")
	case wx != nil:
		d := p.durationZero(wx, sub(key, "within"))
		j.Before, j.After = d, d
	case bx != nil || ax != nil:
		if bx != nil {
			j.Before = p.durationZero(bx, sub(key, "before"))
		}
		if ax != nil {
			j.After = p.durationZero(ax, sub(key, "after"))
		}
	default:
		p.errorf(f.pos, sub(key, "within"), "a stream-stream join needs a time bound: within: DURATION (the other record's event time at most that far from this one's), or before and after")
	}
	if x := f.get("grace"); x != nil {
		j.Grace = p.durationZero(x, sub(key, "grace"))
	}
	if x := f.get("idle_timeout"); x != nil {
		j.IdleTimeout = p.durationZero(x, sub(key, "idle_timeout"))
	}
	if x := f.get("ttl"); x != nil {
		j.TTL = p.durationZero(x, sub(key, "ttl"))
		if j.TTL > 0 && j.TTL < time.Second {
			p.errorf(p.pos(x), sub(key, "ttl"), "ttl %s is below 1s: a record would leave the buffer before the other side could reach it; give 1s or more (0: off)", j.TTL)
		}
	}
}

func describeJoin(p *printer, n *Node, s *StatefulStep) {
	j := n.Join
	if j.Left != nil {
		describeTableJoin(p, n)
		return
	}
	if j.Stream != nil {
		describeStreamJoin(p, n, s)
		return
	}
	if j.Table.Kind == KindAggregate {
		p.line(2, "join: %s with table %s (the rows of aggregate step %s)", j.Type, j.Table.Name, j.Table.Name)
		p.expr(2, "output: ", j.Output)
		p.line(2, "input: regrouped by key through its repartition topic, keyed as the aggregate's groups are (see repartition topics)")
		p.line(2, "lookup: the record key, as a group value, in the aggregate's store (its rows as the task has them when the record is processed)")
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

func describeStreamJoin(p *printer, n *Node, s *StatefulStep) {
	j := n.Join
	var this []string
	for _, in := range n.Inputs {
		if in != j.Stream {
			this = append(this, in.Name)
		}
	}
	p.line(2, "join: %s, stream-stream windowed, on the record key", j.Type)
	p.line(3, "this stream (value): %s", strings.Join(this, ", "))
	p.line(3, "other stream (other): %s", j.Stream.Name)
	p.line(3, "window: other's event time from %s before to %s after this record's (the record timestamp)", j.Before, j.After)
	p.line(3, "grace: %s (a record further behind the task's event time is late: dropped, counted)", j.Grace)
	switch j.Type {
	case JoinLeft:
		p.line(3, "unmatched: this stream's records, with other null, once their window closes")
	case JoinOuter:
		p.line(3, "unmatched: both streams' records, the missing side null, once their window closes")
	default:
		p.line(3, "unmatched: dropped")
	}
	if j.IdleTimeout > 0 {
		p.line(3, "idle timeout: %s (a quiet side stops holding event time back; both quiet: event time moves by wall clock)", j.IdleTimeout)
	} else {
		p.line(3, "idle timeout: off")
	}
	if j.TTL > 0 {
		p.line(3, "ttl: %s (wall clock; a record buffered longer leaves the buffer, unmatched)", j.TTL)
	} else {
		p.line(3, "ttl: off (records leave the buffer when their window closes)")
	}
	p.expr(2, "output: ", j.Output)
	if s == nil {
		return
	}
	p.line(2, "store: %s (both streams' buffered records, expired with tombstones), changelog %s", n.Name, s.Changelog.Name)
	if s.Repartition != nil {
		p.line(2, "input: both streams regrouped by the join key through %s (a key changes upstream)", s.Input)
		p.line(3, "event time: minimum over upstream partitions of %s; quiet for %s: idle", strings.Join(s.Feeds, ", "), DefaultUpstreamIdle)
	} else {
		p.line(2, "input: partitioned by record key as read from %s, co-partitioned: %s", s.Input, strings.Join(s.CoPartition, ", "))
		p.line(3, "event time: minimum over the two streams of the latest each has read")
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
