package processor

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/metrics"
	"github.com/exactly-dev/exactly/registrytest"
	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
)

// The benchmarks below measure the graph alone, the processing half of a
// record's cost, on the inputs of cmd/bench's modes c and d (the other
// half is the client's). Run with -benchmem; cmd/bench measures the whole.

// benchInput returns n JSON records shaped like cmd/bench's input.
func benchInput(n, keys int) []*kgo.Record {
	rs := make([]*kgo.Record, n)
	ts := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	for i := range rs {
		k := "u" + strconv.Itoa(i%keys)
		v := `{"id":` + strconv.Itoa(i) + `,"amount":` + strconv.Itoa((i*7919)%1000) + "." + strconv.Itoa(1+i%9) +
			`,"user":"` + k + `","pad":"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789"}`
		rs[i] = &kgo.Record{Topic: "in", Partition: 0, Offset: int64(i), Key: []byte(k), Value: []byte(v), Timestamp: ts}
	}
	return rs
}

func benchGraph(b *testing.B, yaml string, commitEvery int) {
	benchGraphWith(b, yaml, commitEvery, format.Deps{}, benchInput(10_000, 1000))
}

func benchGraphWith(b *testing.B, yaml string, commitEvery int, deps format.Deps, in []*kgo.Record) {
	topo, err := topology.Parse("bench.yaml", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	g, err := newGraph(topo, metrics.NewPipeline(nil, topo.Name), deps)
	if err != nil {
		b.Fatal(err)
	}
	mem := statestore.NewMemory()
	defer mem.Close()
	for _, a := range g.aggs {
		st, err := mem.Open(a.changelog, 0)
		if err != nil {
			b.Fatal(err)
		}
		a.stores[0] = st
	}
	if err := g.prepare(context.Background()); err != nil {
		b.Fatal(err)
	}
	var outs int
	emit := func(*kgo.Record) { outs++ }
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := g.run(in[i%len(in)], emit); err != nil {
			b.Fatal(err)
		}
		if (i+1)%commitEvery == 0 {
			for _, a := range g.aggs {
				if err := g.flush(a, emit, func(*kgo.Record) {}); err != nil {
					b.Fatal(err)
				}
				for _, st := range a.stores {
					if err := st.Commit(int64(i)); err != nil {
						b.Fatal(err)
					}
				}
				clear(a.dirty)
				clear(a.rows)
			}
		}
	}
	if outs == 0 && b.N > 100 {
		b.Fatal("no output")
	}
}

func BenchmarkGraphPassThrough(b *testing.B) {
	benchGraph(b, `name: b
sources:
  - {name: in, topic: in, format: bytes, key_format: bytes}
sinks:
  - {name: out, topic: out, format: bytes, key_format: bytes}
`, 10_000)
}

// A JSON filter only: the value goes out as the input's bytes, not
// encoded again.
func BenchmarkGraphFilter(b *testing.B) {
	benchGraph(b, `name: f
sources:
  - {name: in, topic: in}
steps:
  - name: big
    filter: value.amount >= 100.0
sinks:
  - {name: out, topic: out}
`, 10_000)
}

// cmd/bench mode c.
func BenchmarkGraphFilterMap(b *testing.B) {
	benchGraph(b, `name: c
sources:
  - {name: in, topic: in}
steps:
  - name: big
    filter: value.amount >= 100.0
  - name: shape
    map: '{"id": value.id, "user": value.user, "cents": int(value.amount * 100.0)}'
sinks:
  - {name: out, topic: out}
`, 10_000)
}

// cmd/bench mode d: 1,000 keys, a transaction every 10,000 records.
func BenchmarkGraphAggregate(b *testing.B) {
	benchGraph(b, `name: d
sources:
  - {name: in, topic: in}
steps:
  - name: agg
    aggregate:
      group_by: key
      columns:
        n: {fn: count}
        total: {fn: sum, of: value.amount}
sinks:
  - {name: out, topic: out}
`, 10_000)
}

// cmd/bench mode c over Avro: the same records and pipeline, the input
// written with benchAvroSchema and the output with a schema of the map's
// fields, both through the registry's wire format. Compare its ns/op with
// BenchmarkGraphFilterMap's.
func BenchmarkGraphFilterMapAvro(b *testing.B) {
	deps := registrytest.NewFake(b).Deps()
	enc, err := format.Standard().New(format.Avro, format.PartValue, format.Options{"schema": benchAvroSchema}, deps)
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput(10_000, 1000)
	for _, r := range in {
		v, err := format.DecodeJSON(r.Value)
		if err != nil {
			b.Fatal(err)
		}
		if r.Value, err = enc.Encode("in", format.NoHeaders, v); err != nil {
			b.Fatal(err)
		}
	}
	benchGraphWith(b, `name: c
sources:
  - {name: in, topic: in, format: avro}
steps:
  - name: big
    filter: value.amount >= 100.0
  - name: shape
    map: '{"id": value.id, "user": value.user, "cents": int(value.amount * 100.0)}'
sinks:
  - name: out
    topic: out
    format: {name: avro, schema: '{"type":"record","name":"Out","fields":[{"name":"id","type":"long"},{"name":"user","type":"string"},{"name":"cents","type":"long"}]}'}
`, 10_000, deps, in)
}

const benchAvroSchema = `{"type":"record","name":"In","fields":[{"name":"id","type":"long"},{"name":"amount","type":"double"},{"name":"user","type":"string"},{"name":"pad","type":"string"}]}`
