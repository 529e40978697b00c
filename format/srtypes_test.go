package format

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// typeText writes t compactly: record types once, by name after that.
func typeText(t *Type, seen map[*Type]bool) string {
	if t == nil {
		return "nil"
	}
	var s string
	switch t.Kind {
	case KindRecord:
		if seen[t] {
			s = t.Name
			break
		}
		seen[t] = true
		var fs []string
		for _, f := range t.Fields {
			fs = append(fs, f.Name+": "+typeText(f.Type, seen))
		}
		s = t.Name + "{" + strings.Join(fs, ", ") + "}"
	case KindList:
		s = "list<" + typeText(t.Elem, seen) + ">"
	case KindMap:
		s = "map<" + typeText(t.Elem, seen) + ">"
	default:
		s = [...]string{"dyn", "null", "bool", "int", "double", "string", "bytes", "decimal", "timestamp", "duration"}[t.Kind]
	}
	if t.Nullable {
		s += "?"
	}
	return s
}

// TestSchemaFormatTypes: the types validate --registry checks a source's
// expressions against are those of the values the codecs decode.
func TestSchemaFormatTypes(t *testing.T) {
	s, reg := newRegistryFixture(t)
	reg.SeedSchema("tree-value", 1, 30, sr.Schema{Type: sr.TypeProtobuf, Schema: `syntax = "proto3";
message Node { string name = 1; repeated Node children = 2; optional int32 weight = 3; uint64 big = 4; }
`})
	reg.SeedSchema("people-value", 1, 31, sr.Schema{Type: sr.TypeJSON, Schema: `{
  "title": "Person", "type": "object",
  "properties": {
    "name": {"type": "string"},
    "age": {"type": ["integer", "null"]},
    "address": {"$ref": "#/definitions/address"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "kind": {"enum": ["a", "b"]},
    "extra": {"type": "object", "additionalProperties": {"type": "number"}},
    "any": {"anyOf": [{"type": "string"}, {"type": "integer"}]}
  },
  "definitions": {"address": {"type": "object", "properties": {"city": {"type": "string"}, "home": {"$ref": "#/definitions/address"}}}}
}`})
	tests := []struct {
		format, topic string
		opts          Options
		want          string
	}{
		{Protobuf, "orders", nil, "shop.Order{order_id: string, quantity: int, price: double, status: string, " +
			"placed_at: timestamp, coupon: string?, lines: list<shop.Order.Line{sku: string, qty: int}>, tags: map<int>, " +
			"blob: bytes, big: int, ratio: double, note: string?, total: decimal, card: string?, iban: string?, delta: int, " +
			"extra: map<dyn>, wait: duration, points: int?}"},
		{Protobuf, "orders", Options{"message": "Refund"}, "shop.Refund{order_id: string, amount: int}"},
		{Protobuf, "tree", nil, "Node{name: string, children: list<Node>, weight: int?, big: int}"},
		{Protobuf, "x", Options{"schema": "syntax = \"proto3\";\npackage p;\nmessage A { bool ok = 1; }\n"}, "p.A{ok: bool}"},
		{JSONSchema, "orders-json", nil, "Order{coupon: string?, order_id: string, price: double, quantity: int, status: string, tags: list<string>}"},
		{JSONSchema, "people", nil, "Person{address: Person.address{city: string, home: Person.address}, age: int?, any: dyn, " +
			"extra: map<double>, kind: string, name: string, tags: list<string>}"},
	}
	for _, tt := range tests {
		f, _ := Standard().Lookup(tt.format)
		typ, err := f.Type(t.Context(), PartValue, tt.topic, tt.opts, Deps{Schemas: s})
		if err != nil {
			t.Errorf("Type(%s, %s, %v) error: %v", tt.format, tt.topic, tt.opts, err)
			continue
		}
		if got := typeText(typ, map[*Type]bool{}); got != tt.want {
			t.Errorf("Type(%s, %s, %v) =\n%s\nwant\n%s", tt.format, tt.topic, tt.opts, got, tt.want)
		}
	}
	// A subject not registered yet: unknown, not an error.
	for _, name := range []string{Protobuf, JSONSchema} {
		f, _ := Standard().Lookup(name)
		if typ, err := f.Type(t.Context(), PartValue, "nothing", nil, Deps{Schemas: s}); typ != nil || err != nil {
			t.Errorf("%s: Type of an unregistered subject = %v, %v, want nil, nil", name, typ, err)
		}
	}
}
