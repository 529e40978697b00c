package processor

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/registrytest"
	"github.com/exactly-dev/exactly/topology"
)

const (
	avroIn  = `{"type":"record","name":"In","fields":[{"name":"id","type":["null","long"]},{"name":"amount","type":"long"}]}`
	avroOut = `{"type":"record","name":"Out","fields":[{"name":"id","type":"long"},{"name":"amount","type":"long"}]}`
)

const avroPipeline = `name: avropoison
dead_letter_topic: avro-dlq
sources:
  - {name: in, topic: in, format: avro}
steps:
  - name: positive
    filter: value.amount > 0
  - name: shape
    map: '{"id": value.id, "amount": value.amount * 2}'
sinks:
  - name: out
    topic: out
    format: {name: avro, schema: '` + avroOut + `'}
`

// avroEnv is a registry (srfake), a cache over it and an encoder of
// avroIn.
type avroEnv struct {
	*registrytest.Registry
	enc format.Codec
}

func newAvroEnv(t *testing.T) *avroEnv {
	t.Helper()
	r := registrytest.NewFake(t)
	enc, err := format.Standard().New(format.Avro, format.PartValue, format.Options{"schema": avroIn}, r.Deps())
	if err != nil {
		t.Fatal(err)
	}
	return &avroEnv{Registry: r, enc: enc}
}

// config is member a's configuration on c with the registry's formats.
func (e *avroEnv) config(c *cluster) Config {
	cfg := c.config("a")
	cfg.Formats = e.Deps()
	return cfg
}

// downWhile makes the registry answer 503 Service Unavailable to every
// request while down holds.
func (e *avroEnv) downWhile(down *atomic.Bool) {
	e.Fake.Intercept(func(w http.ResponseWriter, _ *http.Request) bool {
		if !down.Load() {
			return false
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
}

func (e *avroEnv) encode(t *testing.T, v map[string]any) []byte {
	t.Helper()
	b, err := e.enc.Encode("in", format.NoHeaders, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAvroBadRecords: a record without the magic byte, one naming an
// unknown schema id, one whose bytes do not match its schema, and one
// whose output the sink's schema cannot hold each go to the dead-letter
// topic with their class; the good ones reach the output in Avro.
func TestAvroBadRecords(t *testing.T) {
	c := newCluster(t, "in", "out")
	e := newAvroEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := mustParse(t, avroPipeline)

	good := func(id int) *kgo.Record {
		return &kgo.Record{Key: []byte("k" + strconv.Itoa(id)), Value: e.encode(t, map[string]any{"id": int64(id), "amount": int64(5)})}
	}
	truncated := e.encode(t, map[string]any{"id": int64(1), "amount": int64(5)})
	truncated = truncated[:len(truncated)-1]
	poisons := []poison{
		{"no magic byte", &kgo.Record{Key: []byte("p1"), Value: []byte(`{"id":1,"amount":5}`)}, "in", "decode", "wire_format", "magic byte"},
		{"unknown id", &kgo.Record{Key: []byte("p2"), Value: []byte{0, 0, 0, 3, 0xe7, 2, 2, 10}}, "in", "decode", "unknown_schema", "999"},
		{"truncated", &kgo.Record{Key: []byte("p3"), Value: truncated}, "in", "decode", "schema_mismatch", "truncated"},
		{"null id for the sink", &kgo.Record{Key: []byte("p4"), Value: e.encode(t, map[string]any{"id": nil, "amount": int64(5)})}, "out", "encode", "schema_mismatch", "field id"},
	}
	producePoisons(t, ctx, c, good, poisons)
	cfg := e.config(c)
	runWith(t, ctx, c, topo, cfg, func(p *Processor) bool { return p.Stats().Commits.Load() > 0 })

	dlq, err := broker.ReadCommitted(ctx, c.addrs, []string{"avro-dlq"})
	if err != nil {
		t.Fatal(err)
	}
	if len(dlq) != len(poisons) {
		t.Errorf("the dead-letter topic holds %d records, want %d", len(dlq), len(poisons))
	}
	byOffset := map[string]map[string]string{}
	for _, r := range dlq {
		h := headers(r)
		byOffset[h[HeaderOffset]] = h
	}
	for i, ps := range poisons {
		h := byOffset[strconv.Itoa(2*i+1)]
		if h == nil {
			t.Errorf("%s is not in the dead-letter topic", ps.name)
			continue
		}
		if h[HeaderClass] != ps.class || h[HeaderNode] != ps.node || h[HeaderPhase] != ps.phase || !strings.Contains(h[HeaderMessage], ps.messageMatch) {
			t.Errorf("%s: class %q node %q phase %q message %q, want %s %s %s and a message containing %q",
				ps.name, h[HeaderClass], h[HeaderNode], h[HeaderPhase], h[HeaderMessage], ps.class, ps.node, ps.phase, ps.messageMatch)
		}
	}

	out, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(poisons)+1 {
		t.Fatalf("output holds %d records, want the %d good ones", len(out), len(poisons)+1)
	}
	// The output is Avro under the sink's registered schema.
	ss, ok := e.Fake.GetSchema("out-value", 1)
	if !ok {
		t.Fatal("the sink's schema is not registered under out-value")
	}
	dec, err := format.Standard().New(format.Avro, format.PartValue, nil, e.Deps())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out {
		id, _, err := format.SplitWire(r.Value)
		if err != nil || id != ss.ID {
			t.Fatalf("output %x: schema id %d, %v, want %d", r.Value, id, err, ss.ID)
		}
		v, err := dec.Decode("out", format.NoHeaders, r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if m := v.(map[string]any); m["amount"] != int64(10) {
			t.Errorf("output %v, want amount 10", m)
		}
	}
}

// TestAvroRegistryDownMidRun: a record with a schema id not yet cached
// waits while the registry is down, neither dead-lettered nor skipped,
// and is processed once the registry is back.
func TestAvroRegistryDownMidRun(t *testing.T) {
	c := newCluster(t, "in", "out")
	e := newAvroEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The registry answers the sink's registration, then goes down.
	var down atomic.Bool
	e.downWhile(&down)
	cfg := e.config(c)
	p, stop, done := startProcessor(t, ctx, mustParse(t, avroPipeline), cfg)
	waitUntil(t, ctx, "the member to be ready", func() bool { return p.Ready() == nil }, done)
	// A schema id the pipeline has not seen: registered straight in the
	// registry, not through the shared cache.
	// The same layout, another text, so another id.
	id, _, err := e.Fake.RegisterSchema("other", sr.Schema{Schema: strings.Replace(avroIn, `"name":"In"`, `"name":"In","doc":"v2"`, 1)})
	if err != nil {
		t.Fatal(err)
	}
	payload := e.encode(t, map[string]any{"id": int64(1), "amount": int64(5)})
	down.Store(true)
	rec := append(format.AppendWireHeader(nil, id), payload[5:]...)
	if err := c.cl.ProduceSync(ctx, &kgo.Record{Topic: "in", Key: []byte("k"), Value: rec}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for e.Schemas.Waiting() == "" {
		select {
		case err := <-done:
			t.Fatalf("Run() = %v while the registry was down, want it to wait", err)
		case <-ctx.Done():
			t.Fatalf("the pipeline never asked the registry for the new id; stats in %d dlq %d", p.Stats().RecordsIn.Load(), p.Stats().DeadLettered.Load())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if n := p.Stats().DeadLettered.Load() + p.Stats().Skipped.Load(); n != 0 {
		t.Fatalf("%d records dead-lettered or skipped while the registry was down", n)
	}
	down.Store(false)
	for {
		out, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == 1 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run() = %v", err)
		case <-ctx.Done():
			t.Fatal("the record never reached the output after the registry came back")
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if n := p.Stats().DeadLettered.Load(); n != 0 {
		t.Errorf("%d records dead-lettered", n)
	}
}

// TestAvroIncompatibleSinkFailsStart: the registry refusing the sink's
// schema ends Run at start, naming the subject.
func TestAvroIncompatibleSinkFailsStart(t *testing.T) {
	c := newCluster(t, "in", "out")
	e := newAvroEnv(t)
	e.Fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || !strings.Contains(r.URL.Path, "out-value") {
			return false
		}
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"error_code":409,"message":"Schema being registered is incompatible with an earlier schema"}`))
		return true
	})
	cfg := e.config(c)
	p, err := New(mustParse(t, avroPipeline), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = p.Run(ctx)
	if !errors.Is(err, format.ErrIncompatible) || !strings.Contains(err.Error(), "out-value") {
		t.Fatalf("Run() = %v, want ErrIncompatible naming out-value", err)
	}
}

// Without a registry, a pipeline using avro fails New.
func TestAvroWithoutRegistry(t *testing.T) {
	_, err := New(mustParse(t, avroPipeline), Config{TransactionTimeout: 10 * time.Second})
	if !errors.Is(err, format.ErrNoRegistry) {
		t.Fatalf("New() = %v, want ErrNoRegistry", err)
	}
}

// TestAvroRegistryDownAtStart: the sink's schema cannot be registered
// while the registry is down; the start waits, not ready, and goes on
// once the registry answers.
func TestAvroRegistryDownAtStart(t *testing.T) {
	c := newCluster(t, "in", "out")
	e := newAvroEnv(t)
	var down atomic.Bool
	down.Store(true)
	e.downWhile(&down)
	cfg := e.config(c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, stop, done := startProcessor(t, ctx, mustParse(t, avroPipeline), cfg)
	// Run returning here fails: it must wait while the registry is down.
	waitUntil(t, ctx, "the start to ask the registry", func() bool { return e.Schemas.Waiting() != "" }, done)
	if err := p.Ready(); err == nil {
		t.Fatal("Ready() = nil while the sink's schema could not be registered")
	}
	down.Store(false)
	waitUntil(t, ctx, "the member to be ready after the registry came back", func() bool { return p.Ready() == nil }, done)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
}

// TestCategoryRevenueAvro is the seed's category revenue example with
// Avro in and out: the orders of testdata/aggregate/orders.jsonl written
// as Avro, the table read back from Avro, equal to the JSON pipeline's
// golden rows (total_revenue an exact decimal).
func TestCategoryRevenueAvro(t *testing.T) {
	c := newCluster(t, "orders", "category-revenue")
	e := newAvroEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := topology.Load("../testdata/avro/category_revenue.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs := e.AvroRecords(t, "orders", "testdata/avro/orders.avsc", "testdata/aggregate/orders.jsonl", "price")
	if err := c.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg := e.config(c)
	runWith(t, ctx, c, topo, cfg, func(p *Processor) bool { return p.Stats().Commits.Load() > 0 })

	out, err := broker.ReadCommitted(ctx, c.addrs, []string{"category-revenue"})
	if err != nil {
		t.Fatal(err)
	}
	got := e.AvroTable(t, out, func(_ *kgo.Record, v any) {
		if _, ok := v.(map[string]any)["total_revenue"].(format.Number); !ok {
			t.Errorf("total_revenue decoded as %T, want an exact decimal", v.(map[string]any)["total_revenue"])
		}
	})
	checkGoldenAt(t, "../testdata/avro/category_revenue.golden", got)
}
