package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
)

// Event time across a repartition.
//
// A windowed aggregate that groups by something other than the record key
// reads its records from a repartition topic, and every partition of that
// topic receives records from every upstream (source) partition, in the
// order the upstream tasks happened to process them. If the downstream
// task's clock were the highest event time it has seen, one upstream
// partition running ahead (a backlog consumed unevenly, a replay) would make
// the others' on-time records late, and a replay would give another answer
// than live traffic.
//
// So the downstream clock is the minimum over the upstream partitions, as in
// Flink and RisingWave:
//
//   - Each upstream task (a source partition this member owns) keeps its
//     watermark: the highest event time it has read. When a transaction
//     ends, every upstream whose watermark (or idleness) changed writes a
//     control record into every partition of the repartition topic: no key,
//     no value, header exactly.watermark = "<topic>/<partition> <ms>" plus
//     " idle" when idle. It is part of the transaction and follows that
//     upstream's data records in each partition, so a reader never sees a
//     watermark before the records it covers.
//   - A downstream task keeps, in its store (so in its changelog, restored
//     after a crash and undone by an abort), the latest watermark of every
//     upstream partition (key "u<topic>/<partition>"). Its stream time is
//     the minimum over all upstream partitions (the set comes from the
//     source topics' metadata), never going back. An upstream partition not
//     heard from yet holds it back; one marked idle does not count (and when
//     every upstream is idle, the highest watermark counts).
//   - An upstream partition is idle once it has sent no record into the
//     repartition topic for the window's upstream_idle (wall clock,
//     default 1s) and its reader is caught up: its position is at the
//     partition's high watermark, or at the one found one check earlier
//     (it reads everything written, its records just do not reach the
//     window). Not the last stable offset, where a read_committed reader
//     stops below a transaction still open: its records may yet commit
//     (an upstream producer stalled, its coordinator failing over), and
//     skipping the partition until then would judge them late. An empty or quiet partition must not stall the
//     windows forever; a partition whose reader stalls with a backlog (a
//     long restore, a paused zombie, a slow leader) must not be skipped,
//     or the records it has yet to read would be judged against the
//     others' time and dropped as late. One bound remains: a partition
//     quiet for staleQuiet upstream_idles (a minute by default) counts as
//     idle even if its reader's position could not be confirmed at the
//     end (the broker unreachable for the checks, or a position this
//     member cannot learn), so windows never wait for ever; a reader
//     stalled that long with a backlog then sees its records judged
//     against the others' time. The price that remains, as with
//     Flink's idleness: records written to an idle partition while it
//     has no owner (between a crash and the next assignment) are judged
//     against the others' time.
//
// Data records carry nothing extra for this; with a dead-letter topic they
// carry their original record (exactly.origin), so a record that fails
// after the repartition is dead-lettered as it was read from its source.

// headerWatermark marks a watermark control record in a repartition topic.
const headerWatermark = "exactly.watermark"

// headerOrigin carries, on a repartition record, the source record it was
// made from (JSON of origin), when the pipeline has a dead-letter topic.
const headerOrigin = "exactly.origin"

// writer is an upstream partition writing into a repartition topic.
type writer struct {
	topic string
	part  int32
}

func (w writer) String() string { return w.topic + "/" + strconv.Itoa(int(w.part)) }

// upstream is this member's view of one source partition it owns that
// feeds a repartitioned window. Only the run loop touches it.
type upstream struct {
	wm   int64     // highest event time read; noTime: none yet
	last time.Time // wall time of its last record, or of its assignment
	idle bool
	// What the control records of the committed transactions said, and
	// what the open transaction's say (moved to sent when it commits).
	sentWM, flushWM     int64
	sentIdle, flushIdle bool
	sent, flushing      bool
	// What the last committed transaction left: an abort rewinds the
	// consumer to the committed offsets, so the watermark goes back
	// with it (else the next commit would carry the time of records
	// not yet processed again, and the downstream would judge them
	// late).
	baseWM   int64
	baseIdle bool
	// pos is the offset after the last record read from the partition
	// (transaction markers included); unknown (-1) until one is read:
	// the reader is then at the group's committed offset. basePos is
	// what the last committed transaction left.
	pos, basePos int64
	// The last check of the partition's end (see idleUpstreams).
	checked    time.Time
	checkedEnd int64
}

func newUpstream(now time.Time) *upstream {
	return &upstream{wm: noTime, baseWM: noTime, last: now, pos: -1, basePos: -1}
}

// upstreamOffsets answers what idleness needs from the broker about
// upstream partitions.
type upstreamOffsets interface {
	// ends: where a read_committed reader of each partition stops now
	// (its last stable offset).
	ends(ctx context.Context, ws []writer) (map[writer]int64, error)
	// resume: where the reader of each partition starts when it has
	// read nothing since its assignment: the group's committed offset,
	// else the log start.
	resume(ctx context.Context, ws []writer) (map[writer]int64, error)
}

func (u *upstream) changed() bool { return !u.sent || u.wm != u.sentWM || u.idle != u.sentIdle }

// assignments carries partition assignments from the client's rebalance
// callbacks to the run loop, in the order they happened: the run loop
// may be busy (a restore, a long commit) through several rebalances, and
// a partition revoked, given back and then lost must end up gone.
type assignments struct {
	mu     sync.Mutex
	events []asgEvent
	reset  bool
}

// asgEvent is one callback's partitions, added or removed.
type asgEvent struct {
	parts   map[string][]int32
	removed bool
}

func (s *assignments) add(m map[string][]int32, removed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, asgEvent{maps.Clone(m), removed})
}

// clear forgets every upstream: after a client rebuild the member is
// assigned its partitions afresh.
func (s *assignments) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events, s.reset = nil, true
}

// watermarked reports whether a's clock is the minimum over upstream
// partitions: a windowed aggregate behind a repartition.
func (a *aggregator) watermarked() bool {
	return a.repartition != "" && (windowOf(a) != nil || a.node.t.StreamJoin())
}

// upstreamIdle is how long an upstream partition of a watermarked step
// must be quiet to count as idle: the window's upstream_idle, the default
// for a stream-stream join.
func (a *aggregator) upstreamIdle() time.Duration {
	if w := windowOf(a); w != nil {
		return w.UpstreamIdle
	}
	return topology.DefaultUpstreamIdle
}

// setWriters tells a watermarked aggregate every upstream partition (the
// partitions of the source topics feeding it, in parts) and its
// repartition topic's partition count.
func (a *aggregator) setWriters(sources []string, parts map[string]int32, n int32) {
	if !a.watermarked() {
		return
	}
	a.parts, a.writers = n, nil
	for _, s := range sources {
		if a.feeds[s] {
			for p := range parts[s] {
				a.writers = append(a.writers, writer{s, p})
			}
		}
	}
}

// syncUpstreams applies the assignments the callbacks recorded.
func (g *graph) syncUpstreams(now time.Time) {
	g.asg.mu.Lock()
	events, reset := g.asg.events, g.asg.reset
	g.asg.events, g.asg.reset = nil, false
	g.asg.mu.Unlock()
	for _, a := range g.aggs {
		if !a.watermarked() {
			continue
		}
		if reset {
			clear(a.ups)
		}
		for _, e := range events {
			for t, ps := range e.parts {
				if !a.feeds[t] {
					continue
				}
				for _, p := range ps {
					w := writer{t, p}
					if e.removed {
						delete(a.ups, w)
					} else if _, ok := a.ups[w]; !ok {
						a.ups[w] = newUpstream(now)
					}
				}
			}
		}
	}
}

// advanceUpstream notes that the upstream partition of r read event time
// ts (r is on its way into a's repartition topic).
func (a *aggregator) advanceUpstream(r *record, ts int64, now time.Time) {
	if r.src == nil || r.src.Partition < 0 {
		return
	}
	w := writer{r.src.Topic, r.src.Partition}
	u := a.ups[w]
	if u == nil {
		u = newUpstream(now)
		a.ups[w] = u
	}
	u.wm = max(u.wm, ts)
	u.last = now
	u.idle = false
}

// readTo notes that the reader of source partition topic/part is at
// offset next (the records before it are read, or being processed in the
// open transaction).
func (g *graph) readTo(topic string, part int32, next int64) {
	for _, a := range g.aggs {
		if u := a.ups[writer{topic, part}]; u != nil {
			u.pos = max(u.pos, next)
		}
	}
}

// staleQuiet is how many upstream_idles of quiet make an upstream idle
// even when its reader cannot be confirmed at the partition's end.
const staleQuiet = 60

// upstreamCheckTimeout bounds the broker requests of one idleness check.
const upstreamCheckTimeout = 5 * time.Second

// idleUpstreams marks upstreams idle that have been quiet for the window's
// upstream_idle and are caught up (see the top of this file), and reports
// whether any upstream has a watermark to send (which needs a
// transaction). Marking is in memory: an abort rewinds it.
func (g *graph) idleUpstreams(ctx context.Context, a *aggregator, now time.Time) bool {
	idle := a.upstreamIdle()
	var quiet []writer
	for w, u := range a.ups {
		if !u.idle && now.Sub(u.last) >= idle && (u.checked.IsZero() || now.Sub(u.checked) >= idle) {
			quiet = append(quiet, w)
		}
	}
	if len(quiet) > 0 {
		g.markCaughtUp(ctx, a, quiet, now)
	}
	send := false
	for _, u := range a.ups {
		send = send || u.changed()
	}
	return send
}

// markCaughtUp marks idle the quiet upstreams ws whose readers are caught
// up: at the partition's end now, or at the end the previous check found
// if that check is recent (they keep up with a partition written to all
// the time, whose records do not reach the window).
func (g *graph) markCaughtUp(ctx context.Context, a *aggregator, ws []writer, now time.Time) {
	idle := a.upstreamIdle()
	if g.offsets == nil {
		for _, w := range ws {
			a.ups[w].idle = true
		}
		return
	}
	// Quiet for staleQuiet upstream_idles: idle whatever the checks say.
	for _, w := range ws {
		if u := a.ups[w]; now.Sub(u.last) >= staleQuiet*idle {
			u.idle = true
			if g.log != nil {
				g.log.Warn("counting an upstream partition idle: no record from it for a long time, though its reader could not be confirmed at its end",
					"partition", w.String(), "quiet", now.Sub(u.last).Round(time.Second), "position", u.pos)
			}
		}
	}
	ws = slices.DeleteFunc(ws, func(w writer) bool { return a.ups[w].idle })
	if len(ws) == 0 {
		return
	}
	slices.SortFunc(ws, func(x, y writer) int { return strings.Compare(x.String(), y.String()) })
	ctx, cancel := context.WithTimeout(ctx, upstreamCheckTimeout)
	defer cancel()
	ends, err := g.offsets.ends(ctx, ws)
	if err != nil {
		g.warnOffsets(err)
		return
	}
	var unknown []writer
	for _, w := range ws {
		if a.ups[w].pos < 0 {
			unknown = append(unknown, w)
		}
	}
	var resume map[writer]int64
	if len(unknown) > 0 {
		if resume, err = g.offsets.resume(ctx, unknown); err != nil {
			g.warnOffsets(err)
			return
		}
	}
	for _, w := range ws {
		u := a.ups[w]
		end, ok := ends[w]
		if !ok {
			continue
		}
		pos := u.pos
		if pos < 0 {
			p, ok := resume[w]
			if !ok {
				continue
			}
			pos = p
		}
		recent := !u.checked.IsZero() && now.Sub(u.checked) <= 2*idle
		if pos >= end || (recent && pos >= u.checkedEnd) {
			u.idle = true
		}
		u.checked, u.checkedEnd = now, end
	}
}

// kafkaOffsets asks the broker, through the run loop's current client.
type kafkaOffsets struct{ client func() *kgo.Client }

func topicsOf(ws []writer) []string {
	var ts []string
	for _, w := range ws {
		if !slices.Contains(ts, w.topic) {
			ts = append(ts, w.topic)
		}
	}
	return ts
}

// pick keeps the offsets of ws from l, failing on a partition's error.
func pick(l kadm.ListedOffsets, ws []writer) (map[writer]int64, error) {
	m := make(map[writer]int64, len(ws))
	for _, w := range ws {
		o, ok := l.Lookup(w.topic, w.part)
		if !ok {
			continue
		}
		if o.Err != nil {
			return nil, fmt.Errorf("listing offsets of %s: %w", w, o.Err)
		}
		m[w] = o.Offset
	}
	return m, nil
}

func (k kafkaOffsets) ends(ctx context.Context, ws []writer) (map[writer]int64, error) {
	// The high watermark, not the last stable offset a read_committed
	// reader stops at: records in a transaction still open may commit,
	// and a reader at the LSO below them is not caught up.
	l, err := kadm.NewClient(k.client()).ListEndOffsets(ctx, topicsOf(ws)...)
	if err != nil {
		return nil, err
	}
	return pick(l, ws)
}

func (k kafkaOffsets) resume(ctx context.Context, ws []writer) (map[writer]int64, error) {
	cl := k.client()
	committed := cl.CommittedOffsets()
	m := make(map[writer]int64, len(ws))
	var rest []writer
	for _, w := range ws {
		if o, ok := committed[w.topic][w.part]; ok && o.Offset >= 0 {
			m[w] = o.Offset
		} else {
			rest = append(rest, w)
		}
	}
	if len(rest) == 0 {
		return m, nil
	}
	l, err := kadm.NewClient(cl).ListStartOffsets(ctx, topicsOf(rest)...)
	if err != nil {
		return nil, err
	}
	starts, err := pick(l, rest)
	if err != nil {
		return nil, err
	}
	maps.Copy(m, starts)
	return m, nil
}

// warnOffsets logs a failed idleness check: the upstreams stay active
// (holding the windows back) until a check succeeds.
func (g *graph) warnOffsets(err error) {
	if g.log != nil {
		g.log.Warn("could not check whether upstream partitions are caught up; they hold event time back until a check succeeds", "err", err)
	}
}

// flushWatermarks writes the control records of every upstream whose
// watermark changed into every partition of a's repartition topic. It
// runs as the transaction ends, after the data records.
func (a *aggregator) flushWatermarks(emit emitFunc) {
	ws := make([]writer, 0, len(a.ups))
	for w, u := range a.ups {
		if u.changed() {
			ws = append(ws, w)
		}
	}
	slices.SortFunc(ws, func(x, y writer) int { return strings.Compare(x.String(), y.String()) })
	for _, w := range ws {
		u := a.ups[w]
		u.flushWM, u.flushIdle, u.flushing = u.wm, u.idle, true
		v := w.String() + " " + strconv.FormatInt(u.wm, 10)
		if u.idle {
			v += " idle"
		}
		for q := range a.parts {
			emit(&kgo.Record{Topic: a.repartition, Partition: q, Headers: []kgo.RecordHeader{{Key: headerWatermark, Value: []byte(v)}}})
		}
	}
}

// settleWatermarks records what the ended transaction's control records
// said, if it committed; otherwise they are sent again.
func (a *aggregator) settleWatermarks(committed bool) {
	for _, u := range a.ups {
		if u.flushing && committed {
			u.sentWM, u.sentIdle, u.sent = u.flushWM, u.flushIdle, true
		}
		if committed {
			u.baseWM, u.baseIdle, u.basePos = u.wm, u.idle, u.pos
		} else {
			u.wm, u.idle, u.pos = u.baseWM, u.baseIdle, u.basePos
		}
		u.flushing = false
	}
}

// settled reports whether every upstream this member owns is idle and has
// said so in a committed transaction: its watermarks are all out.
func (g *graph) settled() bool {
	for _, a := range g.aggs {
		for _, u := range a.ups {
			if !u.idle || u.changed() {
				return false
			}
		}
	}
	return true
}

// watermarkOf parses a control record's header; ok is false for a data
// record.
func watermarkOf(in *kgo.Record) (w writer, wm int64, idle, ok bool, err error) {
	if in.Key != nil {
		return w, 0, false, false, nil
	}
	for _, h := range in.Headers {
		if h.Key != headerWatermark {
			continue
		}
		f := strings.Fields(string(h.Value))
		if len(f) < 2 {
			return w, 0, false, true, fmt.Errorf("malformed watermark %q", h.Value)
		}
		i := strings.LastIndexByte(f[0], '/')
		p, perr := strconv.ParseInt(f[0][i+1:], 10, 32)
		t, terr := strconv.ParseInt(f[1], 10, 64)
		if i < 0 || perr != nil || terr != nil {
			return w, 0, false, true, fmt.Errorf("malformed watermark %q", h.Value)
		}
		return writer{f[0][:i], int32(p)}, t, len(f) > 2 && f[2] == "idle", true, nil
	}
	return w, 0, false, false, nil
}

func upstreamKey(w writer) []byte { return []byte("u" + w.String()) }

// watermark applies a control record read from a's repartition topic:
// the upstream's latest watermark is stored, and the task's stream time
// moves to the minimum over its upstreams, closing windows.
func (g *graph) watermark(a *aggregator, in *kgo.Record, w writer, wm int64, idle bool, emit emitFunc) error {
	part := in.Partition
	st, err := a.store(part)
	if err != nil {
		return err
	}
	r := &record{ts: in.Timestamp, src: in}
	e, err := loadUpstream(st, w)
	if err != nil {
		return g.fail(a.node, r, PhaseEval, err)
	}
	next := upstreamState{wm: max(e.wm, wm), idle: idle}
	if next != e {
		a.put(part, st, upstreamKey(w), next.encode(), dirtyRow{})
	}
	now, err := a.taskTime(st)
	if err != nil {
		return g.fail(a.node, r, PhaseEval, err)
	}
	t, err := a.upstreamTime(st)
	if err != nil {
		return g.fail(a.node, r, PhaseEval, err)
	}
	if t <= now {
		return nil
	}
	a.setTaskTime(part, st, t)
	// idle_timeout counts the quiet from here: the clock moved now,
	// though no record of the task came. Counted from the task's last
	// record instead, a task whose groups are quiet while the others
	// keep the clock current would add all that quiet to a clock that
	// is current already, and judge on-time records late.
	wall := g.now()
	if s := g.streamJoinOf(a); s != nil {
		w := s.walls(part, wall)
		w[sideThis], w[sideOther] = wall, wall
		return s.expire(g, part, st, t, wall, emit)
	}
	a.lastWall[part] = wall
	return g.closeWindows(a, st, part, t, emit)
}

// upstreamState is a downstream task's record of one upstream partition.
type upstreamState struct {
	wm   int64
	idle bool
}

func (e upstreamState) encode() []byte {
	b := strconv.AppendInt(nil, e.wm, 10)
	if e.idle {
		b = append(b, " idle"...)
	}
	return b
}

func loadUpstream(st statestore.Store, w writer) (upstreamState, error) {
	b, ok, err := st.Get(upstreamKey(w))
	if err != nil || !ok {
		return upstreamState{wm: noTime}, err
	}
	s, idle := strings.CutSuffix(string(b), " idle")
	t, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return upstreamState{}, fmt.Errorf("corrupt upstream watermark %q", b)
	}
	return upstreamState{wm: t, idle: idle}, nil
}

// upstreamTime is the event time every upstream partition has reached:
// the minimum over the active ones, the maximum when all are idle, noTime
// while one has not been heard from.
func (a *aggregator) upstreamTime(st statestore.Store) (int64, error) {
	lo, hi, active := int64(math.MaxInt64), noTime, false
	for _, w := range a.writers {
		e, err := loadUpstream(st, w)
		if err != nil {
			return noTime, err
		}
		if e.wm == noTime && !e.idle {
			return noTime, nil
		}
		hi = max(hi, e.wm)
		if !e.idle {
			active = true
			lo = min(lo, e.wm)
		}
	}
	if !active {
		return hi, nil
	}
	return lo, nil
}

// origin is the source record a repartition record was made from.
type origin struct {
	Topic     string             `json:"t"`
	Partition int32              `json:"p"`
	Offset    int64              `json:"o"`
	Timestamp int64              `json:"ts"`
	Key       []byte             `json:"k,omitempty"`
	Value     []byte             `json:"v,omitempty"`
	Headers   []kgo.RecordHeader `json:"h,omitempty"`
	// Omitted: key and value were too large to carry (they would have
	// made the repartition record too large for its topic).
	Omitted int `json:"x,omitempty"`
}

// maxOriginBytes bounds the key and value a repartition record carries as
// its origin; a larger original is carried by its coordinates only, as a
// dead letter too large for its topic is.
const maxOriginBytes = 64 << 10

// originHeader encodes src for headerOrigin.
func originHeader(src *kgo.Record) kgo.RecordHeader {
	if o, ok := originOf(src); ok {
		src = o // already a repartition record: keep the first origin
	}
	o := origin{Topic: src.Topic, Partition: src.Partition, Offset: src.Offset, Timestamp: src.Timestamp.UnixMilli(),
		Key: src.Key, Value: src.Value, Headers: src.Headers}
	if n := len(src.Key) + len(src.Value); n > maxOriginBytes {
		o.Key, o.Value, o.Omitted = nil, nil, n
	}
	b, _ := json.Marshal(o)
	return kgo.RecordHeader{Key: headerOrigin, Value: b}
}

// originOf returns the source record in carries in headerOrigin.
func originOf(in *kgo.Record) (*kgo.Record, bool) {
	for _, h := range in.Headers {
		if h.Key != headerOrigin {
			continue
		}
		var o origin
		if json.Unmarshal(h.Value, &o) != nil {
			return nil, false
		}
		r := &kgo.Record{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Timestamp: time.UnixMilli(o.Timestamp),
			Key: o.Key, Value: o.Value, Headers: o.Headers}
		if o.Omitted > 0 {
			r.Headers = append(slices.Clip(r.Headers), kgo.RecordHeader{Key: HeaderOmitted, Value: fmt.Appendf(nil,
				"key and value (%d bytes) left out on the way through the repartition topic; the original is %s/%d@%d", o.Omitted, o.Topic, o.Partition, o.Offset)})
		}
		return r, true
	}
	return nil, false
}

// original is the record to dead-letter for in: its source record when
// in came through a repartition topic.
func original(in *kgo.Record) *kgo.Record {
	if o, ok := originOf(in); ok {
		return o
	}
	return in
}

// withoutInternal drops the headers exactly adds to repartition records.
func withoutInternal(hs []kgo.RecordHeader) []kgo.RecordHeader {
	if !slices.ContainsFunc(hs, isInternal) {
		return hs
	}
	return slices.DeleteFunc(slices.Clone(hs), isInternal)
}

func isInternal(h kgo.RecordHeader) bool { return h.Key == headerOrigin || h.Key == headerWatermark }
