package processor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
)

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
	topo := mustParse(t, pipelineYAML("join/table_join.yaml", "TYPE", "left"))
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
	// The 45 table records the first member committed past, and the
	// join's own store: one entry per key whose row came out (30 users,
	// a left join).
	if got := p.Stats().RestoreRecords.Load(); got != 45+30 {
		t.Errorf("the second member restored %d records, want the 45 table records the first one committed past and the join store's 30", got)
	}

	got, orphans := outTable(t, ctx, c)
	for _, k := range orphans {
		t.Errorf("tombstone for %s, which had no row", k)
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
	checkRows(t, got, want, "want none (deleted)")
}

// outTable reads what read_committed sees on out as a table: the latest
// value per key, a tombstone deleting its key's row. orphans are the keys
// of tombstones that found no row to delete, in the order read.
func outTable(t *testing.T, ctx context.Context, c *cluster) (rows map[string]string, orphans []string) {
	t.Helper()
	recs, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	rows = map[string]string{}
	for _, r := range recs {
		if r.Value == nil {
			if _, ok := rows[string(r.Key)]; !ok {
				orphans = append(orphans, string(r.Key))
			}
			delete(rows, string(r.Key))
			continue
		}
		rows[string(r.Key)] = string(r.Value)
	}
	return rows, orphans
}

// checkRows holds the output rows got to want, key by key; extra says
// what a row got has and want does not should have been.
func checkRows(t *testing.T, got, want map[string]string, extra string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("output row %s = %q, want %q", k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("output row %s = %q, %s", k, g, extra)
		}
	}
}

// An inner foreign-key join on a broker, 3 partitions: auctions join the
// person their seller field names through the join's subscription and
// response topics (created by the member, co-partitioned with the persons
// and auctions topics). Changes written while no member runs (sellers
// renamed and deleted, auctions moved to another seller or deleted) are
// joined by the next member, which restores the tables to the group's
// committed offsets and the join's subscriptions from its changelog. The
// output read as a table is the join of the final tables.
func TestForeignKeyJoinOnBroker(t *testing.T) {
	c := newCluster(t, "auctions", "persons", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	persons, auctions := map[string]string{}, map[string][2]string{} // auction: item, seller
	var rs []*kgo.Record
	person := func(k, name string) {
		r := &kgo.Record{Topic: "persons", Key: []byte(k)}
		if name == "" {
			delete(persons, k)
		} else {
			persons[k] = name
			r.Value = []byte(fmt.Sprintf(`{"name":%q}`, name))
		}
		rs = append(rs, r)
	}
	auction := func(k, item, seller string) {
		r := &kgo.Record{Topic: "auctions", Key: []byte(k)}
		if item == "" {
			delete(auctions, k)
		} else {
			auctions[k] = [2]string{item, seller}
			r.Value = []byte(fmt.Sprintf(`{"item":%q,"seller":%q}`, item, seller))
		}
		rs = append(rs, r)
	}
	produce := func() {
		t.Helper()
		if err := c.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		rs = rs[:0]
	}
	for i := range 10 {
		person(fmt.Sprintf("p%d", i), fmt.Sprintf("n%d", i))
	}
	for i := range 40 {
		auction(fmt.Sprintf("a%d", i), fmt.Sprintf("i%d", i), fmt.Sprintf("p%d", i%12)) // p10, p11 never exist
	}
	produce()
	topo := mustParse(t, pipelineYAML("join/foreign_key.yaml", "TYPE", "inner"))
	runUntilCaughtUp(t, ctx, c, topo, "a")

	person("p1", "renamed")
	person("p2", "")
	person("p10", "late")
	for i := 0; i < 40; i += 3 {
		auction(fmt.Sprintf("a%d", i), fmt.Sprintf("j%d", i), fmt.Sprintf("p%d", (i+5)%12))
	}
	auction("a4", "", "")
	produce()
	runUntilCaughtUp(t, ctx, c, topo, "b")

	got, _ := outTable(t, ctx, c)
	want := map[string]string{}
	for k, a := range auctions {
		if name, ok := persons[a[1]]; ok {
			want[k] = fmt.Sprintf(`{"item":%q,"seller":%q}`, a[0], name)
		}
	}
	checkRows(t, got, want, "want none")
}

// A foreign-key join's store holds, per right key, the left keys naming
// it now: a left row that moves to another right key or is deleted
// unsubscribes from the old one, so the store does not grow with every
// key ever named.
func TestForeignKeyJoinUnsubscribes(t *testing.T) {
	topo := mustParse(t, pipelineYAML("join/foreign_key.yaml", "TYPE", "inner"))
	h, err := NewHarness(topo, 3, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	tp := kgo.StickyKeyPartitioner(nil).ForTopic("auctions")
	input := func(topic, key, value string) {
		t.Helper()
		r := &kgo.Record{Key: []byte(key)}
		var v []byte
		if value != "" {
			v = []byte(value)
		}
		if err := h.Input(topic, int32(tp.Partition(r, 3)), []byte(key), v, time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	entries := func() (n int64) {
		for _, st := range h.g.nodes["with-seller"].agg.stores {
			n += st.Len()
		}
		return n
	}
	for i := range 10 {
		input("persons", fmt.Sprintf("p%d", i), `{"name":"n"}`)
	}
	for i := range 10 {
		input("auctions", fmt.Sprintf("a%d", i), fmt.Sprintf(`{"item":"i","seller":"p%d"}`, i))
	}
	if err := h.Settle(); err != nil {
		t.Fatal(err)
	}
	if n := entries(); n != 10 {
		t.Fatalf("%d persons with subscribers, want 10", n)
	}
	for i := range 10 {
		if i < 5 {
			input("auctions", fmt.Sprintf("a%d", i), `{"item":"i","seller":"p0"}`) // all to p0
		} else {
			input("auctions", fmt.Sprintf("a%d", i), "") // deleted
		}
	}
	if err := h.Settle(); err != nil {
		t.Fatal(err)
	}
	if n := entries(); n != 1 {
		t.Errorf("%d persons with subscribers, want 1 (p0)", n)
	}
}
