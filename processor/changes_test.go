package processor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
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
