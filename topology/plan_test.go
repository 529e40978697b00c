package topology

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const planYAML = `
name: shop
sources:
  - {name: a, topic: orders}
  - {name: b, topic: refunds}
steps:
  - name: once
    from: [a]
    dedupe: {id: value.id, ttl: 10s}
  - name: per-key
    from: [once]
    aggregate:
      group_by: key
      columns: {n: {fn: count}}
  - name: per-user
    from: [a, b]
    aggregate:
      group_by: {user: value.user}
      columns: {n: {fn: count}}
sinks:
  - {name: o1, topic: out1, from: [per-key]}
  - {name: o2, topic: out2, from: [per-user]}
`

// The plan names every store, internal topic and task input once, for
// provisioning, the runtime and describe alike.
func TestPlan(t *testing.T) {
	topo, err := Parse("shop.yaml", []byte(planYAML))
	if err != nil {
		t.Fatal(err)
	}
	pl := topo.Plan
	if pl == nil {
		t.Fatal("Parse left the plan nil")
	}
	if want := []string{"orders", "refunds"}; !reflect.DeepEqual(pl.Sources, want) {
		t.Errorf("Sources = %v, want %v", pl.Sources, want)
	}
	type got struct {
		name, changelog, partitionsOf, repartition, input string
		feeds, co                                         []string
	}
	var steps []got
	for _, s := range pl.Stateful {
		g := got{name: s.Node.Name, changelog: s.Changelog.Name, partitionsOf: s.Changelog.PartitionsOf, input: s.Input, feeds: s.Feeds, co: s.CoPartition}
		if s.Repartition != nil {
			g.repartition = s.Repartition.Name
		}
		steps = append(steps, g)
	}
	want := []got{
		{"once", "shop-once-changelog", "orders", "", "orders", []string{"orders"}, []string{"orders"}},
		{"per-key", "shop-per-key-changelog", "orders", "", "orders", []string{"orders"}, []string{"orders"}},
		{"per-user", "shop-per-user-changelog", "", "shop-per-user-repartition", "shop-per-user-repartition", []string{"orders", "refunds"}, []string{"shop-per-user-repartition"}},
	}
	if !reflect.DeepEqual(steps, want) {
		t.Errorf("Stateful =\n%+v\nwant\n%+v", steps, want)
	}
	if got := pl.RepartitionTopics(); !reflect.DeepEqual(got, []string{"shop-per-user-repartition"}) {
		t.Errorf("RepartitionTopics = %v", got)
	}
	if n := len(pl.Topics()); n != 4 {
		t.Errorf("Topics has %d topics, want 4 (3 changelogs, 1 repartition)", n)
	}
	if pl.Step("per-user") != pl.Stateful[2] || pl.Step("o1") != nil {
		t.Error("Step does not find stateful steps by name, or finds a sink")
	}
}

// Topics read together by one task are merged into groups when they share
// a topic, so the balancer keeps all of them together.
func TestCoPartitionGroups(t *testing.T) {
	pl := &Plan{Stateful: []*StatefulStep{
		{CoPartition: []string{"a"}},
		{CoPartition: []string{"a", "b"}},
		{CoPartition: []string{"c", "d"}},
		{CoPartition: []string{"b", "e"}},
	}}
	want := [][]string{{"c", "d"}, {"b", "e", "a"}}
	if got := pl.CoPartitionGroups(); !reflect.DeepEqual(got, want) {
		t.Errorf("CoPartitionGroups = %v, want %v", got, want)
	}
}

// Partition p of a join's input and of its table are one task, so their
// counts must be equal; the error names both topics and counts and the
// fix, which works: with a key step before the join, its records go
// through a repartition topic that takes the table's count.
func TestCheckCoPartitioned(t *testing.T) {
	src, err := os.ReadFile("../testdata/join/enrich.yaml")
	if err != nil {
		t.Fatal(err)
	}
	topo, err := Parse("enrich.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	pl := topo.Plan
	if err := pl.CheckCoPartitioned(pl.Partitions(map[string]int32{"orders": 4, "customers": 4})); err != nil {
		t.Errorf("CheckCoPartitioned(4, 4) = %v, want nil", err)
	}
	err = pl.CheckCoPartitioned(pl.Partitions(map[string]int32{"orders": 3, "customers": 4}))
	want := "join step with-customer looks up records of partition p of orders in partition p of table customers (topic customers), " +
		"but orders has 3 partitions and customers has 4: insert a step `key: key` just before with-customer, " +
		"so its records go through enrich-with-customer-repartition, created with the 4 partitions of customers; or give both topics the same partition count"
	if err == nil || err.Error() != want {
		t.Errorf("CheckCoPartitioned(3, 4) = %v, want %s", err, want)
	}
	// Unknown counts are not checked (validate without a topic).
	if err := pl.CheckCoPartitioned(pl.Partitions(map[string]int32{"orders": 3})); err != nil {
		t.Errorf("CheckCoPartitioned without the table's count = %v, want nil", err)
	}

	fixed := strings.Replace(string(src), "  - name: with-customer\n", "  - {name: rekey, key: key}\n  - name: with-customer\n", 1)
	topo, err = Parse("enrich.yaml", []byte(fixed))
	if err != nil {
		t.Fatal(err)
	}
	pl = topo.Plan
	parts := pl.Partitions(map[string]int32{"orders": 3, "customers": 4})
	if err := pl.CheckCoPartitioned(parts); err != nil {
		t.Errorf("with the suggested key step: CheckCoPartitioned(3, 4) = %v, want nil", err)
	}
	if n := parts["enrich-with-customer-repartition"]; n != 4 {
		t.Errorf("the join's repartition topic gets %d partitions, want the table's 4", n)
	}

	// A table-table join: both sides are tables, no key step applies.
	tt := strings.NewReplacer("{name: orders, topic: orders}", "{name: orders, topic: orders, table: true}",
		"  - name: with-customer\n", "  - name: with-customer\n    from: orders\n").Replace(string(src))
	if topo, err = Parse("tt.yaml", []byte(tt)); err != nil {
		t.Fatal(err)
	}
	err = topo.Plan.CheckCoPartitioned(topo.Plan.Partitions(map[string]int32{"orders": 3, "customers": 4}))
	if want := "join step with-customer reads partition p of orders and of customers together, but orders has 3 partitions and customers has 4: give them the same partition count"; err == nil || err.Error() != want {
		t.Errorf("table-table CheckCoPartitioned(3, 4) = %v, want %s", err, want)
	}

	// A stream-stream join keyed as read: a key step on either side
	// regroups both streams; after one the counts no longer matter.
	ss, err := os.ReadFile("../testdata/topology/valid/stream_join.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if topo, err = Parse("ads.yaml", ss); err != nil {
		t.Fatal(err)
	}
	err = topo.Plan.CheckCoPartitioned(topo.Plan.Partitions(map[string]int32{"impressions": 3, "clicks": 4, "sessions": 5}))
	if want := "step clicked reads partition p of impressions and of clicks together, but impressions has 3 partitions and clicks has 4: " +
		"insert a step `key: key` just before clicked on either side, so both streams go through ads-clicked-repartition, " +
		"created with the partition count of the largest source topic; or give them the same partition count"; err == nil || err.Error() != want {
		t.Errorf("stream-stream CheckCoPartitioned(3, 4, 5) = %v, want %s", err, want)
	}

	// Any other co-partitioned step: the counts, and the generic fix.
	pl = &Plan{Stateful: []*StatefulStep{{Node: &Node{Name: "s"}, CoPartition: []string{"a", "b"}}}}
	err = pl.CheckCoPartitioned(map[string]int32{"a": 3, "b": 4})
	if want := "step s reads partition p of a and of b together, but a has 3 partitions and b has 4: give them the same partition count"; err == nil || err.Error() != want {
		t.Errorf("CheckCoPartitioned = %v, want %s", err, want)
	}
}

// A dedupe step reading several topics keeps its ids per partition of
// all of them: partition p of each is one task (the record keys put an
// id's records in partition p of every topic), so they go to one member,
// are paused together until the store is restored, and must have one
// partition count. Its tasks used to be the first topic's partitions
// alone: a record of the other topic was looked up in a store this member
// may not hold (the processor stopped, "no store ... this is a bug"), or
// that no task has when the topic has more partitions.
func TestDedupeFanInCoPartitioned(t *testing.T) {
	topo, err := Load(filepath.Join("..", "testdata", "dedupe", "fan_in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := topo.Plan.Step("once")
	if want := []string{"a", "b"}; !reflect.DeepEqual(s.CoPartition, want) {
		t.Errorf("CoPartition = %q, want %q", s.CoPartition, want)
	}
	if got, want := topo.Plan.CoPartitionGroups(), [][]string{{"a", "b"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("CoPartitionGroups() = %q, want %q", got, want)
	}
	err = topo.Plan.CheckCoPartitioned(topo.Plan.Partitions(map[string]int32{"a": 1, "b": 2}))
	if want := "step once reads partition p of a and of b together, but a has 1 partitions and b has 2: give them the same partition count"; err == nil || err.Error() != want {
		t.Errorf("CheckCoPartitioned(1, 2) = %v, want %s", err, want)
	}
}

// A dedupe step after a step that regroups its records through a
// repartition topic reads that topic's partitions: its records are the
// repartition topic's, task q holding what partition q holds. Its tasks
// were the first source topic's partitions, whatever came between: a
// record of repartition partition q was looked up in task q of the source
// topic, which another member may own, or which does not exist when the
// repartition topic has more partitions than that source.
func TestDedupeAfterRepartitionReadsIt(t *testing.T) {
	topo, err := Load(filepath.Join("..", "testdata", "dedupe", "after_regroup.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := topo.Plan.Step("once")
	rep := RepartitionTopic("dd", "per-user")
	if s.Input != rep || !reflect.DeepEqual(s.CoPartition, []string{rep}) || s.Changelog.PartitionsOf != rep {
		t.Errorf("dedupe input %s, co-partition %q, changelog partitions of %s; want %s for all three", s.Input, s.CoPartition, s.Changelog.PartitionsOf, rep)
	}
	parts := topo.Plan.Partitions(map[string]int32{"a": 1, "b": 2})
	if err := topo.Plan.CheckCoPartitioned(parts); err != nil {
		t.Errorf("CheckCoPartitioned(1, 2) = %v, want nil: the dedupe reads only the repartition topic", err)
	}
	if n := parts[ChangelogTopic("dd", "once")]; n != 2 {
		t.Errorf("the dedupe's changelog gets %d partitions, want the repartition topic's 2", n)
	}
}
