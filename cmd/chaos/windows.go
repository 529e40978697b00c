package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
)

// The windowed half of the chaos pipeline: two tumbling-window aggregates
// fed from tag, grouped by value.id % windowGroups (not the record key), so
// both read their records back from a repartition topic and take their
// stream time from the upstream partitions' watermarks. One emits on_close
// to win-close, the other on_commit to win-commit. Event time is the record
// timestamp, which the generator's client sets as it produces.
//
// Why no on-time record can be late with this grace. Each partition of `in`
// gets its committed records from one idempotent producer, in produce order,
// so its timestamps never go back. An upstream task's watermark is the
// highest timestamp it read from its partition, written into every
// repartition partition after that partition's records, in the same
// transaction; a task taking over a partition after a crash or a zombie
// resumes from the committed offset, past which timestamps are no lower than
// the committed watermark. A downstream task's clock is the minimum over
// the upstream partitions, so a record from partition p finds the clock at
// most at p's own watermark, no later than its own timestamp: it is late
// only when p was counted idle while it still had records to read, far
// enough behind the others. p is counted idle only when its reader sent
// nothing for upstream_idle (1s) and was caught up (at p's last stable
// offset, or at the one found a check earlier); the generator writes to
// every partition every tick (100ms), so a reader that sent nothing for 1s
// is behind, whatever held it (a restore, a pause, a crash), and p is not
// idle until the generator stops (before that rule, a CI run on Apache
// Kafka saw a partition counted idle with 35s of backlog). windowGrace is
// 30s. Late records go to the dead-letter topic, so the
// checker can name any record judged late.
//
// With windowSize 2s over the 90s of the short setting there are about 45
// windows per group; the ones ending 30s before the last input record close
// while faults still happen, the last 15 stay open (on_close has no row for
// them; on_commit has).
const (
	winCloseStep   = "win-close"
	winCommitStep  = "win-commit"
	winCloseTopic  = "win-close"
	winCommitTopic = "win-commit"
	dlqTopic       = "chaos-dlq"
	windowGroups   = 5
	windowSize     = 2 * time.Second
	windowGrace    = 30 * time.Second
)

// What the daemon writes (processor/watermark.go, processor/badrecord.go).
const (
	headerWatermark = "exactly.watermark"
	headerNode      = "exactly.node"
	headerPhase     = "exactly.phase"
	phaseLate       = "late"
)

// repartitionTopics are the windows' repartition topics, which the group
// also consumes.
func repartitionTopics() []string {
	return []string{
		topology.RepartitionTopic(pipelineName, winCloseStep),
		topology.RepartitionTopic(pipelineName, winCommitStep),
	}
}

// winKey is one window of one group: g is id % windowGroups, start the
// window's start in epoch milliseconds.
type winKey struct {
	g, start int64
}

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

func (k winKey) String() string {
	return fmt.Sprintf("g %d [%s, %s)", k.g, msTime(k.start), msTime(k.start+windowSize.Milliseconds()))
}

func sortedKeys[V any](m map[winKey]V) []winKey {
	ks := make([]winKey, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b winKey) int {
		if a.start != b.start {
			return int(a.start - b.start)
		}
		return int(a.g - b.g)
	})
	return ks
}

// winAgg is a window's row: count and sum(amount).
type winAgg struct{ n, total int64 }

// windowTruth is every window over the committed input.
type windowTruth struct {
	wins map[winKey]winAgg
	of   map[int64]winKey // each record's window, by id
	// final is the stream time every downstream task reaches once all
	// upstreams are idle: the highest input timestamp.
	final int64
	any   bool
}

func windowOfRecord(id, ts int64) winKey {
	size := windowSize.Milliseconds()
	start := ts - ts%size
	if ts%size < 0 {
		start -= size
	}
	return winKey{g: id % windowGroups, start: start}
}

// buildWindowTruth computes the windows from the committed input as `in`
// holds it (its timestamps included).
func buildWindowTruth(t *truth) *windowTruth {
	w := &windowTruth{wins: map[winKey]winAgg{}, of: map[int64]winKey{}}
	for id, v := range t.byID {
		ts := t.ts[id]
		k := windowOfRecord(id, ts)
		a := w.wins[k]
		a.n++
		a.total += v.Amount
		w.wins[k] = a
		w.of[id] = k
		if !w.any || ts > w.final {
			w.final, w.any = ts, true
		}
	}
	return w
}

// closed reports whether window k closes by the final stream time: its
// end plus grace is no later than it.
func (w *windowTruth) closed(k winKey) bool {
	return w.any && k.start+windowSize.Milliseconds()+windowGrace.Milliseconds() <= w.final
}

// windowRow is a window output value; the key holds g and window_start.
type windowRow struct {
	G           json.Number `json:"g"`
	N           json.Number `json:"n"`
	Total       json.Number `json:"total"`
	WindowStart string      `json:"window_start"`
	WindowEnd   string      `json:"window_end"`
}

type windowRowKey struct {
	G           json.Number `json:"g"`
	WindowStart string      `json:"window_start"`
}

func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func parseMs(s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, err
	}
	return t.UnixMilli(), nil
}

// parseWindowRow decodes a window output record; a nil value is a
// tombstone (tumbling windows never send one).
func parseWindowRow(key, value []byte) (k winKey, n int64, total *big.Rat, tomb bool, err error) {
	var rk windowRowKey
	if err := decodeJSON(key, &rk); err != nil {
		return k, 0, nil, false, fmt.Errorf("key: %w", err)
	}
	g, ok := parseInt(rk.G)
	start, serr := parseMs(rk.WindowStart)
	if !ok || serr != nil {
		return k, 0, nil, false, fmt.Errorf("key %s: want an integer g and an RFC 3339 window_start", key)
	}
	k = winKey{g: g, start: start}
	if value == nil {
		return k, 0, nil, true, nil
	}
	var v windowRow
	if err := decodeJSON(value, &v); err != nil {
		return k, 0, nil, false, fmt.Errorf("value: %w", err)
	}
	end, eerr := parseMs(v.WindowEnd)
	vstart, verr := parseMs(v.WindowStart)
	vg, gok := parseInt(v.G)
	n, nok := parseInt(v.N)
	switch {
	case eerr != nil || verr != nil || !gok || !nok:
		return k, 0, nil, false, errors.New("want integers g and n and RFC 3339 window_start and window_end")
	case vg != g || vstart != start:
		return k, 0, nil, false, fmt.Errorf("value's g %d and window_start %s differ from the key's", vg, v.WindowStart)
	case start%windowSize.Milliseconds() != 0 || end != start+windowSize.Milliseconds():
		return k, 0, nil, false, fmt.Errorf("[%s, %s) is not a %s tumbling window", v.WindowStart, v.WindowEnd, windowSize)
	case bytes.ContainsAny([]byte(v.Total), "eE"):
		return k, 0, nil, false, fmt.Errorf("total %s is printed with an exponent", v.Total)
	}
	total, ok = new(big.Rat).SetString(string(v.Total))
	if !ok {
		return k, 0, nil, false, fmt.Errorf("total %q is not a number", v.Total)
	}
	return k, n, total, false, nil
}

// lateNote says how many of window k's records were dead-lettered as late.
func lateNote(late map[winKey]int, k winKey) string {
	if n := late[k]; n > 0 {
		return fmt.Sprintf(" (%d of its records were dead-lettered as late)", n)
	}
	return ""
}

// checkWindowClose checks the final rows read_committed sees on win-close
// (emit: on_close): every window closed by the final stream time has
// exactly one row, with the truth's count and sum, and no window still
// open has one. late holds the records win-close dead-lettered as late.
func checkWindowClose(recs []*kgo.Record, wt *windowTruth, late map[winKey]int, rep *Report) {
	rep.WindowCloseRows = len(recs)
	rows := map[winKey]int{}
	for _, r := range recs {
		where := fmt.Sprintf("%s/%d@%d", winCloseTopic, r.Partition, r.Offset)
		k, n, total, tomb, err := parseWindowRow(r.Key, r.Value)
		if err == nil && tomb {
			err = errors.New("a tombstone")
		}
		if err != nil {
			rep.WindowWrong++
			rep.example("window close", "%s %s %s: %v", where, r.Key, r.Value, err)
			continue
		}
		rows[k]++
		if rows[k] > 1 {
			rep.WindowDuplicates++
			rep.example("window duplicate", "%s: window %s: final row number %d (n %d total %s)", where, k, rows[k], n, total.RatString())
		}
		if !wt.closed(k) {
			rep.WindowEarly++
			rep.example("window early", "%s: window %s: a final row, but it closes only at stream time %s, past the final %s",
				where, k, msTime(k.start+(windowSize+windowGrace).Milliseconds()), msTime(wt.final))
		}
		want, ok := wt.wins[k]
		switch {
		case !ok:
			rep.WindowWrong++
			rep.example("window close", "%s: window %s: no committed record, yet a row n %d total %s", where, k, n, total.RatString())
		case n != want.n || total.Cmp(new(big.Rat).SetInt64(want.total)) != 0:
			rep.WindowWrong++
			rep.example("window close", "%s: window %s: n %d total %s, want n %d total %d%s", where, k, n, total.RatString(), want.n, want.total, lateNote(late, k))
		}
	}
	for _, k := range sortedKeys(wt.wins) {
		if rows[k] == 0 && wt.closed(k) {
			rep.WindowMissing++
			want := wt.wins[k]
			rep.example("window missing", "window %s: closed, yet no final row; want n %d total %d%s", k, want.n, want.total, lateNote(late, k))
		}
	}
}

// checkWindowCommit checks the rows read_committed sees on win-commit
// (emit: on_commit) as an upsert table: the last row of every window with
// records equals the truth, no window without records has a row, and a
// window's count never goes back.
func checkWindowCommit(recs []*kgo.Record, wt *windowTruth, late map[winKey]int, rep *Report) {
	rep.WindowCommitRows = len(recs)
	type row struct {
		n     int64
		total *big.Rat
		where string
	}
	final := map[winKey]row{}
	for _, r := range recs {
		where := fmt.Sprintf("%s/%d@%d", winCommitTopic, r.Partition, r.Offset)
		k, n, total, tomb, err := parseWindowRow(r.Key, r.Value)
		if err == nil && tomb {
			err = errors.New("a tombstone")
			delete(final, k)
		}
		if err != nil {
			rep.WindowCommitWrong++
			rep.example("window commit", "%s %s %s: %v", where, r.Key, r.Value, err)
			continue
		}
		if prev, ok := final[k]; ok && n < prev.n {
			rep.WindowCommitBackward++
			rep.example("window commit backward", "%s: window %s: n %d after n %d at %s", where, k, n, prev.n, prev.where)
		}
		final[k] = row{n, total, where}
	}
	for _, k := range sortedKeys(final) {
		got := final[k]
		want, ok := wt.wins[k]
		switch {
		case !ok:
			rep.WindowCommitWrong++
			rep.example("window commit", "%s: window %s: no committed record, yet its last row is n %d total %s", got.where, k, got.n, got.total.RatString())
		case got.n != want.n || got.total.Cmp(new(big.Rat).SetInt64(want.total)) != 0:
			rep.WindowCommitWrong++
			rep.example("window commit", "%s: window %s: last row n %d total %s, want n %d total %d%s", got.where, k, got.n, got.total.RatString(), want.n, want.total, lateNote(late, k))
		}
	}
	for _, k := range sortedKeys(wt.wins) {
		if _, ok := final[k]; !ok {
			rep.WindowCommitMissing++
			want := wt.wins[k]
			rep.example("window commit missing", "window %s: no row; want n %d total %d%s", k, want.n, want.total, lateNote(late, k))
		}
	}
}

// lateRecords reads the dead-letter records (recs) of records judged late,
// by window step and window. Each input record goes to each window once at
// most: a second dead letter of it counts as a duplicate. Each is compared
// with the clock wm replays over the committed repartition topics.
func lateRecords(recs []*kgo.Record, t *truth, wt *windowTruth, wm *watermarks, rep *Report) map[string]map[winKey]int {
	late := map[string]map[winKey]int{}
	seen := map[string]map[int64]bool{}
	for _, r := range recs {
		where := fmt.Sprintf("%s/%d@%d", dlqTopic, r.Partition, r.Offset)
		var node, phase string
		for _, h := range r.Headers {
			switch h.Key {
			case headerNode:
				node = string(h.Value)
			case headerPhase:
				phase = string(h.Value)
			}
		}
		var v inputValue
		if phase != phaseLate || json.Unmarshal(r.Value, &v) != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: a dead letter of node %q phase %q, not a late input record: %s", where, node, phase, r.Value))
			continue
		}
		if _, ok := t.byID[v.ID]; !ok {
			rep.WindowWrong++
			rep.example("window late", "%s: %s dead-lettered record %d as late, but no such record committed upstream", where, node, v.ID)
			continue
		}
		if seen[node] == nil {
			seen[node], late[node] = map[int64]bool{}, map[winKey]int{}
		}
		if seen[node][v.ID] {
			rep.WindowDuplicates++
			rep.example("window duplicate", "%s: %s dead-lettered record %d as late twice", where, node, v.ID)
			continue
		}
		seen[node][v.ID] = true
		k := wt.of[v.ID]
		late[node][k]++
		rep.WindowLate++
		a, arrived, byClock := wm.lateByClock(node, v.ID, k)
		if byClock {
			rep.WindowLateByClock++
		} else {
			rep.WindowLateDisagree++
		}
		rep.example("window late", "%s: %s judged record %d late (in/%s@%s, timestamp %s, window %s); %s", where, node, v.ID,
			header(r, "exactly.source.partition"), header(r, "exactly.source.offset"), msTime(t.ts[v.ID]), k, a.describe(arrived))
	}
	// Records the committed watermarks make late, yet not dead-lettered.
	for _, step := range []string{winCloseStep, winCommitStep} {
		for id, a := range wm.arrivals[topology.RepartitionTopic(pipelineName, step)] {
			k, ok := wt.of[id]
			if !ok || seen[step][id] {
				continue
			}
			if _, _, byClock := wm.lateByClock(step, id, k); byClock {
				rep.WindowLateDisagree++
				rep.example("window late", "%s took record %d (timestamp %s, window %s) as on time, yet %s", step, id, msTime(t.ts[id]), k, a.describe(true))
			}
		}
	}
	summarizeLate(late, seen, t, wm, rep)
	return late
}

// describe says when a record arrived and what its task knew of its
// source partition then.
func (a arrival) describe(arrived bool) string {
	if !arrived {
		return "it is not in the committed repartition topic"
	}
	src := fmt.Sprintf("in/%d", a.src)
	state := "never heard of"
	if a.known {
		state = "at " + msTime(a.mark.wm)
		if a.mark.idle {
			state = "idle, at " + msTime(a.mark.wm)
		}
	}
	return fmt.Sprintf("it arrived at %s/%d@%d with the clock (replayed over the committed watermarks) at %s, %s %s there",
		a.tp.topic, a.tp.part, a.offset, msTime(a.clock), src, state)
}

// summarizeLate adds, per window step and source partition, how many
// records were judged late, their timestamps, and how many arrived while
// their source partition was counted idle.
func summarizeLate(late map[string]map[winKey]int, seen map[string]map[int64]bool, t *truth, wm *watermarks, rep *Report) {
	type group struct {
		step   string
		src    int32
		n      int
		idle   int
		lo, hi int64
	}
	groups := map[[2]string]*group{}
	for step, ids := range seen {
		for id := range ids {
			a, ok := wm.arrivals[topology.RepartitionTopic(pipelineName, step)][id]
			src := int32(-1)
			if ok {
				src = a.src
			}
			key := [2]string{step, strconv.Itoa(int(src))}
			g := groups[key]
			if g == nil {
				g = &group{step: step, src: src, lo: t.ts[id], hi: t.ts[id]}
				groups[key] = g
			}
			g.n++
			if ok && a.known && a.mark.idle {
				g.idle++
			}
			g.lo, g.hi = min(g.lo, t.ts[id]), max(g.hi, t.ts[id])
		}
	}
	keys := slices.Collect(maps.Keys(groups))
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[0]+"/"+a[1], b[0]+"/"+b[1]) })
	for _, k := range keys {
		g := groups[k]
		rep.Problems = append(rep.Problems, fmt.Sprintf("%s judged %d records of in/%d late, timestamps %s to %s; %d of them arrived while in/%d was counted idle",
			g.step, g.n, g.src, msTime(g.lo), msTime(g.hi), g.idle, g.src))
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return "?"
}

// topicPart is a partition of a topic.
type topicPart struct {
	topic string
	part  int32
}

// upstreamMark is what the control records of one upstream partition of
// `in` said in one repartition partition: the highest watermark, and
// whether the last one marked it idle. That is what the downstream task
// keeps of it.
type upstreamMark struct {
	wm   int64
	idle bool
}

// watermarks follows the control records of the windows' repartition
// topics as a read_committed reader sees them, reading on from where it
// stopped. It also replays each downstream task's clock by the daemon's
// rule over what committed, so that a record judged late can be told
// apart: did the committed watermarks make it late (then some upstream
// was counted idle, or moved on, while it still had that record to send),
// or did the task's clock go past what committed?
type watermarks struct {
	pos    map[topicPart]int64
	marks  map[topicPart]map[int32]upstreamMark
	clock  map[topicPart]int64
	parts  map[string]int32 // partitions of each repartition topic
	inPart int32            // partitions of `in`
	// arrivals[topic][id] is where and when record id arrived in topic.
	arrivals map[string]map[int64]arrival
}

// arrival is a data record of a repartition topic as its task saw it.
type arrival struct {
	tp     topicPart
	offset int64
	clock  int64        // the task's clock as it arrived
	src    int32        // its partition of `in` (-1: unknown)
	mark   upstreamMark // what the task knew of src then
	known  bool         // whether it had heard of src
}

func newWatermarks() *watermarks {
	return &watermarks{pos: map[topicPart]int64{}, marks: map[topicPart]map[int32]upstreamMark{},
		clock: map[topicPart]int64{}, parts: map[string]int32{}, arrivals: map[string]map[int64]arrival{}}
}

// noTime is the daemon's clock before any watermark (processor/window.go).
const noTime = int64(-1 << 62)

// upstreamTime is the daemon's rule (processor/watermark.go): the minimum
// over the upstream partitions not idle, the maximum when all are idle,
// noTime while one neither sent a watermark nor is idle.
func (w *watermarks) upstreamTime(tp topicPart) int64 {
	lo, hi, active := int64(1<<63-1), noTime, false
	for p := range w.inPart {
		e, ok := w.marks[tp][p]
		if !ok || (e.wm == noTime && !e.idle) {
			return noTime
		}
		hi = max(hi, e.wm)
		if !e.idle {
			active = true
			lo = min(lo, e.wm)
		}
	}
	if !active {
		return hi
	}
	return lo
}

// originPartition is the partition of `in` a repartition record came
// from, from its exactly.origin header ({"p": partition, ...}).
func originPartition(r *kgo.Record) int32 {
	var o struct {
		P *int32 `json:"p"`
	}
	if json.Unmarshal([]byte(header(r, "exactly.origin")), &o) != nil || o.P == nil {
		return -1
	}
	return *o.P
}

// parseWatermark decodes a control record: header exactly.watermark =
// "in/<partition> <ms>[ idle]", no key. ok is false for a data record.
func parseWatermark(r *kgo.Record) (part int32, wm int64, idle, ok bool, err error) {
	if r.Key != nil {
		return 0, 0, false, false, nil
	}
	v := header(r, headerWatermark)
	if v == "?" {
		return 0, 0, false, false, nil
	}
	f := strings.Fields(v)
	if len(f) < 2 || len(f) > 3 || (len(f) == 3 && f[2] != "idle") {
		return 0, 0, false, true, fmt.Errorf("malformed watermark %q", v)
	}
	src, p, found := strings.Cut(f[0], "/")
	if !found || src != "in" {
		return 0, 0, false, true, fmt.Errorf("malformed watermark %q", v)
	}
	pn, perr := strconv.ParseInt(p, 10, 32)
	t, terr := strconv.ParseInt(f[1], 10, 64)
	if perr != nil || terr != nil {
		return 0, 0, false, true, fmt.Errorf("malformed watermark %q", v)
	}
	return int32(pn), t, len(f) == 3, true, nil
}

// apply takes in one record of repartition partition tp.
func (w *watermarks) apply(tp topicPart, r *kgo.Record) error {
	p, wm, idle, ok, err := parseWatermark(r)
	if err != nil {
		return err
	}
	if !ok {
		w.arrive(tp, r)
		return nil
	}
	m := w.marks[tp]
	if m == nil {
		m = map[int32]upstreamMark{}
		w.marks[tp] = m
	}
	e, seen := m[p]
	if !seen || wm > e.wm {
		e.wm = wm
	}
	e.idle = idle
	m[p] = e
	if c, ok := w.clock[tp]; !ok || c == noTime {
		w.clock[tp] = noTime
	}
	if t := w.upstreamTime(tp); t > w.clock[tp] {
		w.clock[tp] = t
	}
	return nil
}

// arrive notes a data record of tp: which record, and the clock then.
func (w *watermarks) arrive(tp topicPart, r *kgo.Record) {
	var v struct {
		ID *int64 `json:"id"`
	}
	if json.Unmarshal(r.Value, &v) != nil || v.ID == nil {
		return
	}
	a := arrival{tp: tp, offset: r.Offset, clock: noTime, src: originPartition(r)}
	if c, ok := w.clock[tp]; ok {
		a.clock = c
	}
	a.mark, a.known = w.marks[tp][a.src]
	if w.arrivals[tp.topic] == nil {
		w.arrivals[tp.topic] = map[int64]arrival{}
	}
	if _, dup := w.arrivals[tp.topic][*v.ID]; !dup {
		w.arrivals[tp.topic][*v.ID] = a
	}
}

// lateByClock reports whether record id of window k was late by the
// clock replayed over what committed in the repartition topic of step.
func (w *watermarks) lateByClock(step string, id int64, k winKey) (arrival, bool, bool) {
	a, ok := w.arrivals[topology.RepartitionTopic(pipelineName, step)][id]
	return a, ok, ok && k.start+(windowSize+windowGrace).Milliseconds() <= a.clock
}

// read reads the repartition topics on to their current ends.
func (w *watermarks) read(ctx context.Context, cl *kgo.Client) error {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, append(repartitionTopics(), "in")...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("listing the end offsets of the repartition topics: %w", err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic == "in" {
			w.inPart = max(w.inPart, o.Partition+1)
		}
	})
	var readErr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic == "in" {
			return
		}
		w.parts[o.Topic] = max(w.parts[o.Topic], o.Partition+1)
		tp := topicPart{o.Topic, o.Partition}
		if readErr != nil || w.pos[tp] >= o.Offset {
			return
		}
		readErr = statestore.ReadCommitted(ctx, cl, tp.topic, tp.part, w.pos[tp], o.Offset, func(r *kgo.Record) error {
			if err := w.apply(tp, r); err != nil {
				return fmt.Errorf("%s/%d@%d: %w", tp.topic, tp.part, r.Offset, err)
			}
			return nil
		})
		if readErr == nil {
			w.pos[tp] = o.Offset
		}
	})
	return readErr
}

// unsettled says why the windows may still change: some repartition
// partition has not heard, as its last word, that some upstream partition
// is idle. "" when every upstream is idle everywhere.
func (w *watermarks) unsettled() string {
	if w.inPart == 0 || len(w.parts) == 0 {
		return "the repartition topics are not there yet"
	}
	for _, t := range repartitionTopics() {
		if w.parts[t] == 0 {
			return t + " is not there yet"
		}
		for q := range w.parts[t] {
			for p := range w.inPart {
				e, ok := w.marks[topicPart{t, q}][p]
				switch {
				case !ok:
					return fmt.Sprintf("%s/%d has no watermark of in/%d", t, q, p)
				case !e.idle:
					return fmt.Sprintf("in/%d is not idle in %s/%d", p, t, q)
				}
			}
		}
	}
	return ""
}

// checkClocks compares each repartition partition's final stream time, as
// its control records make it (every upstream idle: the highest
// watermark), with the truth's, and each upstream's watermark with the
// highest timestamp of its partition: a committed watermark no record
// explains, or one short of the input, is wrong (at most once may lose the
// watermark of a batch it lost).
func (w *watermarks) checkClocks(t *truth, rep *Report) {
	for _, topic := range repartitionTopics() {
		for q := range w.parts[topic] {
			tp := topicPart{topic, q}
			for p := range w.inPart {
				e, ok := w.marks[tp][p]
				want, has := t.partMaxTS[p]
				switch {
				case !has:
					// An empty partition: its watermark stays unset.
				case !ok:
					rep.WindowClockMismatches++
					rep.example("window clock", "%s/%d: no watermark of in/%d, whose last record has timestamp %s", topic, q, p, msTime(want))
				case e.wm != want:
					rep.WindowClockMismatches++
					rep.example("window clock", "%s/%d: in/%d's watermark is %s, its last record's timestamp %s", topic, q, p, msTime(e.wm), msTime(want))
				}
			}
		}
	}
}

// windowSettle decides when the window outputs are final: the group has
// consumed all of `in`, every repartition partition has heard every
// upstream partition go idle, the group has consumed the repartition
// topics to their ends (so the transactions that closed the windows with
// those watermarks committed), and the window sinks' end offsets did not
// move between two checks.
type windowSettle struct {
	wm         *watermarks
	inCaughtUp bool
	settled    bool
	why        string
	sinkEnds   map[topicPart]int64
}

func newWindowSettle() *windowSettle { return &windowSettle{wm: newWatermarks()} }

// done is catchUp's test of being done.
func (s *windowSettle) done(ctx context.Context, cl *kgo.Client) bool {
	if !s.inCaughtUp {
		if !broker.CaughtUp(ctx, cl, pipelineName, []string{"in", ssLeftTopic, ssRightTopic}) {
			s.why = "the group has not consumed `in`, `" + ssLeftTopic + "` and `" + ssRightTopic + "`"
			return false
		}
		s.inCaughtUp = true
	}
	if err := s.wm.read(ctx, cl); err != nil {
		s.why = err.Error()
		return false
	}
	if why := s.wm.unsettled(); why != "" {
		s.why, s.sinkEnds = why, nil
		return false
	}
	if !broker.CaughtUp(ctx, cl, pipelineName, append(repartitionTopics(), joinRepartitionTopic())) {
		s.why, s.sinkEnds = "the group has not consumed the repartition topics", nil
		return false
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, winCloseTopic, winCommitTopic)
	if err != nil {
		s.why = err.Error()
		return false
	}
	now := map[topicPart]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			now[topicPart{o.Topic, o.Partition}] = o.Offset
		}
	})
	if s.sinkEnds == nil || !maps.Equal(now, s.sinkEnds) {
		s.why, s.sinkEnds = "the window sinks are still growing", now
		return false
	}
	s.settled, s.why = true, ""
	return true
}

// createWindowTopics creates the window sinks and the dead-letter topic,
// with as many partitions as `in`. The broker does not create topics on a
// producer's behalf (nor should it: a producer of a missing topic fails
// its records, and the pipeline's transactions abort one after another).
func createWindowTopics(ctx context.Context, adm *kadm.Client) error {
	return ensureTopics(ctx, adm, nil, winCloseTopic, winCommitTopic, dlqTopic)
}

// ensureTopics creates topics with as many partitions as `in` and the
// given configs; one that exists already is fine.
func ensureTopics(ctx context.Context, adm *kadm.Client, configs map[string]*string, topics ...string) error {
	resps, err := adm.CreateTopics(ctx, partitions, -1, configs, topics...)
	if err != nil {
		return fmt.Errorf("creating %v: %w", topics, err)
	}
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// readTopic returns what read_committed sees on topic; nothing when the
// topic does not exist (no record was ever written to it).
func readTopic(ctx context.Context, addr, topic string) ([]*kgo.Record, error) {
	recs, err := broker.ReadCommitted(ctx, strings.Split(addr, ","), []string{topic})
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", topic, err)
	}
	return recs, nil
}

// checkWindows checks both window sinks against the truth, after every
// process stopped.
func checkWindows(ctx context.Context, addr string, t *truth, s *windowSettle, rep *Report) error {
	wt := buildWindowTruth(t)
	rep.WindowsTruth = len(wt.wins)
	for k := range wt.wins {
		if wt.closed(k) {
			rep.WindowsClosed++
		}
	}
	if wt.any {
		rep.WindowFinalStreamTime = msTime(wt.final)
	}
	rep.WindowsSettled = s.settled
	if !s.settled {
		rep.Problems = append(rep.Problems, "window outputs did not settle: "+s.why)
	}
	s.wm.checkClocks(t, rep)

	dlq, err := readTopic(ctx, addr, dlqTopic)
	if err != nil {
		return err
	}
	late := lateRecords(dlq, t, wt, s.wm, rep)
	closeRecs, err := readTopic(ctx, addr, winCloseTopic)
	if err != nil {
		return err
	}
	checkWindowClose(closeRecs, wt, late[winCloseStep], rep)
	commitRecs, err := readTopic(ctx, addr, winCommitTopic)
	if err != nil {
		return err
	}
	checkWindowCommit(commitRecs, wt, late[winCommitStep], rep)
	return nil
}
