package registrytest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/exactly-dev/exactly/format"
)

// Registry is a schema registry for one test, a client of it and the
// format package's schema cache over that client, the last two closed
// when the test ends. It is the one registry set-up of the tests that
// run pipelines (processor, cmd/exactly); the format package's own tests
// cannot import it (this package imports format) and seed srfake
// themselves.
type Registry struct {
	URL     string
	Client  *sr.Client
	Schemas *format.Schemas
	// Fake is the srfake behind URL, for what only it does: schemas
	// seeded under fixed ids, intercepted requests. Nil on Apicurio
	// Registry.
	Fake *srfake.Registry
}

// New returns the registry URL gives for t (the shared Apicurio Registry
// when Real, else a new srfake, in Fake) with a client and a cache.
func New(t testing.TB) *Registry {
	t.Helper()
	if !Real() {
		return NewFake(t)
	}
	return open(t, URL(t), nil)
}

// NewFake returns a new srfake registry, whatever Env says, closed when t
// ends, with a client and a cache: for tests that seed schema ids or
// intercept requests, which Apicurio Registry cannot do.
func NewFake(t testing.TB, opts ...srfake.Option) *Registry {
	t.Helper()
	reg := srfake.New(opts...)
	t.Cleanup(reg.Close)
	return open(t, reg.URL(), reg)
}

func open(t testing.TB, url string, fake *srfake.Registry) *Registry {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	s := format.NewSchemas(cl, nil)
	t.Cleanup(s.Close)
	return &Registry{URL: url, Client: cl, Schemas: s, Fake: fake}
}

// Deps is what a codec of the registry's formats needs.
func (r *Registry) Deps() format.Deps { return format.Deps{Schemas: r.Schemas} }

// SeedShop seeds a Fake registry with the format package's test schemas
// of a shop's orders: subject orders-value, id 1, the protobuf file
// format/testdata/registry/shop.proto; subject orders-json-value, id 2,
// the JSON Schema order.schema.json beside it.
func (r *Registry) SeedShop(t testing.TB) {
	t.Helper()
	r.Fake.SeedSchema("orders-value", 1, 1, sr.Schema{Type: sr.TypeProtobuf, Schema: ReadFile(t, "format/testdata/registry/shop.proto")})
	r.Fake.SeedSchema("orders-json-value", 1, 2, sr.Schema{Type: sr.TypeJSON, Schema: ReadFile(t, "format/testdata/registry/order.schema.json")})
}

// ReadFile returns the file at path, relative to the module's root.
func ReadFile(t testing.TB, path string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// AvroRecords returns the records of the JSON-lines file jsonl, each
// {"key": ..., "value": {...}} as testdata/aggregate/orders.jsonl has
// them (paths relative to the module's root), as records of topic whose
// values are written in Avro with the schema in avsc (registered under
// topic's subject): numbers become longs, but for the fields named in
// doubles.
func (r *Registry) AvroRecords(t testing.TB, topic, avsc, jsonl string, doubles ...string) []*kgo.Record {
	t.Helper()
	enc, err := format.Standard().New(format.Avro, format.PartValue, format.Options{"schema": ReadFile(t, avsc)}, r.Deps())
	if err != nil {
		t.Fatal(err)
	}
	var rs []*kgo.Record
	for _, l := range strings.Split(strings.TrimSpace(ReadFile(t, jsonl)), "\n") {
		var in struct {
			Key   string
			Value map[string]any
		}
		if err := json.Unmarshal([]byte(l), &in); err != nil {
			t.Fatal(err)
		}
		for k, x := range in.Value {
			if f, ok := x.(float64); ok && !slices.Contains(doubles, k) {
				in.Value[k] = int64(f)
			}
		}
		b, err := enc.Encode(topic, format.NoHeaders, in.Value)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(in.Key), Value: b})
	}
	return rs
}

// AvroTable decodes the Avro values of recs (in the registry's wire
// format) and returns the table they make: the latest value of each key,
// as "key<TAB>value as JSON" lines, sorted. check, if not nil, sees each
// record with its decoded value first.
func (r *Registry) AvroTable(t testing.TB, recs []*kgo.Record, check func(rec *kgo.Record, v any)) []string {
	t.Helper()
	dec, err := format.Standard().New(format.Avro, format.PartValue, nil, r.Deps())
	if err != nil {
		t.Fatal(err)
	}
	latest := map[string]string{}
	for _, rec := range recs {
		v, err := dec.Decode(rec.Topic, format.NoHeaders, rec.Value)
		if err != nil {
			t.Fatalf("output %x: %v", rec.Value, err)
		}
		if check != nil {
			check(rec, v)
		}
		j, err := format.EncodeJSON(v)
		if err != nil {
			t.Fatal(err)
		}
		latest[string(rec.Key)] = string(rec.Key) + "\t" + string(j)
	}
	var rows []string
	for _, l := range latest {
		rows = append(rows, l)
	}
	slices.Sort(rows)
	return rows
}
