package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
)

// A windowed aggregate's store, per task, holds:
//
//	w<start>|<group>  -> the row of one group in one window (tumbling, hopping)
//	s<group>          -> the open sessions of one group, sorted (session)
//	x<bucket>         -> the groups with a window (or session) ending in
//	                     the bucket: the close index
//	m                 -> the buckets of the close index, ascending
//	t                 -> the task's stream time
//
// A window closes when stream time (the highest event time the task has
// seen) passes its end plus grace: its final row is emitted (on_close) and
// its state deleted from store and changelog, so state stays bounded by
// the windows still open. The close index lets that happen without
// scanning the store.

// span is a window: [start, end) for tumbling and hopping windows;
// for sessions, the first and last record times.
type span struct{ start, end int64 }

// session is one open session window of a group.
type session struct {
	Start int64 `json:"s"`
	End   int64 `json:"e"`
	Row   []byte
}

var (
	windowMeta       = []byte("m")
	windowStreamTime = []byte("t")
)

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

// eventTime is a record's event time in milliseconds.
func (g *graph) eventTime(n *node, w *topology.Window, r *record) (int64, error) {
	return g.timeOf(n, w.Time, r)
}

// timeOf evaluates a time expression (nil: the record timestamp) to
// milliseconds.
func (g *graph) timeOf(n *node, e *topology.Expr, r *record) (int64, error) {
	if e == nil {
		return r.ts.UnixMilli(), nil
	}
	v, err := g.eval(n, e, r)
	if err != nil {
		return 0, err
	}
	switch v := v.(type) {
	case time.Time:
		return v.UnixMilli(), nil
	case int64:
		return v, nil
	case float64:
		return int64(v), nil
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
			if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
				return t.UnixMilli(), nil
			}
		}
		return 0, g.fail(n, r, PhaseEval, fmt.Errorf("event time %q: want RFC 3339, YYYY-MM-DD HH:MM:SS or epoch milliseconds", v))
	}
	return 0, g.fail(n, r, PhaseEval, fmt.Errorf("event time of type %T: want a timestamp, a string or epoch milliseconds", v))
}

// taskTime returns the stream time of a task. It lives in the store, not
// in memory, so an aborted transaction (or a failed record) that advanced
// it is undone with the rest of its state: a stream time advanced by work
// that never committed would close windows early.
func (a *aggregator) taskTime(st statestore.Store) (int64, error) {
	b, ok, err := st.Get(windowStreamTime)
	if err != nil || !ok {
		return noTime, err
	}
	t, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return noTime, fmt.Errorf("corrupt stream time %q", b)
	}
	return t, nil
}

// noTime is the stream time of a task that has seen no record.
const noTime = int64(-1 << 62)

func (a *aggregator) setTaskTime(part int32, st statestore.Store, t int64) {
	a.put(part, st, windowStreamTime, []byte(strconv.FormatInt(t, 10)), dirtyRow{})
}

// windowed folds r into the windows of its group that contain its event
// time.
func (g *graph) windowed(a *aggregator, st statestore.Store, part int32, key any, kb []byte, r *record, emit emitFunc) error {
	n := a.node
	w := n.t.Aggregate.Window
	ts, err := g.eventTime(n, w, r)
	if err != nil {
		return err
	}
	a.lastWall[part] = g.now()
	now, err := a.taskTime(st)
	if err != nil {
		return g.fail(n, r, PhaseEval, err)
	}
	if ts > now && len(a.writers) == 0 {
		// The task reads one source partition: its clock is the
		// highest event time read. Behind a repartition, watermarks
		// from every upstream partition move it (watermark.go).
		a.setTaskTime(part, st, ts)
		now = ts
	}
	if err := g.closeWindows(a, st, part, now, emit); err != nil {
		return err
	}
	grace := w.Grace.Milliseconds()
	if w.Kind == topology.Session {
		return g.sessionUpdate(a, st, part, key, kb, ts, now, r, emit)
	}
	size, adv := w.Size.Milliseconds(), w.Advance.Milliseconds()
	open := 0
	// Every window [start, start+size) holding ts, start a multiple of
	// the advance.
	for start := floorDiv(ts, adv) * adv; start > ts-size; start -= adv {
		if start+size+grace <= now {
			continue // closed
		}
		open++
		rk := windowRowKey(start, kb)
		accs, err := loadRow(st, rk, len(n.t.Aggregate.Columns))
		if err != nil {
			return g.fail(n, r, PhaseEval, err)
		}
		_, existed, err := st.Get(rk)
		if err != nil {
			return g.fail(n, r, PhaseEval, err)
		}
		changed, err := g.fold(n, accs, r)
		if err != nil {
			return err
		}
		if !existed {
			if err := a.index(part, st, start+size, kb); err != nil {
				return g.fail(n, r, PhaseEval, err)
			}
		}
		if !changed && existed {
			continue
		}
		state, err := encodeRow(accs)
		if err != nil {
			return g.fail(n, r, PhaseEncode, err)
		}
		win := &span{start, start + size}
		a.put(part, st, rk, state, dirtyRow{row: true, key: key, win: win, r: *r})
		switch n.t.Aggregate.Emit {
		case topology.EmitOnUpdate:
			if err := g.emitRow(a, key, win, accs, r, emit); err != nil {
				return err
			}
		case topology.EmitOnCommit:
			a.setPending(part, string(rk), &pendingRow{key: key, win: *win, accs: accs, r: *r})
		}
	}
	if open == 0 {
		return g.late(a, r, emit)
	}
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func windowRowKey(start int64, kb []byte) []byte {
	k := append([]byte("w"), strconv.FormatInt(start, 10)...)
	k = append(k, '|')
	return append(k, kb...)
}

func sessionKey(kb []byte) []byte { return append([]byte("s"), kb...) }

// late handles a record whose windows have all closed: it is counted, and
// dropped, dead-lettered or sent to the late sink as the window says.
func (g *graph) late(a *aggregator, r *record, emit emitFunc) error {
	g.m.LateRecords.WithLabelValues(a.node.t.Name).Inc()
	w := a.node.t.Aggregate.Window
	if w.Late == topology.LateSink {
		return g.push(g.nodes[w.LateTo.Name], r, emit)
	}
	if w.Late == topology.LateDeadLetter {
		// Behind a repartition, the record read is the repartition
		// topic's: dead-letter the source record it carries.
		src := original(r.src)
		emit(deadLetter(g.deadLetterTopic, g.pipeline, src, &RecordError{
			Topic: src.Topic, Partition: src.Partition, Offset: src.Offset, Node: a.node.t.Name, Phase: PhaseLate,
			Err: errors.New("late record: every window it belongs to has closed (stream time passed its end plus grace)"),
		}, g.maxOut[g.deadLetterTopic]))
		g.m.DeadLettered.WithLabelValues(a.node.t.Name, string(PhaseLate)).Inc()
	}
	return nil
}

// PhaseLate marks dead-letter records of late records.
const PhaseLate Phase = "late"

// index adds group kb to the close-index bucket of a window ending at end.
func (a *aggregator) index(part int32, st statestore.Store, end int64, kb []byte) error {
	bucket := a.bucketOf(end)
	bk := append([]byte("x"), strconv.FormatInt(bucket, 10)...)
	var groups []string
	if err := getJSON(st, bk, &groups); err != nil {
		return err
	}
	if slices.Contains(groups, string(kb)) {
		return nil
	}
	if len(groups) == 0 {
		var buckets []int64
		if err := getJSON(st, windowMeta, &buckets); err != nil {
			return err
		}
		if i, found := slices.BinarySearch(buckets, bucket); !found {
			a.putJSON(part, st, windowMeta, slices.Insert(buckets, i, bucket))
		}
	}
	a.putJSON(part, st, bk, append(groups, string(kb)))
	return nil
}

// bucketOf is the close-index bucket of a window ending at end: tumbling
// and hopping windows end on multiples of the advance, so each end is its
// own bucket; session ends are bucketed by the gap.
func (a *aggregator) bucketOf(end int64) int64 {
	w := a.node.t.Aggregate.Window
	if w.Kind == topology.Session {
		gap := w.Gap.Milliseconds()
		return floorDiv(end, gap) * gap
	}
	return end
}

// closeWindows closes every window of the task whose end plus grace is at
// or before now.
func (g *graph) closeWindows(a *aggregator, st statestore.Store, part int32, now int64, emit emitFunc) error {
	w := a.node.t.Aggregate.Window
	var buckets []int64
	if err := getJSON(st, windowMeta, &buckets); err != nil {
		return err
	}
	done := 0
	for _, b := range buckets {
		if closesAt(w, b) > now {
			break
		}
		bk := append([]byte("x"), strconv.FormatInt(b, 10)...)
		var groups []string
		if err := getJSON(st, bk, &groups); err != nil {
			return err
		}
		var open []string // sessions of the bucket still open
		for _, kb := range groups {
			if w.Kind != topology.Session {
				if err := g.closeWindow(a, st, part, b-w.Size.Milliseconds(), []byte(kb), emit); err != nil {
					return err
				}
				continue
			}
			if err := g.closeSessions(a, st, part, []byte(kb), now, emit); err != nil {
				return err
			}
			if ok, err := a.endsIn(st, []byte(kb), b); err != nil {
				return err
			} else if ok {
				open = append(open, kb)
			}
		}
		if len(open) > 0 {
			// Later buckets end later still: nothing more closes.
			if len(open) != len(groups) {
				a.putJSON(part, st, bk, open)
			}
			break
		}
		done++
		a.put(part, st, bk, nil, dirtyRow{})
	}
	if done > 0 {
		a.putJSON(part, st, windowMeta, buckets[done:])
	}
	return nil
}

// endsIn reports whether group kb has an open session ending in
// close-index bucket b.
func (a *aggregator) endsIn(st statestore.Store, kb []byte, b int64) (bool, error) {
	var sessions []session
	if err := getJSON(st, sessionKey(kb), &sessions); err != nil {
		return false, err
	}
	for _, s := range sessions {
		if a.bucketOf(s.End) == b {
			return true, nil
		}
	}
	return false, nil
}

func (g *graph) closeWindow(a *aggregator, st statestore.Store, part int32, start int64, kb []byte, emit emitFunc) error {
	rk := windowRowKey(start, kb)
	b, ok, err := st.Get(rk)
	if err != nil || !ok {
		return err
	}
	a.put(part, st, rk, nil, dirtyRow{})
	if a.node.t.Aggregate.Emit != topology.EmitOnClose {
		return nil
	}
	return g.emitFinal(a, part, kb, &span{start, start + a.node.t.Aggregate.Window.Size.Milliseconds()}, b, emit)
}

// emitFinal emits the final row of a closed window. The row's failure
// (a step after the aggregate failing on it) is the row's own bad record,
// not the one of the record whose event time closed the window (emitOwn):
// the window stays closed, and under dead_letter the row itself is
// written, as JSON, with headers naming the aggregate and the window.
func (g *graph) emitFinal(a *aggregator, part int32, kb []byte, win *span, state []byte, emit emitFunc) error {
	accs, err := decodeRow(state, len(a.node.t.Aggregate.Columns))
	if err != nil {
		return err
	}
	key, err := format.DecodeJSON(kb)
	if err != nil {
		return fmt.Errorf("corrupt window state: %w", err)
	}
	// The final row carries the time of its window's end, and belongs
	// to the window's task.
	r := &record{ts: time.UnixMilli(win.end), src: closeSource, task: part}
	var out *record
	return g.emitOwn(func(emit emitFunc) error {
		if out, err = g.rowOf(a, key, win, accs, r); err != nil {
			return err
		}
		return g.forward(a.node, out, emit)
	}, func(re *RecordError) *kgo.Record {
		re.Err = fmt.Errorf("final row of window [%s, %s) of aggregate %q: %w", msTime(win.start), msTime(win.end), a.node.t.Name, re.Err)
		return finalRowRecord(a, kb, win, state, out)
	}, emit)
}

// Headers of the dead letter of a window's final row: the aggregate and
// the window (RFC 3339). Its source coordinates are closeSource's.
const (
	HeaderWindowNode  = "exactly.window.node"
	HeaderWindowStart = "exactly.window.start"
	HeaderWindowEnd   = "exactly.window.end"
)

// finalRowRecord stands for a window's final row in the dead-letter topic:
// the row's key and value as JSON (out; the group and the encoded state
// when the row could not be built), timed at the window's end.
func finalRowRecord(a *aggregator, kb []byte, win *span, state []byte, out *record) *kgo.Record {
	k, v := kb, state
	if out != nil {
		if b, err := format.EncodeJSON(out.key); err == nil {
			k = b
		}
		if b, err := format.EncodeJSON(out.value); err == nil {
			v = b
		}
	}
	return &kgo.Record{Topic: closeSource.Topic, Partition: -1, Offset: -1, Key: k, Value: v, Timestamp: time.UnixMilli(win.end),
		Headers: []kgo.RecordHeader{
			{Key: HeaderWindowNode, Value: []byte(a.node.t.Name)},
			{Key: HeaderWindowStart, Value: []byte(msTime(win.start))},
			{Key: HeaderWindowEnd, Value: []byte(msTime(win.end))},
		}}
}

// closeSource stands for the input of rows emitted because time passed,
// not because a record arrived.
var closeSource = &kgo.Record{Topic: "(window closed)", Partition: -1, Offset: -1}

// sessionUpdate merges r into the sessions of its group.
func (g *graph) sessionUpdate(a *aggregator, st statestore.Store, part int32, key any, kb []byte, ts, now int64, r *record, emit emitFunc) error {
	n := a.node
	w := n.t.Aggregate.Window
	gap, grace := w.Gap.Milliseconds(), w.Grace.Milliseconds()
	if ts+gap+grace < now {
		// A session of this record alone would already be closed.
		return g.late(a, r, emit)
	}
	var sessions []session
	if err := getJSON(st, sessionKey(kb), &sessions); err != nil {
		return g.fail(n, r, PhaseEval, err)
	}
	// The sessions within gap of ts merge with it into one.
	merged := session{Start: ts, End: ts}
	accs := make([]acc, len(n.t.Aggregate.Columns))
	var keep, gone []session
	first := true
	for _, s := range sessions {
		if s.End+gap < ts || s.Start-gap > ts {
			keep = append(keep, s)
			continue
		}
		gone = append(gone, s)
		merged.Start, merged.End = min(merged.Start, s.Start), max(merged.End, s.End)
		sa, err := decodeRow(s.Row, len(accs))
		if err != nil {
			return g.fail(n, r, PhaseEval, err)
		}
		if first {
			accs, first = sa, false
			continue
		}
		if err := mergeAccs(n, accs, sa); err != nil {
			return g.fail(n, r, PhaseEval, err)
		}
	}
	if _, err := g.fold(n, accs, r); err != nil {
		return err
	}
	row, err := encodeRow(accs)
	if err != nil {
		return g.fail(n, r, PhaseEncode, err)
	}
	merged.Row = row
	keep = append(keep, merged)
	slices.SortFunc(keep, func(x, y session) int { return int(x.Start - y.Start) })
	a.putJSON(part, st, sessionKey(kb), keep)
	if err := a.index(part, st, merged.End, kb); err != nil {
		return g.fail(n, r, PhaseEval, err)
	}
	win := &span{merged.Start, merged.End}
	switch n.t.Aggregate.Emit {
	case topology.EmitOnUpdate:
		// Sessions merged into another starting earlier are gone:
		// delete their rows from the upsert stream.
		for _, s := range gone {
			if s.Start != merged.Start {
				if err := g.emitTombstone(a, key, s.Start, r, emit); err != nil {
					return err
				}
			}
		}
		return g.emitRow(a, key, win, accs, r, emit)
	case topology.EmitOnCommit:
		for _, s := range gone {
			if s.Start != merged.Start {
				a.setPending(part, sessionRowKey(s.Start, kb), &pendingRow{key: key, win: span{s.Start, s.End}, r: *r})
			}
		}
		a.setPending(part, sessionRowKey(merged.Start, kb), &pendingRow{key: key, win: *win, accs: accs, r: *r})
	}
	return nil
}

// sessionRowKey names the output row of a session, for emit: on_commit.
func sessionRowKey(start int64, kb []byte) string {
	return "s" + strconv.FormatInt(start, 10) + "|" + string(kb)
}

// emitTombstone deletes the row of the window of group key starting at
// start from the upsert stream.
func (g *graph) emitTombstone(a *aggregator, key any, start int64, r *record, emit emitFunc) error {
	n := a.node
	k := map[string]any{"window_start": msTime(start)}
	if len(n.t.Aggregate.GroupBy) == 1 {
		k[n.t.Aggregate.GroupBy[0].Name] = key
	} else if m, ok := key.(map[string]any); ok {
		for name, v := range m {
			k[name] = v
		}
	}
	out := *r
	out.key, out.value = k, nil
	out.from = 0
	return g.forward(n, &out, emit)
}

// closeSessions closes the sessions of group kb that ended a gap plus
// grace before now, and re-indexes the rest.
func (g *graph) closeSessions(a *aggregator, st statestore.Store, part int32, kb []byte, now int64, emit emitFunc) error {
	w := a.node.t.Aggregate.Window
	gap, grace := w.Gap.Milliseconds(), w.Grace.Milliseconds()
	var sessions []session
	if err := getJSON(st, sessionKey(kb), &sessions); err != nil {
		return err
	}
	var keep []session
	for _, s := range sessions {
		if s.End+gap+grace >= now {
			// A record at End+gap would still join it.
			keep = append(keep, s)
			continue
		}
		if a.node.t.Aggregate.Emit == topology.EmitOnClose {
			if err := g.emitFinal(a, part, kb, &span{s.Start, s.End}, s.Row, emit); err != nil {
				return err
			}
		}
	}
	if len(keep) == 0 {
		a.put(part, st, sessionKey(kb), nil, dirtyRow{})
		return nil
	}
	if len(keep) != len(sessions) {
		a.putJSON(part, st, sessionKey(kb), keep)
	}
	for _, s := range keep {
		if err := a.index(part, st, s.End, kb); err != nil {
			return err
		}
	}
	return nil
}

// mergeAccs folds the accumulators of another session into accs.
func mergeAccs(n *node, accs, other []acc) error {
	for i := range accs {
		c := &n.t.Aggregate.Columns[i]
		if err := accs[i].merge(c.Func, &other[i]); err != nil {
			return fmt.Errorf("column %s: %w", c.Name, err)
		}
	}
	return nil
}

// tick advances the stream time of idle tasks of windowed aggregates by
// wall clock and closes their windows. It reports whether it may emit
// anything (the caller opens a transaction first) when dry is set, and
// otherwise does the work.
func (g *graph) tick(ctx context.Context, now time.Time, dry bool, emit emitFunc) (bool, error) {
	any := false
	g.syncUpstreams(now)
	for _, a := range g.aggs {
		w := windowOf(a)
		if a.ups != nil && g.idleUpstreams(ctx, a, now) {
			// Watermarks to send: they go out as the transaction
			// ends (flush).
			any = true
		}
		if w == nil || w.IdleTimeout <= 0 {
			continue
		}
		for part, st := range a.stores {
			last, ok := a.lastWall[part]
			if !ok {
				a.lastWall[part] = now
				continue
			}
			idle := now.Sub(last)
			if idle < w.IdleTimeout {
				continue
			}
			t, err := a.taskTime(st)
			if err != nil {
				return false, err
			}
			if t == noTime {
				continue // no record yet: no window to close
			}
			advanced := t + idle.Milliseconds()
			var buckets []int64
			if err := getJSON(st, windowMeta, &buckets); err != nil {
				return false, err
			}
			if len(buckets) == 0 || closesAt(w, buckets[0]) > advanced {
				continue
			}
			if dry {
				any = true
				continue
			}
			a.setTaskTime(part, st, advanced)
			a.lastWall[part] = now
			if err := g.closeWindows(a, st, part, advanced, emit); err != nil {
				return false, err
			}
			any = true
		}
	}
	more, err := g.tickStreamJoins(now, dry, emit)
	return any || more, err
}

// closesAt is the stream time at which the first window in close-index
// bucket b may close: its end plus grace for tumbling and hopping windows
// (which end on the bucket); for sessions, the earliest end the bucket
// can hold plus gap and grace, just past it, since a record exactly a gap
// after a session's end still joins it. A session bucket may then hold
// sessions that stay open: closeWindows keeps it for them.
func closesAt(w *topology.Window, b int64) int64 {
	if w.Kind == topology.Session {
		return b + w.Gap.Milliseconds() + w.Grace.Milliseconds() + 1
	}
	return b + w.Grace.Milliseconds()
}

func windowOf(a *aggregator) *topology.Window {
	if a.node.t.Aggregate == nil {
		return nil
	}
	return a.node.t.Aggregate.Window
}
