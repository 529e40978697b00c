package processor

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/cel-go/common/types"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/internal/kafkaerr"
	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
)

// Table-table joins.
//
// A table-table join keeps no store of its own: it reads the stores of its
// two tables, which are co-partitioned (partition p of both is one task).
// Each record of either table's topic updates its table's store
// (tableRecord) and then makes the joined row of its key again, from the
// row the record brings and the other table's row as the task has it:
//
//	before: the joined row of the key with the side's old row
//	after:  the joined row with its new row (none for a delete)
//
// A row exists when the join type says so (inner: both sides; left: the
// left side, the table the step reads from; outer: either side) and the
// output expression does not return null. An existing row after the
// change is emitted (an upsert, also when it did not change); a row that
// existed before and not after is deleted by a tombstone (the key with a
// null value); nothing is emitted otherwise.
//
// Exactly once: the output, the stores' updates and the input offsets move
// together through the transaction, as for every table record. The output
// for a table record depends on the other table's store at the moment the
// record is processed, so after a crash or a rebalance the stores must
// hold exactly the records the group committed past, not more: the tables
// of a table-table join are restored up to the group's committed offset of
// their partition (restoreTable), and the records after it are processed
// again, emitting their output in the transaction that commits them. (A
// stream-table join's table is restored to the high watermark instead:
// there the table side owes no output.)

// tableChanger is a join that reads tables' changes: told of each (after
// the table's store has the change), with the key's row before it.
type tableChanger interface {
	changed(g *graph, n *node, a *aggregator, rec *record, old side, emit emitFunc) error
}

// tableJoinStep is the runtime of a table-table join. Its records do not
// arrive through push: tableRecord calls changed for each table record.
type tableJoinStep struct {
	j           *topology.Join
	left, right *aggregator
	// The tables' codecs, to decode the other side's stored row.
	lcodec, rcodec codecs
	// emitted is the join's store (join on the key only): per key, a
	// row if the join's last output for it was a row, not a tombstone.
	// Without it, whether a delete owes a tombstone would be judged
	// from the row before the change alone: after (L, R1) came out and
	// R2's output failed (a bad record, skipped, yet R2 is the table's
	// row, as a restore shows), deleting L would make the row of (L, R2)
	// again, fail, and owe nothing, leaving (L, R1) downstream for
	// good. Changelog-backed, it is restored with the outputs it
	// stands for.
	emitted *aggregator
}

// emittedMark is the value of a key in the join's store: its last output
// was a row.
var emittedMark = []byte{1}

func (tableJoinStep) process(g *graph, n *node, r *record, emit emitFunc) error {
	return nil // never pushed: table sources forward nothing (see changed)
}

// side is one table's row of a key: its decoded value, if it has one.
type side struct {
	row any
	ok  bool
}

// exists reports whether the join has a row for a key whose sides are l
// and r, before the output expression has its say.
func (s tableJoinStep) exists(l, r side) bool {
	switch s.j.Type {
	case topology.JoinLeft:
		return l.ok
	case topology.JoinOuter:
		return l.ok || r.ok
	}
	return l.ok && r.ok
}

// row evaluates the output for sides l and r of r's key; ok is false
// when the join has no row for them.
func (s tableJoinStep) row(g *graph, n *node, rec *record, l, r side) (any, bool, error) {
	v, ok, err := s.eval(g, rec, l, r)
	if err != nil {
		return nil, false, g.fail(n, rec, PhaseEval, err)
	}
	return v, ok, nil
}

// eval is row without counting or naming an error: for the row before a
// change, whose failure means only that the row was never emitted.
func (s tableJoinStep) eval(g *graph, rec *record, l, r side) (any, bool, error) {
	if !s.exists(l, r) {
		return nil, false, nil
	}
	ev := *rec
	ev.value = l.row
	act := g.activation(&ev)
	act.table = r.row
	res, _, err := s.j.Output.Program.Eval(act)
	if err != nil {
		return nil, false, err
	}
	if _, null := res.(types.Null); null {
		return nil, false, nil
	}
	v, err := native(res)
	return v, err == nil, err
}

// changed makes the joined row of rec's key after rec, a record of table
// a's topic, changed a's row from old to rec's value.
func (s tableJoinStep) changed(g *graph, n *node, a *aggregator, rec *record, old side, emit emitFunc) error {
	otherAgg, otherCodec := s.right, s.rcodec
	if a == s.right {
		otherAgg, otherCodec = s.left, s.lcodec
	}
	st, err := otherAgg.store(rec.src.Partition)
	if err != nil {
		return g.fail(n, rec, PhaseEval, err)
	}
	b, ok, err := st.Get(rec.src.Key)
	if err != nil {
		return g.fail(n, rec, PhaseEval, fmt.Errorf("reading table %s: %w", otherAgg.node.t.Name, err))
	}
	var other side
	if ok {
		// The store keeps a row's value only, not its headers.
		t := otherAgg.node.t
		if other.row, err = otherCodec.value.Decode(t.Topic, format.NoHeaders, b); err != nil {
			return g.fail(n, rec, PhaseDecode, fmt.Errorf("table %s row (format %s): %w", t.Name, t.Format, err))
		}
		other.ok = true
	}
	result := "miss"
	if other.ok {
		result = "match"
	}
	g.m.JoinLookups.WithLabelValues(n.t.Name, result).Inc()

	now := side{row: rec.value, ok: rec.src.Value != nil}
	lBefore, rBefore, lAfter, rAfter := old, other, now, other
	if a == s.right {
		lBefore, rBefore, lAfter, rAfter = other, old, other, now
	}
	v, after, err := s.row(g, n, rec, lAfter, rAfter)
	if err != nil {
		return err
	}
	// The row before the change: to know whether a tombstone is owed,
	// and for readers of the join's changes (changes.go), which undo it.
	// If its output fails (a bad record then, or a row of the other side
	// that made it fail), it was not emitted: no tombstone is owed, and
	// failing this record for it would make every later change of the
	// key fail over the same old row. A reader of changes, though, may
	// hold an older row of the key that did come out (before the other
	// side's change that failed), which it cannot undo without it: then
	// the record fails, as a bad record.
	changes := slices.ContainsFunc(n.outs, func(o *node) bool { return o.changes })
	var vBefore any
	before := false
	if !after || changes {
		vb, ok, err := s.eval(g, rec, lBefore, rBefore)
		switch {
		case err == nil:
			vBefore, before = vb, ok
		case changes:
			return g.fail(n, rec, PhaseEval, err)
		}
	}
	owed := before // a tombstone, when the key's row goes
	var em statestore.Store
	var key []byte
	if s.emitted != nil {
		key = rec.src.Key
		if em, err = s.emitted.store(rec.src.Partition); err != nil {
			return g.fail(n, rec, PhaseEval, err)
		}
		_, was, err := em.Get(key)
		if err != nil {
			return g.fail(n, rec, PhaseEval, fmt.Errorf("reading the join's store: %w", err))
		}
		owed = owed || was
		// Undone with the rest should the record fail.
		switch {
		case after && !was:
			s.emitted.put(rec.src.Partition, em, key, emittedMark, dirtyRow{})
		case !after && was:
			s.emitted.put(rec.src.Partition, em, key, nil, dirtyRow{})
		}
	}
	if !after && !owed {
		return nil
	}
	out := *rec
	out.from &^= fromValueMask
	out.value = v // nil: a tombstone
	out.chg = nil
	if changes {
		out.chg = &change{}
		if before {
			out.chg.old = vBefore
		}
	}
	return g.forward(n, &out, emit)
}

// tableChanged runs the table-table joins of a's table for rec, whose key
// had the row old (its stored bytes) before rec was applied.
func (g *graph) tableChanged(a *aggregator, rec *record, old []byte, hadOld bool, emit emitFunc) error {
	for _, n := range g.tableJoins[a] {
		s := n.step.(tableChanger)
		prev := side{ok: hadOld}
		if hadOld {
			t, c := a.node.t, a.node.codec
			var err error
			if prev.row, err = c.value.Decode(t.Topic, format.NoHeaders, old); err != nil {
				return g.fail(n, rec, PhaseDecode, fmt.Errorf("table %s row (format %s): %w", t.Name, t.Format, err))
			}
		}
		if err := s.changed(g, n, a, rec, prev, emit); err != nil {
			return err
		}
	}
	return nil
}

func newTableJoin(g *graph, n *node) step {
	l, r := g.nodes[n.t.Join.Left.Name], g.nodes[n.t.Join.Table.Name]
	s := tableJoinStep{j: n.t.Join, left: l.agg, right: r.agg, lcodec: l.codec, rcodec: r.codec}
	g.readsTables(n, s.left, s.right)
	if n.t.Join.On != nil {
		return newForeignKeyJoin(g, n, s)
	}
	s.emitted = n.agg
	return s
}

// readsTables records that n reads the changes of tables (tableChanged).
func (g *graph) readsTables(n *node, tables ...*aggregator) {
	if g.tableJoins == nil {
		g.tableJoins = map[*aggregator][]*node{}
	}
	for _, a := range tables {
		if !slices.Contains(g.tableJoins[a], n) {
			g.tableJoins[a] = append(g.tableJoins[a], n)
		}
	}
}

// restoreTable restores the store of a table a table-table join reads up
// to the group's committed offset of its partition (see above): the
// member's consumer resumes there, and the join's output for the records
// from there on has not been committed.
func (t *tasks) restoreTable(ctx context.Context, cl *kgo.Client, topic string, p int32, st statestore.Store, progress statestore.Progress) (statestore.RestoreStats, error) {
	end, err := t.stableOffset(ctx, cl, topic, p)
	if err != nil {
		return statestore.RestoreStats{}, fmt.Errorf("fetching the committed offset of group %s for table %s partition %d: %w", t.group, topic, p, err)
	}
	return statestore.RestoreUpTo(ctx, cl, topic, p, st, end, progress)
}

// stableOffset returns the group's committed offset of topic/p, 0 when
// none is, once no transaction that committed an offset of it is pending:
// the offset the member's consumer resumes at (kgo's
// RequireStableFetchOffsets waits the same way).
//
// It asks for the partition itself, with require_stable, and asks again
// while the answer is retriable. The broker answers a pending partition
// with UNSTABLE_OFFSET_COMMIT (retriable: the offset is about to change)
// only when asked for it: asked for all of the group's offsets, it lists
// the partitions that have a committed offset, so a partition whose first
// offset is pending is missing, as one with none at all is. Restored to
// the log start, that table's records below the pending offset would be
// in no store once the consumer resumed past them.
func (t *tasks) stableOffset(ctx context.Context, cl *kgo.Client, topic string, p int32) (int64, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = t.group
	req.RequireStable = true
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	rt.Partitions = []int32{p}
	req.Topics = append(req.Topics, rt)
	var end int64
	var final error // not retriable: returned as is, not asked again
	err := retried(ctx, func() error {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		// Up to v7 the partition is in Topics, from v8 in Groups (kgo
		// answers in the form the broker used); the first error wins.
		code, at, found := resp.ErrorCode, int64(-1), false
		take := func(errCode int16, offset int64) {
			if code == 0 {
				code = errCode
			}
			at, found = offset, true
		}
		for _, g := range resp.Groups {
			if g.Group != t.group {
				continue
			}
			if code == 0 {
				code = g.ErrorCode
			}
			for _, rt := range g.Topics {
				for _, rp := range rt.Partitions {
					if rt.Topic == topic && rp.Partition == p {
						take(rp.ErrorCode, rp.Offset)
					}
				}
			}
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if !found && rt.Topic == topic && rp.Partition == p {
					take(rp.ErrorCode, rp.Offset)
				}
			}
		}
		if err := kerr.ErrorForCode(code); err != nil {
			if kafkaerr.Retriable(err) {
				return err
			}
			final = err
			return nil
		}
		end = max(at, 0) // -1: none committed, the consumer starts at the log start
		return nil
	})
	if err == nil {
		err = final
	}
	return end, err
}
