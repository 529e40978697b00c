package processor

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/topology"
)

// Table sources and stream-table joins.
//
// A table source's store holds the latest value of each key of its topic,
// per partition, as the bytes the topic holds (a null value deletes). The
// topic is its own changelog: a task restores the store from it, with
// read_committed, up to its high watermark before any record of the task
// is processed (the join's input partition stays paused until then, like
// a restoring aggregate's). The consumer then reads the table topic from
// the group's committed offset, which is at or below where the restore
// ended: those records are in the store already, and applying them again
// would move keys back to older values for a while, so they are skipped.
// Later records update the store in the open transaction (an abort drops
// the update with the rest), and the store's checkpoint follows them.
//
// A table source that steps read (from) is restored differently, like a
// table-table join's tables (restoreTable): to the group's committed
// offset of the partition rather than its high watermark. Its records from there on are processed again, and each must
// meet the row it replaced in the store, for the steps to undo that row
// (an aggregate subtracts it from its group). Restored to the high
// watermark, the store would already hold the new rows, and the records
// skipped as "in the store already" would never reach the steps. A join
// on such a table sees it, at start-up, as of the committed offset; the
// records after it apply as they are read again.
//
// A join looks the record key up, as read (its bytes), in the store of the
// task's partition: partition p of the input and of the table topic are
// one task (the balancer keeps them on one member).

// tableRecord applies a record of a table source's topic to its store,
// then runs the table-table joins of the table (ttjoin.go) and, when other
// steps read the table (from), forwards the record to them as a change:
// the new row, and the row of its key the store had (changes.go).
func (g *graph) tableRecord(src *node, r *record, emit emitFunc) error {
	a := src.agg
	p, off := r.src.Partition, r.src.Offset
	if off < a.restoredTo[p] {
		return nil // in the store already (see above)
	}
	st, ok := a.stores[p]
	if !ok {
		return nil // not this member's task any more (revoked mid-batch)
	}
	joins := len(g.tableJoins[a]) > 0 && r.src.Key != nil
	readers := changeReaders(src)
	var old []byte
	var had bool
	if joins || len(readers) > 0 {
		var err error
		if old, had, err = st.Get(r.src.Key); err != nil {
			return g.fail(src, r, PhaseEval, fmt.Errorf("reading table %s: %w", src.t.Name, err))
		}
		old = slices.Clone(old)
	}
	// Undo (a record failing downstream) puts the row back.
	a.put(p, st, r.src.Key, r.src.Value, dirtyRow{})
	delete(a.dirty[p], string(r.src.Key)) // the topic is the changelog: nothing to write
	a.next[p] = off + 1
	if joins {
		if err := g.tableChanged(a, r, old, had, emit); err != nil {
			return err
		}
	}
	if len(readers) == 0 {
		return nil
	}
	var oldRow any
	if had {
		var err error
		if oldRow, err = src.codec.value.Decode(src.t.Topic, format.NoHeaders, old); err != nil {
			return g.fail(src, r, PhaseDecode, fmt.Errorf("table %s row (format %s): %w", src.t.Name, src.t.Format, err))
		}
	}
	if oldRow == nil && r.value == nil {
		return nil
	}
	out := *r
	out.chg = &change{old: oldRow}
	src.out.Inc()
	for _, o := range readers {
		if err := g.push(o, &out, emit); err != nil {
			return err
		}
	}
	return nil
}

// changeReaders are the steps that read table source src with from,
// other than its table-table joins (which tableChanged runs).
func changeReaders(src *node) []*node {
	var out []*node
	for _, o := range src.outs {
		if j := o.t.Join; j != nil && j.Left == src.t {
			continue
		}
		out = append(out, o)
	}
	return out
}

// joinStep joins each record with its key's row in the table.
type joinStep struct {
	j      *topology.Join
	table  *aggregator  // a partitioned table
	global *globalTable // or a global one
	// repartition: records go through this topic first (keyed as the
	// table's keys are), and are joined when read back from it.
	repartition string
	codec       codecs // the table source's (json for an aggregate's)
	// aggTable: the table is an aggregate step's rows (its store holds
	// accumulators, keyed by the JSON of the group value).
	aggTable bool
}

func (s joinStep) process(g *graph, n *node, r *record, emit emitFunc) error {
	if s.repartition != "" {
		return s.toRepartition(g, n, r, emit)
	}
	return s.join(g, n, r, emit)
}

// toRepartition writes r to the join's repartition topic, keyed as the
// table's keys are, so it reaches the task holding its key's rows.
func (s joinStep) toRepartition(g *graph, n *node, r *record, emit emitFunc) error {
	kf := s.j.Table.KeyFormat
	key, ok := r.rawKey(kf)
	if s.aggTable {
		// Keyed as the aggregate's store keys its groups.
		key, ok = nil, false
	}
	if !ok {
		var err error
		// Bytes as the table's topic holds its keys, whatever the
		// headers: no headers.
		if key, err = s.codec.key.Encode(s.j.Table.Topic, format.NoHeaders, r.key); err != nil {
			return g.fail(n, r, PhaseEncode, fmt.Errorf("key for table %s (format %s): %w", s.j.Table.Name, kf, err))
		}
	}
	vb, ok := r.rawValue(topology.FormatJSON)
	if !ok {
		var err error
		if vb, err = encodeInternal(r.value); err != nil {
			return g.fail(n, r, PhaseEncode, fmt.Errorf("repartition value: %w", err))
		}
	}
	if vb == nil {
		vb = []byte("null")
	}
	hs := r.headers
	if g.deadLetterTopic != "" && r.src != nil && r.src.Partition >= 0 {
		hs = append(slices.Clip(hs), originHeader(r.src))
	}
	emit(&kgo.Record{Topic: s.repartition, Key: key, Value: vb, Headers: hs, Timestamp: r.ts})
	return nil
}

// fromRepartition joins a record read back from the join's repartition
// topic.
func (g *graph) fromRepartition(n *node, in *kgo.Record, emit emitFunc) error {
	if fk, ok := n.step.(foreignKeyJoin); ok {
		return fk.fromTopic(g, n, in, emit)
	}
	s := n.step.(joinStep)
	r := record{headers: withoutInternal(in.Headers), ts: in.Timestamp, src: in}
	var err error
	if r.key, err = s.codec.key.Decode(s.j.Table.Topic, format.NoHeaders, in.Key); err != nil {
		return g.fail(n, &r, PhaseDecode, fmt.Errorf("repartition key: %w", err))
	}
	var tagged bool
	if r.value, tagged, err = decodeInternal(in.Value); err != nil {
		return g.fail(n, &r, PhaseDecode, fmt.Errorf("repartition value: %w", err))
	}
	r.decodedFrom(s.j.Table.KeyFormat, topology.FormatJSON)
	if tagged {
		r.from &^= fromValueMask // the bytes are not the value's JSON
	}
	return s.join(g, n, &r, emit)
}

func (s joinStep) join(g *graph, n *node, r *record, emit emitFunc) error {
	var row any
	found := false
	if s.global != nil {
		// Any key will do: the record's key as the table's topic
		// would hold it.
		key, ok := r.rawKey(s.j.Table.KeyFormat)
		if !ok {
			var err error
			// A lookup key, not a record: no headers.
			if key, err = s.codec.key.Encode(s.j.Table.Topic, format.NoHeaders, r.key); err != nil {
				return g.fail(n, r, PhaseEncode, fmt.Errorf("key for global table %s (format %s): %w", s.j.Table.Name, s.j.Table.KeyFormat, err))
			}
		}
		if b, ok := s.global.get(key); ok && key != nil {
			var err error
			if row, err = s.codec.value.Decode(s.j.Table.Topic, format.NoHeaders, b); err != nil {
				return g.fail(n, r, PhaseDecode, fmt.Errorf("table %s row (format %s): %w", s.j.Table.Name, s.j.Table.Format, err))
			}
			found = true
		}
	} else if s.aggTable {
		var err error
		if row, found, err = g.aggregateRow(s.table, r.src.Partition, r.src.Key); err != nil {
			return g.fail(n, r, PhaseEval, fmt.Errorf("reading the rows of %s: %w", s.j.Table.Name, err))
		}
	} else if key := r.src.Key; key != nil {
		st, err := s.table.store(r.src.Partition)
		if err != nil {
			return g.fail(n, r, PhaseEval, err)
		}
		b, ok, err := st.Get(key)
		if err != nil {
			return g.fail(n, r, PhaseEval, fmt.Errorf("reading table %s: %w", s.j.Table.Name, err))
		}
		if ok {
			// The store keeps a row's value only, not its headers.
			if row, err = s.codec.value.Decode(s.j.Table.Topic, format.NoHeaders, b); err != nil {
				return g.fail(n, r, PhaseDecode, fmt.Errorf("table %s row (format %s): %w", s.j.Table.Name, s.j.Table.Format, err))
			}
			found = true
		}
	}
	result := "miss"
	if found {
		result = "match"
	}
	g.m.JoinLookups.WithLabelValues(n.t.Name, result).Inc()
	if !found && s.j.Type == topology.JoinInner {
		return nil
	}
	act := g.activation(r)
	act.table = row
	res, _, err := s.j.Output.Program.Eval(act)
	if err != nil {
		return g.fail(n, r, PhaseEval, err)
	}
	out := *r
	out.from &^= fromValueMask
	if out.value, err = g.native(n, res, r); err != nil {
		return err
	}
	return g.forward(n, &out, emit)
}

func init() {
	register(topology.KindJoin, func(g *graph, n *node) step {
		if n.t.Join.Left != nil {
			return newTableJoin(g, n)
		}
		if n.t.StreamJoin() {
			return newStreamJoin(g, n)
		}
		t := g.nodes[n.t.Join.Table.Name]
		s := joinStep{j: n.t.Join, table: t.agg, global: g.globals[n.t.Join.Table.Name], codec: t.codec}
		if t.t.Kind == topology.KindAggregate {
			s.aggTable = true
			// json keys and values: json needs no deps, so this cannot fail.
			s.codec, _ = newCodecs(&topology.Node{Kind: topology.KindSource}, format.Deps{})
		}
		if n.t.Join.Repartition {
			s.repartition = topology.RepartitionTopic(g.pipeline, n.t.Name)
			g.joinRepartition[s.repartition] = n
		}
		return s
	})
}
