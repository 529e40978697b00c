package processor

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
)

// Tables and their changes (topology/changes.go says which nodes output
// them).
//
// How a change travels. A record that is a change of a table row has
// value = the new row (nil: the row was deleted) and chg = the row it
// replaced (chg.old nil: there was none); a change with neither is never
// forwarded. This is the contract every table-valued step keeps, a
// table-table join included: it sets Node.Changes on its node when it
// decodes it (topology's resolveChanges leaves kinds it does not know
// alone), and forwards each output with chg set to the row its output key
// had before (the join's previous output for that key, nil if none) and
// value to the new one (nil: a tombstone); the steps below do the rest. A
// table-valued step that reads changes itself returns true from
// readsChanges, or push strips chg before it. Who makes changes:
//
//   - a table source: the old row is its store's value of the key before
//     the record (table.go);
//   - a table-table join on the key (ttjoin.go): the old row is the
//     joined row before the change, computed only when a reader uses it;
//   - an aggregate without a window: the old row is the group's row
//     before the record (emit: on_update) or before the transaction
//     (emit: on_commit), computed only when a reader uses it;
//   - a filter of changes, which deletes a row that stops qualifying;
//   - a map of changes, which maps both rows;
//   - set_headers and drop_headers pass changes on (a deleted row's headers
//     are evaluated on the row it deletes).
//
// push drops chg before any other step, which reads the new rows as a
// stream.
//
// Behind a repartition topic, an aggregate of changes gets the old row
// as a record of its own, keyed by the old row's group and marked by
// headerRetract, unless old and new rows fall in one group: then one
// record carries both, the old row in headerOld. Those headers never
// leave the aggregate.
const (
	headerRetract = "exactly.retract"
	headerOld     = "exactly.old"
)

// change is the old side of a change of a table row.
type change struct {
	old any // nil: the key had no row
}

// readsChanges reports whether n uses the old rows of the changes it
// reads.
func readsChanges(n *topology.Node) bool {
	switch n.Kind {
	case topology.KindFilter, topology.KindMap, topology.KindSetHeaders, topology.KindDropHeaders:
		return n.Changes
	case topology.KindAggregate:
		return n.Aggregate != nil && n.Aggregate.Retract
	}
	return false
}

// asStream returns r without its old row, for a step that reads changes
// as a stream.
func asStream(r *record) *record {
	out := *r
	out.chg = nil
	return &out
}

// oldRecord returns the old row of change r as a record of its own: the
// key, headers and coordinates of r, the value no longer the input's
// bytes.
func oldRecord(r *record) *record {
	o := *r
	o.value, o.chg = r.chg.old, nil
	o.from &^= fromValueMask
	return &o
}

// filterChange is a filter of changes: the new row passes while it
// qualifies; a row that stops qualifying is deleted; a change of a row
// that qualifies neither before nor after outputs nothing.
func (g *graph) filterChange(n *node, r *record, emit emitFunc) error {
	newOK, oldOK := false, false
	var err error
	if r.value != nil {
		if newOK, err = g.test(n, n.t.Expr, r); err != nil {
			return err
		}
	}
	if r.chg.old != nil {
		if oldOK, err = g.test(n, n.t.Expr, oldRecord(r)); err != nil {
			return err
		}
	}
	if !newOK && !oldOK {
		return nil
	}
	out := *r
	// Downstream saw the old row only if it qualified.
	out.chg = &change{}
	if oldOK {
		out.chg.old = r.chg.old
	}
	if !newOK {
		out.value = nil
		out.from &^= fromValueMask
	}
	return g.forward(n, &out, emit)
}

// mapChange is a map of changes: both rows are mapped (a deleted row
// stays deleted).
func (g *graph) mapChange(n *node, r *record, emit emitFunc) error {
	out := *r
	out.from &^= fromValueMask
	out.chg = &change{}
	if r.value != nil {
		v, err := g.eval(n, n.t.Expr, r)
		if err != nil {
			return err
		}
		out.value = v
	}
	if r.chg.old != nil {
		v, err := g.eval(n, n.t.Expr, oldRecord(r))
		if err != nil {
			return err
		}
		out.chg.old = v
	}
	if out.value == nil && out.chg.old == nil {
		return nil
	}
	return g.forward(n, &out, emit)
}

// aggregateChange subtracts the old row of change r from its group and
// adds the new row to its group; each group whose row changed outputs its
// new row once (a deleted one, left without rows, a tombstone).
func (g *graph) aggregateChange(a *aggregator, st statestore.Store, part int32, r *record, emit emitFunc) error {
	n := a.node
	type touched struct {
		key  any
		kb   []byte
		cr   *cachedRow
		prev []acc
	}
	var rows []touched
	apply := func(rec *record, sign int) error {
		key, kb, err := g.groupKey(n, rec)
		if err != nil {
			return err
		}
		cr, prev, err := g.touchRow(a, st, part, key, kb, rec)
		if err != nil {
			return err
		}
		if _, err := g.foldSigned(n, cr.accs, rec, sign); err != nil {
			return err
		}
		cr.key, cr.r = key, *r
		a.rows[part][string(kb)] = cr
		if i := slices.IndexFunc(rows, func(t touched) bool { return bytes.Equal(t.kb, kb) }); i >= 0 {
			rows[i].cr = cr // the row as it was before r is already kept
			return nil
		}
		rows = append(rows, touched{key, kb, cr, prev})
		return nil
	}
	if r.chg.old != nil {
		if err := apply(oldRecord(r), -1); err != nil {
			return err
		}
	}
	if r.value != nil {
		if err := apply(asStream(r), 1); err != nil {
			return err
		}
	}
	if n.t.Aggregate.Emit == topology.EmitOnCommit {
		return nil
	}
	for _, t := range rows {
		if err := g.emitChange(a, t.key, t.prev, t.cr.accs, r, emit); err != nil {
			return err
		}
	}
	return nil
}

// emptyRow reports whether accs is no row at all: a retracting
// aggregate's group left without rows, or a group nothing was counted in.
func (a *aggregator) emptyRow(accs []acc) bool {
	if a.node.t.Aggregate.Retract {
		return accs[len(accs)-1].N <= 0
	}
	for i := range accs {
		if accs[i].N != 0 {
			return false
		}
	}
	return true
}

// emitChange outputs the row of group key, now accs, that was prev:
// nothing when it did not change, a tombstone when the group is gone, and
// with the old row attached when a reader uses it (a HAVING filter, an
// aggregate of the rows).
func (g *graph) emitChange(a *aggregator, key any, prev, accs []acc, r *record, emit emitFunc) error {
	wasRow, isRow := prev != nil && !a.emptyRow(prev), !a.emptyRow(accs)
	if !wasRow && !isRow || wasRow && isRow && sameRow(prev, accs) {
		return nil
	}
	var old any
	if wasRow && a.oldRows {
		row, err := rowValue(a, key, prev)
		if err != nil {
			return g.fail(a.node, r, PhaseEval, err)
		}
		old = row
	}
	out := *r
	out.key, out.from, out.chg = key, fromNumbers, nil
	if a.oldRows {
		out.chg = &change{old: old}
	}
	if isRow {
		row, err := rowValue(a, key, accs)
		if err != nil {
			return g.fail(a.node, r, PhaseEval, err)
		}
		out.value = row
	} else {
		out.value = nil
	}
	return g.forward(a.node, &out, emit)
}

// rowValue is the output row of an unwindowed group: its group columns
// and its columns.
func rowValue(a *aggregator, key any, accs []acc) (map[string]any, error) {
	agg := a.node.t.Aggregate
	row := make(map[string]any, len(agg.GroupBy)+len(agg.Columns))
	if len(agg.GroupBy) == 1 {
		row[agg.GroupBy[0].Name] = key
	} else if m, ok := key.(map[string]any); ok {
		for k, v := range m {
			row[k] = v
		}
	}
	for i := range agg.Columns {
		c := &agg.Columns[i]
		v, err := accs[i].result(c)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		row[c.Name] = v
	}
	return row, nil
}

// toRepartitionChange sends change r to the tasks of its groups: the old
// row to its group's, marked to be subtracted, and the new row to its
// group's; one record carrying both when the groups are one.
func (g *graph) toRepartitionChange(a *aggregator, r *record, emit emitFunc) error {
	n := a.node
	var oldKB, newKB, oldVB []byte
	var err error
	if r.chg.old != nil {
		o := oldRecord(r)
		if _, oldKB, err = g.groupKey(n, o); err != nil {
			return err
		}
		if oldVB, err = encodeInternal(r.chg.old); err != nil {
			return g.fail(n, r, PhaseEncode, fmt.Errorf("repartition old row: %w", err))
		}
	}
	if r.value != nil {
		if _, newKB, err = g.groupKey(n, r); err != nil {
			return err
		}
	}
	hs := r.headers
	if g.deadLetterTopic != "" && r.src != nil && r.src.Partition >= 0 {
		hs = append(slices.Clip(hs), originHeader(r.src))
	}
	newValue := func() ([]byte, error) {
		vb, ok := r.rawValue(topology.FormatJSON)
		if !ok {
			if vb, err = encodeInternal(r.value); err != nil {
				return nil, g.fail(n, r, PhaseEncode, fmt.Errorf("repartition value: %w", err))
			}
		}
		return vb, nil
	}
	switch {
	case oldKB != nil && newKB != nil && bytes.Equal(oldKB, newKB):
		vb, err := newValue()
		if err != nil {
			return err
		}
		emit(&kgo.Record{Topic: a.repartition, Key: newKB, Value: vb, Timestamp: r.ts,
			Headers: append(slices.Clip(hs), kgo.RecordHeader{Key: headerOld, Value: oldVB})})
		return nil
	case oldKB != nil:
		emit(&kgo.Record{Topic: a.repartition, Key: oldKB, Value: oldVB, Timestamp: r.ts,
			Headers: append(slices.Clip(hs), kgo.RecordHeader{Key: headerRetract})})
	}
	if newKB != nil {
		vb, err := newValue()
		if err != nil {
			return err
		}
		emit(&kgo.Record{Topic: a.repartition, Key: newKB, Value: vb, Headers: hs, Timestamp: r.ts})
	}
	return nil
}

// changeFromRepartition makes r, read back from a retracting aggregate's
// repartition topic, the change it carries (see headerRetract), and drops
// the marking headers.
func changeFromRepartition(r *record) error {
	i := slices.IndexFunc(r.headers, func(h kgo.RecordHeader) bool { return h.Key == headerRetract || h.Key == headerOld })
	if i < 0 {
		return nil
	}
	h := r.headers[i]
	r.headers = slices.DeleteFunc(slices.Clone(r.headers), func(h kgo.RecordHeader) bool { return h.Key == headerRetract || h.Key == headerOld })
	if h.Key == headerRetract {
		r.chg = &change{old: r.value}
		r.value = nil
		r.from &^= fromValueMask
		return nil
	}
	old, _, err := decodeInternal(h.Value)
	if err != nil {
		return fmt.Errorf("repartition old row: %w", err)
	}
	r.chg = &change{old: old}
	return nil
}

// rowForCEL returns an aggregate's row with its exact numbers
// (format.Number, which sinks print as they are: 120.50) as expressions
// see them: int when whole and written without a point (a count, a sum
// of ints), else the exact decimal (the expression adapter makes a
// format.Number one), so that a step after the aggregate (a HAVING
// filter, a map, an aggregate of the rows, a join reading them) computes
// with the sum the store holds, not a double's rounding of it.
func rowForCEL(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		if n, ok := x.(format.Number); ok {
			x = numberForCEL(n)
		}
		out[k] = x
	}
	return out
}

func numberForCEL(n format.Number) any {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
	}
	return n
}

// aggregateRow returns the row of the group whose JSON is kb in task
// part of aggregate a, as the task has it (the open transaction's changes
// included), for a join that uses the aggregate's rows as its table.
func (g *graph) aggregateRow(a *aggregator, part int32, kb []byte) (any, bool, error) {
	if kb == nil {
		return nil, false, nil
	}
	var accs []acc
	var key any
	if cr, ok := a.rows[part][string(kb)]; ok {
		accs, key = cr.accs, cr.key
	} else {
		st, err := a.store(part)
		if err != nil {
			return nil, false, err
		}
		if accs, err = loadRow(st, kb, a.rowLen()); err != nil {
			return nil, false, err
		}
		if key, err = format.DecodeJSON(kb); err != nil {
			return nil, false, fmt.Errorf("corrupt state key: %w", err)
		}
	}
	if a.emptyRow(accs) {
		return nil, false, nil
	}
	row, err := rowValue(a, key, accs)
	if err != nil {
		return nil, false, err
	}
	return rowForCEL(row), true, nil
}

// undoDistinct registers the undo of a change of v's entry in the set d
// of a count_distinct column (changed in place: see acc.D). A set nil
// before the record is dropped with the accumulators the undo restores.
func (g *graph) undoDistinct(d map[string]int64, v any) {
	k, err := distinctKey(v)
	if err != nil {
		return // update fails on it too, changing nothing
	}
	n, had := d[k]
	g.undo = append(g.undo, undoEntry{fn: func() {
		if had {
			d[k] = n
		} else {
			delete(d, k)
		}
	}})
}

// sameRow reports whether two states of one row hold the same
// accumulators. A count_distinct set is shared by both (it changes in
// place), and its size is N.
func sameRow(a, b []acc) bool {
	for i := range a {
		x, y := &a[i], &b[i]
		if x.N != y.N || x.Sum != y.Sum || (x.V != nil || y.V != nil) && !reflect.DeepEqual(x.V, y.V) {
			return false
		}
	}
	return true
}
