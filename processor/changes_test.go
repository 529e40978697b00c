package processor

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/topology"
)

const tiersPipeline = `name: tiers
sources:
  - {name: spend, topic: spend, table: true}
steps:
  - name: per-tier
    from: spend
    aggregate:
      group_by: 'value.spend >= 100 ? "silver" : "bronze"'
      columns:
        users: {fn: count}
sinks:
  - {name: out, topic: out}
`

// A table source that an aggregate reads, on a broker: changes written
// while the pipeline is stopped reach the aggregate when it starts again,
// each retracting the row it replaced. The table's store is restored to
// the group's committed offset, not to the topic's end: restored to the
// end it would already hold those changes, and they would never reach
// the aggregate.
func TestTableChangesAcrossRestartOnBroker(t *testing.T) {
	c := newCluster(t, "spend", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := mustParse(t, tiersPipeline)
	produce := func(from, n, spend int) {
		t.Helper()
		var rs []*kgo.Record
		for i := from; i < from+n; i++ {
			rs = append(rs, &kgo.Record{Topic: "spend", Key: []byte(fmt.Sprintf("u%d", i)), Value: []byte(fmt.Sprintf(`{"spend":%d}`, spend))})
		}
		if err := c.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 30, 10) // 30 bronze users
	runUntilCaughtUp(t, ctx, c, topo, "a")
	produce(0, 12, 500) // 12 of them move to silver while it is stopped
	runUntilCaughtUp(t, ctx, c, topo, "b")
	recs, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]string{}
	for _, r := range recs {
		last[string(r.Key)] = string(r.Value)
	}
	var got []string
	for k, v := range last {
		got = append(got, k+"="+v)
	}
	slices.Sort(got)
	want := `bronze={"key":"bronze","users":18} silver={"key":"silver","users":12}`
	if strings.Join(got, " ") != want {
		t.Errorf("tiers = %s, want %s", strings.Join(got, " "), want)
	}
}

// An aggregate's rows as a join's table, on a broker: the orders go
// through the join's repartition topic, co-partitioned with the
// aggregate's, and each meets its user's row, restored by a second
// member.
func TestJoinWithAggregateRowsOnBroker(t *testing.T) {
	c := newCluster(t, "events", "orders", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := mustParse(t, pipelineYAML("join/aggregate_rows.yaml", "TYPE", "inner", "OUTPUT", `{"order": value.id, "spend": table.spend}`))
	var rs []*kgo.Record
	for i := range 40 {
		rs = append(rs, &kgo.Record{Topic: "events", Value: []byte(fmt.Sprintf(`{"user":"u%d","amount":%d}`, i%10, i))})
	}
	if err := c.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	runUntilCaughtUp(t, ctx, c, topo, "a")
	rs = rs[:0]
	for i := range 10 {
		rs = append(rs, &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprintf("u%d", i)), Value: []byte(fmt.Sprintf(`{"id":%d}`, i))})
	}
	if err := c.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	runUntilCaughtUp(t, ctx, c, topo, "b")
	recs, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Key)+"="+string(r.Value))
	}
	slices.Sort(got)
	var want []string
	for i := range 10 {
		// u_i spent i + (i+10) + (i+20) + (i+30).
		want = append(want, fmt.Sprintf(`u%d={"order":%d,"spend":%d}`, i, i, 4*i+60))
	}
	slices.Sort(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("out =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A row with a count_distinct set survives its encoding (the store and
// the changelog), and the set's values survive retraction as counts.
func TestCountDistinctRowRoundTrip(t *testing.T) {
	var a acc
	for _, v := range []any{"x", "y", "x", int64(2), format.Number("2.00")} {
		if _, err := a.update(topology.AggCountDistinct, v, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.retract(topology.AggCountDistinct, "x", true); err != nil {
		t.Fatal(err)
	}
	in := []acc{a, {N: 3}, {N: 2, Sum: "7.50"}}
	b, err := encodeRow(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeRow(b, len(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("decodeRow(encodeRow(%+v)) = %+v (from %s)", in, out, b)
	}
	if want := map[string]int64{"sx": 1, "sy": 1, "n2": 2}; !reflect.DeepEqual(out[0].D, want) || out[0].N != 3 {
		t.Errorf("set = %v, N %d; want %v, N 3", out[0].D, out[0].N, want)
	}
}
