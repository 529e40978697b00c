package processor

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var ten = time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)

// at is 10:00 plus d.
func at(d time.Duration) time.Time { return ten.Add(d) }

// byUserYAML is windowYAML grouping by a field, so through a repartition
// topic.
func byUserYAML(window, emit string) string {
	return strings.Replace(windowYAML(window, emit), "group_by: key", "group_by: {user: value.user}", 1)
}

// Symptom 1: a session window with emit: on_commit output nothing, ever.
func TestSessionOnCommitEmits(t *testing.T) {
	d := newDriver(t, windowYAML("session: {gap: 2m}", "emit: on_commit"), 1)
	d.input("in", 0, "u7", `{"v":5}`, at(0))
	d.commit()
	got := d.table("out")
	want := []string{`{"key":"u7","window_start":"2026-04-01T10:00:00Z"}` + "\t" +
		`{"key":"u7","n":1,"sum":5,"window_end":"2026-04-01T10:00:00Z","window_start":"2026-04-01T10:00:00Z"}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("session on_commit table =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A second record extends the session: the row is replaced, once
	// per transaction.
	d.input("in", 0, "u7", `{"v":1}`, at(time.Minute))
	d.input("in", 0, "u7", `{"v":1}`, at(2*time.Minute))
	before := len(d.out["out"])
	d.commit()
	if n := len(d.out["out"]) - before; n != 1 {
		t.Errorf("second commit emitted %d rows, want 1", n)
	}
	if got := d.table("out"); len(got) != 1 || !strings.Contains(got[0], `"n":3,"sum":7`) {
		t.Errorf("table = %q, want the session with n 3, sum 7", got)
	}
}

// Symptom 2: tumbling and hopping windows with emit: on_commit lost every
// window that closed in the transaction of its last update.
func TestOnCommitKeepsWindowsClosedInTheTransaction(t *testing.T) {
	for _, tc := range []struct {
		window string
		want   int
	}{
		{"tumbling: 1m\n        grace: 0s", 2},
		{"hopping: {size: 2m, advance: 1m}\n        grace: 0s", 3},
	} {
		d := newDriver(t, windowYAML(tc.window, "emit: on_commit"), 1)
		d.input("in", 0, "k", `{"v":1}`, at(10*time.Second))
		d.input("in", 0, "k", `{"v":2}`, at(70*time.Second))
		d.commit()
		if got := d.table("out"); len(got) != tc.want {
			t.Errorf("%s: on_commit table has %d rows, want %d:\n%s", tc.window, len(got), tc.want, strings.Join(got, "\n"))
		}
	}
}

// Symptom 5: a session's final row came up to a gap late.
func TestSessionClosesAtGapPlusGrace(t *testing.T) {
	d := newDriver(t, windowYAML("session: {gap: 2m}\n        grace: 0s", "emit: on_close"), 1)
	d.input("in", 0, "u7", `{"v":1}`, at(0))
	d.input("in", 0, "u8", `{"v":1}`, at(150*time.Second))
	d.commit()
	got := d.table("out")
	if len(got) != 1 || !strings.Contains(got[0], `"key":"u7"`) {
		t.Errorf("table = %q, want the final row of u7's session (closed at 10:02:00, stream time 10:02:30)", got)
	}
}

// Symptom 6: records exactly one gap apart share a session (as in Kafka
// Streams and Flink), and a session is not closed by a record that
// would still join it.
func TestSessionGapBoundary(t *testing.T) {
	d := newDriver(t, windowYAML("session: {gap: 2m}\n        grace: 0s", "emit: on_close"), 1)
	d.input("in", 0, "u", `{"v":1}`, at(0))
	d.input("in", 0, "u", `{"v":2}`, at(2*time.Minute)) // exactly the gap
	d.input("in", 0, "u", `{"v":4}`, at(4*time.Minute)) // exactly the gap again
	d.input("in", 0, "x", `{"v":0}`, at(6*time.Minute+time.Millisecond))
	d.commit()
	got := d.table("out")
	if len(got) != 1 || !strings.Contains(got[0], `"n":3,"sum":7,"window_end":"2026-04-01T10:04:00Z","window_start":"2026-04-01T10:00:00Z"`) {
		t.Errorf("table =\n%s\nwant one session 10:00-10:04 with n 3, sum 7", strings.Join(got, "\n"))
	}
}

// seedEvents reads the seed's events (testdata/aggregate) as producer
// records: the partition is the key's murmur2 over parts partitions.
func seedEvents(t *testing.T, parts int, files ...string) []*kgo.Record {
	t.Helper()
	tp := kgo.StickyKeyPartitioner(nil).ForTopic("events")
	var rs []*kgo.Record
	for _, f := range files {
		fh, err := os.Open("../testdata/aggregate/" + f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var line struct {
				Key   string          `json:"key"`
				Value json.RawMessage `json:"value"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatal(err)
			}
			r := &kgo.Record{Topic: "events", Key: []byte(line.Key), Value: line.Value, Timestamp: ten}
			r.Partition = int32(tp.Partition(r, parts))
			rs = append(rs, r)
		}
		fh.Close()
	}
	return rs
}

// Symptom 3: the seed's window example, both files loaded in one go over
// 3 partitions, gives the seed's table however the partitions are
// consumed: upstream partitions one after the other (each order), and the
// repartition topic's partitions read in a skewed order.
func TestSeedWindowInOneGoAnyOrder(t *testing.T) {
	yaml := readFile(t, "../testdata/window/tumbling.yaml")
	want := readFile(t, "../testdata/window/tumbling.golden")
	rs := seedEvents(t, 3, "events.jsonl", "events-later.jsonl")
	for _, order := range [][]int32{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}} {
		d := newDriver(t, yaml, 3)
		for _, p := range order {
			// One upstream partition's whole backlog, in its own
			// transaction, and its repartitioned records read at
			// once, before the other partitions start.
			for _, r := range rs {
				if r.Partition == p {
					d.input(r.Topic, r.Partition, string(r.Key), string(r.Value), r.Timestamp)
				}
			}
			d.commit()
			for q := range int32(3) {
				d.deliver("per-minute-per-type-repartition", (q+p)%3, -1)
			}
			d.commit()
		}
		d.settle()
		got := strings.Join(d.table("per-minute"), "\n") + "\n"
		if got != want {
			t.Errorf("partitions in order %v: table =\n%swant\n%s", order, got, want)
		}
	}
}

// Symptom 4: a late record dead-lettered after a repartition is the
// source record (topic, coordinates, key, value, headers), and is counted
// in exactly_dead_lettered_total.
func TestLateAfterRepartitionDeadLettersTheSource(t *testing.T) {
	d := newDriver(t, byUserYAML("tumbling: 1m\n        late: dead_letter", "emit: on_update"), 1)
	d.input("in", 0, "key-a", `{"user":"u","v":1}`, at(5*time.Minute))
	d.commit()
	d.deliverAll()
	d.advance(time.Hour) // the upstream goes idle: its watermark 10:05 passes
	d.commit()
	d.deliverAll()
	late := &kgo.Record{Topic: "in", Partition: 0, Offset: 1, Key: []byte("key-b"), Value: []byte(`{"user":"u", "v":2}`), Timestamp: at(0),
		Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t1")}}}
	if err := d.g.run(late, d.emit); err != nil {
		t.Fatal(err)
	}
	d.commit()
	d.deliverAll()
	dl := d.out["w-dlq"]
	if len(dl) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(dl))
	}
	h := headers(dl[0])
	if h[HeaderTopic] != "in" || h[HeaderPartition] != "0" || h[HeaderOffset] != "1" || h[HeaderPhase] != "late" || h["trace"] != "t1" {
		t.Errorf("dead letter headers = %v, want the source's coordinates in/0@1, phase late and its own header", h)
	}
	if _, ok := h[headerOrigin]; ok {
		t.Errorf("dead letter carries the internal %s header", headerOrigin)
	}
	if string(dl[0].Key) != "key-b" || string(dl[0].Value) != `{"user":"u", "v":2}` {
		t.Errorf("dead letter = %s %s, want the source's key and value byte for byte", dl[0].Key, dl[0].Value)
	}
	if n := counterValue(t, d.g.m.DeadLettered.WithLabelValues("agg", "late")); n != 1 {
		t.Errorf("exactly_dead_lettered_total{phase=late} = %v, want 1", n)
	}
}

// An upstream partition not heard from holds the downstream clock back
// until it goes idle; then the windows it held close.
func TestSilentUpstreamHoldsBackUntilIdle(t *testing.T) {
	d := newDriver(t, byUserYAML("tumbling: 1m\n        upstream_idle: 5s", "emit: on_close"), 2)
	d.input("in", 0, "a", `{"user":"u","v":1}`, at(0))
	d.input("in", 0, "a", `{"user":"u","v":1}`, at(3*time.Minute))
	d.commit()
	d.deliverAll()
	if got := d.table("out"); len(got) != 0 {
		t.Fatalf("windows closed while partition 1 was silent and not idle: %q", got)
	}
	d.advance(4 * time.Second)
	d.commit()
	d.deliverAll()
	if got := d.table("out"); len(got) != 0 {
		t.Fatalf("windows closed before upstream_idle passed: %q", got)
	}
	d.advance(2 * time.Second)
	d.commit()
	d.deliverAll()
	if got := d.table("out"); len(got) != 1 || !strings.Contains(got[0], `"window_start":"2026-04-01T10:00:00Z"`) {
		t.Errorf("after partition 1 went idle, table = %q, want the 10:00 window closed", got)
	}
}

// An upstream whose reader stalls while its partition has a backlog (a
// long restore, a paused zombie) is quiet but not idle: skipping it would
// let the others' time run ahead and drop its records as late once it
// reads them (found by the chaos harness on Apache Kafka, where a restore
// held the run loop longer than upstream_idle).
func TestStalledUpstreamWithBacklogIsNotIdle(t *testing.T) {
	d := newDriver(t, byUserYAML("tumbling: 1m\n        grace: 0s\n        upstream_idle: 5s", "emit: on_close"), 2)
	d.input("in", 0, "a", `{"user":"u","v":1}`, at(0))
	d.input("in", 1, "b", `{"user":"u","v":2}`, at(0))
	d.commit()
	d.deliverAll()
	d.backlog("in", 1, 2)
	d.input("in", 0, "a", `{"user":"u","v":4}`, at(3*time.Minute))
	d.advance(20 * time.Second)
	d.commit()
	d.deliverAll()
	if got := d.table("out"); len(got) != 0 {
		t.Fatalf("windows closed while partition 1 had records to read: %q", got)
	}
	// The reader gets to its backlog.
	d.input("in", 1, "b", `{"user":"u","v":8}`, at(30*time.Second))
	d.input("in", 1, "b", `{"user":"u","v":16}`, at(90*time.Second))
	d.commit()
	d.deliverAll()
	if n := counterValue(t, d.g.m.LateRecords.WithLabelValues("agg")); n != 0 {
		t.Errorf("%v records of the stalled partition judged late, want 0", n)
	}
	d.settle()
	got := strings.Join(d.table("out"), "\n")
	for _, want := range []string{`"n":3,"sum":11`, `"n":1,"sum":16`} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %s:\n%s", want, got)
		}
	}
}

// An upstream whose records never reach the window (a filter drops them
// all) is quiet while its reader keeps up with a partition written to all
// the time: it goes idle once the reader has read what the previous check
// found, so it does not hold the windows back for ever.
func TestQuietUpstreamThatKeepsUpGoesIdle(t *testing.T) {
	d := newDriver(t, byUserYAML("tumbling: 1m\n        grace: 0s\n        upstream_idle: 5s", "emit: on_close"), 2)
	d.input("in", 0, "a", `{"user":"u","v":1}`, at(0))
	d.input("in", 1, "b", `{"user":"u","v":2}`, at(0))
	d.input("in", 0, "a", `{"user":"u","v":4}`, at(3*time.Minute))
	d.commit()
	d.deliverAll()
	// Each round: records arrive, time passes (a check), the reader
	// reads some. Behind what the previous check found: not idle.
	for _, read := range []int64{0, 5} {
		d.backlog("in", 1, 10)
		d.advance(5 * time.Second)
		d.commit()
		d.deliverAll()
		if got := d.table("out"); len(got) != 0 {
			t.Fatalf("windows closed while partition 1's reader was behind: %q", got)
		}
		d.skim("in", 1, read)
	}
	d.skim("in", 1, 15) // all that the last check found
	d.backlog("in", 1, 10)
	d.advance(5 * time.Second)
	d.commit()
	d.deliverAll()
	if got := d.table("out"); len(got) != 1 || !strings.Contains(got[0], `"n":2,"sum":3`) {
		t.Errorf("table = %q, want the 10:00 window closed once partition 1 kept up", got)
	}
}

// dedupe: time: dedupes by event time (the TTL runs on it), and keep:
// last passes newer versions of an id and drops stale copies.
func TestDedupeEventTimeAndKeep(t *testing.T) {
	yaml := func(keep string) string {
		return `name: d
sources:
  - {name: in, topic: in}
steps:
  - name: once
    dedupe: {id: value.id, ttl: 1h, time: value.ts, keep: ` + keep + `}
sinks:
  - {name: out, topic: out}
`
	}
	in := []struct {
		id, ts string
	}{
		{"a", "2026-04-01T10:00:00Z"},
		{"a", "2026-04-01T10:30:00Z"}, // within the TTL of the first, in event time
		{"a", "2026-04-01T10:10:00Z"}, // an older version, out of order
		{"b", "2026-04-01T10:00:00Z"},
		{"b", "2026-04-01T10:00:00Z"}, // the same version again
		{"a", "2026-04-01T11:31:00Z"}, // past the TTL of both
	}
	for keep, want := range map[string][]string{
		"first": {"a 10:00:00", "b 10:00:00", "a 11:31:00"},
		"last":  {"a 10:00:00", "a 10:30:00", "b 10:00:00", "a 11:31:00"},
	} {
		d := newDriver(t, yaml(keep), 1)
		for _, e := range in {
			// Record timestamps all equal: only event time can tell
			// the TTL apart.
			d.input("in", 0, e.id, `{"id":"`+e.id+`","ts":"`+e.ts+`"}`, ten)
		}
		d.commit()
		var got []string
		for _, r := range d.out["out"] {
			var v struct{ ID, TS string }
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatal(err)
			}
			got = append(got, v.ID+" "+v.TS[11:19])
		}
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("keep: %s passed %q, want %q", keep, got, want)
		}
	}
}

// The downstream clock and the upstream watermarks it came from live in
// the task's store, so a crash restores them from the changelog: after
// the restart a record of a window the watermarks closed is still late,
// and no final row comes twice.
func TestWatermarksSurviveACrash(t *testing.T) {
	d := newDriver(t, byUserYAML("tumbling: 1m", "emit: on_close"), 2)
	d.input("in", 0, "a", `{"user":"u","v":1}`, at(30*time.Second))
	d.input("in", 0, "a", `{"user":"u","v":1}`, at(5*time.Minute))
	d.input("in", 1, "b", `{"user":"u","v":1}`, at(2*time.Minute))
	d.commit()
	d.deliverAll()
	// Stream time min(10:05, 10:02): the 10:00 window closed.
	if rows := d.table("out"); len(rows) != 1 {
		t.Fatalf("before the crash: %d final rows, want 1 (10:00):\n%s", len(rows), strings.Join(rows, "\n"))
	}
	// The open transaction's work is lost with the crash; the consumer
	// reads its input again after the restart.
	d.input("in", 1, "b", `{"user":"u","v":1}`, at(4*time.Minute))
	d.crash()
	d.input("in", 1, "b", `{"user":"u","v":1}`, at(4*time.Minute))
	d.input("in", 1, "b", `{"user":"u","v":100}`, at(90*time.Second)) // window 10:01, closed at 10:02
	d.commit()
	d.deliverAll()
	if n := counterValue(t, d.g.m.LateRecords.WithLabelValues("agg")); n != 1 {
		t.Errorf("after the crash, %v late records, want 1: the restored clock must still be 10:02", n)
	}
	d.settle() // every upstream idle: stream time 10:05
	seen := map[string]int{}
	for _, r := range d.out["out"] {
		seen[string(r.Key)]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("final row %s emitted %d times", k, n)
		}
	}
	got := strings.Join(d.table("out"), "\n")
	if len(seen) != 3 || strings.Contains(got, `"sum":101`) || !strings.Contains(got, `"n":1,"sum":1,"user":"u","window_end":"2026-04-01T10:05:00Z"`) {
		t.Errorf("table after settling =\n%s\nwant 3 final rows (10:00, 10:02, 10:04), each n 1", got)
	}
}

// late: {to: SINK} sends late records, as they reached the aggregate, to
// a sink of the pipeline; the sink gets nothing else.
func TestLateToSink(t *testing.T) {
	yaml := `name: w
sources:
  - {name: in, topic: in}
steps:
  - name: agg
    aggregate:
      group_by: {user: value.user}
      window:
        tumbling: 1m
        late: {to: late}
      columns:
        n: {fn: count}
sinks:
  - {name: out, topic: out, from: agg}
  - {name: late, topic: late-events}
`
	d := newDriver(t, yaml, 1)
	d.input("in", 0, "a", `{"user":"u","v":1}`, at(5*time.Minute))
	d.commit()
	d.deliverAll()
	d.input("in", 0, "b", `{"user":"u","v":2}`, at(0)) // window 10:00 closed at 10:01
	d.commit()
	d.deliverAll()
	late := d.out["late-events"]
	if len(late) != 1 || string(late[0].Value) != `{"user":"u","v":2}` {
		t.Fatalf("late sink got %d records (%v), want the one late record", len(late), late)
	}
	if n := len(d.out["out"]); n != 1 {
		t.Errorf("out got %d rows, want 1 (the late record counted nowhere)", n)
	}
	if n := counterValue(t, d.g.m.LateRecords.WithLabelValues("agg")); n != 1 {
		t.Errorf("late records = %v, want 1", n)
	}
}

// A repartition record carries its source record for dead letters, but
// not a large one's key and value (the repartition record must still fit
// its topic): coordinates only, with exactly.omitted saying where it is.
func TestOriginOfLargeRecord(t *testing.T) {
	src := &kgo.Record{Topic: "in", Partition: 2, Offset: 7, Key: []byte("k"), Value: []byte(`{"v":1}`), Timestamp: ten,
		Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("1")}}}
	rep := &kgo.Record{Topic: "w-agg-repartition", Key: []byte(`"u"`), Headers: []kgo.RecordHeader{originHeader(src)}}
	o := original(rep)
	if o.Topic != "in" || o.Partition != 2 || o.Offset != 7 || string(o.Key) != "k" || string(o.Value) != `{"v":1}` || len(o.Headers) != 1 || !o.Timestamp.Equal(ten) {
		t.Errorf("original = %+v, want the source record", o)
	}
	src.Value = []byte(strings.Repeat("x", maxOriginBytes))
	h := originHeader(src)
	if len(h.Value) > 1024 {
		t.Errorf("origin of a large record is %d bytes, want its coordinates only", len(h.Value))
	}
	o = original(&kgo.Record{Headers: []kgo.RecordHeader{h}})
	if o.Value != nil || headers(o)[HeaderOmitted] == "" || !strings.Contains(headers(o)[HeaderOmitted], "in/2@7") {
		t.Errorf("original of a large record = %+v, want no value and %s naming in/2@7", o, HeaderOmitted)
	}
}

// An aborted transaction's records are read again, so the upstream's
// watermark goes back with them: a transaction committed before they are
// processed again (a tick's, with nothing else in it) must not carry
// their time, or the downstream would judge them late when they come
// (found by the chaos harness).
func TestAbortRewindsTheUpstreamWatermark(t *testing.T) {
	d := newDriver(t, byUserYAML("tumbling: 1m\n        upstream_idle: 5s", "emit: on_close"), 1)
	d.input("in", 0, "a", `{"user":"u","v":1}`, at(0))
	d.commit()
	d.deliverAll()
	d.input("in", 0, "a", `{"user":"u","v":2}`, at(30*time.Second))
	d.input("in", 0, "a", `{"user":"u","v":4}`, at(10*time.Minute))
	d.abort()
	d.advance(10 * time.Second) // idle: its watermark goes out
	d.commit()
	d.deliverAll()
	// Read again after the abort.
	d.input("in", 0, "a", `{"user":"u","v":2}`, at(30*time.Second))
	d.input("in", 0, "a", `{"user":"u","v":4}`, at(10*time.Minute))
	d.commit()
	d.deliverAll()
	if n := counterValue(t, d.g.m.LateRecords.WithLabelValues("agg")); n != 0 {
		t.Errorf("%v records judged late after an abort, want 0", n)
	}
	d.settle()
	if got := d.table("out"); len(got) != 1 || !strings.Contains(got[0], `"n":2,"sum":3`) {
		t.Errorf("table = %q, want the 10:00 window with n 2, sum 3", got)
	}
}

// A sum without scale keeps the input's decimal places, as SQL's NUMERIC
// does: 100.00 + 20.00 prints 120.00 (the decoder alone makes 100 and 20
// of them). Through a repartition too; a value a map rebuilt keeps what
// the map's numbers say.
func TestSumKeepsInputScale(t *testing.T) {
	for _, tc := range []struct{ groupBy, want string }{
		{"key", `"sum":120.00`},
		{"{user: value.user}", `"sum":120.00`},
	} {
		yaml := strings.Replace(windowYAML("tumbling: 1h", "emit: on_update"), "group_by: key", "group_by: "+tc.groupBy, 1)
		d := newDriver(t, yaml, 1)
		d.input("in", 0, "k", `{"user":"u","v":100.00}`, at(0))
		d.input("in", 0, "k", `{"user":"u","v":20.00}`, at(time.Second))
		d.commit()
		d.deliverAll()
		if got := strings.Join(d.table("out"), "\n"); !strings.Contains(got, tc.want) {
			t.Errorf("group_by %s: table =\n%s\nwant %s", tc.groupBy, got, tc.want)
		}
	}
	d := newDriver(t, strings.Replace(windowYAML("tumbling: 1h", "emit: on_update"), "sum: {fn: sum, of: value.v}", "sum: {fn: sum, of: value.v}\n        avg: {fn: avg, of: value.v}", 1), 1)
	d.input("in", 0, "k", `{"v":1.50}`, at(0))
	d.input("in", 0, "k", `{"v":2.5}`, at(time.Second))
	d.commit()
	if got := strings.Join(d.table("out"), "\n"); !strings.Contains(got, `"sum":4.00`) || !strings.Contains(got, `"avg":2`) {
		t.Errorf("table =\n%s\nwant sum 4.00 (the largest scale of its inputs) and avg 2", got)
	}
}

// A partition whose reader cannot be confirmed at its end (here: a
// backlog never read) still counts as idle after staleQuiet
// upstream_idles of quiet, so the windows do not wait for ever.
func TestLongQuietUpstreamGoesIdle(t *testing.T) {
	d := newDriver(t, byUserYAML("tumbling: 1m\n        grace: 0s\n        upstream_idle: 1s", "emit: on_close"), 2)
	d.input("in", 0, "a", `{"user":"u","v":1}`, at(0))
	d.input("in", 1, "b", `{"user":"u","v":2}`, at(0))
	d.input("in", 0, "a", `{"user":"u","v":4}`, at(3*time.Minute))
	d.commit()
	d.deliverAll()
	d.backlog("in", 1, 5)
	d.advance(30 * time.Second)
	d.commit()
	d.deliverAll()
	if got := d.table("out"); len(got) != 0 {
		t.Fatalf("windows closed after 30s while partition 1 had a backlog: %q", got)
	}
	d.advance(31 * time.Second)
	d.commit()
	d.deliverAll()
	if got := d.table("out"); len(got) != 1 {
		t.Errorf("table = %q after a minute of quiet, want the 10:00 window closed", got)
	}
}

// The run loop may be busy (a restore, a long commit) through several
// rebalances: the assignments it applies afterwards must end as the last
// one left them. A partition revoked, given back and then lost is this
// member's upstream no more: kept, it would speak for a partition another
// member owns, never caught up from here, and hold the windows back.
func TestUpstreamsFollowRebalancesInOrder(t *testing.T) {
	d := newDriver(t, byUserYAML("tumbling: 1m\n        upstream_idle: 5s", "emit: on_close"), 2)
	g := d.g
	a := g.aggs[0]
	in0 := writer{"in", 0}
	if _, ok := a.ups[in0]; !ok {
		t.Fatal("in/0 is not an upstream of the driver's member to begin with")
	}
	m := map[string][]int32{"in": {0}}
	g.asg.add(m, true)  // revoked by a rebalance
	g.asg.add(m, false) // given back
	g.asg.add(m, true)  // lost
	g.syncUpstreams(ten)
	if _, ok := a.ups[in0]; ok {
		t.Error("in/0, lost after it was given back, is still this member's upstream")
	}
	g.asg.add(m, false) // assigned again
	g.syncUpstreams(ten)
	if _, ok := a.ups[in0]; !ok {
		t.Error("in/0, assigned again, is not this member's upstream")
	}
}
