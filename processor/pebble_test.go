package processor

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
)

// runPebble runs the user-totals pipeline with its state in dir until it
// has caught up, and returns its counters.
func runPebble(t *testing.T, ctx context.Context, c *cluster, topo *topology.Topology, dir string) *Stats {
	t.Helper()
	state, err := statestore.NewPebble(dir, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	cfg := c.config("a")
	cfg.State = state
	p := runWith(t, ctx, c, topo, cfg, func(p *Processor) bool { return p.Stats().Restores.Load() > 0 })
	return p.Stats()
}

// TestPebbleRestoresOnlyTheTail restarts a pipeline whose state is on
// disk: the restart replays only the changelog records written since its
// checkpoint. Deleting the state directory makes the next start rebuild
// every store from the whole changelog. The table is right every time.
func TestPebbleRestoresOnlyTheTail(t *testing.T) {
	c := newCluster(t, "events", "user-totals")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := topology.Load("../testdata/aggregate/user_totals.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	changelogLen := func() int {
		recs, err := broker.ReadCommitted(ctx, c.addrs, []string{topology.ChangelogTopic(topo.Name, "per-user")})
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}

	if _, err := broker.ProduceFile(ctx, c.addrs, "events", "../testdata/aggregate/events.jsonl"); err != nil {
		t.Fatal(err)
	}
	first := runPebble(t, ctx, c, topo, dir)
	if n := first.RestoreRecords.Load(); n != 0 {
		t.Errorf("first start restored %d records, want 0 (empty changelog)", n)
	}
	before := changelogLen()

	// A second instance (its own state directory) processes the later
	// events, so the changelog grows behind the first instance's back.
	if _, err := broker.ProduceFile(ctx, c.addrs, "events", "../testdata/aggregate/events-later.jsonl"); err != nil {
		t.Fatal(err)
	}
	runPebble(t, ctx, c, topo, t.TempDir())
	tail := changelogLen() - before
	if tail <= 0 {
		t.Fatalf("the changelog did not grow (%d records)", before+tail)
	}

	// The restarted instance works on from its restored state.
	if _, err := broker.ProduceFile(ctx, c.addrs, "events", "../testdata/aggregate/events-extra.jsonl"); err != nil {
		t.Fatal(err)
	}
	second := runPebble(t, ctx, c, topo, dir)
	if n, r := second.RestoreRecords.Load(), second.RestoresRebuilt.Load(); n != int64(tail) || r != 0 {
		t.Errorf("restart restored %d records (%d stores rebuilt), want only the tail of %d and no rebuild", n, r, tail)
	}
	got, _ := table(t, ctx, c.addrs, "user-totals")
	want42 := "42\t{\"net_spend\":430.00,\"purchase_count\":3,\"refund_count\":1,\"user_id\":42}"
	if len(got) != 3 || got[0] != want42 {
		t.Errorf("table after the restart = %q, want user 42 as %s", got, want42)
	}

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	full := changelogLen()
	if _, err := broker.ProduceFile(ctx, c.addrs, "events", "../testdata/aggregate/events-extra2.jsonl"); err != nil {
		t.Fatal(err)
	}
	third := runPebble(t, ctx, c, topo, dir)
	if n, r := third.RestoreRecords.Load(), third.RestoresRebuilt.Load(); n != int64(full) || r == 0 {
		t.Errorf("start without local state restored %d records (%d stores rebuilt), want the whole changelog of %d, rebuilt", n, r, full)
	}
	got, _ = table(t, ctx, c.addrs, "user-totals")
	want43 := "43\t{\"net_spend\":230.00,\"purchase_count\":3,\"refund_count\":0,\"user_id\":43}"
	if len(got) != 3 || got[0] != want42 || got[1] != want43 {
		t.Errorf("table after the rebuild = %q, want user 42 as %s and 43 as %s", got, want42, want43)
	}
}
