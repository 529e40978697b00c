package processor

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

// The pipelines of testdata/registry over the protobuf and json_schema
// formats: on the harness against golden outputs, and on the embedded
// broker for the error policy. Input records are those Confluent's Python
// serializers wrote (format/testdata/registry/vectors.json) plus a few
// the format writes itself.

// The registry of these tests: the ids are the ones the Python
// serializers' records carry (1 and 2), then the sinks' schemas.
func schemaFormatsRegistry(t *testing.T) format.Deps {
	t.Helper()
	r := registrytest.NewFake(t)
	r.SeedShop(t)
	r.Fake.SeedSchema("order-summaries-value", 1, 3, sr.Schema{Type: sr.TypeProtobuf, Schema: registrytest.ReadFile(t, "testdata/registry/summary.proto")})
	r.Fake.SeedSchema("order-totals-value", 1, 4, sr.Schema{Type: sr.TypeJSON, Schema: registrytest.ReadFile(t, "testdata/registry/totals.schema.json")})
	return r.Deps()
}

// pythonVectors returns the records of format/testdata/registry/vectors.json
// by name.
func pythonVectors(t *testing.T) map[string][]byte {
	t.Helper()
	raw, err := os.ReadFile("../format/testdata/registry/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct{ Name, Hex string }
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, v := range vs {
		if out[v.Name], err = hex.DecodeString(v.Hex); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

type namedRecord struct {
	name  string
	value []byte
}

// schemaFormatsInputs are the records of each pipeline's source topic:
// good ones and every kind of bad one.
func schemaFormatsInputs(t *testing.T, deps format.Deps) map[string][]namedRecord {
	t.Helper()
	py := pythonVectors(t)
	encode := func(name string, opts format.Options, topic string, v any) []byte {
		c, err := format.Standard().New(name, format.PartValue, opts, deps)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Encode(topic, format.NoHeaders, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	shipped := encode(format.Protobuf, nil, "orders", map[string]any{
		"order_id": "o-2", "status": "SHIPPED", "placed_at": time.Date(2024, 3, 2, 8, 0, 0, 0, time.UTC),
		"lines": []any{map[string]any{"sku": "c", "qty": int64(1)}}, "total": format.Number("10.00"), "iban": "DE02",
	})
	id := func(n byte, rest ...byte) []byte { return append([]byte{0, 0, 0, 0, n}, rest...) }
	return map[string][]namedRecord{
		"orders": {
			{"order_full (python)", py["order_full"]},
			{"order_empty (python): never placed", py["order_empty"]},
			{"refund (python): a Refund, message index [1]", py["refund"]},
			{"order_shipped", shipped},
			{"unknown schema id", id(99, 0)},
			{"no magic byte", []byte(`{"order_id":"o-9"}`)},
			{"message index past the file's", id(1, 2, 8)},
			{"bytes that do not parse", id(1, 0, 0x0a, 0xff, 0x01)},
			{"id of a json schema", id(2, 0)},
		},
		"orders-json": {
			{"json_full (python)", py["json_full"]},
			{"json_min (python)", py["json_min"]},
			{"total above the sink schema's maximum", encode(format.JSONSchema, nil, "orders-json", map[string]any{"order_id": "o-3", "quantity": int64(100), "price": 20.0})},
			{"fails the source schema", id(2, []byte(`{"order_id":"o-4","quantity":0,"price":1}`)...)},
			{"not JSON", id(2, []byte(`{"order_id":`)...)},
		},
	}
}

var schemaFormatPipelines = []struct{ file, topic, sink string }{
	{"protobuf", "orders", "order-summaries"},
	{"json_schema", "orders-json", "order-totals"},
}

// TestSchemaFormatPipelines runs testdata/registry/{protobuf,json_schema,protobuf_to_avro}.yaml
// on the harness, one record per transaction, and compares what each
// record became (the sink's records decoded, or the record error with
// the class its dead letter would carry) with the .golden files.
func TestSchemaFormatPipelines(t *testing.T) {
	deps := schemaFormatsRegistry(t)
	inputs := schemaFormatsInputs(t, deps)
	// Protobuf in, Avro out, besides the pipelines of the bad-input test.
	pipelines := append(slices.Clone(schemaFormatPipelines), struct{ file, topic, sink string }{"protobuf_to_avro", "orders", "order-summaries-avro"})
	for _, pl := range pipelines {
		t.Run(pl.file, func(t *testing.T) {
			topo, err := topology.Load(filepath.Join("..", "testdata", "registry", pl.file+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			h, err := NewHarnessDeps(topo, 1, time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC), deps)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			sinkCodec, err := format.Standard().New(topo.Sinks[0].Format.Name, format.PartValue, nil, deps)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i, in := range inputs[pl.topic] {
				before := len(h.Output(pl.sink))
				err := h.Input(pl.topic, 0, []byte("k"+strconv.Itoa(i)), in.value, h.Now())
				fmt.Fprintf(&b, "%s:\n", in.name)
				var re *RecordError
				switch {
				case errors.As(err, &re):
					h.Abort()
					fmt.Fprintf(&b, "  error node=%s phase=%s class=%s: %v\n", re.Node, re.Phase, errorClass(re), re.Err)
					continue
				case err != nil:
					t.Fatalf("Input(%s) error: %v", in.name, err)
				}
				if err := h.Commit(); err != nil {
					t.Fatal(err)
				}
				out := h.Output(pl.sink)[before:]
				if len(out) == 0 {
					b.WriteString("  filtered out\n")
				}
				for _, r := range out {
					v, err := sinkCodec.Decode(r.Topic, format.NoHeaders, r.Value)
					if err != nil {
						t.Fatalf("%s: the sink wrote a record its own format cannot read: %v", in.name, err)
					}
					text, err := format.EncodeJSON(v)
					if err != nil {
						t.Fatal(err)
					}
					fmt.Fprintf(&b, "  %s key=%s header=%x %s\n", r.Topic, r.Key, r.Value[:5], text)
				}
			}
			golden := filepath.Join("..", "testdata", "registry", pl.file+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != string(want) {
				t.Errorf("outputs =\n%s\nwant (%s)\n%s", b.String(), golden, want)
			}
		})
	}
}

// TestSchemaFormatBadRecords runs the protobuf and json_schema pipelines
// on the embedded broker under each error policy: dead_letter writes
// every bad record unchanged with its exactly.error.class, skip drops and
// counts them, stop stops at the first.
func TestSchemaFormatBadRecords(t *testing.T) {
	deps := schemaFormatsRegistry(t)
	inputs := schemaFormatsInputs(t, deps)
	wantClass := map[string]string{
		"unknown schema id":                     "unknown_schema",
		"no magic byte":                         "wire_format",
		"message index past the file's":         "schema_mismatch",
		"bytes that do not parse":               "schema_mismatch",
		"id of a json schema":                   "schema_mismatch",
		"total above the sink schema's maximum": "schema_mismatch",
		"fails the source schema":               "schema_mismatch",
		"not JSON":                              "schema_mismatch",
	}
	for _, policy := range []string{"dead_letter", "skip", "stop"} {
		t.Run(policy, func(t *testing.T) {
			c := newCluster(t, "orders", "orders-json", "order-summaries", "order-totals")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			good := 0
			for _, pl := range schemaFormatPipelines {
				var rs []*kgo.Record
				for i, in := range inputs[pl.topic] {
					rs = append(rs, &kgo.Record{Topic: pl.topic, Partition: 0, Key: []byte(strconv.Itoa(i)), Value: in.value})
				}
				mc := newTestClientOpts(t, c.addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
				if err := mc.ProduceSync(ctx, rs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			for _, pl := range schemaFormatPipelines {
				text, err := os.ReadFile(filepath.Join("..", "testdata", "registry", pl.file+".yaml"))
				if err != nil {
					t.Fatal(err)
				}
				yaml := string(text)
				name := "shop-" + strings.ReplaceAll(pl.file, "_", "-")
				policyLine := "on_error: " + policy
				if policy == "dead_letter" {
					policyLine = "dead_letter_topic: " + name + "-dlq"
				}
				yaml = strings.Replace(yaml, "\nsources:", "\n"+policyLine+"\n\nsources:", 1)
				topo, err := topology.Parse(pl.file+".yaml", []byte(yaml))
				if err != nil {
					t.Fatal(err)
				}
				cfg := c.config("a")
				cfg.Formats = deps
				if policy == "stop" {
					p, err := New(topo, cfg)
					if err != nil {
						t.Fatal(err)
					}
					err = p.Run(ctx)
					var re *RecordError
					if !errors.As(err, &re) || format.Class(re.Err) == "" {
						t.Errorf("%s: Run() = %v, want it stopped by a classed record error", pl.file, err)
					}
					continue
				}
				p := runWith(t, ctx, c, topo, cfg, func(p *Processor) bool { return p.Stats().Commits.Load() > 0 })
				out, err := broker.ReadCommitted(ctx, c.addrs, []string{pl.sink})
				if err != nil {
					t.Fatal(err)
				}
				good += len(out)
				var bad []namedRecord
				for _, in := range inputs[pl.topic] {
					if wantClass[in.name] != "" {
						bad = append(bad, in)
					}
				}
				if policy == "skip" {
					if n := p.Stats().Skipped.Load(); n != int64(len(bad)) {
						t.Errorf("%s: Stats().Skipped = %d, want %d", pl.file, n, len(bad))
					}
					continue
				}
				dlq, err := broker.ReadCommitted(ctx, c.addrs, []string{name + "-dlq"})
				if err != nil {
					t.Fatal(err)
				}
				if len(dlq) != len(bad) {
					t.Errorf("%s: the dead-letter topic holds %d records, want %d", pl.file, len(dlq), len(bad))
				}
				for _, r := range dlq {
					h := headers(r)
					off, _ := strconv.Atoi(h[HeaderOffset])
					if off >= len(inputs[pl.topic]) {
						t.Errorf("%s: dead letter of offset %d, which was not written", pl.file, off)
						continue
					}
					in := inputs[pl.topic][off]
					if h[HeaderClass] != wantClass[in.name] || string(r.Value) != string(in.value) {
						t.Errorf("%s: %s dead-lettered with class %q, value %x; want class %q, the original %x (message %q)",
							pl.file, in.name, h[HeaderClass], r.Value, wantClass[in.name], in.value, h[HeaderMessage])
					}
				}
			}
			if policy != "stop" && good != 4 {
				t.Errorf("the sinks hold %d records, want the 4 good ones (2 orders placed, 2 json totals)", good)
			}
		})
	}
}
