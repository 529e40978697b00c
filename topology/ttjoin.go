package topology

import "slices"

// Table-table joins: a join step whose from is a table source joins that
// table (the left side, value in the output) with its table: (the right
// side, table in the output) on the key. Both are partitioned tables,
// co-partitioned like a stream-table join's input and table.

// tableJoinInput links e, a join step, to src, a table source it names in
// from: e becomes a table-table join.
func (p *parser) tableJoinInput(e, src *entry, r ref) {
	j := e.node.Join
	switch {
	case src.node.Global:
		p.errorf(r.pos, r.key, "source %q is a global table: a table-table join reads partitioned tables on both sides; drop global: true from %s", r.name, r.name)
		e.bad = true
		return
	case j.Left != nil:
		p.errorf(r.pos, r.key, "a table-table join reads one table (from) and joins another (table); %q is a second table in from", r.name)
		e.bad = true
		return
	case j.Table == src.node:
		p.errorf(r.pos, r.key, "join of table %q with itself; name another table in from or in table", r.name)
		e.bad = true
		return
	}
	j.Left = src.node
	p.tablesUsed[src] = true
	p.connect(src, e, r)
}

// checkJoinTypes checks what only the linked graph tells: outer is for
// table-table joins, which read one table and nothing else and join it
// with a partitioned table, and for stream-stream joins.
func (p *parser) checkJoinTypes() {
	for _, e := range p.steps {
		j := e.node.Join
		if j == nil {
			continue
		}
		key := e.path + ".join"
		typePos := e.node.Pos
		if j.TypePos != (Pos{}) {
			typePos = j.TypePos
		}
		tablePos := e.node.Pos
		if e.table.name != "" {
			tablePos = e.table.pos
		}
		switch {
		case j.Stream != nil:
			// A stream-stream join: inner, left or outer, no on
			// (decodeJoin).
		case j.Left == nil && j.On != nil:
			p.errorf(j.On.Pos, key+".on", "on joins a table by a field of its rows: read a table source in from (a stream-table join looks up the record key)")
		case j.On != nil && j.Type == JoinOuter:
			p.errorf(typePos, key+".type", "a foreign-key join (on) is inner or left, not outer: a row of table %q without a row of %q pointing at it has no key to be emitted under", j.Table.Name, j.Left.Name)
		case j.Left == nil && j.Type == JoinOuter:
			p.errorf(typePos, key+".type", "join type outer joins two tables (read a table source in from) or two streams (stream: instead of table:); a stream-table join is inner or left")
		case j.Left == nil:
		case slices.ContainsFunc(e.in, func(in edge) bool { return in.from.node != j.Left }):
			p.errorf(e.node.Pos, e.path+".from", "a table-table join reads only its table %q: read the other inputs in another step", j.Left.Name)
			e.bad = true
		case j.Table != nil && j.Table.Global:
			p.errorf(tablePos, key+".table", "table %q is global: a table-table join joins partitioned tables; drop global: true from %s", j.Table.Name, j.Table.Name)
		}
	}
}

// describeTableJoin writes what describe shows under a table-table join.
func describeTableJoin(p *printer, n *Node) {
	j := n.Join
	if j.On != nil {
		p.line(2, "join: %s, table %s (topic %s) with table %s (topic %s), on a foreign key", j.Type, j.Left.Name, j.Left.Topic, j.Table.Name, j.Table.Topic)
		p.expr(2, "on: ", j.On)
		p.expr(2, "output: ", j.Output)
		p.line(2, "inputs: changes of either table (value: the %s row, table: the %s row its foreign key names; null where none)", j.Left.Name, j.Table.Name)
		p.line(2, "emits: an upsert stream keyed as %s: its joined row on each change of it or of the row it names, a tombstone when it stops existing", j.Left.Name)
		p.line(2, "stores: %s and %s (the tables' stores, restored to the group's committed offsets), and its own: the %s keys that name each %s key", j.Left.Name, j.Table.Name, j.Left.Name, j.Table.Name)
		p.line(2, "through: its subscription topic (keyed by the foreign key, to the %s task) and its response topic (keyed as %s, back to its task)", j.Table.Name, j.Left.Name)
		return
	}
	p.line(2, "join: %s, table %s (topic %s) with table %s (topic %s), on the key", j.Type, j.Left.Name, j.Left.Topic, j.Table.Name, j.Table.Topic)
	p.expr(2, "output: ", j.Output)
	p.line(2, "inputs: changes of either table (value: the %s row, table: the %s row; null where a side has none)", j.Left.Name, j.Table.Name)
	p.line(2, "emits: an upsert stream keyed as the tables: the key's joined row on each change, a tombstone when it stops existing")
	p.line(2, "stores: %s and %s (the tables' stores, restored to the group's committed offsets)", j.Left.Name, j.Table.Name)
}

// ReadByTableJoin reports whether s, a table source's store, is a side of
// a table-table join: its store must then hold exactly the records the
// group has committed past (restored up to the committed offset, not the
// high watermark), since the join's output for the records after it is
// still owed.
func (p *Plan) ReadByTableJoin(s *StatefulStep) bool {
	for _, j := range p.Joins {
		if j.Left != nil && (j.Left == s || j.Table == s) {
			return true
		}
	}
	return false
}

// Foreign is whether j is a foreign-key join (Node.Join.On).
func (j *JoinStep) Foreign() bool { return j.Subscription != nil }

// foreignKeyJoin plans a foreign-key join (KIP-213's design): a change of
// the left table's row is sent, keyed by the foreign key, through the
// subscription topic (co-partitioned with the right table) to the task
// holding the right table's row, which remembers the subscription in the
// join's own store (changelog-backed) and answers, keyed by the left key,
// through the response topic (co-partitioned with the left table) with
// the right row; a change of the right row answers every subscriber. The
// left table's task makes the joined row from the answer if the left row
// is still the one that asked (a hash of it travels with the request).
func foreignKeyJoin(t *Topology, j *JoinStep) *StatefulStep {
	n := j.Node
	left, right := n.Join.Left, n.Join.Table
	j.Subscription = &InternalTopic{Name: SubscriptionTopic(t.Name, n.Name), Purpose: "repartition",
		PartitionsOf: right.Topic, Configs: repartitionConfigs, Exact: true}
	j.Response = &InternalTopic{Name: ResponseTopic(t.Name, n.Name), Purpose: "repartition",
		PartitionsOf: left.Topic, Configs: repartitionConfigs, Exact: true}
	return &StatefulStep{Node: n, Input: j.Subscription.Name, Feeds: []string{left.Topic},
		Changelog: InternalTopic{Name: ChangelogTopic(t.Name, n.Name), Purpose: "changelog", PartitionsOf: right.Topic,
			Configs: changelogConfigs, Exact: true},
		CoPartition: []string{j.Subscription.Name, right.Topic}}
}

// tableTableJoin plans the store of a table-table join (on the key): per
// key, whether the join's last output was a row (not a tombstone), so a
// key whose row came out is deleted by a tombstone when the row goes,
// even when the row before the change can no longer be made (its other
// side changed since, and that change's output failed). Its tasks are the
// left table's partitions; the join step's own co-partition group (both
// tables, JoinStep.CoPartition) pairs them with the right table's.
func tableTableJoin(t *Topology, j *JoinStep) *StatefulStep {
	n := j.Node
	left := n.Join.Left
	return &StatefulStep{Node: n, Input: left.Topic, Feeds: []string{left.Topic},
		Changelog: InternalTopic{Name: ChangelogTopic(t.Name, n.Name), Purpose: "changelog", PartitionsOf: left.Topic,
			Configs: changelogConfigs, Exact: true},
		CoPartition: []string{left.Topic}}
}

// SubscriptionTopic and ResponseTopic name a foreign-key join's topics.
func SubscriptionTopic(pipeline, node string) string { return pipeline + "-" + node + "-subscription" }

// ResponseTopic: see SubscriptionTopic.
func ResponseTopic(pipeline, node string) string { return pipeline + "-" + node + "-response" }
