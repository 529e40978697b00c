package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/registrytest"
	"github.com/exactly-dev/exactly/topology"
)

// TestDeriveSinkSchemaFormats runs pipelines whose sinks have no schema,
// given or registered, for Protobuf and JSON Schema values and Avro,
// Protobuf and JSON Schema keys: an aggregate's rows as Protobuf (key
// Avro), the same rows as JSON Schema (key JSON Schema), and a
// stream-table join's output as Protobuf (key JSON Schema). The derived
// schemas are registered under the sink topics' subjects at start, every
// output key and value carries its subject's id, and the records read
// back by id are the expected rows. Runs on real Kafka too
// (EXACTLY_TEST_BROKER=kafka), and on Apicurio Registry
// (EXACTLY_TEST_REGISTRY=apicurio).
func TestDeriveSinkSchemaFormats(t *testing.T) {
	orders, users := readTestdata(t, "avro/orders.avsc"), readTestdata(t, "registry/derive/users.avsc")
	revenueYAML, joinYAML := readTestdata(t, "registry/derive/category_revenue.yaml"), readTestdata(t, "registry/derive/proto_join.yaml")
	revenueGolden, lines := readTestdata(t, "avro/category_revenue.golden"), readTestdata(t, "aggregate/orders.jsonl")
	var orderRows []input
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		var in struct {
			Key   string
			Value map[string]any
		}
		if err := json.Unmarshal([]byte(l), &in); err != nil {
			t.Fatal(err)
		}
		for k, x := range in.Value {
			if f, ok := x.(float64); ok && k != "price" {
				in.Value[k] = int64(f)
			}
		}
		orderRows = append(orderRows, input{in.Key, in.Value})
	}
	order := func(id, user int64, price float64) input {
		return input{"o", map[string]any{"order_id": id, "user_id": user, "product_id": "p", "category": "c", "price": price, "quantity": int64(1)}}
	}
	tests := []struct {
		name       string
		yaml       string
		tables     map[string][]input // table topic -> rows, produced first
		in         []input
		key, value string // the sink's formats, for reading back
		want       string // latest row per key: decoded key, tab, value as JSON
	}{{
		name: "protobuf aggregate",
		yaml: strings.NewReplacer("topic: orders", "topic: derive-pb-orders",
			"topic: category-revenue\n    format: avro", "topic: derive-pb-out\n    format: protobuf\n    key_format: avro").Replace(string(revenueYAML)),
		in: orderRows, key: format.Avro, value: format.Protobuf, want: string(revenueGolden),
	}, {
		name: "json_schema aggregate",
		yaml: strings.NewReplacer("topic: orders", "topic: derive-js-orders",
			"topic: category-revenue\n    format: avro", "topic: derive-js-out\n    format: json_schema\n    key_format: json_schema").Replace(string(revenueYAML)),
		in: orderRows, key: format.JSONSchema, value: format.JSONSchema, want: string(revenueGolden),
	}, {
		name: "protobuf join",
		yaml: strings.NewReplacer("topic: orders", "topic: derive-pbj-orders", "topic: users", "topic: derive-pbj-users",
			"topic: enriched", "topic: derive-pbj-out").Replace(string(joinYAML)),
		tables: map[string][]input{"derive-pbj-users": {
			{"1", map[string]any{"user_id": int64(1), "name": "ann", "country": "NO"}},
			{"2", map[string]any{"user_id": int64(2), "name": "bob", "country": nil}},
		}},
		in:  []input{order(10, 1, 5.5), order(11, 2, 7), order(12, 3, 1)},
		key: format.JSONSchema, value: format.Protobuf,
		want: "1\t" + `{"country":"NO","order_id":10,"price":5.5,"user":"ann"}` + "\n" +
			"2\t" + `{"country":null,"order_id":11,"price":7.0,"user":"bob"}` + "\n" +
			"3\t" + `{"country":null,"order_id":12,"price":1.0,"user":""}` + "\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := registrytest.URL(t) // the first call may build the registry: before the deadline starts
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			topo, err := topology.Parse("derive.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			var topics []string
			for _, n := range slices.Concat(topo.Sources, topo.Sinks) {
				topics = append(topics, n.Topic)
			}
			addr := testBroker(t, 1, topics...)
			cl, err := sr.NewClient(sr.URLs(url))
			if err != nil {
				t.Fatal(err)
			}
			schemas := format.NewSchemas(cl, nil)
			defer schemas.Close()
			deps := format.Deps{Schemas: schemas}
			pcl, err := kgo.NewClient(kgo.SeedBrokers(addr))
			if err != nil {
				t.Fatal(err)
			}
			defer pcl.Close()
			produce := func(topic, schema string, rows []input) {
				t.Helper()
				enc, err := format.Standard().New(format.Avro, format.PartValue, format.Options{"schema": schema}, deps)
				if err != nil {
					t.Fatal(err)
				}
				var rs []*kgo.Record
				for _, r := range rows {
					b, err := enc.Encode(topic, format.NoHeaders, r.value)
					if err != nil {
						t.Fatal(err)
					}
					rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(r.key), Value: b})
				}
				if err := pcl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			for topic, rows := range tt.tables {
				produce(topic, string(users), rows)
			}
			produce(topo.Sources[0].Topic, string(orders), tt.in)

			if err := typeCheck(ctx, topo, deps); err != nil {
				t.Fatal(err)
			}
			sink := topo.Sinks[0]
			for _, f := range []topology.Format{sink.KeyFormat, sink.Format} {
				if f.Options["schema"] == nil {
					t.Fatalf("sink format %s: no schema derived", f)
				}
			}
			runTopology(t, ctx, []string{addr}, topo, deps)

			// The derived schemas are the subjects', of their formats,
			// and the records carry their ids.
			ids := map[format.Part]int{}
			for part, f := range map[format.Part]string{format.PartKey: tt.key, format.PartValue: tt.value} {
				subject := sink.Topic + "-" + part.String()
				ss, err := cl.SchemaByVersion(ctx, subject, -1)
				if err != nil {
					t.Fatalf("the derived %s schema is not registered under %s: %v", part, subject, err)
				}
				if want := map[string]sr.SchemaType{format.Avro: sr.TypeAvro, format.Protobuf: sr.TypeProtobuf, format.JSONSchema: sr.TypeJSON}[f]; ss.Type != want {
					t.Errorf("subject %s has a schema of type %v, want %v", subject, ss.Type, want)
				}
				ids[part] = ss.ID
			}
			out, err := broker.ReadCommitted(ctx, []string{addr}, []string{sink.Topic})
			if err != nil {
				t.Fatal(err)
			}
			kdec, err := format.Standard().New(tt.key, format.PartKey, nil, deps)
			if err != nil {
				t.Fatal(err)
			}
			vdec, err := format.Standard().New(tt.value, format.PartValue, nil, deps)
			if err != nil {
				t.Fatal(err)
			}
			latest := map[string]string{}
			for _, r := range out {
				for part, b := range map[format.Part][]byte{format.PartKey: r.Key, format.PartValue: r.Value} {
					if id, _, err := format.SplitWire(b); err != nil || id != ids[part] {
						t.Errorf("output %s %x: schema id %d (%v), want the derived schema's %d", part, b, id, err, ids[part])
					}
				}
				k, err := kdec.Decode(r.Topic, format.NoHeaders, r.Key)
				if err != nil {
					t.Fatalf("output key %x: %v", r.Key, err)
				}
				v, err := vdec.Decode(r.Topic, format.NoHeaders, r.Value)
				if err != nil {
					t.Fatalf("output value %x: %v", r.Value, err)
				}
				ks, ok := k.(string)
				if !ok {
					t.Fatalf("output key %#v, want a string", k)
				}
				j, err := format.EncodeJSON(v)
				if err != nil {
					t.Fatal(err)
				}
				latest[ks] = ks + "\t" + string(j)
			}
			var got []string
			for _, l := range latest {
				got = append(got, l)
			}
			slices.Sort(got)
			if g := strings.Join(got, "\n") + "\n"; g != tt.want {
				t.Errorf("rows read back:\n%s\nwant:\n%s", g, tt.want)
			}
		})
	}
}

// input is one record to produce: its key's text and its value.
type input struct {
	key   string
	value map[string]any
}
