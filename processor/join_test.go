package processor

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
)

var joinedOrder = regexp.MustCompile(`^\{"customer":"n\d+","order":(\d+)\}$`)

const joinBrokerPipeline = `name: enrich
sources:
  - {name: orders, topic: orders}
  - {name: customers, topic: customers, table: true}
steps:
  - name: with-customer
    join:
      table: customers
      output: '{"order": value.id, "customer": table.name}'
sinks:
  - {name: out, topic: out}
`

// On a broker, with 3 partitions: the customers written before the member
// starts are all in the table before any order is joined (no order misses
// its customer at start-up), and a new member restores the table from the
// topic and joins the next orders against it.
func TestStreamTableJoinOnBroker(t *testing.T) {
	c := newCluster(t, "orders", "customers", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := mustParse(t, joinBrokerPipeline)
	produce := func(topic string, n, from int, value func(i int) string) {
		t.Helper()
		var rs []*kgo.Record
		for i := from; i < from+n; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("c%d", i%30)), Value: []byte(value(i))})
		}
		if err := c.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce("customers", 30, 0, func(i int) string { return fmt.Sprintf(`{"name":"n%d"}`, i) })
	produce("orders", 60, 0, func(i int) string { return fmt.Sprintf(`{"id":%d}`, i) })
	runUntilCaughtUp(t, ctx, c, topo, "a")
	produce("orders", 30, 60, func(i int) string { return fmt.Sprintf(`{"id":%d}`, i) })
	p := runUntilCaughtUp(t, ctx, c, topo, "b")
	if p.Stats().RestoreRecords.Load() < 30 {
		t.Errorf("the second member restored %d table records, want the 30 customers", p.Stats().RestoreRecords.Load())
	}
	recs, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		v := string(r.Value)
		m := joinedOrder.FindStringSubmatch(v)
		if m == nil {
			t.Errorf("output %s: not a joined order", v)
			continue
		}
		id, _ := strconv.Atoi(m[1])
		if want := fmt.Sprintf(`{"customer":"n%d","order":%d}`, id%30, id); v != want || string(r.Key) != fmt.Sprintf("c%d", id%30) {
			t.Errorf("output %s %s, want %s", r.Key, v, want)
		}
		if seen[v] {
			t.Errorf("output %s twice", v)
		}
		seen[v] = true
	}
	if len(seen) != 90 {
		var missing []string
		for i := range 90 {
			if v := fmt.Sprintf(`{"customer":"n%d","order":%d}`, i%30, i); !seen[v] {
				missing = append(missing, fmt.Sprint(i))
			}
		}
		t.Errorf("%d orders joined, want 90; missing %s", len(seen), strings.Join(missing, ","))
	}
}
