package topology

import "slices"

// Tables and their changes.
//
// A table source's records, an unwindowed aggregate's rows and a
// table-table join's rows (on the key; a foreign-key join's answers
// arrive through its response topic and are not tracked so) are not
// events but changes of a table: the new row of a key replaces the old
// one, and a null value deletes it. Counting them as events double counts
// (a user who moves from one spend tier to another would stay counted in
// both). So such records carry the row they replace (at run time, the old
// row travels with the new one), and the steps that understand changes
// use it:
//
//   - an aggregate subtracts the old row from its old group and adds the
//     new row to its new group (Aggregate.Retract), so only functions
//     with an inverse are allowed;
//   - a filter keeps a row while it qualifies and deletes it (a
//     tombstone) once it stops, and outputs nothing for a row that never
//     qualified: SQL's HAVING after an aggregate;
//   - a map maps both rows; set_headers and drop_headers pass them on.
//
// Every other step (key, flat_map, route, join, dedupe, a windowed
// aggregate) and every sink reads the new rows as a stream: a deleted
// row is a record with a null value.

// invertible are the aggregate functions an aggregate of changes can
// subtract a row from.
var invertible = []AggFunc{AggCount, AggCountDistinct, AggSum, AggAvg}

// keepsChanges are the step kinds whose output is a table's changes when
// all their inputs are.
var keepsChanges = []Kind{KindFilter, KindMap, KindSetHeaders, KindDropHeaders}

// resolveChanges works out which nodes output a table's changes and which
// aggregates retract, and checks that those can: steps must be in
// topological order.
func (p *parser) resolveChanges(sources, steps []*entry) {
	for _, e := range sources {
		e.node.Changes = e.node.Table && !e.node.Global
	}
	for _, e := range steps {
		n := e.node
		p.graphOps++
		if a := n.Aggregate; a != nil && n.Kind == KindAggregate {
			n.Changes = a.Window == nil
			if a.Window != nil || !slices.ContainsFunc(n.Inputs, func(in *Node) bool { return in.Changes }) {
				continue
			}
			a.Retract = true
			from := ""
			for _, in := range n.Inputs {
				if in.Changes {
					from = in.Name
					break
				}
			}
			for _, c := range a.Columns {
				if !slices.Contains(invertible, c.Func) {
					p.errorf(c.fnPos, c.fnKey, "fn %s cannot be used here: step %q reads a table's changes (from %q), so a changed or deleted row must be subtracted from its group, and %s has no inverse; use count, count_distinct, sum or avg, or read a stream", c.Func, n.Name, from, c.Func)
				}
			}
			continue
		}
		if j := n.Join; n.Kind == KindJoin && j != nil && j.Left != nil && j.On == nil {
			// A table-table join on the key: an upsert stream of
			// joined rows, whose row before each change it knows.
			n.Changes = true
			continue
		}
		if slices.Contains(keepsChanges, n.Kind) && len(n.Inputs) > 0 {
			n.Changes = !slices.ContainsFunc(n.Inputs, func(in *Node) bool { return !in.Changes })
		}
	}
}
