package processor

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
)

// aggregator runs one aggregate step. Its state, one row of accumulators
// per group, lives in one store per task (input partition); every change
// goes to the store's overlay and, once per key per transaction, to the
// changelog.
type aggregator struct {
	g           *graph
	node        *node
	changelog   string // <pipeline>-<node>-changelog
	repartition string // <pipeline>-<node>-repartition, "" when grouping by the record key
	// input is the topic whose partitions are this aggregate's tasks: the
	// repartition topic, or the source topic it reads.
	input string

	stores map[int32]statestore.Store // by task partition; owned by the run loop
	dirty  map[int32]map[string]dirtyRow
	// windows: wall time of the task's last record, or of the last
	// watermark that moved its clock, for the idle timeout.
	lastWall map[int32]time.Time
	// rows holds, per task, the rows of an unwindowed aggregate that the
	// open transaction changed, decoded: a row is decoded once and
	// encoded once per transaction (at flush), not once per record.
	rows map[int32]map[string]*cachedRow
	// pending holds, per task, the rows of windows and sessions that an
	// emit: on_commit aggregate changed in the open transaction, by
	// output row (nil accs: a tombstone), emitted at flush: a window
	// that closes in the same transaction still emits its last row.
	pending map[int32]map[string]*pendingRow

	// Event time across the repartition (watermark.go): the upstream
	// partitions this member owns, every upstream partition, the source
	// topics that feed it, and the repartition topic's partition count.
	ups     map[writer]*upstream
	writers []writer
	feeds   map[string]bool
	parts   int32

	// A table source's store (table.go): the topic backs it, so
	// changelog names the topic. restoredTo is, per task, where the
	// restore left the store (records below it are in it already);
	// next is where the open transaction's table records end.
	table      bool
	restoredTo map[int32]int64
	next       map[int32]int64
	// oldRows: some reader of the rows uses their old row (changes.go).
	oldRows bool
}

// reset forgets what the transaction that ended changed (its outcome is
// in the stores now, or dropped).
func (a *aggregator) reset() {
	clear(a.dirty)
	clear(a.rows)
	clear(a.pending)
	clear(a.next)
}

// changedTask reports whether the open transaction changed task p.
func (a *aggregator) changedTask(p int32) bool { return len(a.dirty[p]) > 0 || len(a.rows[p]) > 0 }

// dropTask closes task p's store, dropping its uncommitted writes, and
// forgets the task.
func (a *aggregator) dropTask(p int32) error {
	var err error
	if st, ok := a.stores[p]; ok {
		st.Abort()
		err = st.Close()
		delete(a.stores, p)
	}
	delete(a.dirty, p)
	delete(a.rows, p)
	delete(a.pending, p)
	delete(a.lastWall, p)
	if s := a.g.streamJoinOf(a); s != nil {
		s.dropTask(p)
	}
	if a.table {
		delete(a.restoredTo, p)
		delete(a.next, p)
	}
	return err
}

// pendingRow is a windowed row waiting for the end of the transaction.
type pendingRow struct {
	key  any
	win  span
	accs []acc // nil: delete the row (a session merged into another)
	r    record
}

// cachedRow is a row changed in the open transaction.
type cachedRow struct {
	key  any
	accs []acc
	r    record // the last record that changed it
	// orig is the row as the store had it when the transaction first
	// touched it: what emit: on_commit output last.
	orig []acc
}

type dirtyRow struct {
	row   bool   // an output row (not an index entry of windows or dedupe)
	key   any    // decoded group key
	win   *span  // the row's window, for windowed aggregates
	state []byte // encoded accumulators; nil: deleted
	r     record // the last record that changed the row (timestamp, headers)
}

func newAggregator(s *topology.StatefulStep, n *node) *aggregator {
	a := &aggregator{
		node:      n,
		changelog: s.Changelog.Name,
		input:     s.Input,
		stores:    map[int32]statestore.Store{},
		dirty:     map[int32]map[string]dirtyRow{},
		lastWall:  map[int32]time.Time{},
		rows:      map[int32]map[string]*cachedRow{},
		pending:   map[int32]map[string]*pendingRow{},
	}
	if s.Repartition != nil {
		a.repartition = s.Repartition.Name
	}
	if s.Table {
		a.table = true
		a.restoredTo, a.next = map[int32]int64{}, map[int32]int64{}
	}
	if a.watermarked() {
		a.ups = map[writer]*upstream{}
		a.feeds = map[string]bool{}
		for _, t := range s.Feeds {
			a.feeds[t] = true
		}
	}
	return a
}

// setPending records the on_commit row of a window or session for the
// end of the transaction; the record's undo puts back what was there.
func (a *aggregator) setPending(part int32, pk string, row *pendingRow) {
	m := a.pending[part]
	if m == nil {
		m = map[string]*pendingRow{}
		a.pending[part] = m
	}
	prev, had := m[pk]
	a.g.undo = append(a.g.undo, undoEntry{a: a, part: part, key: []byte(pk), pend: true, prevPending: prev, hadPending: had})
	m[pk] = row
}

// put writes key = value (nil: delete) into the task's store overlay and
// marks it for the changelog.
func (a *aggregator) put(part int32, st statestore.Store, key, value []byte, d dirtyRow) {
	// Remember what was there, to undo if the record fails (graph.run).
	u := undoEntry{a: a, st: st, part: part, key: key}
	u.prev, u.hadPrev, _ = st.Get(key)
	u.dirty, u.hadDirty = a.dirty[part][string(key)]
	a.g.undo = append(a.g.undo, u)
	st.Put(key, value)
	if a.dirty[part] == nil {
		a.dirty[part] = map[string]dirtyRow{}
	}
	d.state = value
	a.dirty[part][string(key)] = d
}

// store returns the store of the task a record belongs to.
func (a *aggregator) store(part int32) (statestore.Store, error) {
	st, ok := a.stores[part]
	if !ok {
		return nil, fmt.Errorf("node %q: no store for partition %d of %s (not restored); this is a bug", a.node.t.Name, part, a.input)
	}
	return st, nil
}

// groupKey evaluates group_by: one column gives its value, several a map.
func (g *graph) groupKey(n *node, r *record) (any, []byte, error) {
	agg := n.t.Aggregate
	var key any
	if len(agg.GroupBy) == 1 && agg.GroupByKey {
		key = r.key
	} else if len(agg.GroupBy) == 1 {
		v, err := g.eval(n, agg.GroupBy[0].Expr, r)
		if err != nil {
			return nil, nil, err
		}
		key = v
	} else {
		m := make(map[string]any, len(agg.GroupBy))
		for _, c := range agg.GroupBy {
			v, err := g.eval(n, c.Expr, r)
			if err != nil {
				return nil, nil, err
			}
			m[c.Name] = v
		}
		key = m
	}
	kb, err := format.EncodeJSON(key)
	if err != nil {
		return nil, nil, g.fail(n, r, PhaseEval, fmt.Errorf("group key: %w", err))
	}
	if kb == nil {
		kb = []byte("null")
	}
	return key, kb, nil
}

// toRepartition writes r to the repartition topic, keyed by its group, so
// that every record of a group reaches the one task that owns the group.
func (g *graph) toRepartition(a *aggregator, r *record, emit emitFunc) error {
	key, kb, err := g.groupKey(a.node, r)
	if err != nil {
		return err
	}
	if a.watermarked() {
		// The upstream's watermark: the event time the aggregate will
		// read, from the record as it will arrive (keyed by its group).
		keyed := *r
		keyed.key = key
		ts, err := g.eventTime(a.node, windowOf(a), &keyed)
		if err != nil {
			return err
		}
		a.advanceUpstream(r, ts, g.now())
	}
	vb, ok := r.rawValue(topology.FormatJSON)
	if !ok {
		if vb, err = encodeInternal(r.value); err != nil {
			return g.fail(a.node, r, PhaseEncode, fmt.Errorf("repartition value: %w", err))
		}
	}
	if vb == nil {
		vb = []byte("null")
	}
	hs := r.headers
	if g.deadLetterTopic != "" && r.src != nil && r.src.Partition >= 0 {
		// A record failing after the repartition is dead-lettered as
		// it was read from its source.
		hs = append(slices.Clip(hs), originHeader(r.src))
	}
	emit(&kgo.Record{Topic: a.repartition, Key: kb, Value: vb, Headers: hs, Timestamp: r.ts})
	return nil
}

// aggregate folds r into its group's row.
func (g *graph) aggregate(a *aggregator, r *record, emit emitFunc) error {
	n := a.node
	part := r.taskOf()
	st, err := a.store(part)
	if err != nil {
		return err
	}
	if r.chg != nil && n.t.Aggregate.Retract {
		return g.aggregateChange(a, st, part, r, emit)
	}
	key, kb, err := g.groupKey(n, r)
	if err != nil {
		return err
	}
	if n.t.Aggregate.Window != nil {
		return g.windowed(a, st, part, key, kb, r, emit)
	}
	cr, prev, err := g.touchRow(a, st, part, key, kb, r)
	if err != nil {
		return err
	}
	changed, err := g.foldSigned(n, cr.accs, r, 1)
	if err != nil || !changed {
		return err
	}
	cr.key, cr.r = key, *r
	a.rows[part][string(kb)] = cr
	if n.t.Aggregate.Emit == topology.EmitOnCommit {
		return nil
	}
	return g.emitChange(a, key, prev, cr.accs, r, emit)
}

// touchRow returns the row of group kb, decoded (cached for the rest of
// the transaction once changed), and a copy of its accumulators as they
// are before r: the record's undo puts them back if it fails.
func (g *graph) touchRow(a *aggregator, st statestore.Store, part int32, key any, kb []byte, r *record) (*cachedRow, []acc, error) {
	n := a.node
	rows := a.rows[part]
	if rows == nil {
		rows = map[string]*cachedRow{}
		a.rows[part] = rows
	}
	cr, cached := rows[string(kb)]
	if !cached {
		accs, err := loadRow(st, kb, a.rowLen())
		if err != nil {
			return nil, nil, g.fail(n, r, PhaseEval, err)
		}
		cr = &cachedRow{key: key, accs: accs, orig: slices.Clone(accs)}
	}
	// Undo first: fold may fail half way through the columns. The
	// accumulators' sets are never changed in place, so a shallow copy
	// keeps them.
	prev := slices.Clone(cr.accs)
	g.undo = append(g.undo, undoEntry{a: a, part: part, key: kb, cached: cr, hadCached: cached, prevAccs: prev, prevR: cr.r})
	return cr, prev, nil
}

// rowLen is the number of accumulators of a row: one per column, and for
// a retracting aggregate one more counting the rows in the group (the
// group is deleted when it reaches 0).
func (a *aggregator) rowLen() int {
	n := len(a.node.t.Aggregate.Columns)
	if a.node.t.Aggregate.Retract {
		n++
	}
	return n
}

// fold folds r into accs, one accumulator per column, and reports whether
// any changed.
func (g *graph) fold(n *node, accs []acc, r *record) (bool, error) {
	return g.foldSigned(n, accs, r, 1)
}

// foldSigned folds r into accs (sign 1) or takes it back out (sign -1,
// a retracting aggregate's old row), and reports whether any column
// changed.
func (g *graph) foldSigned(n *node, accs []acc, r *record, sign int) (bool, error) {
	changed := false
	if n.t.Aggregate.Retract {
		// The hidden row count: every row, whatever the columns'
		// where say.
		accs[len(n.t.Aggregate.Columns)].N += int64(sign)
		changed = true
	}
	for i := range n.t.Aggregate.Columns {
		c := &n.t.Aggregate.Columns[i]
		if c.Where != nil {
			ok, err := g.test(n, c.Where, r)
			if err != nil {
				return false, err
			}
			if !ok {
				continue
			}
		}
		var v any
		if c.Of != nil {
			var err error
			if v, err = g.eval(n, c.Of, r); err != nil {
				return false, err
			}
			if f, ok := v.(float64); ok && c.OfPath != nil && c.Scale < 0 && (c.Func == topology.AggSum || c.Func == topology.AggAvg) {
				v = numberText(r, c.OfPath, f)
			}
		}
		ch := true
		var err error
		if c.Func == topology.AggCountDistinct && accs[i].D != nil && v != nil {
			g.undoDistinct(accs[i].D, v)
		}
		if sign < 0 {
			err = accs[i].retract(c.Func, v, c.Of != nil)
		} else {
			ch, err = accs[i].update(c.Func, v, c.Of != nil)
		}
		if err != nil {
			return false, g.fail(n, r, PhaseEval, fmt.Errorf("column %s: %w", c.Name, err))
		}
		changed = changed || ch
	}
	return changed, nil
}

func (g *graph) emitRow(a *aggregator, key any, win *span, accs []acc, r *record, emit emitFunc) error {
	out, err := g.rowOf(a, key, win, accs, r)
	if err != nil {
		return err
	}
	return g.forward(a.node, out, emit)
}

// rowOf is the output row of a group (in window win, if windowed) with
// accumulators accs, as a record carrying r's time and source.
func (g *graph) rowOf(a *aggregator, key any, win *span, accs []acc, r *record) (*record, error) {
	n := a.node
	row := make(map[string]any, len(n.t.Aggregate.GroupBy)+len(accs)+2)
	if len(n.t.Aggregate.GroupBy) == 1 {
		row[n.t.Aggregate.GroupBy[0].Name] = key
	} else if m, ok := key.(map[string]any); ok {
		for k, v := range m {
			row[k] = v
		}
	}
	outKey := key
	if win != nil {
		// A windowed row is keyed by its group and window, so the
		// output is an upsert stream of (group, window) rows.
		start, end := msTime(win.start), msTime(win.end)
		row["window_start"], row["window_end"] = start, end
		k := make(map[string]any, len(n.t.Aggregate.GroupBy)+1)
		for name, v := range row {
			if name != "window_end" && !isColumn(n, name) {
				k[name] = v
			}
		}
		outKey = k
	}
	for i := range n.t.Aggregate.Columns {
		c := &n.t.Aggregate.Columns[i]
		v, err := accs[i].result(c)
		if err != nil {
			return nil, g.fail(n, r, PhaseEval, fmt.Errorf("column %s: %w", c.Name, err))
		}
		row[c.Name] = v
	}
	out := *r
	out.key, out.value = outKey, row
	out.from = fromNumbers
	return &out, nil
}

func isColumn(n *node, name string) bool {
	for _, c := range n.t.Aggregate.Columns {
		if c.Name == name {
			return true
		}
	}
	return false
}

// flush writes the changelog record of every row changed in this
// transaction, once per key, and for emit: on_commit the rows themselves.
// It runs just before the transaction ends.
func (g *graph) flush(a *aggregator, emit emitFunc, changelog func(*kgo.Record)) error {
	for part, rows := range a.rows {
		st, err := a.store(part)
		if err != nil {
			return err
		}
		for kb, cr := range rows {
			var state []byte // nil: a group left without rows, deleted
			if !a.emptyRow(cr.accs) {
				if state, err = encodeRow(cr.accs); err != nil {
					return err
				}
			}
			st.Put([]byte(kb), state)
			changelog(&kgo.Record{Topic: a.changelog, Partition: part, Key: []byte(kb), Value: state})
			if a.node.t.Aggregate.Emit == topology.EmitOnCommit {
				if err := g.emitChange(a, cr.key, cr.orig, cr.accs, &cr.r, emit); err != nil {
					return err
				}
			}
		}
	}
	for part, rows := range a.dirty {
		for kb, d := range rows {
			changelog(&kgo.Record{Topic: a.changelog, Partition: part, Key: []byte(kb), Value: d.state})
		}
	}
	for _, rows := range a.pending {
		pks := make([]string, 0, len(rows))
		for pk := range rows {
			pks = append(pks, pk)
		}
		slices.Sort(pks)
		for _, pk := range pks {
			p := rows[pk]
			var err error
			if p.accs == nil {
				err = g.emitTombstone(a, p.key, p.win.start, &p.r, emit)
			} else {
				err = g.emitRow(a, p.key, &p.win, p.accs, &p.r, emit)
			}
			if err != nil {
				return err
			}
		}
	}
	if a.ups != nil {
		a.flushWatermarks(emit)
	}
	return nil
}

func loadRow(st statestore.Store, kb []byte, ncols int) ([]acc, error) {
	b, ok, err := st.Get(kb)
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	if !ok {
		return make([]acc, ncols), nil
	}
	return decodeRow(b, ncols)
}

// Rows are stored as a JSON list of accumulators, in column order.
func encodeRow(accs []acc) ([]byte, error) {
	if b, ok := appendRowFast(make([]byte, 0, 16+24*len(accs)), accs); ok {
		return b, nil
	}
	return encodeRowGeneral(accs)
}

func encodeRowGeneral(accs []acc) ([]byte, error) {
	l := make([]any, len(accs))
	for i := range accs {
		l[i] = accs[i].toMap()
	}
	return format.EncodeJSON(l)
}

func decodeRow(b []byte, ncols int) ([]acc, error) {
	if accs, ok := decodeRowFast(b, ncols); ok {
		return accs, nil
	}
	return decodeRowGeneral(b, ncols)
}

func decodeRowGeneral(b []byte, ncols int) ([]acc, error) {
	v, err := format.DecodeJSON(b)
	if err != nil {
		return nil, fmt.Errorf("corrupt state: %w", err)
	}
	l, ok := v.([]any)
	if !ok || len(l) != ncols {
		return nil, fmt.Errorf("corrupt state: want %d columns; did the aggregate's columns change? (reset its changelog)", ncols)
	}
	accs := make([]acc, ncols)
	for i, e := range l {
		m, _ := e.(map[string]any)
		accs[i] = accFromMap(m)
	}
	return accs, nil
}

// numberText returns, for a sum or avg without scale, the number f of the
// value's field at path as the input wrote it (100.00 rather than 100), so
// the sum keeps the input's decimal places as SQL's NUMERIC does; or f
// when the value is no longer the input's bytes or the text says
// otherwise.
func numberText(r *record, path []string, f float64) any {
	raw, ok := r.rawValue(topology.FormatJSON)
	if !ok {
		return f
	}
	text, ok := format.NumberText(raw, path)
	if !ok || bytes.ContainsAny(text, "eE") {
		return f
	}
	// The same number as the decoder made (a repeated key, say, would
	// not be): compared as exact decimals, without allocating.
	x, ok := parseFixed(text)
	y, ok2 := fixedOf(f)
	if !ok || !ok2 || !x.equal(y) {
		return f
	}
	return format.Number(text)
}
