package processor

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/kafkatest"
	"github.com/exactly-dev/exactly/topology"
)

// countYAML is a pipeline named name that counts the records of in per
// key into counts, with the line guarantee (or none).
func countYAML(name, guarantee string) string {
	return "name: " + name + "\n" + guarantee + `
sources:
  - {name: in, topic: in}
steps:
  - name: count
    aggregate:
      group_by: key
      columns:
        n: {fn: count}
sinks:
  - {name: counts, topic: counts}
`
}

// startProcessor runs a member of topo with cfg until stop is called;
// done receives what Run returned.
func startProcessor(t *testing.T, ctx context.Context, topo *topology.Topology, cfg Config) (p *Processor, stop context.CancelFunc, done chan error) {
	t.Helper()
	p, err := New(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done = make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	return p, stop, done
}

// waitUntil waits until ok, failing the test if ctx ends first or a
// member's Run, whose result dones receive, returns meanwhile; what says
// what it waits for.
func waitUntil(t *testing.T, ctx context.Context, what string, ok func() bool, dones ...chan error) {
	t.Helper()
	for !ok() {
		for _, d := range dones {
			select {
			case err := <-d:
				t.Fatalf("Run() = %v while waiting for %s", err, what)
			default:
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestRebalanceKeepsStores has a second member join a group whose only
// member holds every partition's state: the first member keeps some of its
// partitions across the rebalance, and must not read their changelogs
// again (the balancer revokes every partition before the member rejoins).
// Under every guarantee: without transactions too, a kept store is the
// changelog up to its checkpoint (see tasks.diverged).
func TestRebalanceKeepsStores(t *testing.T) {
	for _, g := range []topology.Guarantee{topology.ExactlyOnce, topology.AtLeastOnce, topology.AtMostOnce} {
		t.Run(string(g), func(t *testing.T) { testRebalanceKeepsStores(t, g) })
	}
}

func testRebalanceKeepsStores(t *testing.T, g topology.Guarantee) {
	c := newCluster(t, "in", "counts")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := mustParse(t, countYAML("keep", "guarantee: "+string(g)))
	var rs []*kgo.Record
	for i := range 300 {
		rs = append(rs, &kgo.Record{Topic: "in", Key: []byte("k" + strconv.Itoa(i%30)), Value: []byte(`{}`)})
	}
	if err := c.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	run := func(instance string) (*Processor, context.CancelFunc, chan error) {
		return startProcessor(t, ctx, topo, c.config(instance))
	}

	a, stopA, doneA := run("a")
	c.waitCaughtUp(t, ctx, topo.Group, "in")
	waitUntil(t, ctx, "a to commit", func() bool { return a.Stats().Commits.Load() > 0 && a.Ready() == nil }, doneA)
	before := a.Stats().RestoreRecords.Load()

	b, stopB, doneB := run("b")
	waitUntil(t, ctx, "the rebalance", func() bool {
		g := a.Stats().Generation.Load()
		return b.Stats().AssignedParts.Load() > 0 && g == b.Stats().Generation.Load() &&
			a.Stats().AssignedParts.Load() > 0 && a.Ready() == nil && b.Ready() == nil
	}, doneA, doneB)
	if got := a.Stats().RestoreRecords.Load(); got != before {
		t.Errorf("member a restored %d changelog records in the rebalance, want 0: it kept %d partitions and gained none", got-before, a.Stats().AssignedParts.Load())
	}
	if b.Stats().RestoreRecords.Load() == 0 {
		t.Errorf("member b restored nothing, want the state of the partitions it took over")
	}
	stopB()
	if err := <-doneB; err != nil {
		t.Fatalf("b: Run() = %v", err)
	}
	stopA()
	if err := <-doneA; err != nil {
		t.Fatalf("a: Run() = %v", err)
	}
	got, _ := table(t, ctx, c.addrs, "counts")
	if len(got) != 30 {
		t.Errorf("counts holds %d keys, want 30", len(got))
	}
}

// TestPlainChangelogGapRestores: at least once, a member's changelog
// partition gets a record it did not write (another member took the
// partition over while this one was cut off, and counted on), and then
// this member's own next write lands after it. The member's store misses
// the other's record while its checkpoint passes it: kept, the store
// would count on from the wrong value, and give a new owner's restore the
// lie. It must restore from the changelog before its next batch, and so
// count on from what the changelog says.
func TestPlainChangelogGapRestores(t *testing.T) {
	c := newCluster(t, "in", "counts")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := mustParse(t, countYAML("gap", "guarantee: at_least_once"))
	// Two keys of one partition of in.
	part := func(k string) int {
		return kgo.StickyKeyPartitioner(nil).ForTopic("in").Partition(&kgo.Record{Key: []byte(k)}, 3)
	}
	x, y := "x", ""
	for i := 0; y == ""; i++ {
		if k := "y" + strconv.Itoa(i); part(k) == part(x) {
			y = k
		}
	}
	produce := func(k string) {
		t.Helper()
		if err := c.cl.ProduceSync(ctx, &kgo.Record{Topic: "in", Key: []byte(k), Value: []byte(`{}`)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// counts waits for the n-th output of key k and returns its count.
	counts := func(k string, n int) int {
		t.Helper()
		for {
			recs, err := broker.ReadCommitted(ctx, c.addrs, []string{"counts"})
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, r := range recs {
				var v struct{ N int }
				if string(r.Key) == k && json.Unmarshal(r.Value, &v) == nil {
					got = append(got, v.N)
				}
			}
			if len(got) >= n {
				return got[n-1]
			}
			select {
			case <-ctx.Done():
				t.Fatalf("no output %d of key %s (outputs %v)", n, k, got)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	_, stop, done := startProcessor(t, ctx, topo, c.config("a"))
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	}()

	produce(x)
	if n := counts(x, 1); n != 1 {
		t.Fatalf("first count of %s = %d, want 1", x, n)
	}
	// The other member's write: x counted to 5.
	changelog := topology.ChangelogTopic("gap", "count")
	recs, err := broker.ReadCommitted(ctx, c.addrs, []string{changelog})
	if err != nil || len(recs) != 1 {
		t.Fatalf("%s holds %d records (%v), want 1", changelog, len(recs), err)
	}
	other := &kgo.Record{Topic: changelog, Partition: recs[0].Partition, Key: recs[0].Key,
		Value: []byte(strings.Replace(string(recs[0].Value), `"n":1`, `"n":5`, 1))}
	manual := newTestClientOpts(t, c.addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := manual.ProduceSync(ctx, other).FirstErr(); err != nil {
		t.Fatal(err)
	}
	produce(y) // this member's write lands after the other's
	if n := counts(y, 1); n != 1 {
		t.Fatalf("first count of %s = %d, want 1", y, n)
	}
	produce(x)
	if n := counts(x, 2); n != 6 {
		t.Errorf("count of %s after the changelog said 5 = %d, want 6 (what a restore from the changelog counts on from)", x, n)
	}
}

// TestSyncLeavesReassignedPaused: a rebalance during a restore revokes a
// partition being restored and assigns it again (paused, queued for the
// next sync: another member may have written to its changelog meanwhile).
// The sync under way must not resume it with the rest: its records would
// be processed against a store without the other member's writes.
func TestSyncLeavesReassignedPaused(t *testing.T) {
	kafkatest.SkipUnlessEmbedded(t, "it runs a rebalance inside a restore through kfake ControlKey")
	c := newCluster(t, "in", "counts")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topo := mustParse(t, countYAML("resume", ""))
	tk, cl := tasksUnderTest(t, ctx, c, topo)
	paused := func() []int32 { return cl.PauseFetchPartitions(nil)["in"] }
	tk.onAssigned(cl, map[string][]int32{"in": {0}})

	var once atomic.Bool
	c.b.Cluster().ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		if once.CompareAndSwap(false, true) {
			// The rebalance, while partition 0 restores.
			tk.onRevoked(map[string][]int32{"in": {0}}, false)
			tk.onAssigned(cl, map[string][]int32{"in": {0}})
		}
		return nil, nil, false
	})
	if err := tk.sync(ctx, cl); err != nil {
		t.Fatal(err)
	}
	if got := paused(); len(got) != 1 {
		t.Fatalf("after the sync that a rebalance interrupted, paused partitions of in = %v, want [0]: it waits for its own restore", got)
	}
	if err := tk.sync(ctx, cl); err != nil {
		t.Fatal(err)
	}
	if got := paused(); len(got) != 0 {
		t.Errorf("after the next sync, paused partitions of in = %v, want none", got)
	}
	if n := tk.pending(); n != 0 {
		t.Errorf("partitions waiting for a restore = %d, want 0", n)
	}
	tk.dropAll()
}
