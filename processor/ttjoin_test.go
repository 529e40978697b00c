package processor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
)

const tableJoinBrokerPipeline = `name: accounts
sources:
  - {name: users, topic: users, table: true}
  - {name: plans, topic: plans, table: true}
steps:
  - name: user-plan
    from: users
    join:
      table: plans
      type: left
      output: '{"user": value.name, "plan": table == null ? null : table.tier}'
sinks:
  - {name: out, topic: out}
`

// A left table-table join on a broker, 3 partitions: a first member joins
// the tables as written before it started; changes written while no
// member runs (updates, deletes on both sides) are joined by the next
// member, which restores both tables only up to the group's committed
// offsets and processes the changes after them (restored to the high
// watermark, it would hold the changes already and emit nothing for
// them). The output, read as a table (latest value per key, tombstones
// delete), is the join of the final tables.
func TestTableTableJoinOnBroker(t *testing.T) {
	c := newCluster(t, "users", "plans", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	users, plans := map[string]string{}, map[string]string{}
	put := func(topic string, tbl map[string]string, key, value string) *kgo.Record {
		r := &kgo.Record{Topic: topic, Key: []byte(key)}
		if value == "" {
			delete(tbl, key)
		} else {
			tbl[key] = value
			r.Value = []byte(value)
		}
		return r
	}
	produce := func(rs []*kgo.Record) {
		t.Helper()
		if err := c.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var rs []*kgo.Record
	for i := range 30 {
		rs = append(rs, put("users", users, fmt.Sprintf("u%d", i), fmt.Sprintf(`{"name":"n%d"}`, i)))
		if i%2 == 0 {
			rs = append(rs, put("plans", plans, fmt.Sprintf("u%d", i), fmt.Sprintf(`{"tier":"t%d"}`, i)))
		}
	}
	produce(rs)
	topo := mustParse(t, tableJoinBrokerPipeline)
	runUntilCaughtUp(t, ctx, c, topo, "a")

	rs = rs[:0]
	for i := range 30 {
		key := fmt.Sprintf("u%d", i)
		switch i % 5 {
		case 0:
			rs = append(rs, put("users", users, key, fmt.Sprintf(`{"name":"m%d"}`, i)))
		case 1:
			rs = append(rs, put("plans", plans, key, fmt.Sprintf(`{"tier":"s%d"}`, i)))
		case 2:
			rs = append(rs, put("plans", plans, key, ""))
		case 3:
			rs = append(rs, put("users", users, key, ""))
		}
	}
	produce(rs)
	p := runUntilCaughtUp(t, ctx, c, topo, "b")
	if got := p.Stats().RestoreRecords.Load(); got != 45 {
		t.Errorf("the second member restored %d table records, want the 45 the first one committed past", got)
	}

	recs, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range recs {
		if r.Value == nil {
			if _, ok := got[string(r.Key)]; !ok {
				t.Errorf("tombstone for %s, which had no row", r.Key)
			}
			delete(got, string(r.Key))
			continue
		}
		got[string(r.Key)] = string(r.Value)
	}
	want := map[string]string{}
	for k, u := range users {
		name := u[len(`{"name":"`) : len(u)-2]
		plan := "null"
		if pl, ok := plans[k]; ok {
			plan = `"` + pl[len(`{"tier":"`):len(pl)-2] + `"`
		}
		want[k] = fmt.Sprintf(`{"plan":%s,"user":"%s"}`, plan, name)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("output row %s = %q, want %q", k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("output row %s = %q, want none (deleted)", k, g)
		}
	}
}
