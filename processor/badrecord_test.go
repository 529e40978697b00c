package processor

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/kafkatest"
)

const poisonPipeline = `name: poison
dead_letter_topic: poison-dlq
limits: {max_input_bytes: 4096, max_output_bytes: 3000}
sources:
  - {name: in, topic: in}
steps:
  - name: positive
    filter: value.amount > 0
  - name: shape
    map: '{"id": value.id, "key": string(key), "pad": value.pad + value.pad}'
sinks:
  - {name: out, topic: out}
`

type poison struct {
	name         string
	rec          *kgo.Record
	node, phase  string
	class        string
	messageMatch string
}

// producePoisons writes good records (ids from 100) with each poison's
// record between two of them, all to partition 0 of topic in, so that
// the offset of poison i is 2i+1.
func producePoisons(t *testing.T, ctx context.Context, c *cluster, good func(id int) *kgo.Record, poisons []poison) {
	t.Helper()
	var rs []*kgo.Record
	id := 100
	for _, p := range poisons {
		rs = append(rs, good(id), p.rec)
		id++
	}
	rs = append(rs, good(id))
	for _, r := range rs {
		r.Topic, r.Partition = "in", 0
	}
	mc := newTestClientOpts(t, c.addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := mc.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestBadRecordsGoToDeadLetter writes every kind of bad record between
// good ones. Each bad one must land in the dead-letter topic exactly once,
// unchanged, with headers naming its origin, node, phase and error; every
// good one must reach the output; the pipeline must keep running.
func TestBadRecordsGoToDeadLetter(t *testing.T) {
	c := newCluster(t, "in", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := mustParse(t, poisonPipeline)

	good := func(id int) *kgo.Record {
		return &kgo.Record{Key: []byte("k" + strconv.Itoa(id)), Value: []byte(`{"id":` + strconv.Itoa(id) + `,"amount":5,"pad":"x"}`)}
	}
	poisons := []poison{
		{"invalid JSON", &kgo.Record{Key: []byte("p1"), Value: []byte(`{"id":`)}, "in", "decode", "invalid_json", "invalid JSON"},
		{"invalid UTF-8", &kgo.Record{Key: []byte("p2"), Value: []byte("{\"id\":2,\"pad\":\"\xff\"}")}, "in", "decode", "invalid_utf8", "UTF-8"},
		{"missing field", &kgo.Record{Key: []byte("p3"), Value: []byte(`{"id":3}`)}, "positive", "eval", "missing_field", "amount"},
		{"type error", &kgo.Record{Key: []byte("p4"), Value: []byte(`{"id":4,"amount":"lots"}`)}, "positive", "eval", "type_error", "overload"},
		{"oversize input", &kgo.Record{Key: []byte("p5"), Value: []byte(`{"id":5,"amount":5,"pad":"` + strings.Repeat("a", 5000) + `"}`)}, "in", "decode", "too_large", "max_input_bytes"},
		{"output too large", &kgo.Record{Key: []byte("p6"), Value: []byte(`{"id":6,"amount":5,"pad":"` + strings.Repeat("b", 1600) + `"}`)}, "out", "produce", "too_large", "more than topic out accepts"},
		{"null key", &kgo.Record{Value: []byte(`{"id":7,"amount":5,"pad":"x"}`)}, "shape", "eval", "type_error", "string"},
		{"null value", &kgo.Record{Key: []byte("p8")}, "positive", "eval", "missing_field", "no such key"},
		{"huge headers", &kgo.Record{Key: []byte("p9"), Value: []byte(`{"id":9,"amount":5,"pad":"x"}`), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(strings.Repeat("h", 4000))}}}, "out", "produce", "too_large", "accepts"},
	}
	producePoisons(t, ctx, c, good, poisons)

	p := runUntilCaughtUp(t, ctx, c, topo, "a")
	dlq, err := broker.ReadCommitted(ctx, c.addrs, []string{"poison-dlq"})
	if err != nil {
		t.Fatal(err)
	}
	if len(dlq) != len(poisons) {
		t.Errorf("the dead-letter topic holds %d records, want %d (one per bad record)", len(dlq), len(poisons))
	}
	byOffset := map[string]*kgo.Record{}
	for _, r := range dlq {
		h := headers(r)
		if _, dup := byOffset[h[HeaderOffset]]; dup {
			t.Errorf("offset %s dead-lettered twice", h[HeaderOffset])
		}
		byOffset[h[HeaderOffset]] = r
	}
	for i, ps := range poisons {
		off := strconv.Itoa(2*i + 1)
		r := byOffset[off]
		if r == nil {
			t.Errorf("%s (offset %s) is not in the dead-letter topic", ps.name, off)
			continue
		}
		h := headers(r)
		if string(r.Value) != string(ps.rec.Value) || string(r.Key) != string(ps.rec.Key) {
			t.Errorf("%s: dead-letter record %q=%q, want the original %q=%q unchanged", ps.name, r.Key, r.Value, ps.rec.Key, ps.rec.Value)
		}
		want := map[string]string{HeaderTopic: "in", HeaderPartition: "0", HeaderPipeline: "poison", HeaderNode: ps.node, HeaderPhase: ps.phase, HeaderClass: ps.class}
		for k, v := range want {
			if h[k] != v {
				t.Errorf("%s: header %s = %q, want %q (message %q)", ps.name, k, h[k], v, h[HeaderMessage])
			}
		}
		if !strings.Contains(h[HeaderMessage], ps.messageMatch) || len(h[HeaderMessage]) > maxErrorMessage {
			t.Errorf("%s: message %q, want one containing %q, at most %d bytes", ps.name, h[HeaderMessage], ps.messageMatch, maxErrorMessage)
		}
		for _, oh := range ps.rec.Headers {
			if h[oh.Key] != string(oh.Value) {
				t.Errorf("%s: original header %s lost", ps.name, oh.Key)
			}
		}
	}
	out, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(poisons)+1 {
		t.Errorf("output holds %d records, want the %d good ones", len(out), len(poisons)+1)
	}
	if n := p.Stats().DeadLettered.Load(); n < int64(len(poisons)) {
		t.Errorf("Stats().DeadLettered = %d, want at least %d", n, len(poisons))
	}
}

// TestBadRecordsSkipped checks on_error: skip: bad records are dropped and
// counted, good ones pass, nothing is dead-lettered.
func TestBadRecordsSkipped(t *testing.T) {
	c := newCluster(t, "in", "out")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topo := mustParse(t, strings.Replace(poisonPipeline, "dead_letter_topic: poison-dlq", "on_error: skip", 1))
	c.produce(t, "in", `{"id":1,"amount":5,"pad":"x"}`, `{bad`, `{"id":3}`, `{"id":4,"amount":5,"pad":"x"}`)
	p := runUntilCaughtUp(t, ctx, c, topo, "a")
	out, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 {
		t.Errorf("output holds %d records, want the 2 good ones", len(out))
	}
	if n := p.Stats().Skipped.Load(); n < 2 {
		t.Errorf("Stats().Skipped = %d, want at least 2", n)
	}
}

// TestFailedRecordLeavesNoTrace sends a record through a fan-out where one
// branch succeeds and the other fails: the successful branch's output and
// the aggregate's update must not survive, only the dead-letter record.
func TestFailedRecordLeavesNoTrace(t *testing.T) {
	c := newCluster(t, "in", "ok", "counts")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topo := mustParse(t, `name: trace
dead_letter_topic: trace-dlq
sources:
  - {name: in, topic: in}
steps:
  - name: count
    from: in
    aggregate:
      group_by: key
      columns:
        n: {fn: count}
  - name: strict
    from: in
    map: '{"x": 10 / value.d}'
sinks:
  - {name: counts, topic: counts, from: count}
  - {name: ok, topic: ok, from: strict}
`)
	c.produce(t, "in", `{"d":2}`)
	runUntilCaughtUp(t, ctx, c, topo, "a")
	// The same key (the produce helper keys by position: "0"), a value
	// that fails in strict after count has counted it.
	if err := c.cl.ProduceSync(ctx, &kgo.Record{Topic: "in", Key: []byte("0"), Value: []byte(`{"d":0}`)}, &kgo.Record{Topic: "in", Key: []byte("0"), Value: []byte(`{"d":5}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	runUntilCaughtUp(t, ctx, c, topo, "a")
	got, _ := table(t, ctx, c.addrs, "counts")
	if len(got) != 1 || !strings.Contains(got[0], `"n":2`) {
		t.Errorf("counts = %q, want key 0 counted twice (the failed record undone)", got)
	}
	counts, _ := broker.ReadCommitted(ctx, c.addrs, []string{"counts"})
	if len(counts) != 2 {
		t.Errorf("counts topic holds %d updates, want 2: the failed record's update must not be produced", len(counts))
	}
	dlq, _ := broker.ReadCommitted(ctx, c.addrs, []string{"trace-dlq"})
	if len(dlq) != 1 {
		t.Errorf("dead-letter topic holds %d records, want 1", len(dlq))
	}
}

func headers(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

// TestFailedDeadLetterWriteFails makes the broker refuse every write to
// the dead-letter topic: the transaction holding the bad record must not
// commit (nothing of it is visible, its offsets do not move) and the
// processor stops, instead of losing the record.
func TestFailedDeadLetterWriteFails(t *testing.T) {
	kafkatest.SkipUnlessEmbedded(t, "it refuses produce requests through kfake ControlKey")
	b, err := broker.Start(broker.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := broker.CreateTopics(ctx, b.Addrs(), 1, "in", "out", "poison-dlq"); err != nil {
		t.Fatal(err)
	}
	// Produce v13 names topics by id.
	adm := newAdm(newTestClient(t, b.Addrs()))
	details, err := adm.ListTopics(ctx, "poison-dlq")
	if err != nil {
		t.Fatal(err)
	}
	dlqID := details["poison-dlq"].ID
	b.Cluster().ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		r := req.(*kmsg.ProduceRequest)
		refuse := false
		for _, rt := range r.Topics {
			refuse = refuse || rt.Topic == "poison-dlq" || rt.TopicID == dlqID
		}
		if !refuse {
			return nil, nil, false
		}
		return kafkatest.RefusedProduce(r, kerr.TopicAuthorizationFailed.Code), nil, true
	})
	c := &cluster{addrs: b.Addrs()}
	c.cl = newTestClient(t, b.Addrs())
	c.adm = newAdm(c.cl)
	c.produce(t, "in", `{"id":1,"amount":5,"pad":"x"}`, `{bad`)
	p, err := New(mustParse(t, poisonPipeline), c.config("a"))
	if err != nil {
		t.Fatal(err)
	}
	// The refused request carries the output too, so the error may name
	// either topic; what matters is that the run stops.
	err = p.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "TOPIC_AUTHORIZATION_FAILED") {
		t.Fatalf("Run() = %v, want the refused write to stop the processor", err)
	}
	if out, _ := broker.ReadCommitted(ctx, c.addrs, []string{"out"}); len(out) != 0 {
		t.Errorf("output holds %d records: the transaction with the failed dead-letter write committed", len(out))
	}
	off, err := c.adm.FetchOffsets(ctx, "poison")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := off.Lookup("in", 0); ok && o.At > 1 {
		t.Errorf("committed offset %d: the bad record's offset moved past it without a dead letter", o.At)
	}
}

// TestDeadLetterTooLargeForItsTopic sends a bad record larger than the
// dead-letter topic accepts. Writing it as it came would fail every
// transaction holding it and stall the pipeline; instead its key and value
// are left out, a header says so and where the original is, and the
// pipeline goes on.
func TestDeadLetterTooLargeForItsTopic(t *testing.T) {
	c := newCluster(t, "in", "out")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	limit := "2048"
	if _, err := c.adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": &limit}, "small-dlq"); err != nil {
		t.Fatal(err)
	}
	topo := mustParse(t, `name: bigpoison
dead_letter_topic: small-dlq
limits: {max_input_bytes: 100000}
sources:
  - {name: in, topic: in}
steps:
  - {name: positive, filter: value.amount > 0}
sinks:
  - {name: out, topic: out}
`)
	big := `{"amount":` + strings.Repeat("9", 5000) // invalid JSON, 5 kB
	rs := []*kgo.Record{
		{Topic: "in", Key: []byte("a"), Value: []byte(`{"amount":1}`)},
		{Topic: "in", Key: []byte("big"), Value: []byte(big)},
		{Topic: "in", Key: []byte("small"), Value: []byte(`{"amount":`)},
		{Topic: "in", Key: []byte("b"), Value: []byte(`{"amount":2}`)},
	}
	mc := newTestClientOpts(t, c.addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := mc.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	runUntilCaughtUp(t, ctx, c, topo, "a")

	if got := values(t, ctx, c.addrs, "out"); len(got) != 2 {
		t.Errorf("outputs = %q, want the 2 good records", got)
	}
	dlq, err := broker.ReadCommitted(ctx, c.addrs, []string{"small-dlq"})
	if err != nil {
		t.Fatal(err)
	}
	if len(dlq) != 2 {
		t.Fatalf("dead-letter topic holds %d records, want 2", len(dlq))
	}
	header := func(r *kgo.Record, k string) (string, bool) {
		for _, h := range r.Headers {
			if h.Key == k {
				return string(h.Value), true
			}
		}
		return "", false
	}
	byOffset := map[string]*kgo.Record{}
	for _, r := range dlq {
		off, _ := header(r, HeaderOffset)
		byOffset[off] = r
	}
	omitted := byOffset["1"]
	if omitted == nil || omitted.Key != nil || omitted.Value != nil {
		t.Fatalf("dead-letter record of the 5 kB record = %+v, want one with no key and value", omitted)
	}
	note, ok := header(omitted, HeaderOmitted)
	if !ok || !strings.Contains(note, "the original is at in/0@1") || !strings.Contains(note, "5010 bytes") {
		t.Errorf("%s = %q, want it to give the size and point at in/0@1", HeaderOmitted, note)
	}
	if class, _ := header(omitted, HeaderClass); class != "invalid_json" {
		t.Errorf("%s = %q, want invalid_json", HeaderClass, class)
	}
	kept := byOffset["2"]
	if kept == nil || string(kept.Value) != `{"amount":` {
		t.Errorf("dead-letter record of the small bad record = %+v, want it unchanged", kept)
	}
	if _, ok := header(kept, HeaderOmitted); ok {
		t.Errorf("the small bad record has %s", HeaderOmitted)
	}
}

// The stand-in for a record too large for the dead-letter topic fits in
// it, also when the original's headers are what makes it too large.
func TestDeadLetterStandInFits(t *testing.T) {
	re := &RecordError{Topic: "in", Offset: 9, Node: "n", Phase: PhaseDecode, Err: errors.New(strings.Repeat("e", 5000))}
	for _, in := range []*kgo.Record{
		{Topic: "in", Offset: 9, Key: []byte("k"), Value: make([]byte, 5000)},
		{Topic: "in", Offset: 9, Key: []byte("k"), Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: "big", Value: make([]byte, 5000)}}},
	} {
		const limit = 2000
		out := deadLetter("dlq", "p", in, re, limit)
		if size := recordSize(out); size > limit {
			t.Errorf("stand-in of a %d-byte record is %d bytes, more than the limit %d", recordSize(in), size, limit)
		}
		var note string
		for _, h := range out.Headers {
			if h.Key == "big" {
				t.Errorf("the stand-in kept the 5000-byte header")
			}
			if h.Key == HeaderOmitted {
				note = string(h.Value)
			}
		}
		if out.Value != nil || !strings.Contains(note, "in/0@9") {
			t.Errorf("stand-in value %q, %s %q; want no value and a note pointing at in/0@9", out.Value, HeaderOmitted, note)
		}
	}
}
