package main

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/processor"
	"github.com/exactly-dev/exactly/topology"
)

const redrivePipeline = `name: redrive
dead_letter_topic: in-dlq
sources:
  - {name: in, topic: in}
steps:
  - name: positive
    filter: FILTER
sinks:
  - {name: out, topic: out}
`

// runPipeline runs yaml until its group has consumed everything.
func runPipeline(t *testing.T, ctx context.Context, addrs []string, yaml string) {
	t.Helper()
	topo, err := topology.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	p, err := processor.New(topo, processor.Config{Brokers: addrs, ClientID: "test", InstanceID: "a",
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
	b, err := broker.Start(broker.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addrs := b.Addrs()
	if err := broker.CreateTopics(ctx, addrs, 1, "in", "out"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for _, v := range []string{`{"id":1,"amount":5}`, `{"id":2}`, `{"id":3,"amount":1}`, `{"id":4}`} {
		rs = append(rs, &kgo.Record{Topic: "in", Value: []byte(v), Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte(v)}}})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	runPipeline(t, ctx, addrs, strings.Replace(redrivePipeline, "FILTER", "value.amount > 0", 1))
	dlq, err := broker.ReadCommitted(ctx, addrs, []string{"in-dlq"})
	if err != nil || len(dlq) != 2 {
		t.Fatalf("dead-letter topic holds %d records (%v), want 2", len(dlq), err)
	}

	for i, want := range []string{"redrove 2 records", "redrove 0 records"} {
		var stdout, stderr bytes.Buffer
		err := run(ctx, []string{"redrive", "--dlq", "in-dlq", "--brokers", strings.Join(addrs, ","), "--instance-id", "r", "--http-addr="}, &stdout, &stderr)
		if err != nil || !strings.Contains(stdout.String(), want) {
			t.Fatalf("redrive run %d = %v, printed %q, want %q\n%s", i+1, err, stdout.String(), want, stderr.String())
		}
	}

	// The fixed pipeline treats a missing amount as fine.
	runPipeline(t, ctx, addrs, strings.Replace(redrivePipeline, "FILTER", "'!has(value.amount) || value.amount > 0'", 1))
	out, err := broker.ReadCommitted(ctx, addrs, []string{"out"})
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
// would lose the record, so redrive refuses and says what to do.
func TestUndeadLetterRefusesOmitted(t *testing.T) {
	r := &kgo.Record{Topic: "dlq", Partition: 0, Offset: 7, Headers: []kgo.RecordHeader{
		{Key: processor.HeaderTopic, Value: []byte("orders")},
		{Key: processor.HeaderOmitted, Value: []byte("key and value (3 and 5010 bytes) left out; the original is at orders/2@41")},
	}}
	_, err := undeadLetter(r, "")
	if err == nil || !strings.Contains(err.Error(), "orders/2@41") || !strings.Contains(err.Error(), "redrive from offset 8") {
		t.Fatalf("undeadLetter(omitted) error = %v, want one pointing at the original and the next offset", err)
	}
	r.Headers = r.Headers[:1]
	r.Value = []byte("v")
	out, err := undeadLetter(r, "")
	if err != nil || out.Topic != "orders" || string(out.Value) != "v" || len(out.Headers) != 0 {
		t.Fatalf("undeadLetter = %+v, %v; want the record for orders without exactly headers", out, err)
	}
}
