package processor

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/registrytest"
)

const decimalIn = `{"type":"record","name":"Payment","namespace":"shop","fields":[
{"name":"id","type":"long"},{"name":"shop","type":"string"},
{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
{"name":"qty","type":"int"}]}`

const decimalPipeline = `name: decimals
sources:
  - {name: in, topic: in, format: avro}
steps:
  - name: big
    filter: value.amount >= 10 && 1000 != value.amount
  - name: shape
    map: '{"id": value.id, "shop": value.shop, "line": value.amount * value.qty, "tenth": value.amount / 10, "amount": value.amount}'
  - name: per-shop
    aggregate:
      group_by: value.shop
      columns:
        total: {fn: sum, of: value.line}
      emit: on_commit
sinks:
  - {name: lines-out, topic: lines, from: shape}
  - {name: totals, topic: totals, from: per-shop}
`

// TestAvroDecimalsAreExact: Avro decimals reach expressions as exact
// decimals (compared with ints on either side, multiplied by an int,
// divided) and leave them exact, in the JSON lines and in the sums of an
// aggregate. Every output is checked against big.Rat arithmetic over
// the same generated payments, not against the engine's own decimals.
func TestAvroDecimalsAreExact(t *testing.T) {
	c := newCluster(t, "in", "lines", "totals")
	e := newAvroEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	enc, err := format.Standard().New(format.Avro, format.PartValue, format.Options{"schema": decimalIn}, e.Deps())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 9))
	type payment struct {
		id     int64
		shop   string
		amount string
		qty    int64
	}
	var pays []payment
	var rs []*kgo.Record
	for i := range 300 {
		cents := rng.Int64N(200_000) - 1_000
		if i%50 == 0 {
			cents = 100_000 // 1000.00: filtered out by 1000 != value.amount
		}
		p := payment{id: int64(i), shop: fmt.Sprintf("s%d", rng.IntN(4)), amount: new(big.Rat).SetFrac64(cents, 100).FloatString(2), qty: rng.Int64N(7)}
		pays = append(pays, p)
		b, err := enc.Encode("in", format.NoHeaders, map[string]any{"id": p.id, "shop": p.shop, "amount": format.Number(p.amount), "qty": p.qty})
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, &kgo.Record{Topic: "in", Key: []byte(p.shop), Value: b})
	}
	if err := c.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg := c.config("a")
	cfg.Formats = e.Deps()
	runWith(t, ctx, c, mustParse(t, decimalPipeline), cfg, func(p *Processor) bool { return p.Stats().Commits.Load() > 0 })

	rat := func(s string) *big.Rat {
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("not a number: %q", s)
		}
		return r
	}
	wantLines := map[int64]payment{}
	wantTotals := map[string]*big.Rat{}
	for _, p := range pays {
		a := rat(p.amount)
		if a.Cmp(big.NewRat(10, 1)) < 0 || a.Cmp(big.NewRat(1000, 1)) == 0 {
			continue
		}
		wantLines[p.id] = p
		if wantTotals[p.shop] == nil {
			wantTotals[p.shop] = new(big.Rat)
		}
		wantTotals[p.shop].Add(wantTotals[p.shop], new(big.Rat).Mul(a, big.NewRat(p.qty, 1)))
	}

	out, err := broker.ReadCommitted(ctx, c.addrs, []string{"lines", "totals"})
	if err != nil {
		t.Fatal(err)
	}
	gotLines := 0
	gotTotals := map[string]string{}
	for _, r := range out {
		v, err := format.DecodeJSON(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		m := v.(map[string]any)
		// The exact text as written: decode the fields as numbers
		// without going through float64.
		text := func(field string) string {
			n, ok := format.NumberText(r.Value, []string{field})
			if !ok {
				t.Fatalf("%s: no number %s in %s", r.Topic, field, r.Value)
			}
			return string(n)
		}
		switch r.Topic {
		case "lines":
			gotLines++
			id := m["id"].(int64)
			p, ok := wantLines[id]
			if !ok {
				t.Errorf("line %s: its payment does not pass the filter", r.Value)
				continue
			}
			if got := text("amount"); got != p.amount {
				t.Errorf("line %d amount %s, want %s as written", id, got, p.amount)
			}
			a := rat(p.amount)
			if got, want := rat(text("line")), new(big.Rat).Mul(a, big.NewRat(p.qty, 1)); got.Cmp(want) != 0 {
				t.Errorf("line %d: %s * %d = %s, want %s", id, p.amount, p.qty, text("line"), want.FloatString(2))
			}
			if got, want := rat(text("tenth")), new(big.Rat).Quo(a, big.NewRat(10, 1)); got.Cmp(want) != 0 {
				t.Errorf("line %d: %s / 10 = %s, want %s", id, p.amount, text("tenth"), want.FloatString(3))
			}
		case "totals":
			gotTotals[string(r.Key)] = text("total")
		}
	}
	if gotLines != len(wantLines) {
		t.Errorf("%d lines, want %d", gotLines, len(wantLines))
	}
	for shop, want := range wantTotals {
		key := shop
		got, ok := gotTotals[key]
		if !ok {
			t.Errorf("no total for %s (have %v)", key, gotTotals)
			continue
		}
		if rat(got).Cmp(want) != 0 {
			t.Errorf("total of %s = %s, want %s", shop, got, want.FloatString(2))
		}
	}
}

// TestDecimalsSurviveRepartition: an aggregate grouping by another field
// than the key reads its records back from a repartition topic, and sees
// the same exact decimals the steps before it saw: its of and where
// compute exactly (0.10 * 3 is 0.30, not 0.30000000000000004), a decimal
// of more than 17 digits keeps its cents, and max keeps the scale. The
// sums are checked against big.Rat arithmetic.
func TestDecimalsSurviveRepartition(t *testing.T) {
	r := registrytest.NewFake(t)
	enc, err := format.Standard().New(format.Avro, format.PartValue, format.Options{"schema": decimalIn}, r.Deps())
	if err != nil {
		t.Fatal(err)
	}
	topo := mustParse(t, `name: rep
sources:
  - {name: in, topic: in, format: avro}
steps:
  - name: per-shop
    aggregate:
      group_by: value.shop
      columns:
        lines: {fn: sum, of: value.amount * value.qty}
        thirds: {fn: count, where: value.amount * 3 == 0.3}
        top: {fn: max, of: value.amount}
      emit: on_commit
sinks:
  - {name: out, topic: out, from: per-shop}
`)
	h, err := NewHarnessDeps(topo, 2, time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC), r.Deps())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	pays := []struct {
		shop, amount string
		qty          int64
	}{
		{"a", "0.10", 3},
		{"a", "12345678901234567.89", 1},
		{"b", "0.10", 7},
		{"b", "0.20", 1},
	}
	lines := map[string]*big.Rat{}
	thirds := map[string]int64{}
	for i, p := range pays {
		b, err := enc.Encode("in", format.NoHeaders, map[string]any{"id": int64(i), "shop": p.shop, "amount": format.Number(p.amount), "qty": p.qty})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Input("in", 0, []byte(strconv.Itoa(i)), b, h.Now()); err != nil {
			t.Fatal(err)
		}
		if err := h.Commit(); err != nil {
			t.Fatal(err)
		}
		a, _ := new(big.Rat).SetString(p.amount)
		if lines[p.shop] == nil {
			lines[p.shop] = new(big.Rat)
		}
		lines[p.shop].Add(lines[p.shop], new(big.Rat).Mul(a, big.NewRat(p.qty, 1)))
		if new(big.Rat).Mul(a, big.NewRat(3, 1)).Cmp(big.NewRat(3, 10)) == 0 {
			thirds[p.shop]++
		}
	}
	if err := h.DeliverAll(); err != nil {
		t.Fatal(err)
	}
	if err := h.Commit(); err != nil {
		t.Fatal(err)
	}
	rows := map[string][]byte{}
	for _, rec := range h.Output("out") {
		rows[string(rec.Key)] = rec.Value
	}
	top := map[string]string{"a": "12345678901234567.89", "b": "0.20"}
	for shop, want := range lines {
		row, ok := rows[shop]
		if !ok {
			t.Fatalf("no row for shop %s in %q", shop, rows)
		}
		got, ok := format.NumberText(row, []string{"lines"})
		if r, ok2 := new(big.Rat).SetString(string(got)); !ok || !ok2 || r.Cmp(want) != 0 {
			t.Errorf("shop %s: lines = %s, want %s (row %s)", shop, got, want.FloatString(2), row)
		}
		if got, _ := format.NumberText(row, []string{"thirds"}); string(got) != strconv.FormatInt(thirds[shop], 10) {
			t.Errorf("shop %s: thirds = %s, want %d (row %s)", shop, got, thirds[shop], row)
		}
		if got, _ := format.NumberText(row, []string{"top"}); string(got) != top[shop] {
			t.Errorf("shop %s: top = %s, want %s (row %s)", shop, got, top[shop], row)
		}
	}
}

// TestDecimalsInJoinBuffers: a stream-stream join keeps each side's
// records in a buffer until the other side's arrive; a buffered record's
// decimals come back exact, so other.amount is the decimal it was.
func TestDecimalsInJoinBuffers(t *testing.T) {
	r := registrytest.NewFake(t)
	enc, err := format.Standard().New(format.Avro, format.PartValue, format.Options{"schema": decimalIn}, r.Deps())
	if err != nil {
		t.Fatal(err)
	}
	topo := mustParse(t, `name: pairs
sources:
  - {name: pays, topic: pays, format: avro}
  - {name: refunds, topic: refunds, format: avro}
steps:
  - name: joined
    from: pays
    join:
      stream: refunds
      type: inner
      within: 1h
      output: '{"net": value.amount - other.amount, "same": value.amount * 3 == other.amount * 3, "refund": other.amount}'
sinks:
  - {name: out, topic: out}
`)
	h, err := NewHarnessDeps(topo, 1, time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC), r.Deps())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, in := range []struct{ topic, amount string }{{"refunds", "0.10"}, {"pays", "0.10"}} {
		b, err := enc.Encode(in.topic, format.NoHeaders, map[string]any{"id": int64(1), "shop": "a", "amount": format.Number(in.amount), "qty": int64(1)})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Input(in.topic, 0, []byte("k"), b, h.Now()); err != nil {
			t.Fatal(err)
		}
		if err := h.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.DeliverAll(); err != nil {
		t.Fatal(err)
	}
	if err := h.Commit(); err != nil {
		t.Fatal(err)
	}
	out := h.Output("out")
	if len(out) != 1 {
		t.Fatalf("%d joined records, want 1", len(out))
	}
	if got, want := string(out[0].Value), `{"net":0.00,"refund":0.10,"same":true}`; got != want {
		t.Errorf("joined %s, want %s", got, want)
	}
}
