package format

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

func newProtoCodec(t testing.TB, s *Schemas, part Part, opts Options) Codec {
	t.Helper()
	return newCodec(t, Protobuf, s, part, opts)
}

// emptyOrder is shop.Order with no field set, as the format decodes it:
// every field present, unset ones that can be unset nil.
func emptyOrder() map[string]any {
	return map[string]any{
		"order_id": "", "quantity": int64(0), "price": 0.0, "status": "UNKNOWN",
		"placed_at": nil, "coupon": nil, "lines": []any{}, "tags": map[string]any{},
		"blob": []byte{}, "big": int64(0), "ratio": 0.0, "note": nil, "total": nil,
		"card": nil, "iban": nil, "delta": int64(0), "extra": nil, "wait": nil, "points": nil,
	}
}

// TestProtobufVectors decodes records Confluent's Python serializer wrote
// (testdata/registry/vectors.json) and encodes the values back: the bytes
// must be the serializer's, header and message indexes included.
func TestProtobufVectors(t *testing.T) {
	vectors := loadVectors(t)
	full := emptyOrder()
	for k, v := range map[string]any{
		"order_id": "o-1", "quantity": int64(3), "price": 19.5, "status": "PAID",
		"placed_at": time.Date(2024, 3, 1, 12, 30, 15, 250_000_000, time.UTC),
		"coupon":    "WELCOME",
		"lines": []any{
			map[string]any{"sku": "a", "qty": int64(2)},
			map[string]any{"sku": "b", "qty": int64(-1)},
		},
		"tags": map[string]any{"gift": int64(1)}, "blob": []byte{0, 0xff},
		"big": uint64(18446744073709551615), "ratio": 0.25, "note": "leave at door",
		"total": Number("-1234.50"), "card": "4111", "delta": int64(-7),
		"extra":  map[string]any{"channel": "web", "score": 1.5, "flags": []any{true, nil}},
		"wait":   90*time.Second + 500*time.Millisecond,
		"points": int64(0), // a wrapper set to 0 is 0, not null
	} {
		full[k] = v
	}
	tests := []struct {
		vector  string
		message string // the message option the sink needs to write it
		want    any
		// sameBytes: the serializer's bytes are deterministic protobuf.
		// Python writes a Struct's map in insertion order; exactly, like
		// Java's deterministic mode, sorts map keys.
		sameBytes bool
	}{
		{"order_full", "", full, false},
		{"order_empty", "shop.Order", emptyOrder(), true},
		{"order_line", "Order.Line", map[string]any{"sku": "z", "qty": int64(9)}, true},
		{"refund", "Refund", map[string]any{"order_id": "o-1", "amount": int64(1950)}, true},
	}
	s, _ := newRegistryFixture(t)
	for _, tt := range tests {
		t.Run(tt.vector, func(t *testing.T) {
			in := vectors[tt.vector]
			dec := newProtoCodec(t, s, PartValue, nil)
			got, err := dec.Decode("orders", NoHeaders, in)
			if err != nil {
				t.Fatalf("Decode error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode = %#v\nwant %#v", got, tt.want)
			}
			var opts Options
			if tt.message != "" {
				opts = Options{"message": tt.message}
			}
			enc := newProtoCodec(t, s, PartValue, opts)
			out, err := enc.Encode("orders", NoHeaders, got)
			if err != nil {
				t.Fatalf("Encode error: %v", err)
			}
			if tt.sameBytes && !bytes.Equal(out, in) {
				t.Errorf("Encode = %x\nwant   %x (the Python serializer's)", out, in)
			}
			back, err := dec.Decode("orders", NoHeaders, out)
			if err != nil {
				t.Fatalf("Decode(Encode(v)) error: %v", err)
			}
			if !reflect.DeepEqual(back, tt.want) {
				t.Errorf("Decode(Encode(v)) = %#v\nwant %#v", back, tt.want)
			}
		})
	}
}

// TestProtobufBadInput: each kind of bad record is an error of the class
// the pipeline's on_error routes by.
func TestProtobufBadInput(t *testing.T) {
	s, reg := newRegistryFixture(t)
	reg.SeedSchema("other-value", 1, 7, sr.Schema{Schema: `{"type":"string"}`, Type: sr.TypeJSON})
	refund := loadVectors(t)["refund"]
	withID := func(id byte, rest []byte) []byte { return append([]byte{0, 0, 0, 0, id}, rest...) }
	tests := []badInput{
		{"no magic byte", []byte(`{"a":1}`), "wire_format", ErrWireFormat, "first byte is 0x7b"},
		{"short", []byte{0, 0, 1}, "wire_format", ErrWireFormat, "shorter than the 5-byte header"},
		{"unknown id", withID(99, []byte{0}), "unknown_schema", ErrUnknownSchema, "99"},
		{"index past the file's messages", withID(shopProtoID, []byte{2, 6}), "schema_mismatch", ErrSchemaMismatch, "entry 0 is 3, but the file has 2 message types"},
		{"nested index past the message's", withID(shopProtoID, []byte{4, 0, 6}), "schema_mismatch", ErrSchemaMismatch, "entry 1 is 3, but shop.Order has 2 message types"},
		{"bad index varint", withID(shopProtoID, []byte{0x80}), "wire_format", ErrWireFormat, "index count"},
		{"bytes that do not parse", append(bytes.Clone(refund[:len(refund)-1]), 0xff), "schema_mismatch", ErrSchemaMismatch, "do not parse as protobuf shop.Refund"},
		{"id of a json schema", withID(7, []byte{0}), "schema_mismatch", ErrSchemaMismatch, "schema id 7 is JSON, not PROTOBUF"},
	}
	checkBadInput(t, newProtoCodec(t, s, PartValue, nil), "orders", tests)
}

// TestProtobufEncodeErrors: a value the sink's message cannot hold is a
// record error naming the field and what would fit.
func TestProtobufEncodeErrors(t *testing.T) {
	s, _ := newRegistryFixture(t)
	c := newProtoCodec(t, s, PartValue, nil)
	tests := []struct {
		v    any
		text string
	}{
		{map[string]any{"order_idd": "x"}, `protobuf message shop.Order has no field "order_idd" (it has order_id, quantity,`},
		{map[string]any{"status": "LOST"}, `protobuf enum shop.Status has no value "LOST" (it has UNKNOWN, PAID or SHIPPED)`},
		{map[string]any{"lines": []any{map[string]any{"qty": int64(1) << 40}}}, "protobuf field shop.Order.Line.qty (int32) cannot hold int 1099511627776"},
		{map[string]any{"big": int64(-1)}, "shop.Order.big (uint64) cannot hold int -1"},
		{map[string]any{"quantity": 1.5}, "shop.Order.quantity (int64) cannot hold double 1.5"},
		{map[string]any{"placed_at": "yesterday"}, `protobuf Timestamp needs a timestamp or RFC 3339 text, got "yesterday"`},
		{"just a string", "protobuf message shop.Order needs a map, got string"},
	}
	for _, tt := range tests {
		b, err := c.Encode("orders", NoHeaders, tt.v)
		if err == nil {
			t.Errorf("Encode(%v) = %x, want an error", tt.v, b)
			continue
		}
		if !strings.Contains(err.Error(), tt.text) || !errors.Is(err, ErrUnsupported) || Class(err) != "schema_mismatch" {
			t.Errorf("Encode(%v) error = %v (class %q), want one saying %q, wrapping ErrUnsupported, class schema_mismatch", tt.v, err, Class(err), tt.text)
		}
	}
	// Lenient where nothing is lost: a whole double into an integer, an
	// int into a double, RFC 3339 text into a Timestamp, a Number into a
	// Decimal keeps its scale.
	b, err := c.Encode("orders", NoHeaders, map[string]any{
		"quantity": 2.0, "price": int64(3), "placed_at": "2024-03-01T12:30:15Z", "total": Number("0.10"), "status": int64(2),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Decode("orders", NoHeaders, b)
	if err != nil {
		t.Fatal(err)
	}
	m := got.(map[string]any)
	if m["quantity"] != int64(2) || m["price"] != 3.0 || m["placed_at"] != time.Date(2024, 3, 1, 12, 30, 15, 0, time.UTC) || m["total"] != Number("0.10") || m["status"] != "SHIPPED" {
		t.Errorf("round trip = %v", m)
	}
}

// TestProtobufSinkSchema: the sink's subject, version and message are
// checked at Prepare, so a mistake fails the start.
func TestProtobufSinkSchema(t *testing.T) {
	s, _ := newRegistryFixture(t)
	tests := []struct {
		opts  Options
		topic string
		text  string
	}{
		{Options{"message": "Order.Lines"}, "orders", `message "Order.Lines" is not in the protobuf schema (it has shop.Order, shop.Order.Line or shop.Refund)`},
		{nil, "payments", "the registry has no subject payments-value"},
		{Options{"subject": shopSubject, "version": 4}, "x", "the registry has no version 4 of subject orders-value"},
		{Options{"subject": orderJSONSubj}, "x", "schema id 2 is JSON, not PROTOBUF"},
	}
	for _, tt := range tests {
		c := newProtoCodec(t, s, PartValue, tt.opts)
		err := c.(Preparer).Prepare(t.Context(), tt.topic)
		if err == nil || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("Prepare(%v, %s) error = %v, want one saying %q", tt.opts, tt.topic, err, tt.text)
		}
	}
	// A key codec's default subject is <topic>-key.
	c := newProtoCodec(t, s, PartKey, nil)
	if err := c.(Preparer).Prepare(t.Context(), "orders"); err == nil || !strings.Contains(err.Error(), "orders-key") {
		t.Errorf("key Prepare error = %v, want one naming subject orders-key", err)
	}
}

// TestProtobufReferences: a schema importing another registered file
// compiles with the reference's text, fetched by subject and version.
func TestProtobufReferences(t *testing.T) {
	s, reg := newRegistryFixture(t)
	reg.SeedSchema("money.proto", 1, 10, sr.Schema{Type: sr.TypeProtobuf, Schema: `syntax = "proto3";
package money;
message Amount { string currency = 1; int64 cents = 2; }
`})
	reg.SeedSchema("payments-value", 1, 11, sr.Schema{Type: sr.TypeProtobuf, Schema: `syntax = "proto3";
package pay;
import "money.proto";
message Payment { string id = 1; money.Amount amount = 2; }
`, References: []sr.SchemaReference{{Name: "money.proto", Subject: "money.proto", Version: 1}}})
	c := newProtoCodec(t, s, PartValue, nil)
	v := map[string]any{"id": "p1", "amount": map[string]any{"currency": "EUR", "cents": int64(995)}}
	b, err := c.Encode("payments", NoHeaders, v)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 0, 0, 0, 11, 0}; !bytes.HasPrefix(b, want) {
		t.Errorf("Encode = %x, want prefix %x (id 11, index [0])", b, want)
	}
	got, err := c.Decode("payments", NoHeaders, b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Errorf("Decode = %v, want %v", got, v)
	}
	// A schema that does not compile with its references fails every
	// record of its id, naming the file, line and column.
	reg.SeedSchema("broken-value", 1, 12, sr.Schema{Type: sr.TypeProtobuf, Schema: `syntax = "proto3";
import "money.proto";
message B { money.Amounts a = 1; }
`, References: []sr.SchemaReference{{Name: "money.proto", Subject: "money.proto", Version: 1}}})
	_, err = c.Decode("broken", NoHeaders, []byte{0, 0, 0, 0, 12, 0})
	if err == nil || Class(err) != "schema_mismatch" || !strings.Contains(err.Error(), `schema id 12: protobuf schema does not compile: exactly/registered.proto:3:13: field B.a: unknown type money.Amounts`) {
		t.Errorf("Decode with a schema that does not compile: error = %v, want one naming the place", err)
	}
}

func TestDecimalText(t *testing.T) {
	for _, text := range []string{"0", "0.00", "-0.01", "1234.50", "-1234.50", "127", "128", "-128", "-129", "99999999999999999999.999"} {
		u, scale, ok := parseDecimal(text)
		if !ok {
			t.Fatalf("parseDecimal(%q) failed", text)
		}
		b := protoTwosComplement(u)
		got := decimalFromBytes(b, scale)
		if got != text {
			t.Errorf("decimal %q → %x → %q", text, b, got)
		}
	}
	// Java's BigInteger.toByteArray: the fewest bytes that keep the sign.
	for text, want := range map[string][]byte{"127": {0x7f}, "128": {0x00, 0x80}, "-128": {0x80}, "-129": {0xff, 0x7f}, "0": {0x00}} {
		u, _, _ := parseDecimal(text)
		if got := protoTwosComplement(u); !bytes.Equal(got, want) {
			t.Errorf("protoTwosComplement(%s) = %x, want %x", text, got, want)
		}
	}
}

// FuzzProtobufDecode: no input makes Decode panic, and whatever it
// decodes as shop.Order encodes back and decodes again to the same
// value.
func FuzzProtobufDecode(f *testing.F) {
	for _, b := range loadVectors(f) {
		f.Add(b)
	}
	f.Add([]byte{0, 0, 0, 0, 1, 2, 2})
	s, _ := newRegistryFixture(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c := newProtoCodec(t, s, PartValue, nil)
		v, err := c.Decode("orders", NoHeaders, b)
		if err != nil {
			if Class(err) == "" {
				t.Fatalf("Decode(%x) error %v has no class", b, err)
			}
			return
		}
		if len(b) < 6 || b[5] != 0 {
			return // not shop.Order
		}
		out, err := c.Encode("orders", NoHeaders, v)
		if err != nil {
			t.Fatalf("Encode(Decode(%x) = %v) error: %v", b, v, err)
		}
		back, err := c.Decode("orders", NoHeaders, out)
		if err != nil {
			t.Fatalf("Decode(Encode(v)) error: %v", err)
		}
		if !reflect.DeepEqual(back, v) && !hasNaN(v) {
			t.Fatalf("Decode(Encode(v)) = %v, want %v", back, v)
		}
	})
}

func hasNaN(v any) bool {
	switch v := v.(type) {
	case float64:
		return v != v
	case []any:
		for _, e := range v {
			if hasNaN(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range v {
			if hasNaN(e) {
				return true
			}
		}
	}
	return false
}

// TestSinkSchemaOptions: the options of protobuf and json_schema sinks
// are checked offline, each problem as an *OptionError naming its key.
func TestSinkSchemaOptions(t *testing.T) {
	const proto = "syntax = \"proto3\";\npackage p;\nmessage A { string id = 1; }\n"
	tests := []struct {
		format string
		opts   Options
		want   []string // "key: text" of each error; nil: none
	}{
		{Protobuf, Options{"schema": proto, "message": "A", "subject_strategy": RecordName}, nil},
		{Protobuf, Options{"message": "p.A", "subject_strategy": TopicRecordName}, nil},
		{Protobuf, Options{"subject": "s", "version": 3}, nil},
		{Protobuf, Options{"version": "latest"}, nil},
		{JSONSchema, Options{"schema": `{"title":"T","type":"object"}`, "subject_strategy": RecordName}, nil},
		{Protobuf, Options{"schema": proto, "schema_file": "a.proto"}, []string{"schema_file: set with schema: give the schema one way"}},
		{Protobuf, Options{"schema": proto, "version": 2}, []string{"version: set with a schema: a given schema is registered, a version is looked up; keep one"}},
		{Protobuf, Options{"version": 0}, []string{"version: 0: versions start at 1 (or say latest)"}},
		{JSONSchema, Options{"version": "newest"}, []string{`version: "newest": want a version number or latest`}},
		{Protobuf, Options{"subject_strategy": "topic"}, []string{`subject_strategy: unknown strategy "topic" (want topic_name, record_name or topic_record_name)`}},
		{Protobuf, Options{"subject_strategy": RecordName, "message": "A"}, []string{"subject_strategy: record_name names the subject after the record, so it needs schema or schema_file, or message as a full name (package.Message)"}},
		{JSONSchema, Options{"subject_strategy": RecordName}, []string{"subject_strategy: record_name names the subject after the record, so it needs schema or schema_file (its title names the record)"}},
		{Protobuf, Options{"schema": "syntax = \"proto3\";\nmessage A { strin id = 1; }\n"}, []string{"schema: protobuf schema does not compile: exactly/registered.proto:2:13: field A.id: unknown type strin"}},
		{Protobuf, Options{"schema": proto, "message": "B"}, []string{`schema: message "B" is not in the protobuf schema (it has p.A)`}},
		{JSONSchema, Options{"schema": `{"type": 7}`}, []string{"schema: json schema does not compile"}},
		{Protobuf, Options{"message": 7}, []string{"message: want a non-empty string, got 7"}},
	}
	for _, tt := range tests {
		err := Standard().Check(tt.format, tt.opts)
		var got []string
		for _, e := range flatten(err) {
			var oe *OptionError
			if !errors.As(e, &oe) {
				t.Errorf("Check(%s, %v): %v is not an *OptionError", tt.format, tt.opts, e)
				continue
			}
			got = append(got, oe.Key+": "+oe.Err.Error())
		}
		if len(got) != len(tt.want) {
			t.Errorf("Check(%s, %v) = %q, want %q", tt.format, tt.opts, got, tt.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tt.want[i]) {
				t.Errorf("Check(%s, %v) error %d = %q, want %q", tt.format, tt.opts, i, got[i], tt.want[i])
			}
		}
	}
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// TestSinkSchemaRegistered: a sink given its schema registers it at
// Prepare, under the subject its strategy names, and writes with its id.
func TestSinkSchemaRegistered(t *testing.T) {
	s, reg := newRegistryFixture(t)
	const proto = "syntax = \"proto3\";\npackage p;\nmessage A { string id = 1; }\nmessage B { int64 n = 1; }\n"
	dir := t.TempDir()
	file := filepath.Join(dir, "b.proto")
	if err := os.WriteFile(file, []byte(proto), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		format  string
		opts    Options
		value   any
		subject string
		prefix  []byte // header and message index
	}{
		{Protobuf, Options{"schema": proto}, map[string]any{"id": "x"}, "out-value", []byte{0}},
		{Protobuf, Options{"schema_file": file, "message": "B", "subject_strategy": RecordName}, map[string]any{"n": int64(1)}, "p.B", []byte{2, 2}},
		{Protobuf, Options{"schema": proto, "message": "p.B", "subject_strategy": TopicRecordName}, map[string]any{"n": int64(1)}, "out-p.B", []byte{2, 2}},
		{JSONSchema, Options{"schema": `{"title":"Total","type":"object","required":["n"]}`, "subject_strategy": TopicRecordName}, map[string]any{"n": int64(1)}, "out-Total", nil},
	}
	for _, tt := range tests {
		c, err := Standard().New(tt.format, PartValue, tt.opts, Deps{Schemas: s})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.(Preparer).Prepare(t.Context(), "out"); err != nil {
			t.Fatalf("Prepare(%v) error: %v", tt.opts, err)
		}
		ss, ok := reg.GetSchema(tt.subject, 1)
		if !ok {
			t.Fatalf("%v: nothing registered under subject %s", tt.opts, tt.subject)
		}
		b, err := c.Encode("out", NoHeaders, tt.value)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]byte{0, 0, 0, 0, byte(ss.ID)}, tt.prefix...)
		if !bytes.HasPrefix(b, want) {
			t.Errorf("%v: Encode = %x, want prefix %x (the registered id %d)", tt.opts, b, want, ss.ID)
		}
		if v, err := c.Decode("out", NoHeaders, b); err != nil || !reflect.DeepEqual(v, tt.value) {
			t.Errorf("%v: Decode(Encode(v)) = %v, %v, want %v", tt.opts, v, err, tt.value)
		}
	}
	if _, err := Standard().New(Protobuf, PartValue, Options{"schema_file": filepath.Join(dir, "missing.proto")}, Deps{Schemas: s}); err == nil || !strings.Contains(err.Error(), "missing.proto") {
		t.Errorf("New with a missing schema_file: error = %v, want one naming the file", err)
	}
}

// TestProtobufReferenceWhileRegistryDown: a registry down when a
// schema's reference is first fetched fails that request only; once it
// answers, the schema compiles (the failure was not cached with the
// schema, which never changes).
func TestProtobufReferenceWhileRegistryDown(t *testing.T) {
	s, reg := newRegistryFixture(t)
	s.backoff = func(int) time.Duration { return time.Millisecond }
	reg.SeedSchema("money.proto", 1, 10, sr.Schema{Type: sr.TypeProtobuf, Schema: "syntax = \"proto3\";\npackage money;\nmessage Amount { int64 cents = 1; }\n"})
	reg.SeedSchema("payments-value", 1, 11, sr.Schema{Type: sr.TypeProtobuf,
		Schema:     "syntax = \"proto3\";\nimport \"money.proto\";\nmessage Payment { money.Amount amount = 1; }\n",
		References: []sr.SchemaReference{{Name: "money.proto", Subject: "money.proto", Version: 1}}})
	ctx, cancel := context.WithCancel(t.Context())
	var down atomic.Bool
	down.Store(true)
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !down.Load() || !strings.Contains(r.URL.Path, "money.proto") {
			return false
		}
		cancel() // the caller gives up after this refusal
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	c := newProtoCodec(t, s, PartValue, nil)
	if err := c.(Preparer).Prepare(ctx, "payments"); !errors.Is(err, ErrRegistryUnavailable) {
		t.Fatalf("Prepare while the registry is down: error = %v, want ErrRegistryUnavailable", err)
	}
	down.Store(false)
	b := []byte{0, 0, 0, 0, 11, 0, 0x0a, 0x02, 0x08, 0x05}
	v, err := c.Decode("payments", NoHeaders, b)
	if err != nil {
		t.Fatalf("Decode once the registry answers: %v", err)
	}
	if want := map[string]any{"amount": map[string]any{"cents": int64(5)}}; !reflect.DeepEqual(v, want) {
		t.Errorf("Decode = %v, want %v", v, want)
	}
}
