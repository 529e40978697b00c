package processor

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/topology"
)

// tasksUnderTest returns the tasks of a member of topo that does not
// run, with topo's topics created, and a client to assign them partitions
// through (their fetches paused and resumed on it).
func tasksUnderTest(t *testing.T, ctx context.Context, c *cluster, topo *topology.Topology) (*tasks, *kgo.Client) {
	t.Helper()
	p, err := New(topo, c.config("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureTopics(ctx, c.adm, p.g, p.topo.Plan); err != nil {
		t.Fatal(err)
	}
	return p.tasks, newTestClient(t, c.addrs)
}

// A task is partition p of a co-partition group (here the join's input
// and its table) with every store of it. Its partitions are fetched only
// while the member holds the whole task and has restored its stores: a
// task that loses one partition loses its stores, and the partition it
// keeps waits, paused, until the task is whole and restored again.
func TestTaskIsRestoredWhole(t *testing.T) {
	c := newCluster(t, "in", "users", "out")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topo := mustParse(t, `name: tasks
sources:
  - {name: in, topic: in}
  - {name: users, topic: users, table: true}
steps:
  - name: enrich
    from: in
    join: {table: users, type: left, output: '{"v": value, "u": table}'}
sinks:
  - {name: out, topic: out}
`)
	tk, cl := tasksUnderTest(t, ctx, c, topo)
	paused := func() map[string][]int32 {
		m := cl.PauseFetchPartitions(nil)
		for _, ps := range m {
			slices.Sort(ps)
		}
		return m
	}
	if len(tk.groups) != 1 || !slices.Equal(tk.groups[0].topics, []string{"in", "users"}) {
		t.Fatalf("task groups = %+v, want one: in and users", tk.groups)
	}
	table := tk.groups[0].steps[0]
	sync := func() {
		t.Helper()
		if err := tk.sync(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}

	tk.onAssigned(cl, map[string][]int32{"in": {0, 1}, "users": {0, 1}})
	if got := paused(); len(got["in"]) != 2 || len(got["users"]) != 2 {
		t.Fatalf("paused before the restore = %v, want every assigned partition", got)
	}
	sync()
	if got := paused(); len(got) != 0 {
		t.Fatalf("paused after the restore = %v, want none", got)
	}
	if _, ok := table.stores[1]; !ok {
		t.Fatal("the table's store of task 1 is not open after the restore")
	}

	// The table's partition 1 is lost: task 1 is not whole.
	tk.onRevoked(map[string][]int32{"users": {1}}, true)
	sync()
	if _, ok := table.stores[1]; ok {
		t.Error("task 1 lost a partition but kept its table store")
	}
	if _, ok := table.stores[0]; !ok {
		t.Error("task 0 lost its store with task 1")
	}
	if got := paused(); !slices.Equal(got["in"], []int32{1}) {
		t.Errorf("paused after task 1 lost users/1 = %v, want in/1: its records must not be joined without the table", got)
	}
	if n := tk.pending(); n != 1 {
		t.Errorf("partitions waiting = %d, want 1 (in/1)", n)
	}
	sync() // still not whole: still waiting
	if got := paused(); !slices.Equal(got["in"], []int32{1}) {
		t.Errorf("paused while task 1 is not whole = %v, want in/1", got)
	}

	// Partition in/1, waiting for its task, is lost too; it is no longer
	// waited for.
	tk.onRevoked(map[string][]int32{"in": {1}}, true)
	sync()
	if n := tk.pending(); n != 0 {
		t.Errorf("partitions waiting after in/1 was lost too = %d, want 0", n)
	}

	tk.onAssigned(cl, map[string][]int32{"in": {1}, "users": {1}})
	sync()
	if got := paused(); len(got) != 0 {
		t.Errorf("paused once task 1 is whole and restored = %v, want none", got)
	}
	if _, ok := table.stores[1]; !ok {
		t.Error("task 1's table store is not open again")
	}
	if n := tk.pending(); n != 0 {
		t.Errorf("partitions waiting = %d, want 0", n)
	}
	tk.dropAll()
}
