package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/topology"
)

// t0 is a window start (a multiple of windowSize).
const t0 = int64(1_700_000_000_000)

// A small windowed truth, ids chosen for their group (id % 5):
//
//	g 1 [t0, t0+2s):      ids 1 (10) and 6 (7): n 2, total 17, closed
//	g 2 [t0, t0+2s):      id 2 (-5): n 1, total -5, closed
//	g 1 [t0+2s, t0+4s):   id 11 (3): n 1, total 3, closed
//	g 2 [t0+40s, t0+42s): id 7 (100): open, since the final stream time
//	                      is t0+40s and the window closes at t0+72s
var (
	winInput = []struct {
		v  inputValue
		ts int64
	}{
		{inputValue{ID: 1, Key: "a", Seq: 1, Amount: 10}, t0 + 100},
		{inputValue{ID: 2, Key: "a", Seq: 2, Amount: -5}, t0 + 500},
		{inputValue{ID: 6, Key: "b", Seq: 1, Amount: 7}, t0 + 1999},
		{inputValue{ID: 11, Key: "b", Seq: 2, Amount: 3}, t0 + 2000},
		{inputValue{ID: 7, Key: "c", Seq: 1, Amount: 100}, t0 + 40_000},
	}
	g1a  = winKey{1, t0}
	g2a  = winKey{2, t0}
	g1b  = winKey{1, t0 + 2000}
	g2z  = winKey{2, t0 + 40_000}
	g3a  = winKey{3, t0}
	g1st = winKey{1, t0 + 1000} // not a window start
)

func windowTruthForTest(t *testing.T) (*truth, *windowTruth) {
	t.Helper()
	var recs []*kgo.Record
	var gen generated
	for i, in := range winInput {
		r := record(in.v)
		r.Offset = int64(i)
		r.Timestamp = time.UnixMilli(in.ts)
		recs = append(recs, r)
		gen.committed = append(gen.committed, in.v)
	}
	var rep Report
	tr := buildTruth(recs, gen, &rep)
	if rep.InputMismatches != 0 {
		t.Fatalf("buildTruth: %d mismatches: %v", rep.InputMismatches, rep.Examples)
	}
	return tr, buildWindowTruth(tr)
}

func TestWindowTruth(t *testing.T) {
	_, wt := windowTruthForTest(t)
	want := map[winKey]winAgg{g1a: {2, 17}, g2a: {1, -5}, g1b: {1, 3}, g2z: {1, 100}}
	if len(wt.wins) != len(want) {
		t.Errorf("windows = %v, want %v", wt.wins, want)
	}
	for k, w := range want {
		if got := wt.wins[k]; got != w {
			t.Errorf("window %s = %+v, want %+v", k, got, w)
		}
	}
	if wt.final != t0+40_000 {
		t.Errorf("final stream time = %s, want %s", msTime(wt.final), msTime(t0+40_000))
	}
	for k, closed := range map[winKey]bool{g1a: true, g2a: true, g1b: true, g2z: false} {
		if wt.closed(k) != closed {
			t.Errorf("closed(%s) = %v, want %v", k, !closed, closed)
		}
	}
	// Exactly at end + grace the window closes, a millisecond before not.
	edge := &windowTruth{final: t0 + (windowSize + windowGrace).Milliseconds(), any: true}
	if !edge.closed(winKey{0, t0}) || edge.closed(winKey{0, t0 + 1}) {
		t.Errorf("a window closes when the stream time reaches its end plus grace")
	}
}

// win is a window output row: key, n, total; a nil-ish total "" makes a
// tombstone.
type win struct {
	k     winKey
	n     int64
	total string
}

func winRecords(topic string, rows []win) []*kgo.Record {
	var rs []*kgo.Record
	for i, w := range rows {
		start := msTime(w.k.start)
		key := fmt.Sprintf(`{"g":%d,"window_start":%q}`, w.k.g, start)
		var value []byte
		if w.total != "" {
			value = fmt.Appendf(nil, `{"g":%d,"n":%d,"total":%s,"window_end":%q,"window_start":%q}`,
				w.k.g, w.n, w.total, msTime(w.k.start+windowSize.Milliseconds()), start)
		}
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(key), Value: value, Offset: int64(i)})
	}
	return rs
}

func windowFigures(r Report) string {
	return fmt.Sprintf("dup %d wrong %d missing %d early %d | commit wrong %d missing %d backward %d | late %d",
		r.WindowDuplicates, r.WindowWrong, r.WindowMissing, r.WindowEarly,
		r.WindowCommitWrong, r.WindowCommitMissing, r.WindowCommitBackward, r.WindowLate)
}

var exactClose = []win{{g1a, 2, "17"}, {g2a, 1, "-5"}, {g1b, 1, "3"}}

func TestCheckWindowClose(t *testing.T) {
	_, wt := windowTruthForTest(t)
	for _, tc := range []struct {
		name string
		rows []win
		want Report
	}{
		{"exact", exactClose, Report{}},
		{"decimal total", []win{{g1a, 2, "17.00"}, exactClose[1], exactClose[2]}, Report{}},
		{"duplicate final row (the window closed in two committed transactions)",
			[]win{exactClose[0], exactClose[1], exactClose[0], exactClose[2]}, Report{WindowDuplicates: 1}},
		{"wrong sum", []win{{g1a, 2, "18"}, exactClose[1], exactClose[2]}, Report{WindowWrong: 1}},
		{"wrong count", []win{{g1a, 1, "10"}, exactClose[1], exactClose[2]}, Report{WindowWrong: 1}},
		{"missing window", []win{exactClose[0], exactClose[2]}, Report{WindowMissing: 1}},
		{"row of a window still open", append([]win{{g2z, 1, "100"}}, exactClose...), Report{WindowEarly: 1}},
		{"row of a window without records", append([]win{{g3a, 1, "5"}}, exactClose...), Report{WindowWrong: 1}},
		{"not a window", append([]win{{g1st, 1, "5"}}, exactClose...), Report{WindowWrong: 1}},
		{"tombstone", []win{exactClose[0], {g2a, 0, ""}, exactClose[2]}, Report{WindowWrong: 1, WindowMissing: 1}},
		{"exponent", []win{{g1a, 2, "1.7e1"}, exactClose[1], exactClose[2]}, Report{WindowWrong: 1, WindowMissing: 1}},
		{"nothing", nil, Report{WindowMissing: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rep Report
			checkWindowClose(winRecords(winCloseTopic, tc.rows), wt, nil, &rep)
			if got, want := windowFigures(rep), windowFigures(tc.want); got != want {
				t.Errorf("checkWindowClose = %s\nwant               %s\nexamples: %v", got, want, rep.Examples)
			}
			if rep.WindowCloseRows != len(tc.rows) {
				t.Errorf("rows = %d, want %d", rep.WindowCloseRows, len(tc.rows))
			}
		})
	}
}

// exactCommit is the on_commit stream of the truth: g 1 [t0, t0+2s) once
// after each of its records, in two transactions.
var exactCommit = []win{{g1a, 1, "10"}, {g2a, 1, "-5"}, {g1a, 2, "17"}, {g1b, 1, "3"}, {g2z, 1, "100"}}

func TestCheckWindowCommit(t *testing.T) {
	_, wt := windowTruthForTest(t)
	for _, tc := range []struct {
		name string
		rows []win
		want Report
	}{
		{"exact", exactCommit, Report{}},
		{"the same row again (an upsert, not a duplicate)", append(append([]win{}, exactCommit...), win{g1a, 2, "17"}), Report{}},
		{"last row short of the truth", []win{exactCommit[0], exactCommit[1], exactCommit[3], exactCommit[4]}, Report{WindowCommitWrong: 1}},
		{"wrong sum", []win{exactCommit[0], exactCommit[1], {g1a, 2, "16"}, exactCommit[3], exactCommit[4]}, Report{WindowCommitWrong: 1}},
		{"record counted twice", append(append([]win{}, exactCommit...), win{g1a, 3, "24"}), Report{WindowCommitWrong: 1}},
		{"missing window", exactCommit[:4], Report{WindowCommitMissing: 1}},
		{"count going back (an aborted row visible, then the replay)",
			[]win{exactCommit[0], exactCommit[1], exactCommit[2], exactCommit[0], exactCommit[2], exactCommit[3], exactCommit[4]},
			Report{WindowCommitBackward: 1}},
		{"row of a window without records", append([]win{{g3a, 1, "5"}}, exactCommit...), Report{WindowCommitWrong: 1}},
		{"tombstone", append(append([]win{}, exactCommit...), win{g2z, 0, ""}), Report{WindowCommitWrong: 1, WindowCommitMissing: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rep Report
			checkWindowCommit(winRecords(winCommitTopic, tc.rows), wt, nil, &rep)
			if got, want := windowFigures(rep), windowFigures(tc.want); got != want {
				t.Errorf("checkWindowCommit = %s\nwant                %s\nexamples: %v", got, want, rep.Examples)
			}
		})
	}
}

func lateRecord(node string, v inputValue) *kgo.Record {
	r := record(v)
	r.Topic = dlqTopic
	r.Headers = []kgo.RecordHeader{{Key: headerNode, Value: []byte(node)}, {Key: headerPhase, Value: []byte(phaseLate)},
		{Key: "exactly.source.partition", Value: []byte("3")}, {Key: "exactly.source.offset", Value: []byte("17")}}
	return r
}

func TestLateRecords(t *testing.T) {
	tr, wt := windowTruthForTest(t)
	dlq := []*kgo.Record{
		lateRecord(winCloseStep, winInput[2].v),  // id 6: g 1 [t0, t0+2s)
		lateRecord(winCommitStep, winInput[2].v), // the other window step may judge it late too
		lateRecord(winCloseStep, winInput[2].v),  // twice by the same step: a duplicate
		lateRecord(winCloseStep, inputValue{ID: 12345, Key: "z", Seq: 1}),
	}
	// The committed watermarks make id 6 late for win-close only: its
	// task's clock had passed the window's end plus grace.
	wm := newWatermarks()
	wm.arrivals[repartitionTopics()[0]] = map[int64]arrival{6: {clock: t0 + 32_000, src: 0}}
	wm.arrivals[repartitionTopics()[1]] = map[int64]arrival{6: {clock: t0 + 31_999, src: 0}}
	var rep Report
	late := lateRecords(dlq, tr, wt, wm, &rep)
	if rep.WindowLate != 2 || rep.WindowDuplicates != 1 || rep.WindowWrong != 1 || rep.WindowLateByClock != 1 || rep.WindowLateDisagree != 1 {
		t.Errorf("late %d, duplicates %d, wrong %d, by clock %d, disagreeing %d; want 2, 1, 1, 1, 1: %v",
			rep.WindowLate, rep.WindowDuplicates, rep.WindowWrong, rep.WindowLateByClock, rep.WindowLateDisagree, rep.Examples)
	}
	if late[winCloseStep][g1a] != 1 || late[winCommitStep][g1a] != 1 {
		t.Errorf("late = %v, want one record of %s for each step", late, g1a)
	}

	// A window short of a record judged late says so.
	rep = Report{}
	checkWindowClose(winRecords(winCloseTopic, []win{{g1a, 1, "10"}, exactClose[1], exactClose[2]}), wt, late[winCloseStep], &rep)
	if rep.WindowWrong != 1 || !strings.Contains(fmt.Sprint(rep.Examples), "1 of its records were dead-lettered as late") {
		t.Errorf("a window short of a late record: wrong %d, examples %v", rep.WindowWrong, rep.Examples)
	}

	// A dead letter that is not a late record is a problem to look at.
	rep = Report{}
	other := lateRecord(winCloseStep, winInput[0].v)
	other.Headers[1].Value = []byte("eval")
	lateRecords([]*kgo.Record{other}, tr, wt, wm, &rep)
	if rep.WindowLate != 0 || len(rep.Problems) != 1 {
		t.Errorf("dead letter of phase eval: late %d, problems %q; want 0 and one problem", rep.WindowLate, rep.Problems)
	}

	// A record the committed watermarks make late that the daemon took
	// as on time: they disagree.
	rep = Report{}
	lateRecords(nil, tr, wt, wm, &rep)
	if rep.WindowLateDisagree != 1 {
		t.Errorf("a late record not dead-lettered: disagreements %d, want 1: %v", rep.WindowLateDisagree, rep.Examples)
	}
}

// data is a repartition record of input record id from partition p of
// `in`, as the daemon writes it with a dead-letter topic.
func data(id int64, p int32, ts int64) *kgo.Record {
	return &kgo.Record{Key: []byte(`{"g":1}`), Value: fmt.Appendf(nil, `{"id":%d,"key":"k","seq":1,"amount":1}`, id),
		Timestamp: time.UnixMilli(ts),
		Headers:   []kgo.RecordHeader{{Key: "exactly.origin", Value: fmt.Appendf(nil, `{"t":"in","p":%d,"o":0,"ts":%d}`, p, ts)}}}
}

// TestClockReplay: the clock over the committed watermarks follows the
// daemon's rule, and shows a record late when its partition was counted
// idle while the other moved on.
func TestClockReplay(t *testing.T) {
	w := newWatermarks()
	w.inPart = 2
	topic := repartitionTopics()[0]
	tp := topicPart{topic, 0}
	for i, r := range []*kgo.Record{
		control(fmt.Sprintf("in/0 %d", t0+500)),
		data(1, 0, t0+400), // in/1 not heard of: no clock yet
		control(fmt.Sprintf("in/1 %d", t0+100)),
		data(2, 1, t0+100),                           // clock t0+100: the minimum
		control(fmt.Sprintf("in/1 %d idle", t0+100)), // in/1 counted idle: clock to in/0's
		control(fmt.Sprintf("in/0 %d", t0+40_000)),
		data(3, 1, t0+200),                      // in/1's record, 40s behind: late
		control(fmt.Sprintf("in/1 %d", t0+200)), // in/1 back: the clock does not go back
		data(4, 1, t0+300),
	} {
		r.Offset = int64(i)
		if err := w.apply(tp, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		id    int64
		clock int64
		late  bool
		idle  bool
	}{
		{1, noTime, false, false},
		{2, t0 + 100, false, false},
		{3, t0 + 40_000, true, true},
		{4, t0 + 40_000, true, false},
	} {
		k := winKey{1, t0}
		a, ok, late := w.lateByClock(winCloseStep, tc.id, k)
		if !ok || a.clock != tc.clock || late != tc.late || a.mark.idle != tc.idle || a.src != int32(min(tc.id-1, 1)) {
			t.Errorf("record %d: arrived %v, clock %s, late %v, source idle %v, source %d; want clock %s, late %v, idle %v",
				tc.id, ok, msTime(a.clock), late, a.mark.idle, a.src, msTime(tc.clock), tc.late, tc.idle)
		}
	}
	if s := (arrival{}).describe(false); !strings.Contains(s, "not in the committed") {
		t.Errorf("describe = %q", s)
	}
}

func control(v string) *kgo.Record {
	return &kgo.Record{Headers: []kgo.RecordHeader{{Key: headerWatermark, Value: []byte(v)}}}
}

func TestParseWatermark(t *testing.T) {
	for _, tc := range []struct {
		r       *kgo.Record
		part    int32
		wm      int64
		idle    bool
		ok, bad bool
	}{
		{control("in/3 1700000000123"), 3, 1700000000123, false, true, false},
		{control("in/0 1700000000123 idle"), 0, 1700000000123, true, true, false},
		{control("in/0 -4611686018427387904 idle"), 0, -1 << 62, true, true, false},
		{&kgo.Record{Key: []byte("k"), Headers: control("in/3 5").Headers}, 0, 0, false, false, false}, // a data record
		{&kgo.Record{}, 0, 0, false, false, false},
		{control(""), 0, 0, false, true, true},
		{control("in/3"), 0, 0, false, true, true},
		{control("in/x 5"), 0, 0, false, true, true},
		{control("out/3 5"), 0, 0, false, true, true},
		{control("in/3 5 busy"), 0, 0, false, true, true},
	} {
		p, wm, idle, ok, err := parseWatermark(tc.r)
		if ok != tc.ok || (err != nil) != tc.bad || (!tc.bad && (p != tc.part || wm != tc.wm || idle != tc.idle)) {
			t.Errorf("parseWatermark(%q) = %d, %d, %v, %v, %v; want %d, %d, %v, %v, error %v",
				header(tc.r, headerWatermark), p, wm, idle, ok, err, tc.part, tc.wm, tc.idle, tc.ok, tc.bad)
		}
	}
}

func TestWatermarks(t *testing.T) {
	tr, _ := windowTruthForTest(t)
	// The test input is all in partition 0 of `in`; say `in` has 2
	// partitions, 1 of them empty, and each repartition topic 1.
	w := newWatermarks()
	w.inPart = 2
	for _, topic := range repartitionTopics() {
		w.parts[topic] = 1
	}
	feed := func(topic string, vs ...string) {
		for _, v := range vs {
			if err := w.apply(topicPart{topic, 0}, control(v)); err != nil {
				t.Fatal(err)
			}
		}
	}
	close, commit := repartitionTopics()[0], repartitionTopics()[1]
	last := fmt.Sprint(t0 + 40_000)
	feed(close, "in/0 "+fmt.Sprint(t0+100), "in/1 -4611686018427387904 idle", "in/0 "+last)
	feed(close, "in/0 "+last+" idle")
	if why := w.unsettled(); !strings.Contains(why, commit) {
		t.Errorf("unsettled() = %q, want %s named: it has no watermark", why, commit)
	}
	feed(commit, "in/0 "+last+" idle", "in/1 -4611686018427387904")
	if why := w.unsettled(); !strings.Contains(why, "in/1 is not idle") {
		t.Errorf("unsettled() = %q, want in/1 not idle", why)
	}
	// A new owner of in/0 says it has read nothing yet, then goes idle:
	// the highest watermark stays.
	feed(commit, "in/1 -4611686018427387904 idle", "in/0 -4611686018427387904", "in/0 -4611686018427387904 idle")
	if why := w.unsettled(); why != "" {
		t.Errorf("unsettled() = %q, want settled", why)
	}
	var rep Report
	w.checkClocks(tr, &rep)
	if rep.WindowClockMismatches != 0 {
		t.Errorf("clock mismatches = %d, want 0: %v", rep.WindowClockMismatches, rep.Examples)
	}
	// A watermark past the input (an aborted record's, say) is wrong.
	feed(close, "in/0 "+fmt.Sprint(t0+50_000)+" idle")
	rep = Report{}
	w.checkClocks(tr, &rep)
	if rep.WindowClockMismatches != 1 {
		t.Errorf("clock mismatches = %d, want 1: %v", rep.WindowClockMismatches, rep.Examples)
	}
}

// TestPipelineWindows: both window steps read through a repartition topic
// (they group by something other than the key), with the window, grace and
// emit modes the checker assumes, and write the sinks it reads.
func TestPipelineWindows(t *testing.T) {
	for _, mode := range allModes {
		topo, err := topology.Parse("chaos.yaml", []byte(pipelineYAML(mode)))
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if topo.DeadLetterTopic != dlqTopic || topo.OnError != topology.OnErrorStop {
			t.Errorf("%s: dead letters to %q, on_error %s; want %s and stop", mode, topo.DeadLetterTopic, topo.OnError, dlqTopic)
		}
		emits := map[string]topology.Emit{winCloseStep: topology.EmitOnClose, winCommitStep: topology.EmitOnCommit}
		for _, n := range topo.Steps {
			want, ok := emits[n.Name]
			if !ok {
				continue
			}
			delete(emits, n.Name)
			a := n.Aggregate
			if a == nil || a.Window == nil {
				t.Errorf("%s: step %s is not a windowed aggregate", mode, n.Name)
				continue
			}
			w := a.Window
			if a.GroupByKey || a.Emit != want || w.Kind != topology.Tumbling || w.Size != windowSize || w.Grace != windowGrace ||
				w.Time != nil || w.Late != topology.LateDeadLetter || w.IdleTimeout != 0 {
				t.Errorf("%s: step %s: group by key %v, emit %s, window %+v; want a repartition, %s, tumbling %s, grace %s, record timestamp, late records dead-lettered, no idle timeout",
					mode, n.Name, a.GroupByKey, a.Emit, *w, want, windowSize, windowGrace)
			}
		}
		if len(emits) > 0 {
			t.Errorf("%s: steps %v missing", mode, emits)
		}
		sinks := map[string]bool{}
		for _, s := range topo.Sinks {
			sinks[s.Topic] = true
		}
		if !sinks["out"] || !sinks[winCloseTopic] || !sinks[winCommitTopic] {
			t.Errorf("%s: sink topics %v, want out, %s and %s", mode, sinks, winCloseTopic, winCommitTopic)
		}
	}
	if got, want := repartitionTopics(), []string{topology.RepartitionTopic(pipelineName, winCloseStep), topology.RepartitionTopic(pipelineName, winCommitStep)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("repartitionTopics() = %v, want %v", got, want)
	}
}
