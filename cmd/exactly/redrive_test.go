package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/kafkatest"
	"github.com/exactly-dev/exactly/processor"
	"github.com/exactly-dev/exactly/topology"
)

const redrivePipeline = `name: redrive
dead_letter_topic: redrive-in-dlq
sources:
  - {name: in, topic: redrive-in}
steps:
  - name: positive
    filter: FILTER
sinks:
  - {name: out, topic: redrive-out}
`

// runPipeline runs yaml until its group has consumed everything.
func runPipeline(t *testing.T, ctx context.Context, addrs []string, yaml string) {
	t.Helper()
	topo, err := topology.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	runTopology(t, ctx, addrs, topo, format.Deps{})
}

// runTopology runs topo with the record formats' deps until its group has
// consumed everything and it committed.
func runTopology(t *testing.T, ctx context.Context, addrs []string, topo *topology.Topology, deps format.Deps) {
	t.Helper()
	p, err := processor.New(topo, processor.Config{Brokers: addrs, ClientID: "test", InstanceID: "a", Formats: deps,
		CommitInterval: 50 * time.Millisecond, TransactionTimeout: 5 * time.Second, SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	for !broker.CaughtUp(ctx, cl, topo.Group, p.Consumed()) || p.Stats().Commits.Load() == 0 {
		select {
		case err := <-done:
			t.Fatalf("Run() = %v", err)
		case <-ctx.Done():
			t.Fatal("timed out")
		case <-time.After(100 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
}

// TestRedrive dead-letters records a pipeline cannot handle, fixes the
// pipeline, redrives the dead letters back to their source topic and
// checks each is processed exactly once, even when redrive runs twice.
func TestRedrive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var addrs []string
	if kafkatest.Selected() {
		addrs = []string{testBroker(t, 1, "redrive-in", "redrive-out")}
	} else {
		b, err := broker.Start(broker.Options{Partitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		addrs = b.Addrs()
		if err := broker.CreateTopics(ctx, addrs, 1, "redrive-in", "redrive-out"); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for _, v := range []string{`{"id":1,"amount":5}`, `{"id":2}`, `{"id":3,"amount":1}`, `{"id":4}`} {
		rs = append(rs, &kgo.Record{Topic: "redrive-in", Value: []byte(v), Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte(v)}}})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	runPipeline(t, ctx, addrs, strings.Replace(redrivePipeline, "FILTER", "value.amount > 0", 1))
	dlq, err := broker.ReadCommitted(ctx, addrs, []string{"redrive-in-dlq"})
	if err != nil || len(dlq) != 2 {
		t.Fatalf("dead-letter topic holds %d records (%v), want 2", len(dlq), err)
	}

	for i, want := range []string{"redrove 2 records", "redrove 0 records"} {
		var stdout, stderr bytes.Buffer
		err := run(ctx, []string{"redrive", "--dlq", "redrive-in-dlq", "--brokers", strings.Join(addrs, ","), "--instance-id", "r"}, &stdout, &stderr)
		if err != nil || !strings.Contains(stdout.String(), want) {
			t.Fatalf("redrive run %d = %v, printed %q, want %q\n%s", i+1, err, stdout.String(), want, stderr.String())
		}
		// The dead-letter topic is transactional: its last offset is
		// a commit marker, which the redrive group commits past.
		if ok, why := lagZero(ctx, cl, "exactly-redrive-redrive-in-dlq"); !ok {
			t.Errorf("after redrive run %d, the redrive group's lag is not 0: %s", i+1, why)
		}
	}

	// The fixed pipeline treats a missing amount as fine.
	runPipeline(t, ctx, addrs, strings.Replace(redrivePipeline, "FILTER", "'!has(value.amount) || value.amount > 0'", 1))
	out, err := broker.ReadCommitted(ctx, addrs, []string{"redrive-out"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, r := range out {
		var v struct{ ID int }
		json.Unmarshal(r.Value, &v)
		ids = append(ids, v.ID)
		var trace struct{ ID int }
		h := headers(r)
		if json.Unmarshal([]byte(h["trace"]), &trace); trace.ID != v.ID {
			t.Errorf("output %s lost its original header (got %q)", r.Value, h["trace"])
		} else if _, ok := h[processor.HeaderPhase]; ok {
			t.Errorf("output %s still carries dead-letter headers", r.Value)
		}
	}
	sort.Ints(ids)
	if len(ids) != 4 || ids[0] != 1 || ids[1] != 2 || ids[2] != 3 || ids[3] != 4 {
		t.Errorf("output ids = %v, want 1, 2, 3, 4 once each", ids)
	}
}

func headers(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

// A dead-letter record whose key and value were left out (too large for
// the dead-letter topic) cannot be redriven: sending the empty stand-in
// would lose the record, so undeadLetter returns an *omittedError naming
// the stand-in and the original.
func TestUndeadLetterRefusesOmitted(t *testing.T) {
	r := &kgo.Record{Topic: "dlq", Partition: 0, Offset: 7, Headers: []kgo.RecordHeader{
		{Key: processor.HeaderTopic, Value: []byte("orders")},
		{Key: processor.HeaderPartition, Value: []byte("2")},
		{Key: processor.HeaderOffset, Value: []byte("41")},
		{Key: processor.HeaderOmitted, Value: []byte("key and value (3 and 5010 bytes) left out")},
	}}
	_, err := undeadLetter(r, "")
	var omitted *omittedError
	if !errors.As(err, &omitted) || !strings.Contains(err.Error(), "dlq/0@7 stands in for orders/2@41") {
		t.Fatalf("undeadLetter(omitted) error = %v, want an *omittedError naming dlq/0@7 and orders/2@41", err)
	}
	r.Headers = r.Headers[:1]
	r.Value = []byte("v")
	out, err := undeadLetter(r, "")
	if err != nil || out.Topic != "orders" || string(out.Value) != "v" || len(out.Headers) != 0 {
		t.Fatalf("undeadLetter = %+v, %v; want the record for orders without exactly headers", out, err)
	}
}

// TestRedrivePerPartition redrives a dead-letter topic of three
// partitions holding ordinary dead letters and one stand-in (a dead letter
// whose original was over the topic's size). Only the stand-in is passed
// over, and reported with the original's coordinates; offset ranges are
// per partition, and a record a range leaves out is never committed past,
// so a later run still redrives it. Every ordinary dead letter reaches the
// output exactly once. A basic-auth password for the metrics server (of
// `exactly run`, sharing the environment) does not concern redrive.
func TestRedrivePerPartition(t *testing.T) {
	t.Setenv("EXACTLY_HTTP_BASIC_AUTH_PASSWORD", "for-the-metrics-server")
	b, err := broker.Start(broker.Options{Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	addrs := b.Addrs()
	if err := broker.CreateTopics(ctx, addrs, 3, "dlq", "fixed"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Partition 0: offsets 0-4; partition 1: 0-5, the stand-in at 2;
	// partition 2: 0-3.
	counts := map[int32]int{0: 5, 1: 6, 2: 4}
	var rs []*kgo.Record
	want := map[string]bool{}
	for p := int32(0); p < 3; p++ {
		for o := 0; o < counts[p]; o++ {
			id := fmt.Sprintf("%d-%d", p, o)
			hs := []kgo.RecordHeader{
				{Key: processor.HeaderTopic, Value: []byte("orders")},
				{Key: processor.HeaderPartition, Value: []byte(strconv.Itoa(int(p)))},
				{Key: processor.HeaderOffset, Value: []byte(strconv.Itoa(100 + o))},
			}
			r := &kgo.Record{Topic: "dlq", Partition: p, Value: []byte(id), Headers: hs}
			if p == 1 && o == 2 {
				r.Value = nil
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: processor.HeaderOmitted, Value: []byte("key and value left out (key 0, value 2000000 bytes, 0 headers)")})
			} else {
				want[id] = true
			}
			rs = append(rs, r)
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	redrive := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args = append([]string{"redrive", "--dlq", "dlq", "--to", "fixed", "--brokers", strings.Join(addrs, ","), "--instance-id", "r"}, args...)
		if err := run(ctx, args, &stdout, &stderr); err != nil {
			t.Fatalf("%q = %v, printed %q\n%s", args, err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	redriven := func() []string {
		t.Helper()
		out, err := broker.ReadCommitted(ctx, addrs, []string{"fixed"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range out {
			ids = append(ids, string(r.Value))
		}
		sort.Strings(ids)
		return ids
	}
	contains := func(run, out string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("%s printed\n%s\nwant it to contain %q", run, out, w)
			}
		}
	}

	// Run 1: partition 0 only up to offset 2; the others in full, but
	// for the stand-in.
	out := redrive("--to-offset", "0=2")
	contains("run 1", out, "redrove 11 records", "partition 0: 2 redriven; stopped at offset 2: reached --to-offset 2",
		"partition 1: 5 redriven", "partition 2: 4 redriven", "not redriven: dlq/1@2 stands in for orders/1@102")
	if got := redriven(); len(got) != 11 || slices.Contains(got, "") {
		t.Fatalf("after run 1 the output holds %q, want 11 records and no stand-in", got)
	}

	// Run 2: --from-offset 4 would leave offsets 2 and 3 of partition 0
	// out: the partition stays where it is and the run says so.
	out = redrive("--from-offset", "4")
	contains("run 2", out, "redrove 0 records", "partition 0: 0 redriven; stopped at offset 2", "--from-offset 4", "--topic dlq:0")
	if got := redriven(); len(got) != 11 {
		t.Fatalf("after run 2 the output holds %d records, want still 11", len(got))
	}

	// Run 3 redrives the rest of partition 0; run 4 finds nothing.
	contains("run 3", redrive(), "redrove 3 records", "partition 0: 3 redriven")
	contains("run 4", redrive(), "redrove 0 records")
	got := redriven()
	if len(got) != len(want) {
		t.Fatalf("the output holds %q, want each of %d dead letters once", got, len(want))
	}
	for i, id := range got {
		if !want[id] || i > 0 && got[i-1] == id {
			t.Fatalf("the output holds %q, want each ordinary dead letter once", got)
		}
	}
}

func TestOffsetBounds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		p    int32
		want int64
		ok   bool
	}{
		{"5", 3, 5, true},
		{"0=5,2=7", 2, 7, true},
		{"0=5,2=7", 1, 0, false},
	} {
		var o offsetBounds
		if err := o.Set(tc.in); err != nil {
			t.Fatalf("Set(%q) = %v", tc.in, err)
		}
		if n, ok := o.of(tc.p); n != tc.want || ok != tc.ok {
			t.Errorf("Set(%q).of(%d) = %d, %v, want %d, %v", tc.in, tc.p, n, ok, tc.want, tc.ok)
		}
	}
	for _, bad := range []string{"-1", "x", "0=", "0=5,x=1", "1=-2"} {
		var o offsetBounds
		if err := o.Set(bad); err == nil {
			t.Errorf("Set(%q) = nil, want an error", bad)
		}
	}
}

// redrive --help lists the flags redrive uses, not those of `exactly run`.
func TestRedriveHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"redrive", "--help"}, &stdout, &stderr); err != nil {
		t.Fatalf("redrive --help = %v", err)
	}
	help := stdout.String() + stderr.String()
	for _, want := range []string{"--dlq", "--to-offset", "--brokers", "--kafka-tls", "--sasl-mechanism", "--instance-id", "--shutdown-timeout"} {
		if !strings.Contains(help, want) {
			t.Errorf("redrive --help lacks %s:\n%s", want, help)
		}
	}
	for _, unused := range []string{"--http-", "--state-", "--commit-interval", "--embedded", "--static-membership"} {
		if strings.Contains(help, unused) {
			t.Errorf("redrive --help offers %s, which redrive does not use:\n%s", unused, help)
		}
	}
}

// A record with nowhere to go (no source header, no --to) stops its
// partition there, in this transaction and later ones, while the other
// partitions go on; the run then fails naming it. A stop is kept only
// once its transaction commits.
func TestRedriverStopsPartition(t *testing.T) {
	rd := &redriver{dlq: "dlq", group: "exactly-redrive-dlq"}
	rd.mu.stops = map[int32]stop{}
	rd.mu.sent = map[int32]int{}
	rec := func(p int32, o int64, src bool) *kgo.Record {
		r := &kgo.Record{Topic: "dlq", Partition: p, Offset: o, Value: []byte("v")}
		if src {
			r.Headers = []kgo.RecordHeader{{Key: processor.HeaderTopic, Value: []byte("orders")}}
		}
		return r
	}
	var sent int
	feed := func(b *batch, rs ...*kgo.Record) {
		for _, r := range rs {
			if rd.record(r, b) != nil {
				sent++
			}
		}
	}
	var aborted batch
	feed(&aborted, rec(0, 0, true), rec(0, 1, false), rec(0, 2, true), rec(1, 0, true))
	if got := rd.stopsWith(aborted.stops); got[0] != 1 || len(got) != 1 {
		t.Fatalf("stops = %v, want partition 0 at offset 1", got)
	}
	if sent != 2 {
		t.Fatalf("sent %d records, want 2 (0@0 and 1@0, not 0@2 after the stop)", sent)
	}
	if got := rd.stopsWith(nil); len(got) != 0 {
		t.Fatalf("stops before the commit = %v, want none", got)
	}
	var b batch
	feed(&b, rec(0, 0, true), rec(0, 1, false), rec(1, 0, true))
	rd.commit(&b)
	var later batch
	feed(&later, rec(0, 2, true), rec(1, 1, true))
	rd.commit(&later)

	var out bytes.Buffer
	err := rd.report(&out)
	if err == nil || !strings.Contains(err.Error(), "partition 0 stopped at offset 1") || !strings.Contains(err.Error(), "pass --to") {
		t.Errorf("report error = %v, want partition 0's stop at offset 1 and the fix", err)
	}
	for _, want := range []string{"redrove 3 records", "partition 0: 1 redriven; stopped at offset 1", "partition 1: 2 redriven"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report =\n%s\nwant it to contain %q", out.String(), want)
		}
	}
}

// The commit of a stopped partition is held at its stop; others pass.
func TestHoldAtStops(t *testing.T) {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	for _, topic := range []string{"dlq", "other"} {
		tt := kmsg.NewTxnOffsetCommitRequestTopic()
		tt.Topic = topic
		for p, o := range []int64{9, 9, 1} {
			pp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			pp.Partition, pp.Offset = int32(p), o
			tt.Partitions = append(tt.Partitions, pp)
		}
		req.Topics = append(req.Topics, tt)
	}
	holdAtStops(req, "dlq", map[int32]int64{0: 4, 2: 4})
	var got []int64
	for _, tt := range req.Topics {
		for _, p := range tt.Partitions {
			got = append(got, p.Offset)
		}
	}
	if want := []int64{4, 9, 1, 9, 9, 1}; !slices.Equal(got, want) {
		t.Errorf("offsets after holdAtStops = %v, want %v", got, want)
	}
}
