package processor

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRebalanceKeepsStores has a second member join a group whose only
// member holds every partition's state: the first member keeps some of its
// partitions across the rebalance, and must not read their changelogs
// again (the balancer revokes every partition before the member rejoins).
func TestRebalanceKeepsStores(t *testing.T) {
	c := newCluster(t, "in", "counts")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := mustParse(t, `name: keep
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
`)
	var rs []*kgo.Record
	for i := range 300 {
		rs = append(rs, &kgo.Record{Topic: "in", Key: []byte("k" + strconv.Itoa(i%30)), Value: []byte(`{}`)})
	}
	if err := c.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	run := func(instance string) (*Processor, context.CancelFunc, chan error) {
		p, err := New(topo, c.config(instance))
		if err != nil {
			t.Fatal(err)
		}
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(rctx) }()
		return p, stop, done
	}
	wait := func(what string, ok func() bool, dones ...chan error) {
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
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	a, stopA, doneA := run("a")
	c.waitCaughtUp(t, ctx, topo.Group, "in")
	wait("a to commit", func() bool { return a.Stats().Commits.Load() > 0 && a.Ready() == nil }, doneA)
	before := a.Stats().RestoreRecords.Load()

	b, stopB, doneB := run("b")
	wait("the rebalance", func() bool {
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
