package processor

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/statestore"
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
//   - An upstream partition is idle once it has returned no record for the
//     window's upstream_idle (wall clock, default 1s): an empty or caught-up
//     partition must not stall the windows forever. The price, as with
//     Flink's idleness: a partition that stalls longer than that while it
//     still has a backlog (a slow leader) may see its records judged
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
}

func (u *upstream) changed() bool { return !u.sent || u.wm != u.sentWM || u.idle != u.sentIdle }

// assignments carries partition assignments from the client's rebalance
// callbacks to the run loop.
type assignments struct {
	mu      sync.Mutex
	added   map[string][]int32
	removed map[string][]int32
	reset   bool
}

func (s *assignments) add(m map[string][]int32, removed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dst := &s.added
	if removed {
		dst = &s.removed
	}
	if *dst == nil {
		*dst = map[string][]int32{}
	}
	for t, ps := range m {
		(*dst)[t] = append((*dst)[t], ps...)
	}
}

// clear forgets every upstream: after a client rebuild the member is
// assigned its partitions afresh.
func (s *assignments) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.added, s.removed, s.reset = nil, nil, true
}

// watermarked reports whether a's clock is the minimum over upstream
// partitions: a windowed aggregate behind a repartition.
func (a *aggregator) watermarked() bool {
	return a.repartition != "" && windowOf(a) != nil
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
	added, removed, reset := g.asg.added, g.asg.removed, g.asg.reset
	g.asg.added, g.asg.removed, g.asg.reset = nil, nil, false
	g.asg.mu.Unlock()
	for _, a := range g.aggs {
		if !a.watermarked() {
			continue
		}
		if reset {
			clear(a.ups)
		}
		for t, ps := range removed {
			for _, p := range ps {
				delete(a.ups, writer{t, p})
			}
		}
		for t, ps := range added {
			if !a.feeds[t] {
				continue
			}
			for _, p := range ps {
				if _, ok := a.ups[writer{t, p}]; !ok {
					a.ups[writer{t, p}] = &upstream{wm: noTime, baseWM: noTime, last: now}
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
		u = &upstream{wm: noTime, baseWM: noTime}
		a.ups[w] = u
	}
	u.wm = max(u.wm, ts)
	u.last = now
	u.idle = false
}

// idleUpstreams marks upstreams idle that have been quiet for the window's
// upstream_idle, and reports whether any upstream has a watermark to send
// (which needs a transaction).
func (a *aggregator) idleUpstreams(now time.Time, dry bool) bool {
	idle := windowOf(a).UpstreamIdle
	send := false
	for _, u := range a.ups {
		if !u.idle && now.Sub(u.last) >= idle {
			if dry {
				send = true
				continue
			}
			u.idle = true
		}
		send = send || u.changed()
	}
	return send
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
			u.baseWM, u.baseIdle = u.wm, u.idle
		} else {
			u.wm, u.idle = u.baseWM, u.baseIdle
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
