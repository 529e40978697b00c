package processor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
)

// TestUpstreamHeldByOpenTransactionIsNotIdle: an upstream partition whose
// next records sit in a transaction still open (its producer stalled, its
// coordinator failing over) is not idle, though a read_committed reader
// is at its last stable offset: the records may still commit, and judged
// against the other partitions' time they would be late. Found by the
// chaos harness on a 3-node Kafka with broker kills: a window closed
// without in/2's first records, then dropped them as late when their
// transaction committed. The window waits for them instead.
func TestUpstreamHeldByOpenTransactionIsNotIdle(t *testing.T) {
	c := newCluster(t, "in", "out", "w-dlq")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	rec := func(p int32, at time.Duration, v int) *kgo.Record {
		return &kgo.Record{Topic: "in", Partition: p, Key: []byte("u"), Value: []byte(fmt.Sprintf(`{"user":"u","v":%d}`, v)), Timestamp: t0.Add(at)}
	}
	// The held transaction: one record of the first window on in/1.
	txp := newTestClientOpts(t, c.addrs, kgo.TransactionalID("held-upstream"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := txp.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txp.ProduceSync(ctx, rec(1, 10*time.Second, 2)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The other partitions move three minutes on.
	pp := newTestClientOpts(t, c.addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := pp.ProduceSync(ctx, rec(0, 5*time.Second, 1), rec(2, 5*time.Second, 4), rec(0, 3*time.Minute, 8), rec(2, 3*time.Minute, 16)).FirstErr(); err != nil {
		t.Fatal(err)
	}

	topo := mustParse(t, byUserYAML("tumbling: 1m\n        grace: 0s\n        upstream_idle: 500ms", "emit: on_close"))
	p, err := New(topo, c.config("a"))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	wait := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			select {
			case err := <-done:
				t.Fatalf("Run() = %v while waiting for %s", err, what)
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	wait("the member to be ready and commit", func() bool { return p.Ready() == nil && p.Stats().Commits.Load() > 0 })
	// Many idleness checks (upstream_idle 500ms) while the transaction
	// stays open; with the bug the first window closes in them.
	time.Sleep(4 * time.Second)
	if err := txp.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	wait("the group to consume everything", func() bool {
		return broker.CaughtUp(ctx, c.cl, topo.Group, p.Consumed()) && p.Settled()
	})
	wait("the first window's row", func() bool {
		out, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
		return err == nil && len(out) > 0
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if n := counterValue(t, p.g.m.LateRecords.WithLabelValues("agg")); n != 0 {
		t.Errorf("%v records judged late, want 0: the held partition was counted idle", n)
	}
	out, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, r := range out {
		rows = append(rows, string(r.Value))
	}
	if len(rows) != 1 || !strings.Contains(rows[0], `"n":3,"sum":7`) {
		t.Errorf("first window's rows %q, want one with n 3, sum 7 (the held record counted)", rows)
	}
}
