package processor

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/format"
)

// A step after an aggregate computes with the sums the store holds, not
// with a double's rounding of them: 0.10 + 0.20 is 0.30, three times it
// 0.90 (0.8999999999999999 in doubles), and a sum of cents beyond a
// double's 15-16 digits keeps its last cent. (A JSON source's numbers
// reach expressions as doubles, so each input stays within 15 digits.) Each output is checked
// against big.Rat over the same inputs.
func TestStepAfterAggregateSeesExactSums(t *testing.T) {
	topo := mustParse(t, src+`steps:
  - name: per-shop
    aggregate:
      group_by: key
      columns:
        total: {fn: sum, of: value.amount, scale: 2}
        n: {fn: count}
      emit: on_update
  - name: shaped
    map: '{"shop": key, "total": value.total, "thrice": value.total * 3, "per": value.total / value.n, "over": value.total > 0.3}'
sinks:
  - {name: out, topic: out}
`)
	// b: 201 amounts of 15 digits (a double holds each), whose sum has
	// 18 (no double holds it).
	b := make([]string, 201)
	for i := range b {
		b[i] = "9999999999999.99"
	}
	amounts := map[string][]string{"a": {"0.10", "0.20"}, "b": b}
	var ins []*kgo.Record
	for _, shop := range []string{"a", "b"} {
		for _, a := range amounts[shop] {
			ins = append(ins, &kgo.Record{Topic: "in", Key: []byte(shop), Value: []byte(`{"amount":` + a + `}`)})
		}
	}
	c := newCluster(t, "in", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.cl.ProduceSync(ctx, ins...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	runWith(t, ctx, c, topo, c.config("a"), func(p *Processor) bool { return p.Stats().Commits.Load() > 0 })
	out, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	last := map[string][]byte{} // by shop: the update with both amounts
	for _, r := range out {
		v, err := format.DecodeJSON(r.Value)
		if err != nil {
			t.Fatalf("%q: %v", r.Value, err)
		}
		shop, _ := v.(map[string]any)["shop"].(string)
		last[shop] = r.Value
	}
	rat := func(s string) *big.Rat {
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("not a number: %q", s)
		}
		return r
	}
	for _, shop := range []string{"a", "b"} {
		val := last[shop]
		if val == nil {
			t.Fatalf("no output for shop %s in %d records", shop, len(out))
		}
		v, _ := format.DecodeJSON(val)
		m := v.(map[string]any)
		total := new(big.Rat)
		for _, a := range amounts[shop] {
			total.Add(total, rat(a))
		}
		want := map[string]string{
			"total":  total.FloatString(2),
			"thrice": new(big.Rat).Mul(total, big.NewRat(3, 1)).FloatString(2),
			"per":    new(big.Rat).Quo(total, big.NewRat(int64(len(amounts[shop])), 1)).FloatString(3),
		}
		for f, w := range want {
			// The number's text as written, not through float64.
			n, ok := format.NumberText(val, []string{f})
			if !ok {
				t.Errorf("shop %s: no number %s in %s", shop, f, val)
				continue
			}
			if rat(string(n)).Cmp(rat(w)) != 0 {
				t.Errorf("shop %s: %s = %s, want %s (big.Rat)", shop, f, n, w)
			}
		}
		if over, want := m["over"], total.Cmp(rat("0.3")) > 0; over != want {
			t.Errorf("shop %s: total > 0.3 = %v, want %v", shop, over, want)
		}
	}
}
