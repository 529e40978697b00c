package topology

import (
	"reflect"
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
