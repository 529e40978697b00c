package format

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

func newJSONSchemaCodec(t testing.TB, s *Schemas, part Part, opts Options) Codec {
	t.Helper()
	return newCodec(t, JSONSchema, s, part, opts)
}

// TestJSONSchemaVectors decodes records Confluent's Python JSONSerializer
// wrote and encodes the values back to the same bytes (both write compact
// JSON; Python keeps the object's key order, which the vectors give
// sorted where it matters).
func TestJSONSchemaVectors(t *testing.T) {
	vectors := loadVectors(t)
	s, _ := newRegistryFixture(t)
	c := newJSONSchemaCodec(t, s, PartValue, nil)
	tests := []struct {
		vector string
		want   any
	}{
		{"json_full", map[string]any{"order_id": "o-1", "quantity": int64(3), "price": 19.5, "status": "PAID", "tags": []any{"gift", "rush"}, "coupon": nil}},
		{"json_min", map[string]any{"order_id": "o-2", "quantity": int64(1), "price": int64(2)}},
	}
	for _, tt := range tests {
		t.Run(tt.vector, func(t *testing.T) {
			in := vectors[tt.vector]
			got, err := c.Decode("orders-json", NoHeaders, in)
			if err != nil {
				t.Fatalf("Decode error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode = %#v, want %#v", got, tt.want)
			}
			out, err := c.Encode("orders-json", NoHeaders, got)
			if err != nil {
				t.Fatalf("Encode error: %v", err)
			}
			if !bytes.Equal(out[:5], in[:5]) {
				t.Errorf("Encode header = %x, want %x", out[:5], in[:5])
			}
			back, err := c.Decode("orders-json", NoHeaders, out)
			if err != nil || !reflect.DeepEqual(back, tt.want) {
				t.Errorf("Decode(Encode(v)) = %#v, %v, want %#v", back, err, tt.want)
			}
		})
	}
}

func TestJSONSchemaBadInput(t *testing.T) {
	s, _ := newRegistryFixture(t)
	c := newJSONSchemaCodec(t, s, PartValue, nil)
	withID := func(id byte, rest string) []byte { return append([]byte{0, 0, 0, 0, id}, rest...) }
	checkBadInput(t, c, "orders-json", []badInput{
		{"plain json", []byte(`{"order_id":"x"}`), "wire_format", ErrWireFormat, "first byte is 0x7b"},
		{"unknown id", withID(42, `{}`), "unknown_schema", ErrUnknownSchema, "42"},
		{"not json", withID(orderJSONID, `{"order_id":`), "schema_mismatch", ErrSchemaMismatch, "invalid JSON"},
		{"fails its schema", withID(orderJSONID, `{"order_id":"o","quantity":0,"price":"1","extra":true}`), "schema_mismatch", ErrSchemaMismatch,
			`record is not valid against json schema id 2: at '': additional properties 'extra' not allowed; at '/price': got string, want number; at '/quantity': minimum: got 0, want 1`},
		{"id of a protobuf schema", withID(shopProtoID, `{}`), "schema_mismatch", ErrSchemaMismatch, "schema id 1 is PROTOBUF, not JSON"},
	})
}

// TestJSONSchemaEncode: a sink validates what it writes, as written
// (a Number is checked as the JSON number it becomes).
func TestJSONSchemaEncode(t *testing.T) {
	s, _ := newRegistryFixture(t)
	c := newJSONSchemaCodec(t, s, PartValue, Options{"subject": orderJSONSubj})
	b, err := c.Encode("anything", NoHeaders, map[string]any{"order_id": "o", "quantity": int64(2), "price": Number("9.90")})
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte{0, 0, 0, 0, orderJSONID}, `{"order_id":"o","price":9.90,"quantity":2}`...); !bytes.Equal(b, want) {
		t.Errorf("Encode = %q, want %q", b, want)
	}
	_, err = c.Encode("anything", NoHeaders, map[string]any{"order_id": "o", "quantity": int64(2), "price": time.Unix(0, 0)})
	if err == nil || Class(err) != "schema_mismatch" || !strings.Contains(err.Error(), "at '/price': got string, want number") {
		t.Errorf("Encode of a timestamp price: error = %v, want a schema_mismatch naming /price", err)
	}
	if err := newJSONSchemaCodec(t, s, PartKey, nil).(Preparer).Prepare(t.Context(), "orders-json"); err == nil || !strings.Contains(err.Error(), "orders-json-key") {
		t.Errorf("key Prepare error = %v, want one naming subject orders-json-key", err)
	}
}

// TestJSONSchemaReferences: $ref to a schema registered as a reference,
// by relative name; nothing is loaded from outside the registry.
func TestJSONSchemaReferences(t *testing.T) {
	s, reg := newRegistryFixture(t)
	reg.SeedSchema("money", 1, 20, sr.Schema{Type: sr.TypeJSON, Schema: `{"type":"object","properties":{"cents":{"type":"integer"}},"required":["cents"]}`})
	reg.SeedSchema("pay-value", 1, 21, sr.Schema{Type: sr.TypeJSON,
		Schema:     `{"$id":"https://example.com/schemas/pay.json","type":"object","properties":{"amount":{"$ref":"money.json"}}}`,
		References: []sr.SchemaReference{{Name: "money.json", Subject: "money", Version: 1}}})
	reg.SeedSchema("file-value", 1, 22, sr.Schema{Type: sr.TypeJSON, Schema: `{"$ref":"file:///etc/passwd"}`})
	c := newJSONSchemaCodec(t, s, PartValue, nil)
	if _, err := c.Decode("pay", NoHeaders, append([]byte{0, 0, 0, 0, 21}, `{"amount":{"cents":5}}`...)); err != nil {
		t.Errorf("Decode valid: %v", err)
	}
	if _, err := c.Decode("pay", NoHeaders, append([]byte{0, 0, 0, 0, 21}, `{"amount":{}}`...)); err == nil || !strings.Contains(err.Error(), "missing property 'cents'") {
		t.Errorf("Decode invalid: error = %v, want the referenced schema's complaint", err)
	}
	if _, err := c.Decode("file", NoHeaders, append([]byte{0, 0, 0, 0, 22}, `{}`...)); err == nil || !strings.Contains(err.Error(), "does not compile") {
		t.Errorf("Decode with a file $ref: error = %v, want the schema refused", err)
	}
}

// FuzzJSONSchemaDecode: no input makes Decode panic; what it accepts is
// valid, so it encodes back.
func FuzzJSONSchemaDecode(f *testing.F) {
	for _, b := range loadVectors(f) {
		f.Add(b)
	}
	s, _ := newRegistryFixture(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c := newJSONSchemaCodec(t, s, PartValue, Options{"subject": orderJSONSubj})
		v, err := c.Decode("orders-json", NoHeaders, b)
		if err != nil {
			if Class(err) == "" {
				t.Fatalf("Decode(%q) error %v has no class", b, err)
			}
			return
		}
		if len(b) < 5 || b[4] != orderJSONID {
			return
		}
		if _, err := c.Encode("orders-json", NoHeaders, v); err != nil {
			t.Fatalf("Encode(Decode(%q)) error: %v", b, err)
		}
	})
}
