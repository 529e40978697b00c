package processor

import (
	"context"
	"testing"
	"time"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/topology"
)

// TestFirstRunCommitsFirstTransaction runs an aggregate with a repartition
// topic for the first time. Its first transaction used to abort: the
// group member joined before the repartition topic existed, found it once
// the first produce refreshed metadata, and rejoined with the new topic,
// a rebalance that revoked everything mid-transaction.
func TestFirstRunCommitsFirstTransaction(t *testing.T) {
	c := newCluster(t, "events", "user-totals")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := topology.Load("../testdata/aggregate/user_totals.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broker.ProduceFile(ctx, c.addrs, "events", "../testdata/aggregate/events.jsonl"); err != nil {
		t.Fatal(err)
	}
	p := runUntilCaughtUp(t, ctx, c, topo, "a")
	if n := p.Stats().Aborts.Load(); n != 0 {
		t.Errorf("first run aborted %d transactions, want 0", n)
	}
}
