package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/registrytest"
	"github.com/exactly-dev/exactly/topology"
)

var updateDerive = flag.Bool("update-derive", false, "rewrite testdata/registry/derive/*.golden")

// TestDeriveSinkSchema: an avro, protobuf or json_schema sink with no
// schema, given or registered, gets one derived from the CEL type of what
// reaches it (an aggregate's rows, a map literal's fields, a join's
// output), for its value and its key; a type too dynamic to write down is
// an error at the expression's file:line:col. Each pipeline's schemas (or
// error) are in its golden file: the value's, then the key's after
// "--- key".
func TestDeriveSinkSchema(t *testing.T) {
	orders, users := readTestdata(t, "avro/orders.avsc"), readTestdata(t, "registry/derive/users.avsc")
	payments := readTestdata(t, "registry/derive/payments.avsc")
	for _, name := range []string{"category_revenue", "map", "windowed", "nested", "dyn", "noscale", "notliteral",
		"proto_revenue", "proto_windowed", "proto_map", "proto_join", "proto_lists",
		"json_windowed", "json_map", "avro_key", "key_dyn", "late", "proto_message", "json_stream_join", "proto_fk_join", "proto_decimal", "avro_decimal"} {
		t.Run(name, func(t *testing.T) {
			reg := srfake.New()
			defer reg.Close()
			reg.SeedSchema("orders-value", 1, 1, sr.Schema{Schema: string(orders)})
			reg.SeedSchema("users-value", 1, 2, sr.Schema{Schema: string(users)})
			reg.SeedSchema("payments-value", 1, 3, sr.Schema{Schema: string(payments)})
			file := filepath.Join("../../testdata/registry/derive", name+".yaml")
			topo, err := topology.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := sr.NewClient(sr.URLs(reg.URL()))
			if err != nil {
				t.Fatal(err)
			}
			schemas := format.NewSchemas(cl, nil)
			defer schemas.Close()
			var got string
			if err := typeCheck(context.Background(), topo, format.Deps{Schemas: schemas}); err != nil {
				got = err.Error() + "\n"
			} else {
				got = derivedText(t, topo.Sinks[0].Format)
				if k := derivedText(t, topo.Sinks[0].KeyFormat); k != "" {
					got += "--- key\n" + k
				}
			}
			golden := filepath.Join("../../testdata/registry/derive", name+".golden")
			if *updateDerive {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("typeCheck(%s) derives\n%s\nwant\n%s", file, got, want)
			}
		})
	}
}

// derivedText is the schema option of f, JSON indented; "" when none.
func derivedText(t *testing.T, f topology.Format) string {
	t.Helper()
	text, _ := f.Options["schema"].(string)
	if text == "" || f.Name == format.Protobuf {
		return text
	}
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(text), "", "  "); err != nil {
		t.Fatalf("derived schema %q: %v", text, err)
	}
	return b.String() + "\n"
}

// TestDeriveSinkSchemaRegistered: a sink whose subject already has a
// schema writes with it; nothing is derived.
func TestDeriveSinkSchemaRegistered(t *testing.T) {
	orders, err := os.ReadFile("../../testdata/avro/orders.avsc")
	if err != nil {
		t.Fatal(err)
	}
	reg := registrytest.NewFake(t)
	reg.Fake.SeedSchema("orders-value", 1, 1, sr.Schema{Schema: string(orders)})
	reg.Fake.SeedSchema("order-lines-value", 1, 2, sr.Schema{Schema: `{"type":"record","name":"L","fields":[{"name":"id","type":"long"}]}`})
	topo, err := topology.Load("../../testdata/registry/derive/dyn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := typeCheck(context.Background(), topo, reg.Deps()); err != nil {
		t.Fatalf("typeCheck = %v, want nil: the registered schema is used", err)
	}
	if s, ok := topo.Sinks[0].Format.Options["schema"]; ok && !strings.Contains(s.(string), `"L"`) {
		t.Errorf("sink options got schema %v, want none", s)
	}
}

// TestDeriveSinkSchemaPipeline runs the seed's category revenue example
// over Avro with its sink's schema derived: the schema is registered
// under the sink topic's subject at start, every output record carries
// its id, and the rows read back by id are the JSON pipeline's golden
// rows. Runs on real Kafka too (EXACTLY_TEST_BROKER=kafka), and on
// Apicurio Registry (EXACTLY_TEST_REGISTRY=apicurio).
func TestDeriveSinkSchemaPipeline(t *testing.T) {
	reg := registrytest.New(t) // the first call may build the registry: before the deadline starts
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr := testBroker(t, 1, "derive-orders", "derive-revenue")
	deps := reg.Deps()
	rs := reg.AvroRecords(t, "derive-orders", "testdata/avro/orders.avsc", "testdata/aggregate/orders.jsonl", "price")
	pcl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	if err := pcl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	text, err := os.ReadFile("../../testdata/registry/derive/category_revenue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.NewReplacer("topic: orders", "topic: derive-orders", "topic: category-revenue", "topic: derive-revenue").Replace(string(text))
	topo, err := topology.Parse("derive.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := typeCheck(ctx, topo, deps); err != nil {
		t.Fatal(err)
	}
	runTopology(t, ctx, []string{addr}, topo, deps)

	// The derived schema is the subject's, and the records carry its id.
	ss, err := reg.Client.SchemaByVersion(ctx, "derive-revenue-value", -1)
	if err != nil {
		t.Fatalf("the derived schema is not registered: %v", err)
	}
	want, err := os.ReadFile("../../testdata/registry/derive/category_revenue.golden")
	if err != nil {
		t.Fatal(err)
	}
	a, err := avro.ParseWithCache(ss.Schema.Schema, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := avro.ParseWithCache(string(want), "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("registered schema %s, want category_revenue.golden's", ss.Schema.Schema)
	}
	out, err := broker.ReadCommitted(ctx, []string{addr}, []string{"derive-revenue"})
	if err != nil {
		t.Fatal(err)
	}
	got := reg.AvroTable(t, out, func(r *kgo.Record, _ any) {
		if id, _, err := format.SplitWire(r.Value); err != nil || id != ss.ID {
			t.Errorf("output %x: schema id %d (%v), want the derived schema's %d", r.Value, id, err, ss.ID)
		}
	})
	golden, err := os.ReadFile("../../testdata/avro/category_revenue.golden")
	if err != nil {
		t.Fatal(err)
	}
	if g := strings.Join(got, "\n") + "\n"; g != string(golden) {
		t.Errorf("rows read back:\n%s\nwant (testdata/avro/category_revenue.golden):\n%s", g, golden)
	}
}

// readTestdata returns the file at path below the repository's testdata/.
func readTestdata(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRegisteredSchemaLackingFields: a sink without a schema writes with
// its subject's registered one; when that lacks fields the pipeline
// writes (here tags and at, after the pipeline grew them), the start
// fails naming them, rather than every record losing them. A registered
// schema with every field (and more) is used as before.
func TestRegisteredSchemaLackingFields(t *testing.T) {
	orders := readTestdata(t, "avro/orders.avsc")
	for _, tc := range []struct {
		name, schema, wantErr string
	}{
		{"lacking", `{"type":"record","name":"L","fields":[{"name":"id","type":"long"},{"name":"user","type":"string"},{"name":"line","type":"double"},{"name":"big","type":"boolean"}]}`,
			"sink lines (topic order-lines): the schema registered for its value has no field tags, at, which the pipeline writes"},
		{"complete", `{"type":"record","name":"L","fields":[{"name":"id","type":"long"},{"name":"user","type":"string"},{"name":"line","type":"double"},{"name":"big","type":"boolean"},
			{"name":"tags","type":{"type":"array","items":"string"}},{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},{"name":"extra","type":"string","default":""}]}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := srfake.New()
			defer reg.Close()
			reg.SeedSchema("orders-value", 1, 1, sr.Schema{Schema: string(orders)})
			reg.SeedSchema("order-lines-value", 1, 2, sr.Schema{Schema: tc.schema})
			topo, err := topology.Load("../../testdata/registry/derive/map.yaml")
			if err != nil {
				t.Fatal(err)
			}
			cl, err := sr.NewClient(sr.URLs(reg.URL()))
			if err != nil {
				t.Fatal(err)
			}
			schemas := format.NewSchemas(cl, nil)
			defer schemas.Close()
			err = typeCheck(context.Background(), topo, format.Deps{Schemas: schemas})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("typeCheck = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("typeCheck = %v, want an error containing %q", err, tc.wantErr)
			}
			if _, derived := topo.Sinks[0].Format.Options["schema"]; derived {
				t.Errorf("the sink got a derived schema; want the registered one used")
			}
		})
	}
}
