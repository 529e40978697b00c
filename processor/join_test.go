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

const enrichPipeline = "../testdata/join/enrich.yaml"

// produceAll writes rs to the cluster, failing the test on any error.
func (c *cluster) produceAll(t *testing.T, ctx context.Context, rs ...*kgo.Record) {
	t.Helper()
	if err := c.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// checkOut reads what read_committed sees on out and holds it to want,
// "key value" per record, each exactly once, in any order.
func checkOut(t *testing.T, ctx context.Context, c *cluster, want []string) {
	t.Helper()
	recs, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range recs {
		seen[string(r.Key)+" "+string(r.Value)]++
	}
	var missing []string
	for _, w := range want {
		if seen[w] == 0 {
			missing = append(missing, w)
		}
		if seen[w] > 1 {
			t.Errorf("output %s %d times, want once", w, seen[w])
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d outputs missing, among them %s", len(missing), len(want), strings.Join(missing[:min(5, len(missing))], "; "))
	}
	if len(recs) != len(want) {
		t.Errorf("%d outputs, want %d", len(recs), len(want))
	}
}

// On a broker, with 3 partitions: the customers written before the member
// starts are all in the table before any order is joined (no order misses
// its customer at start-up), and a new member restores the table from the
// topic and joins the next orders against it.
func TestStreamTableJoinOnBroker(t *testing.T) {
	c := newCluster(t, "orders", "customers", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := mustParse(t, readFile(t, enrichPipeline))
	produce := func(topic string, n, from int, value func(i int) string) {
		t.Helper()
		var rs []*kgo.Record
		for i := from; i < from+n; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("c%d", i%30)), Value: []byte(value(i))})
		}
		c.produceAll(t, ctx, rs...)
	}
	produce("customers", 30, 0, func(i int) string { return fmt.Sprintf(`{"name":"n%d"}`, i) })
	produce("orders", 60, 0, func(i int) string { return fmt.Sprintf(`{"id":%d}`, i) })
	runUntilCaughtUp(t, ctx, c, topo, "a")
	produce("orders", 30, 60, func(i int) string { return fmt.Sprintf(`{"id":%d}`, i) })
	p := runUntilCaughtUp(t, ctx, c, topo, "b")
	if p.Stats().RestoreRecords.Load() < 30 {
		t.Errorf("the second member restored %d table records, want the 30 customers", p.Stats().RestoreRecords.Load())
	}
	var want []string
	for i := range 90 {
		want = append(want, fmt.Sprintf(`c%d {"customer":"n%d","order":%d}`, i%30, i%30, i))
	}
	checkOut(t, ctx, c, want)
}

// A global table on a broker: loaded whole before the member joins its
// group (every order written before the start finds its country, whatever
// partition either is in), its lag is a metric, and it is not consumed
// by the group.
func TestGlobalTableJoinOnBroker(t *testing.T) {
	c := newCluster(t, "orders", "countries", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var rs []*kgo.Record
	for i := range 20 {
		rs = append(rs, &kgo.Record{Topic: "countries", Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf(`{"name":"c%d"}`, i))})
	}
	for i := range 100 {
		rs = append(rs, &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf(`{"id":%d,"country":"k%d"}`, i, i%20))})
	}
	c.produceAll(t, ctx, rs...)
	topo := mustParse(t, readFile(t, "../testdata/join/by_country.yaml"))
	p := runUntilCaughtUp(t, ctx, c, topo, "a")
	if slices.Contains(p.Consumed(), "countries") {
		t.Errorf("the group consumes the global table's topic: %v", p.Consumed())
	}
	if lag := gaugeValue(t, p.m.GlobalTableLag.WithLabelValues("countries")); lag != 0 {
		t.Errorf("global table lag = %v after loading, want 0", lag)
	}
	var want []string
	for i := range 100 {
		want = append(want, fmt.Sprintf(`k%d {"country":"c%d","order":%d}`, i%20, i%20, i))
	}
	checkOut(t, ctx, c, want)
}

// On a broker: orders keyed by order id are rekeyed by customer, go
// through the join's repartition topic (created with the customers
// topic's partition count) and all find their customer.
func TestJoinAfterRekeyOnBroker(t *testing.T) {
	c := newCluster(t, "orders", "customers", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var rs []*kgo.Record
	for i := range 10 {
		rs = append(rs, &kgo.Record{Topic: "customers", Key: []byte(fmt.Sprintf("c%d", i)), Value: []byte(fmt.Sprintf(`{"name":"n%d"}`, i))})
	}
	for i := range 60 {
		rs = append(rs, &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprintf("o%d", i)), Value: []byte(fmt.Sprintf(`{"id":%d,"customer":"c%d"}`, i, i%10))})
	}
	c.produceAll(t, ctx, rs...)
	topo := mustParse(t, strings.Replace(readFile(t, enrichPipeline), "  - name: with-customer\n", "  - {name: by-customer, from: orders, key: value.customer}\n  - name: with-customer\n", 1))
	runUntilCaughtUp(t, ctx, c, topo, "a")
	var want []string
	for i := range 60 {
		want = append(want, fmt.Sprintf(`c%d {"customer":"n%d","order":%d}`, i%10, i%10, i))
	}
	checkOut(t, ctx, c, want)
}
