package processor

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/topology"
)

var update = flag.Bool("update", false, "rewrite golden files")

// table reads topic with read_committed and returns the latest value per
// key, as sorted "key<TAB>value" lines: the table an upsert stream
// describes. It also returns how many records the topic holds.
func table(t *testing.T, ctx context.Context, addrs []string, topic string) ([]string, int) {
	t.Helper()
	recs, err := broker.ReadCommitted(ctx, addrs, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	latest := map[string]string{}
	for _, r := range recs {
		if r.Value == nil {
			delete(latest, string(r.Key)) // a tombstone deletes the row
			continue
		}
		latest[string(r.Key)] = string(r.Value)
	}
	var lines []string
	for k, v := range latest {
		lines = append(lines, k+"\t"+v)
	}
	slices.Sort(lines)
	return lines, len(recs)
}

func checkGolden(t *testing.T, name string, got []string) {
	t.Helper()
	path := filepath.Join("..", "testdata", "aggregate", name)
	text := strings.Join(got, "\n") + "\n"
	if *update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if text != string(want) {
		t.Errorf("table =\n%s\nwant (%s)\n%s", text, path, want)
	}
}

// runUntilCaughtUp runs topo until its group has committed every record of
// every topic it consumes, then stops it.
func runUntilCaughtUp(t *testing.T, ctx context.Context, c *cluster, topo *topology.Topology, instance string) *Processor {
	t.Helper()
	return runWith(t, ctx, c, topo, c.config(instance), func(p *Processor) bool { return p.Stats().Commits.Load() > 0 })
}

// runWith runs topo with cfg until its group has consumed every record of
// every topic it reads and started(p) holds, then stops it.
func runWith(t *testing.T, ctx context.Context, c *cluster, topo *topology.Topology, cfg Config, started func(*Processor) bool) *Processor {
	t.Helper()
	p, err := New(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	for !p.Settled() || !broker.CaughtUp(ctx, c.cl, topo.Group, p.Consumed()) || !started(p) {
		select {
		case err := <-done:
			t.Fatalf("Run() = %v before catching up", err)
		case <-ctx.Done():
			t.Fatal("timed out waiting for the group to catch up")
		case <-time.After(100 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	return p
}

// TestUserTotals is the SQL view
//
//	SELECT user_id, COUNT(*) FILTER (WHERE amount > 0), COUNT(*) FILTER
//	(WHERE amount < 0), SUM(amount) FROM events GROUP BY user_id
//
// over the seed events: after five events and after all seven, with a
// restart (and so a restore from the changelog) in between.
func TestUserTotals(t *testing.T) {
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
	runUntilCaughtUp(t, ctx, c, topo, "a")
	got, n := table(t, ctx, c.addrs, "user-totals")
	checkGolden(t, "user_totals_5.golden", got)
	if n != 5 {
		t.Errorf("output holds %d records, want 5: emit on_update writes one per event", n)
	}

	if _, err := broker.ProduceFile(ctx, c.addrs, "events", "../testdata/aggregate/events-later.jsonl"); err != nil {
		t.Fatal(err)
	}
	runUntilCaughtUp(t, ctx, c, topo, "b") // a new instance: state comes from the changelog
	got, _ = table(t, ctx, c.addrs, "user-totals")
	checkGolden(t, "user_totals_7.golden", got)
}

// TestCategoryRevenue is SELECT category, COUNT(*), SUM(price * quantity)
// FROM orders GROUP BY category, emitted once per key per commit.
func TestCategoryRevenue(t *testing.T) {
	c := newCluster(t, "orders", "category-revenue")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := topology.Load("../testdata/aggregate/category_revenue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broker.ProduceFile(ctx, c.addrs, "orders", "../testdata/aggregate/orders.jsonl"); err != nil {
		t.Fatal(err)
	}
	// The orders are keyed by order id, so one category's orders sit in
	// several input partitions; only the repartition topic brings them
	// to one task, and one row.
	in, err := broker.ReadCommitted(ctx, c.addrs, []string{"orders"})
	if err != nil {
		t.Fatal(err)
	}
	parts := map[int32]bool{}
	for _, r := range in {
		if strings.Contains(string(r.Value), "Electronics") {
			parts[r.Partition] = true
		}
	}
	if len(parts) < 2 {
		t.Fatalf("Electronics orders all sit in one input partition: the test would not exercise the repartition path")
	}
	runUntilCaughtUp(t, ctx, c, topo, "a")
	got, n := table(t, ctx, c.addrs, "category-revenue")
	checkGolden(t, "category_revenue.golden", got)
	if n > 5 {
		t.Errorf("output holds %d records; emit on_commit writes at most one per key per transaction", n)
	}
}

// TestChangelogMismatchStops checks that an existing changelog topic with
// the wrong partition count stops the processor at start, before it
// processes anything into a mis-partitioned store.
func TestChangelogMismatchStops(t *testing.T) {
	c := newCluster(t, "events", "user-totals")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topo, err := topology.Load("../testdata/aggregate/user_totals.yaml")
	if err != nil {
		t.Fatal(err)
	}
	changelog := topology.ChangelogTopic(topo.Name, "per-user")
	if err := broker.CreateTopics(ctx, c.addrs, 1, changelog); err != nil {
		t.Fatal(err)
	}
	p, err := New(topo, c.config("a"))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), changelog) || !strings.Contains(err.Error(), "partitions") {
		t.Fatalf("Run() = %v, want an error naming %s and its partition count", err, changelog)
	}
	t.Logf("Run() = %v", err)
}

// TestGuarantees runs the user-totals pipeline at least once and at most
// once: without a crash both give the same table as exactly once, and at
// least once every event yields exactly one update.
func TestGuarantees(t *testing.T) {
	for _, g := range []topology.Guarantee{topology.AtLeastOnce, topology.AtMostOnce} {
		t.Run(string(g), func(t *testing.T) {
			c := newCluster(t, "events", "user-totals")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			topo, err := topology.Load("../testdata/aggregate/user_totals.yaml")
			if err != nil {
				t.Fatal(err)
			}
			topo.Guarantee = g
			if _, err := broker.ProduceFile(ctx, c.addrs, "events", "../testdata/aggregate/events.jsonl"); err != nil {
				t.Fatal(err)
			}
			runUntilCaughtUp(t, ctx, c, topo, "a")
			if _, err := broker.ProduceFile(ctx, c.addrs, "events", "../testdata/aggregate/events-later.jsonl"); err != nil {
				t.Fatal(err)
			}
			runUntilCaughtUp(t, ctx, c, topo, "b")
			got, n := table(t, ctx, c.addrs, "user-totals")
			checkGolden(t, "user_totals_7.golden", got)
			if n != 7 {
				t.Errorf("output holds %d updates, want 7 (one per event, no crash)", n)
			}
		})
	}
}
