package processor

import (
	"encoding/base64"
	"encoding/json"
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

// Stream-stream windowed joins.
//
// Two streams, keyed alike and co-partitioned, meet in one task per
// partition: a record of this stream (the step's from) at event time t
// joins every record of the other stream with its key whose event time
// lies in [t-before, t+after]. Both sides wait in the step's store, per
// task:
//
//	b<side><key>  -> the buffered records of one side and key, in arrival
//	                 order (side 0: this stream, 1: the other)
//	x<bucket>     -> the side and key of every record whose window closes
//	                 in the bucket: the close index
//	m             -> the buckets of the close index, ascending
//	y<bucket>     -> the same by wall time of buffering, for ttl
//	n             -> the buckets of the ttl index, ascending
//	e0, e1        -> the highest event time read from each side
//	t             -> the task's event-time clock
//
// Every write goes through the aggregator (a.put): into the open
// transaction's overlay and, once per key, into the changelog at its end,
// so an abort drops it and a crash restores exactly what committed.
//
// Time. The task's clock is the minimum over the two sides of the highest
// event time read from each, never going back: one side running ahead
// (a backlog, a replay) does not make the other's records late. A record
// more than grace behind the clock is late: counted and dropped. A record
// at t can still be matched while the clock is at most t+after+grace (this
// stream) or t+before+grace (the other): no record that can still arrive
// on time reaches it after that. Then its window has closed: it leaves
// the buffer (a tombstone in the changelog), and a left or outer join
// emits it unmatched if nothing matched it, never earlier, so there is no
// null row followed by the real match.
//
// Input stops. With idle_timeout, a side that sent the task nothing for
// that long (wall clock) stops holding the clock back, and once both have
// been quiet that long the clock moves on by the wall time since the last
// record, as idle windows do, so the last unmatched rows still come out.
// With ttl, a record buffered longer than ttl (wall clock) leaves the
// buffer whatever event time says, emitted unmatched like a closed one:
// state stays bounded even when event time stops for good.

const (
	sideThis  = 0
	sideOther = 1
)

// streamJoin is a stream-stream join step; its store is its aggregator's.
type streamJoin struct {
	j    *topology.Join
	a    *aggregator
	node *node
	// other is the other stream's node: records pushed by it are the
	// other side's.
	other *node
	// lastWall is, per task and side, the wall time of the side's last
	// record (or of the task's first sight; behind a repartition, of the
	// last watermark that moved the clock, for both sides): in memory,
	// for idle_timeout.
	lastWall map[int32]*[2]time.Time
	// expired counts the open transaction's expiries by reason, added
	// to the metric when it commits.
	expired map[string]int
}

// buffered is one record waiting in a join buffer.
type buffered struct {
	T int64              `json:"t"`           // event time, ms
	W int64              `json:"w,omitempty"` // wall time when buffered, ms (ttl only)
	V json.RawMessage    `json:"v"`           // value, JSON
	H []kgo.RecordHeader `json:"h,omitempty"`
	M bool               `json:"m,omitempty"` // matched at least once
	// S is where the record was read: its source record's coordinates
	// (and key, with a dead-letter topic), for the error or dead letter
	// of its unmatched row, which fails only once its window closes.
	S *bufferedSource `json:"s,omitempty"`
	// K is the record's key as JSON when its buffer key holds the key's
	// bytes as written (rawKeyMark), for its unmatched row.
	K json.RawMessage `json:"k,omitempty"`
}

// bufferedSource is the source record of a buffered one.
type bufferedSource struct {
	Topic     string `json:"t"`
	Partition int32  `json:"p"`
	Offset    int64  `json:"o"`
	Key       []byte `json:"k,omitempty"`
}

var (
	joinCloseMeta = []byte("m")
	joinTTLMeta   = []byte("n")
)

// joinClosed stands for the input of rows a join emits because a window
// closed or a ttl passed, not because a record arrived.
var joinClosed = &kgo.Record{Topic: "(join window closed)", Partition: -1, Offset: -1}

func newStreamJoin(g *graph, n *node) step {
	s := &streamJoin{j: n.t.Join, a: n.agg, node: n, other: g.nodes[n.t.Join.Stream.Name],
		lastWall: map[int32]*[2]time.Time{}, expired: map[string]int{}}
	if s.j.IdleTimeout > 0 || s.j.TTL > 0 || s.a.watermarked() {
		g.hasIdle = true
	}
	g.streamJoins = append(g.streamJoins, s)
	return s
}

func bufferKey(side int, kb []byte) []byte {
	return append([]byte{'b', byte('0' + side)}, kb...)
}

func sideMaxKey(side int) []byte { return []byte{'e', byte('0' + side)} }

// span is how long after a record's event time a record of the other side
// may still match it.
func (s *streamJoin) span(side int) int64 {
	if side == sideThis {
		return s.j.After.Milliseconds()
	}
	return s.j.Before.Milliseconds()
}

// bucketSize is the width of the close index's buckets: an eighth of the
// longest time a record stays, at least 1ms, so the index holds about
// eight buckets (a width from the shortest stay would make a bucket per
// millisecond of a join with before: 0s). A record leaves the buffer at
// most one bucket after its window closed: a record that can no longer
// match, since matching checks the times.
func (s *streamJoin) bucketSize() int64 {
	return max(max(s.j.Before, s.j.After).Milliseconds()+s.j.Grace.Milliseconds(), 8) / 8
}

func (s *streamJoin) ttlBucketSize() int64 { return max(s.j.TTL.Milliseconds()/8, 1000) }

func (s *streamJoin) walls(part int32, now time.Time) *[2]time.Time {
	w := s.lastWall[part]
	if w == nil {
		w = &[2]time.Time{now, now}
		s.lastWall[part] = w
	}
	return w
}

func (s *streamJoin) process(g *graph, n *node, r *record, emit emitFunc) error {
	side := sideThis
	if g.sender == s.other {
		side = sideOther
	}
	if r.key == nil {
		// A record without a key never matches (as SQL's NULL): a
		// left or outer join emits it unmatched at once.
		g.m.JoinLookups.WithLabelValues(n.t.Name, "miss").Inc()
		if s.emitsUnmatched(side) {
			return s.emit(g, r, side, r.value, nil, r.ts.UnixMilli(), emit)
		}
		return nil
	}
	kb, err := format.EncodeJSON(r.key)
	if err != nil {
		return g.fail(n, r, PhaseEval, fmt.Errorf("join key: %w", err))
	}
	if s.a.repartition != "" {
		// Partitioned by kb, in the repartition topic: matched by kb.
		return s.toRepartition(g, r, side, kb, emit)
	}
	if r.from&fromKeyMask != 0 {
		// The key as read: partitioned by its bytes as written, so
		// matched by them too. Matching decoded values instead would
		// match {"a":1,"b":2} with {"b":2,"a":1} within a partition
		// and not across, which the producers' partitioner decides.
		kb = rawJoinKey(r.src.Key)
	}
	return s.join(g, r, side, kb, emit)
}

// rawKeyMark starts a buffer key holding a record key's bytes as
// written (base64, as index entries are JSON strings), not its JSON:
// no JSON starts with it.
const rawKeyMark = '~'

func rawJoinKey(k []byte) []byte {
	return append([]byte{rawKeyMark}, base64.RawStdEncoding.EncodeToString(k)...)
}

// headerSide marks the side of a record in a stream-stream join's
// repartition topic: "0" this stream, "1" the other.
const headerSide = "exactly.join.side"

// toRepartition writes r to the join's repartition topic, keyed by the
// join key, so both sides of a key reach one task; its upstream partition's
// watermark moves with it (watermark.go).
func (s *streamJoin) toRepartition(g *graph, r *record, side int, kb []byte, emit emitFunc) error {
	a := s.a
	a.advanceUpstream(r, r.ts.UnixMilli(), g.now())
	vb, ok := r.rawValue(topology.FormatJSON)
	if !ok {
		var err error
		if vb, err = encodeInternal(r.value); err != nil {
			return g.fail(s.node, r, PhaseEncode, fmt.Errorf("repartition value: %w", err))
		}
	}
	if vb == nil {
		vb = []byte("null")
	}
	hs := append(slices.Clip(r.headers), kgo.RecordHeader{Key: headerSide, Value: []byte{byte('0' + side)}})
	if g.deadLetterTopic != "" && r.src != nil && r.src.Partition >= 0 {
		// A record failing after the repartition is dead-lettered as
		// it was read from its source.
		hs = append(hs, originHeader(r.src))
	}
	emit(&kgo.Record{Topic: a.repartition, Key: kb, Value: vb, Headers: hs, Timestamp: r.ts})
	return nil
}

// fromRepartition joins a data record read back from the join's
// repartition topic.
func (s *streamJoin) fromRepartition(g *graph, in *kgo.Record, emit emitFunc) error {
	side := -1
	hs := withoutInternal(in.Headers)
	if i := slices.IndexFunc(hs, func(h kgo.RecordHeader) bool { return h.Key == headerSide }); i >= 0 {
		if v := hs[i].Value; len(v) == 1 && (v[0] == '0' || v[0] == '1') {
			side = int(v[0] - '0')
		}
		hs = slices.Delete(slices.Clone(hs), i, i+1)
	}
	r := record{headers: hs, ts: in.Timestamp, src: in}
	if side < 0 {
		return g.fail(s.node, &r, PhaseDecode, fmt.Errorf("repartition record without a valid %s header", headerSide))
	}
	var err error
	if r.key, err = format.DecodeJSON(in.Key); err != nil {
		return g.fail(s.node, &r, PhaseDecode, fmt.Errorf("repartition key: %w", err))
	}
	var tagged bool
	if r.value, tagged, err = decodeInternal(in.Value); err != nil {
		return g.fail(s.node, &r, PhaseDecode, fmt.Errorf("repartition value: %w", err))
	}
	r.decodedFrom(topology.FormatJSON, topology.FormatJSON)
	if tagged {
		r.from &^= fromValueMask // the bytes are not the value's JSON
	}
	return s.join(g, &r, side, in.Key, emit)
}

// join matches r, of side, with the other side's buffer and buffers it.
func (s *streamJoin) join(g *graph, r *record, side int, kb []byte, emit emitFunc) error {
	n, a := s.node, s.a
	part := r.taskOf()
	st, err := a.store(part)
	if err != nil {
		return g.fail(n, r, PhaseEval, err)
	}
	now := g.now()
	s.walls(part, now)[side] = now
	ts := r.ts.UnixMilli()
	if a.repartition == "" {
		// The side's highest event time, for the clock. Behind a
		// repartition, watermarks move the clock instead.
		if hi, err := loadInt(st, sideMaxKey(side)); err != nil {
			return g.fail(n, r, PhaseEval, err)
		} else if ts > hi {
			a.put(part, st, sideMaxKey(side), strconv.AppendInt(nil, ts, 10), dirtyRow{})
		}
	}
	clock, err := s.advance(part, st, now)
	if err != nil {
		return g.fail(n, r, PhaseEval, err)
	}
	if err := s.expire(g, part, st, clock, now, emit); err != nil {
		if re := (*RecordError)(nil); errors.As(err, &re) {
			return err // a buffered record's unmatched row: names that record
		}
		return g.fail(n, r, PhaseEval, err)
	}
	if clock != noTime && ts < clock-s.j.Grace.Milliseconds() {
		g.m.LateRecords.WithLabelValues(n.t.Name).Inc()
		return nil
	}

	// Match against the other side's buffer.
	var others []buffered
	okey := bufferKey(1-side, kb)
	if err := getJSON(st, okey, &others); err != nil {
		return g.fail(n, r, PhaseEval, err)
	}
	lo, hi := ts-s.j.Before.Milliseconds(), ts+s.j.After.Milliseconds()
	if side == sideOther {
		lo, hi = ts-s.j.After.Milliseconds(), ts+s.j.Before.Milliseconds()
	}
	matched, marked := false, false
	for i := range others {
		o := &others[i]
		if o.T < lo || o.T > hi {
			continue
		}
		ov, _, err := decodeInternal(o.V)
		if err != nil {
			return g.fail(n, r, PhaseEval, fmt.Errorf("corrupt join buffer: %w", err))
		}
		this, that := r.value, ov
		if side == sideOther {
			this, that = ov, r.value
		}
		if err := s.emit(g, r, -1, this, that, max(ts, o.T), emit); err != nil {
			return err
		}
		matched = true
		if !o.M {
			o.M, marked = true, true
		}
	}
	result := "miss"
	if matched {
		result = "match"
	}
	g.m.JoinLookups.WithLabelValues(n.t.Name, result).Inc()
	if marked && s.emitsUnmatched(1-side) {
		a.putJSON(part, st, okey, others)
	}

	// Buffer the record.
	vb, ok := r.rawValue(topology.FormatJSON)
	if !ok {
		if vb, err = encodeInternal(r.value); err != nil {
			return g.fail(n, r, PhaseEncode, fmt.Errorf("join buffer value: %w", err))
		}
	}
	if vb == nil {
		vb = []byte("null")
	}
	e := buffered{T: ts, V: vb, H: r.headers, M: matched}
	if len(kb) > 0 && kb[0] == rawKeyMark {
		if e.K, err = format.EncodeJSON(r.key); err != nil {
			return g.fail(n, r, PhaseEval, fmt.Errorf("join key: %w", err))
		}
	}
	if r.src != nil && r.src.Partition >= 0 {
		o := original(r.src)
		e.S = &bufferedSource{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset}
		if g.deadLetterTopic != "" {
			e.S.Key = o.Key
		}
	}
	if s.j.TTL > 0 {
		e.W = now.UnixMilli()
	}
	key := bufferKey(side, kb)
	var mine []buffered
	if err := getJSON(st, key, &mine); err != nil {
		return g.fail(n, r, PhaseEval, err)
	}
	a.putJSON(part, st, key, append(mine, e))
	if err := s.count(part, st, 1); err != nil {
		return g.fail(n, r, PhaseEval, err)
	}
	size := s.bucketSize()
	closes := ts + s.span(side) + s.j.Grace.Milliseconds()
	if err := s.index(part, st, 'x', joinCloseMeta, ceilDiv(closes, size)*size, side, kb); err != nil {
		return g.fail(n, r, PhaseEval, err)
	}
	if s.j.TTL > 0 {
		size := s.ttlBucketSize()
		if err := s.index(part, st, 'y', joinTTLMeta, floorDiv(e.W, size)*size, side, kb); err != nil {
			return g.fail(n, r, PhaseEval, err)
		}
	}
	return nil
}

// emitsUnmatched reports whether the join outputs a record of side that
// matched nothing.
func (s *streamJoin) emitsUnmatched(side int) bool {
	return s.j.Type == topology.JoinOuter || (s.j.Type == topology.JoinLeft && side == sideThis)
}

// emit evaluates the output over this (value) and that (other) and
// forwards the result. r is the record that caused it; unmatched is the
// side of an unmatched row (-1: a match).
func (s *streamJoin) emit(g *graph, r *record, unmatched int, this, that any, ts int64, emit emitFunc) error {
	out := *r
	out.value, out.ts = this, time.UnixMilli(ts)
	if unmatched >= 0 {
		g.m.JoinLookups.WithLabelValues(s.node.t.Name, "unmatched").Inc()
	}
	if unmatched == sideOther {
		out.value, that = nil, this
	}
	g.act = activation{r: &out, other: that}
	res, _, err := s.j.Output.Program.Eval(&g.act)
	if err != nil {
		return g.fail(s.node, r, PhaseEval, err)
	}
	out.from &^= fromValueMask
	if out.value, err = g.native(s.node, res, r); err != nil {
		return err
	}
	return g.forward(s.node, &out, emit)
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

func loadInt(st statestore.Store, key []byte) (int64, error) {
	b, ok, err := st.Get(key)
	if err != nil || !ok {
		return noTime, err
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return noTime, fmt.Errorf("corrupt join state at %q: %q", key, b)
	}
	return v, nil
}

// index adds side and key kb to bucket b of the index whose buckets are
// listed at meta.
func (s *streamJoin) index(part int32, st statestore.Store, prefix byte, meta []byte, b int64, side int, kb []byte) error {
	a := s.a
	bk := append([]byte{prefix}, strconv.FormatInt(b, 10)...)
	entry := string(bufferKey(side, kb))
	var list []string
	if err := getJSON(st, bk, &list); err != nil {
		return err
	}
	if slices.Contains(list, entry) {
		return nil
	}
	if len(list) == 0 {
		var buckets []int64
		if err := getJSON(st, meta, &buckets); err != nil {
			return err
		}
		if i, found := slices.BinarySearch(buckets, b); !found {
			a.putJSON(part, st, meta, slices.Insert(buckets, i, b))
		}
	}
	a.putJSON(part, st, bk, append(list, entry))
	return nil
}

// advance moves the task's clock to the minimum over the sides' highest
// event times (a side quiet for idle_timeout not counting), never back,
// and returns it.
func (s *streamJoin) advance(part int32, st statestore.Store, now time.Time) (int64, error) {
	clock, err := s.a.taskTime(st)
	if err != nil {
		return noTime, err
	}
	next, err := s.target(part, st, now)
	if err != nil {
		return noTime, err
	}
	if next > clock {
		s.a.setTaskTime(part, st, next)
		clock = next
	}
	return clock, nil
}

// target is where the clock should be now (before the never-back rule).
func (s *streamJoin) target(part int32, st statestore.Store, now time.Time) (int64, error) {
	if s.a.repartition != "" {
		return s.targetBehindRepartition(part, st, now)
	}
	var his [2]int64
	for side := range his {
		v, err := loadInt(st, sideMaxKey(side))
		if err != nil {
			return noTime, err
		}
		his[side] = v
	}
	idle := s.j.IdleTimeout
	if idle <= 0 {
		return min(his[0], his[1]), nil
	}
	w := s.walls(part, now)
	quiet := [2]bool{now.Sub(w[0]) >= idle, now.Sub(w[1]) >= idle}
	switch {
	case quiet[0] && quiet[1]:
		hi := max(his[0], his[1])
		if hi == noTime {
			return noTime, nil
		}
		// Both quiet: the clock moves on by wall clock since the last
		// record, as an idle window's does.
		last := w[0]
		if w[1].After(last) {
			last = w[1]
		}
		return hi + now.Sub(last).Milliseconds(), nil
	case quiet[0]:
		return his[1], nil
	case quiet[1]:
		return his[0], nil
	}
	return min(his[0], his[1]), nil
}

// targetBehindRepartition: the upstream watermarks set the clock
// (watermark.go); with idle_timeout, once the task had no record for that
// long, it moves on by the wall time since the last one.
func (s *streamJoin) targetBehindRepartition(part int32, st statestore.Store, now time.Time) (int64, error) {
	clock, err := s.a.taskTime(st)
	if err != nil || clock == noTime || s.j.IdleTimeout <= 0 {
		return clock, err
	}
	w := s.walls(part, now)
	last := w[0]
	if w[1].After(last) {
		last = w[1]
	}
	if quiet := now.Sub(last); quiet >= s.j.IdleTimeout {
		return clock + quiet.Milliseconds(), nil
	}
	return clock, nil
}

// streamJoinOf returns the stream-stream join whose store a is, or nil.
func (g *graph) streamJoinOf(a *aggregator) *streamJoin {
	for _, s := range g.streamJoins {
		if s.a == a {
			return s
		}
	}
	return nil
}

// expire takes out of the buffers every record whose window closed by
// clock, and with a ttl every record buffered for ttl by now, emitting the
// unmatched ones of a left or outer join.
func (s *streamJoin) expire(g *graph, part int32, st statestore.Store, clock int64, now time.Time, emit emitFunc) error {
	if clock != noTime {
		grace := s.j.Grace.Milliseconds()
		gone := func(side int, e *buffered) bool { return e.T+s.span(side)+grace < clock }
		// A bucket b holds records closing at or before b: done once
		// the clock passed it.
		if err := s.sweep(g, part, st, 'x', joinCloseMeta, func(b int64) bool { return b < clock }, gone, "window", emit); err != nil {
			return err
		}
	}
	if s.j.TTL > 0 {
		ms, ttl, size := now.UnixMilli(), s.j.TTL.Milliseconds(), s.ttlBucketSize()
		gone := func(_ int, e *buffered) bool { return e.W+ttl <= ms }
		if err := s.sweep(g, part, st, 'y', joinTTLMeta, func(b int64) bool { return b+size+ttl <= ms }, gone, "ttl", emit); err != nil {
			return err
		}
	}
	return nil
}

// sweep works through the index at meta, bucket by bucket while done says
// so, taking out of each listed buffer the records gone says are.
func (s *streamJoin) sweep(g *graph, part int32, st statestore.Store, prefix byte, meta []byte, done func(int64) bool,
	gone func(int, *buffered) bool, reason string, emit emitFunc) error {
	a := s.a
	var buckets []int64
	if err := getJSON(st, meta, &buckets); err != nil {
		return err
	}
	n := 0
	for _, b := range buckets {
		if !done(b) {
			break
		}
		n++
		bk := append([]byte{prefix}, strconv.FormatInt(b, 10)...)
		var list []string
		if err := getJSON(st, bk, &list); err != nil {
			return err
		}
		for _, entry := range list {
			if err := s.drop(g, part, st, []byte(entry), gone, reason, emit); err != nil {
				return err
			}
		}
		a.put(part, st, bk, nil, dirtyRow{})
	}
	if n > 0 {
		if n == len(buckets) {
			a.put(part, st, meta, nil, dirtyRow{})
		} else {
			a.putJSON(part, st, meta, buckets[n:])
		}
	}
	return nil
}

// drop takes out of buffer key (b<side><key>) the records gone says are
// gone, emitting the unmatched ones that the join type outputs.
func (s *streamJoin) drop(g *graph, part int32, st statestore.Store, key []byte, gone func(int, *buffered) bool, reason string, emit emitFunc) error {
	side := int(key[1] - '0')
	var list []buffered
	if err := getJSON(st, key, &list); err != nil {
		return err
	}
	var keep []buffered
	for i := range list {
		e := &list[i]
		if !gone(side, e) {
			keep = append(keep, *e)
			continue
		}
		s.expired[reason]++
		// A failing record undoes the expiry: its count too.
		g.undo = append(g.undo, undoEntry{fn: func() { s.expired[reason]-- }})
		if e.M || !s.emitsUnmatched(side) {
			continue
		}
		kj := key[2:]
		if len(kj) > 0 && kj[0] == rawKeyMark {
			kj = e.K
		}
		k, err := format.DecodeJSON(kj)
		if err != nil {
			return fmt.Errorf("corrupt join buffer key: %w", err)
		}
		v, _, err := decodeInternal(e.V)
		if err != nil {
			return fmt.Errorf("corrupt join buffer: %w", err)
		}
		r := &record{key: k, value: v, headers: e.H, ts: time.UnixMilli(e.T), src: joinClosed, task: part}
		if err := s.emitClosed(g, r, side, e, kj, emit); err != nil {
			return err
		}
	}
	if len(keep) == len(list) {
		return nil
	}
	if err := s.count(part, st, len(keep)-len(list)); err != nil {
		return err
	}
	if len(keep) == 0 {
		s.a.put(part, st, key, nil, dirtyRow{})
		return nil
	}
	s.a.putJSON(part, st, key, keep)
	return nil
}

// emitClosed emits the unmatched row of buffered record e (r, of side),
// whose window closed or whose ttl passed. The row fails, if it does, for
// e alone (an output reading a field of the missing side, say): not for
// the record whose event time closed the window, and not for every record
// after it, which would close the same window again and fail again. So
// the failure is e's, named by its source coordinates, and the pipeline's
// error policy applies to it here: stop returns it, skip and dead_letter
// undo what the row did downstream and go on (dead_letter writing e's
// buffered value and headers, with its source coordinates, to the
// dead-letter topic).
func (s *streamJoin) emitClosed(g *graph, r *record, side int, e *buffered, kb []byte, emit emitFunc) error {
	return g.emitOwn(func(emit emitFunc) error {
		return s.emit(g, r, side, r.value, nil, e.T, emit)
	}, func(re *RecordError) *kgo.Record {
		src := &kgo.Record{Topic: joinClosed.Topic, Partition: -1, Offset: -1, Key: e.S.keyOr(kb), Value: e.V, Headers: e.H, Timestamp: time.UnixMilli(e.T)}
		if e.S != nil {
			src.Topic, src.Partition, src.Offset = e.S.Topic, e.S.Partition, e.S.Offset
		}
		re.Topic, re.Partition, re.Offset = src.Topic, src.Partition, src.Offset
		re.Err = fmt.Errorf("unmatched row of a record whose join window closed: %w", re.Err)
		return src
	}, emit)
}

// keyOr is the source record's key, or kb (the join key as JSON) when it
// was not kept.
func (b *bufferedSource) keyOr(kb []byte) []byte {
	if b != nil && b.Key != nil {
		return b.Key
	}
	return kb
}

// tickStreamJoins runs what time passing does to stream-stream joins:
// quiet sides stop holding the clock back, ttls pass. With dry set it only
// reports whether that may emit or write anything (the caller then opens
// a transaction and calls again).
func (g *graph) tickStreamJoins(now time.Time, dry bool, emit emitFunc) (bool, error) {
	any := false
	for _, s := range g.streamJoins {
		if s.j.IdleTimeout <= 0 && s.j.TTL <= 0 {
			continue
		}
		for part, st := range s.a.stores {
			due, err := s.due(part, st, now)
			if err != nil {
				return false, err
			}
			if !due {
				continue
			}
			any = true
			if dry {
				continue
			}
			clock, err := s.advance(part, st, now)
			if err != nil {
				return false, err
			}
			if err := s.expire(g, part, st, clock, now, emit); err != nil {
				return false, err
			}
		}
	}
	return any, nil
}

// due reports whether time passing closes a bucket of task part's
// indexes now.
func (s *streamJoin) due(part int32, st statestore.Store, now time.Time) (bool, error) {
	if s.j.TTL > 0 {
		var buckets []int64
		if err := getJSON(st, joinTTLMeta, &buckets); err != nil {
			return false, err
		}
		if len(buckets) > 0 && buckets[0]+s.ttlBucketSize()+s.j.TTL.Milliseconds() <= now.UnixMilli() {
			return true, nil
		}
	}
	if s.j.IdleTimeout <= 0 {
		return false, nil
	}
	var buckets []int64
	if err := getJSON(st, joinCloseMeta, &buckets); err != nil {
		return false, err
	}
	if len(buckets) == 0 {
		return false, nil
	}
	clock, err := s.a.taskTime(st)
	if err != nil {
		return false, err
	}
	next, err := s.target(part, st, now)
	if err != nil {
		return false, err
	}
	return buckets[0] < max(clock, next), nil
}

// settle adds the ended transaction's expiries to the metric if it
// committed, and reports the buffered records of every task as committed.
func (s *streamJoin) settle(committed bool) {
	if committed {
		for reason, n := range s.expired {
			s.a.g.m.JoinExpired.WithLabelValues(s.node.t.Name, reason).Add(float64(n))
		}
	}
	clear(s.expired)
	if !committed {
		return
	}
	for part, st := range s.a.stores {
		n, err := s.buffered(st)
		if err != nil {
			continue // reported when a record reads it
		}
		s.a.g.m.JoinBuffered.WithLabelValues(s.node.t.Name, strconv.Itoa(int(part))).Set(float64(n))
	}
}

// dropTask forgets task part, which left this member: the wall times of
// its sides' last records (a task given back later starts afresh, as a
// new one does, not quiet for all the time it was away, which would move
// its clock on by that time at once) and its buffered gauge (the task's
// new owner reports it).
func (s *streamJoin) dropTask(part int32) {
	delete(s.lastWall, part)
	s.a.g.m.JoinBuffered.DeleteLabelValues(s.node.t.Name, strconv.Itoa(int(part)))
}

// joinCount is the key of the number of records in a task's buffers.
var joinCount = []byte("c")

// count adds d to the number of buffered records of task part.
func (s *streamJoin) count(part int32, st statestore.Store, d int) error {
	n, err := s.buffered(st)
	if err != nil {
		return err
	}
	if n += int64(d); n == 0 {
		s.a.put(part, st, joinCount, nil, dirtyRow{})
	} else {
		s.a.put(part, st, joinCount, strconv.AppendInt(nil, n, 10), dirtyRow{})
	}
	return nil
}

// buffered is the number of records in task st's buffers.
func (s *streamJoin) buffered(st statestore.Store) (int64, error) {
	n, err := loadInt(st, joinCount)
	if n == noTime {
		n = 0
	}
	return n, err
}
