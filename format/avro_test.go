package format

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// orderV1 has every kind of field the type mapping covers.
const orderV1 = `{"type":"record","name":"Order","namespace":"shop","fields":[
 {"name":"id","type":"long"},
 {"name":"category","type":"string"},
 {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
 {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"day","type":{"type":"int","logicalType":"date"}},
 {"name":"ref","type":{"type":"string","logicalType":"uuid"}},
 {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED"]}},
 {"name":"note","type":["null","string"],"default":null},
 {"name":"qty","type":"int"},
 {"name":"price","type":"float"},
 {"name":"tags","type":{"type":"array","items":"string"}},
 {"name":"attrs","type":{"type":"map","values":"long"}},
 {"name":"micros","type":{"type":"long","logicalType":"timestamp-micros"}},
 {"name":"fx","type":{"type":"fixed","name":"Fx","size":4,"logicalType":"decimal","precision":8,"scale":3}}
]}`

func orderValue() map[string]any {
	return map[string]any{
		"id":       int64(42),
		"category": "books",
		"amount":   Number("-1234.50"),
		"ts":       time.UnixMilli(1700000000123).UTC(),
		"day":      time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC),
		"ref":      "7d2b5c0e-4a3f-4b65-9d1c-2f6b8a1e0c11",
		"status":   "PAID",
		"note":     nil,
		"qty":      int64(3),
		"price":    float64(2.5),
		"tags":     []any{"a", "b"},
		"attrs":    map[string]any{"x": int64(1)},
		"micros":   time.UnixMicro(1700000000123456).UTC(),
		"fx":       Number("-0.001"),
	}
}

func newAvroCodec(t *testing.T, s *Schemas, part Part, opts Options) Codec {
	t.Helper()
	return newCodec(t, Avro, s, part, opts)
}

func TestAvroRoundTrip(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	s := newTestSchemas(t, reg)
	sink := newAvroCodec(t, s, PartValue, Options{"schema": orderV1})
	if err := sink.(Preparer).Prepare(context.Background(), "orders"); err != nil {
		t.Fatal(err)
	}
	if ss, ok := reg.GetSchema("orders-value", 1); !ok || ss.ID <= 0 {
		t.Fatalf("Prepare did not register subject orders-value: %+v", ss)
	}
	b, err := sink.Encode("orders", NoHeaders, orderValue())
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 {
		t.Fatalf("Encode = %x, want the magic byte first", b)
	}
	src := newAvroCodec(t, s, PartValue, nil)
	got, err := src.Decode("orders", NoHeaders, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := orderValue(); !reflect.DeepEqual(got, any(want)) {
		t.Fatalf("Decode(Encode(v)) =\n%#v\nwant\n%#v", got, want)
	}
	// Null stays null (a tombstone).
	if b, err := sink.Encode("orders", NoHeaders, nil); b != nil || err != nil {
		t.Errorf("Encode(nil) = %x, %v, want nil", b, err)
	}
	if v, err := src.Decode("orders", NoHeaders, nil); v != nil || err != nil {
		t.Errorf("Decode(nil) = %v, %v, want nil", v, err)
	}
	// A union with null takes the value's branch.
	v := orderValue()
	v["note"] = "gift"
	b, err = sink.Encode("orders", NoHeaders, v)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := src.Decode("orders", NoHeaders, b); err != nil || got.(map[string]any)["note"] != "gift" {
		t.Errorf("note = %v, %v, want gift", got, err)
	}
	// A missing nullable field is written as null.
	delete(v, "note")
	if _, err := sink.Encode("orders", NoHeaders, v); err != nil {
		t.Errorf("Encode without the nullable field: %v", err)
	}
}

// Avro keys are registered under <topic>-key.
func TestAvroKeySubject(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	s := newTestSchemas(t, reg)
	c := newAvroCodec(t, s, PartKey, Options{"schema": `"string"`})
	if err := c.(Preparer).Prepare(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	if !reg.SubjectExists("t-key") {
		t.Error("key schema not registered under t-key")
	}
	for strategy, subject := range map[string]string{RecordName: "shop.Order", TopicRecordName: "t-shop.Order"} {
		c := newAvroCodec(t, s, PartValue, Options{"schema": orderV1, "subject_strategy": strategy})
		if err := c.(Preparer).Prepare(context.Background(), "t"); err != nil {
			t.Fatal(err)
		}
		if !reg.SubjectExists(subject) {
			t.Errorf("subject_strategy %s: subject %s not registered", strategy, subject)
		}
	}
}

// A sink without a schema writes with the subject's registered one.
func TestAvroSinkRegisteredVersion(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	reg.SeedSchema("out-value", 1, 11, sr.Schema{Schema: `{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}`})
	reg.SeedSchema("out-value", 2, 12, sr.Schema{Schema: `{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"b","type":"string","default":"x"}]}`})
	s := newTestSchemas(t, reg)
	for _, tc := range []struct {
		opts Options
		id   byte
	}{{nil, 12}, {Options{"version": 1}, 11}, {Options{"version": "latest"}, 12}} {
		c := newAvroCodec(t, s, PartValue, tc.opts)
		b, err := c.Encode("out", NoHeaders, map[string]any{"a": int64(1)})
		if err != nil {
			t.Fatal(err)
		}
		if b[4] != tc.id {
			t.Errorf("options %v: wrote schema id %d, want %d", tc.opts, b[4], tc.id)
		}
	}
}

// Reader schemas: an added field takes its default, a removed one goes,
// an int widens to a double.
func TestAvroEvolution(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	writer := `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"gone","type":"string"}]}`
	reader := `{"type":"record","name":"R","fields":[{"name":"a","type":"double"},{"name":"added","type":"string","default":"dflt"},{"name":"cents","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2},"default":"\u0001"}]}`
	s := newTestSchemas(t, reg)
	w := newAvroCodec(t, s, PartValue, Options{"schema": writer})
	b, err := w.Encode("t", NoHeaders, map[string]any{"a": int64(7), "gone": "x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []Options{{"schema": reader}} {
		r := newAvroCodec(t, s, PartValue, opts)
		got, err := r.Decode("t", NoHeaders, b)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"a": float64(7), "added": "dflt", "cents": Number("0.01")}
		if !reflect.DeepEqual(got, any(want)) {
			t.Errorf("Decode with reader schema = %#v, want %#v", got, want)
		}
	}
	// The reader as a registered subject version.
	reg.SeedSchema("readers", 1, 900, sr.Schema{Schema: reader})
	r := newAvroCodec(t, s, PartValue, Options{"subject": "readers", "version": 1})
	if got, err := r.Decode("t", NoHeaders, b); err != nil || got.(map[string]any)["added"] != "dflt" {
		t.Errorf("Decode with reader subject version = %v, %v", got, err)
	}
	// A reader field without a default that the writer lacks.
	bad := newAvroCodec(t, s, PartValue, Options{"schema": `{"type":"record","name":"R","fields":[{"name":"must","type":"string"}]}`})
	if _, err := bad.Decode("t", NoHeaders, b); !errors.Is(err, ErrSchemaMismatch) || Class(err) != "schema_mismatch" {
		t.Errorf("Decode with an incompatible reader = %v, want ErrSchemaMismatch", err)
	}
}

// Bad input: each is a record error with its class.
func TestAvroBadInput(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	reg.SeedSchema("t-value", 1, 5, sr.Schema{Schema: `{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"s","type":"string"}]}`})
	reg.SeedSchema("p-value", 1, 6, sr.Schema{Schema: `syntax = "proto3"; message M { int64 a = 1; }`, Type: sr.TypeProtobuf})
	s := newTestSchemas(t, reg)
	c := newAvroCodec(t, s, PartValue, nil)
	for _, tc := range []struct {
		name  string
		b     []byte
		class string
		is    error
	}{
		{"json", []byte(`{"a":1}`), "wire_format", ErrWireFormat},
		{"short", []byte{0, 0, 0}, "wire_format", ErrWireFormat},
		{"unknown id", []byte{0, 0, 0, 0, 77, 2, 0}, "unknown_schema", ErrUnknownSchema},
		{"truncated", []byte{0, 0, 0, 0, 5, 2}, "schema_mismatch", ErrSchemaMismatch},
		{"string past the end", []byte{0, 0, 0, 0, 5, 2, 40, 'a'}, "schema_mismatch", ErrSchemaMismatch},
		{"left over", []byte{0, 0, 0, 0, 5, 2, 0, 9, 9}, "schema_mismatch", ErrSchemaMismatch},
		{"bad utf8", []byte{0, 0, 0, 0, 5, 2, 2, 0xff}, "schema_mismatch", ErrSchemaMismatch},
		{"not avro", []byte{0, 0, 0, 0, 6, 0, 2}, "schema_mismatch", ErrSchemaMismatch},
		{"huge length", []byte{0, 0, 0, 0, 5, 2, 0xfe, 0xff, 0xff, 0xff, 0x0f}, "schema_mismatch", ErrSchemaMismatch},
	} {
		_, err := c.Decode("t", NoHeaders, tc.b)
		if !errors.Is(err, tc.is) || Class(err) != tc.class {
			t.Errorf("%s: Decode(%x) = %v (class %q), want %v of class %s", tc.name, tc.b, err, Class(err), tc.is, tc.class)
		}
	}
	// Values the sink's schema cannot hold.
	sink := newAvroCodec(t, s, PartValue, Options{"version": 1, "subject": "t-value"})
	for _, v := range []any{
		map[string]any{"a": "x", "s": "y"},
		map[string]any{"s": "y"},
		"scalar",
	} {
		if _, err := sink.Encode("t", NoHeaders, v); !errors.Is(err, ErrSchemaMismatch) || Class(err) != "schema_mismatch" {
			t.Errorf("Encode(%v) = %v, want ErrSchemaMismatch", v, err)
		}
	}
	// A decimal with more digits than its scale is not rounded.
	dec := newAvroCodec(t, s, PartValue, Options{"schema": `{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}`})
	if _, err := dec.Encode("d", NoHeaders, Number("1.005")); !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("Encode(1.005) into scale 2 = %v, want ErrSchemaMismatch", err)
	}
	// 150 is 0x96: a 0 byte keeps it positive in two's complement.
	if b, err := dec.Encode("d", NoHeaders, Number("1.5")); err != nil || string(b[5:]) != "\x04\x00\x96" {
		t.Errorf("Encode(1.5) into scale 2 = %x, %v, want payload 040096", b, err)
	}
}

func TestAvroNeedsRegistry(t *testing.T) {
	if _, err := Standard().New(Avro, PartValue, nil, Deps{}); !errors.Is(err, ErrNoRegistry) {
		t.Errorf("New(avro) without a registry = %v, want ErrNoRegistry", err)
	}
}

func TestAvroCheck(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		key  string
	}{
		{Options{"schema": "{not json"}, "schema"},
		{Options{"schema": `"string"`, "schema_file": "x.avsc"}, "schema_file"},
		{Options{"subject_strategy": "topic"}, "subject_strategy"},
		{Options{"subject_strategy": RecordName}, "subject_strategy"},
		{Options{"version": "newest"}, "version"},
		{Options{"version": 1, "schema": `"string"`}, "version"},
		{Options{"shema": "x"}, "shema"},
	} {
		err := Standard().Check(Avro, tc.opts)
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Key != tc.key {
			t.Errorf("Check(avro, %v) = %v, want an error on %s", tc.opts, err, tc.key)
		}
	}
	if err := Standard().Check(Avro, Options{"schema": orderV1, "subject_strategy": TopicRecordName}); err != nil {
		t.Errorf("Check(good options) = %v", err)
	}
}

// A registry incompatibility is an error from Prepare, naming the subject.
func TestAvroIncompatible(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost {
			return false
		}
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"error_code":409,"message":"incompatible: field a removed"}`))
		return true
	})
	s := newTestSchemas(t, reg)
	c := newAvroCodec(t, s, PartValue, Options{"schema": `"string"`})
	err := c.(Preparer).Prepare(context.Background(), "out")
	if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "out-value") {
		t.Errorf("Prepare = %v, want ErrIncompatible naming out-value", err)
	}
}
