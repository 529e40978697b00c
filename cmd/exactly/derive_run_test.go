package main

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/processor"
	"github.com/exactly-dev/exactly/registrytest"
	"github.com/exactly-dev/exactly/topology"
)

// runDerived derives the sink schemas of pipeline doc against a registry
// holding Avro schema for source's value, runs one record of each given
// value through it on the harness (each in its own transaction, every
// repartition delivered) and returns the sink's records decoded with the
// sink's own format. A record the sink's derived schema cannot hold
// fails the test: the schema must encode every value the pipeline makes.
func runDerived(t *testing.T, doc, source, schema string, values []map[string]any) []any {
	t.Helper()
	reg := registrytest.NewFake(t)
	reg.Fake.SeedSchema(source+"-value", 1, 1, sr.Schema{Schema: schema})
	topo, err := topology.Parse("derive.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := typeCheck(context.Background(), topo, reg.Deps()); err != nil {
		t.Fatalf("typeCheck: %v", err)
	}
	enc, err := format.Standard().New(format.Avro, format.PartValue, nil, reg.Deps())
	if err != nil {
		t.Fatal(err)
	}
	h, err := processor.NewHarnessDeps(topo, 1, time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC), reg.Deps())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for i, v := range values {
		b, err := enc.Encode(source, format.NoHeaders, v)
		if err != nil {
			t.Fatal(err)
		}
		err = h.Input(source, 0, []byte(strconv.Itoa(i)), b, h.Now())
		if err == nil {
			err = h.Commit()
		}
		if err == nil {
			err = h.DeliverAll()
		}
		if err == nil {
			err = h.Commit()
		}
		var re *processor.RecordError
		if errors.As(err, &re) {
			t.Fatalf("record %v: the sink's derived schema cannot hold what the pipeline made: %v", v, err)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	sink := topo.Sinks[0]
	dec, err := format.Standard().New(sink.Format.Name, format.PartValue, nil, reg.Deps())
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	for _, r := range h.Output(sink.Topic) {
		v, err := dec.Decode(r.Topic, format.NoHeaders, r.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

const nullableUser = `{"type": "record", "name": "User", "namespace": "shop", "fields": [
  {"name": "user_id", "type": "long"},
  {"name": "name", "type": "string"},
  {"name": "discount", "type": ["null", "long"], "default": null},
  {"name": "fee", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}], "default": null}
]}`

// TestDerivedSchemaHoldsNullAggregates: sum, avg, min and max of values
// that may be null are null for a group that has seen only nulls (SQL),
// so the derived schema's fields for them are nullable, with or without
// a scale.
func TestDerivedSchemaHoldsNullAggregates(t *testing.T) {
	for _, f := range []string{"avro", "protobuf", "json_schema"} {
		t.Run(f, func(t *testing.T) {
			out := runDerived(t, `name: nulls
sources:
  - {name: users, topic: users, format: avro}
steps:
  - name: per-name
    aggregate:
      group_by: value.name
      columns:
        n: {fn: count}
        s: {fn: sum, of: value.discount, scale: 2}
        a: {fn: avg, of: value.discount, scale: 1}
        lo: {fn: min, of: value.discount, scale: 0}
        hi: {fn: max, of: value.discount}
        fee: {fn: sum, of: value.fee, scale: 2}
        names: {fn: count_distinct, of: value.name}
      emit: on_commit
sinks:
  - {name: out, topic: out, format: `+f+`}
`, "users", nullableUser, []map[string]any{
				{"user_id": int64(1), "name": "ann", "discount": nil, "fee": nil},
			})
			if len(out) != 1 {
				t.Fatalf("%d rows, want 1: %v", len(out), out)
			}
			row := out[0].(map[string]any)
			for _, c := range []string{"s", "a", "lo", "hi", "fee"} {
				if row[c] != nil {
					t.Errorf("column %s = %v, want null (row %v)", c, row[c], row)
				}
			}
			if n := row["names"]; n != int64(1) {
				t.Errorf("column names = %v (%T), want the count 1 (row %v)", n, n, row)
			}
		})
	}
}

// TestDerivedSchemaComparesDecimals: a map step comparing a decimal field
// with a number (as the runtime does) derives: its field is a bool.
func TestDerivedSchemaComparesDecimals(t *testing.T) {
	out := runDerived(t, `name: cmp
sources:
  - {name: payments, topic: payments, format: avro}
steps:
  - name: flags
    map: '{"id": value.id, "ten": value.amount == 10, "listed": value.amount in [1, 10]}'
sinks:
  - {name: out, topic: out, format: avro}
`, "payments", string(readTestdata(t, "registry/derive/payments.avsc")), []map[string]any{{"id": int64(1), "amount": format.Number("10.00")}})
	if len(out) != 1 {
		t.Fatalf("%d records, want 1", len(out))
	}
	if row := out[0].(map[string]any); row["ten"] != true || row["listed"] != true {
		t.Errorf("record %v, want ten and listed true", row)
	}
}

// TestDerivedSchemaHoldsNullableFields: a map passing on a field that is
// a union with null in the source's schema derives a nullable field, and
// a record whose field is null is written.
func TestDerivedSchemaHoldsNullableFields(t *testing.T) {
	for _, f := range []string{"avro", "protobuf", "json_schema"} {
		t.Run(f, func(t *testing.T) {
			out := runDerived(t, `name: pass
sources:
  - {name: users, topic: users, format: avro}
steps:
  - name: shape
    map: '{"name": value.name, "d": value.discount}'
sinks:
  - {name: out, topic: out, format: `+f+`}
`, "users", nullableUser, []map[string]any{
				{"user_id": int64(1), "name": "ann", "discount": nil, "fee": nil},
				{"user_id": int64(2), "name": "bob", "discount": int64(5), "fee": nil},
			})
			if len(out) != 2 {
				t.Fatalf("%d records, want 2: %v", len(out), out)
			}
			if d := out[0].(map[string]any)["d"]; d != nil {
				t.Errorf("ann's d = %v, want null", d)
			}
			if d := out[1].(map[string]any)["d"]; d != int64(5) {
				t.Errorf("bob's d = %v (%T), want 5", d, d)
			}
		})
	}
}

// TestDerivedSchemaHoldsPickedAggregates: min, max, first and last keep
// their of's type, which the derived fields hold in all three formats:
// ints as ints (also nullable ones: an Avro union, a Protobuf optional
// int64), and doubles that happen to be whole (150.0) as doubles.
func TestDerivedSchemaHoldsPickedAggregates(t *testing.T) {
	cases := []struct {
		name, source, schema, columns string
		input                         map[string]any
		want                          map[string]any
	}{
		{"ints", "users", nullableUser, `
        hi: {fn: max, of: value.discount}
        lo: {fn: min, of: value.user_id, where: value.user_id > 0}
        first_id: {fn: first, of: value.user_id}
        last_id: {fn: last, of: value.user_id}`,
			map[string]any{"user_id": int64(7), "name": "ann", "discount": int64(5), "fee": nil},
			map[string]any{"hi": int64(5), "lo": int64(7), "first_id": int64(7), "last_id": int64(7)}},
		{"doubles", "orders", string(readTestdata(t, "avro/orders.avsc")), `
        hi: {fn: max, of: value.price}
        lo: {fn: min, of: value.price, where: value.quantity > 0}
        first_price: {fn: first, of: value.price}`,
			map[string]any{"order_id": int64(1), "user_id": int64(7), "product_id": "p", "category": "c", "price": 150.0, "quantity": int64(2)},
			map[string]any{"hi": 150.0, "lo": 150.0, "first_price": 150.0}},
	}
	for _, tc := range cases {
		group := map[string]string{"users": "value.name", "orders": "value.category"}[tc.source]
		for _, f := range []string{"avro", "protobuf", "json_schema"} {
			t.Run(tc.name+"/"+f, func(t *testing.T) {
				out := runDerived(t, `name: picked
sources:
  - {name: in, topic: `+tc.source+`, format: avro}
steps:
  - name: per-group
    aggregate:
      group_by: `+group+`
      columns:`+tc.columns+`
      emit: on_commit
sinks:
  - {name: out, topic: out, format: `+f+`}
`, tc.source, tc.schema, []map[string]any{tc.input})
				if len(out) != 1 {
					t.Fatalf("%d rows, want 1: %v", len(out), out)
				}
				row := out[0].(map[string]any)
				for c, want := range tc.want {
					got := row[c]
					// JSON has one number: 150.0 reads back as an int.
					if w, ok := want.(float64); ok && f == "json_schema" && got == int64(w) {
						continue
					}
					if got != want {
						t.Errorf("column %s = %v (%T), want %v (%T) (row %v)", c, got, got, want, want, row)
					}
				}
			})
		}
	}
}
