package format

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// deriveFixture is a type with every kind a derived schema maps: a
// nested record, a record that contains itself (through a list), lists,
// a map, nullable scalars and a nullable record; and a value of it.
func deriveFixture() (*Type, map[string]any) {
	node := &Type{Kind: KindRecord, Name: "shop.Node"}
	node.Fields = []Field{
		{Name: "name", Type: &Type{Kind: KindString}},
		{Name: "children", Type: &Type{Kind: KindList, Elem: node}},
	}
	line := &Type{Kind: KindRecord, Name: "pipe.step_line", Fields: []Field{
		{Name: "sku", Type: &Type{Kind: KindString}},
		{Name: "qty", Type: &Type{Kind: KindInt}},
	}}
	t := &Type{Kind: KindRecord, Name: "pipe.step", Fields: []Field{
		{Name: "id", Type: &Type{Kind: KindInt}},
		{Name: "price", Type: &Type{Kind: KindDouble}},
		{Name: "ok", Type: &Type{Kind: KindBool}},
		{Name: "blob", Type: &Type{Kind: KindBytes}},
		{Name: "total", Type: &Type{Kind: KindDecimal, Scale: 2}},
		{Name: "at", Type: &Type{Kind: KindTimestamp}},
		{Name: "wait", Type: &Type{Kind: KindDuration}},
		{Name: "tags", Type: &Type{Kind: KindList, Elem: &Type{Kind: KindString}}},
		{Name: "by_cat", Type: &Type{Kind: KindMap, Elem: &Type{Kind: KindDouble}}},
		{Name: "lines", Type: &Type{Kind: KindList, Elem: line}},
		{Name: "first", Type: &Type{Kind: KindRecord, Name: line.Name, Fields: line.Fields, Nullable: true}},
		{Name: "note", Type: &Type{Kind: KindString, Nullable: true}},
		{Name: "big", Type: &Type{Kind: KindInt, Nullable: true}},
		{Name: "tree", Type: node},
	}}
	v := map[string]any{
		"id": int64(7), "price": 2.5, "ok": true, "blob": []byte{0, 0xff},
		"total": Number("-12.50"), "at": time.Date(2024, 3, 1, 12, 30, 15, 250_000_000, time.UTC),
		"wait": 90 * time.Second, "tags": []any{"a", "b"}, "by_cat": map[string]any{"x": 1.5},
		"lines": []any{map[string]any{"sku": "s", "qty": int64(2)}},
		"first": nil, "note": "hi", "big": nil,
		"tree": map[string]any{"name": "root", "children": []any{map[string]any{"name": "leaf", "children": []any{}}}},
	}
	return t, v
}

// sameShape compares two types by kind, nullability, fields and
// elements; record names may differ (a derived schema names its own),
// and so may the nullability of what protobuf makes a message (protoType
// types a message field as not null: see protoFieldType).
func sameShape(a, b *Type, seen map[[2]*Type]bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	if seen[[2]*Type{a, b}] {
		return true
	}
	seen[[2]*Type{a, b}] = true
	if a.Kind != b.Kind || a.Nullable != b.Nullable && !protoIsMessage(a) || len(a.Fields) != len(b.Fields) {
		return false
	}
	for i := range a.Fields {
		if a.Fields[i].Name != b.Fields[i].Name || !sameShape(a.Fields[i].Type, b.Fields[i].Type, seen) {
			return false
		}
	}
	return sameShape(a.Elem, b.Elem, seen)
}

// TestProtoSchemaOf: the derived .proto compiles, its message reads back
// (protoType) as the type it was derived from, and a value of the type
// goes through the protobuf codec with it and comes back equal.
func TestProtoSchemaOf(t *testing.T) {
	typ, v := deriveFixture()
	text, err := ProtoSchemaOf(typ)
	if err != nil {
		t.Fatalf("ProtoSchemaOf() error: %v", err)
	}
	ps, err := compileProto(text, nil)
	if err != nil {
		t.Fatalf("derived schema does not compile: %v\n%s", err, text)
	}
	md, index, err := ps.messageByName("")
	if err != nil {
		t.Fatal(err)
	}
	if md.FullName() != "pipe.step" || !reflect.DeepEqual(index, []int{0}) {
		t.Errorf("first message = %s %v, want pipe.step [0]", md.FullName(), index)
	}
	if got := protoType(md, map[protoreflect.FullName]*Type{}); !sameShape(got, typ, map[[2]*Type]bool{}) {
		t.Errorf("protoType(derived) differs from the type it was derived from:\n%s", text)
	}
	again, err := ProtoSchemaOf(typ)
	if err != nil || again != text {
		t.Errorf("ProtoSchemaOf() again = %q, %v; want the same text", again, err)
	}

	s, _ := newRegistryFixture(t)
	c := newProtoCodec(t, s, PartValue, Options{"schema": text})
	b, err := c.Encode("derived", NoHeaders, v)
	if err != nil {
		t.Fatalf("Encode() error: %v", err)
	}
	got, err := c.Decode("derived", NoHeaders, b)
	if err != nil {
		t.Fatalf("Decode() error: %v", err)
	}
	want := map[string]any{}
	for k, x := range v {
		want[k] = x
	}
	want["total"] = Number("-12.50")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip = %#v\nwant %#v", got, want)
	}
	protocCheck(t, text, "pipe.step", b)
}

// protocCheck decodes the message of wire record b with protoc, an
// implementation independent of ours, when it is installed: the derived
// file must be one protoc reads too, and the bytes a message of it.
func protocCheck(t *testing.T, text, msg string, b []byte) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("protoc not installed: .ci/run installs it (protobuf-compiler, libprotobuf-dev)")
		}
		t.Log("protoc not installed: the derived schema is not checked with it")
		return
	}
	dir := t.TempDir()
	for name, src := range map[string]string{"derived.proto": text, "confluent/type/decimal.proto": confluentProtos["confluent/type/decimal.proto"]} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, payload, err := SplitWire(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, payload, err = SplitIndexes(payload); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(protoc, "-I", dir, "-I", "/usr/include", "--decode="+msg, "derived.proto")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(string(payload))
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "google/protobuf/") && strings.Contains(string(out), "not found") {
			if os.Getenv("CI") != "" {
				t.Fatalf("protoc has no google/protobuf includes: .ci/run installs them (libprotobuf-dev): %s", out)
			}
			t.Logf("protoc has no google/protobuf includes: not checked (%s)", out)
			return
		}
		t.Fatalf("protoc --decode=%s: %v\n%s\n%s", msg, err, out, text)
	}
	for _, want := range []string{`id: 7`, `name: "leaf"`, `seconds: 90`, `note: "hi"`, `key: "x"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("protoc decodes\n%s\nwant it to hold %s", out, want)
		}
	}
}

// TestProtoSchemaOfRefuses: what protobuf has no field for is an error
// naming the field.
func TestProtoSchemaOfRefuses(t *testing.T) {
	rec := func(ft *Type) *Type {
		return &Type{Kind: KindRecord, Name: "p.r", Fields: []Field{{Name: "f", Type: ft}}}
	}
	str := &Type{Kind: KindString}
	tests := []struct {
		t    *Type
		want string
	}{
		{str, "must be a record"},
		{rec(&Type{Kind: KindList, Elem: &Type{Kind: KindList, Elem: str}}), "field p.r.f is a list of lists"},
		{rec(&Type{Kind: KindMap, Elem: &Type{Kind: KindList, Elem: str}}), "field p.r.f is a map of lists"},
		{rec(&Type{Kind: KindList, Elem: &Type{Kind: KindMap, Elem: str}}), "field p.r.f is a list of maps"},
		{rec(&Type{Kind: KindList, Elem: &Type{Kind: KindString, Nullable: true}}), "field p.r.f is a list of values that may be null"},
		{rec(&Type{Kind: KindMap, Elem: &Type{Kind: KindInt, Nullable: true}}), "field p.r.f is a map of values that may be null"},
		{rec(&Type{Kind: KindNull, Nullable: true}), "field p.r.f is always null"},
		{rec(&Type{Kind: KindDyn}), "field p.r.f is dyn"},
		{&Type{Kind: KindRecord, Name: "p.r", Fields: []Field{{Name: "a-b", Type: str}}}, "field a-b of record p.r is not a protobuf field name"},
	}
	for _, tt := range tests {
		_, err := ProtoSchemaOf(tt.t)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ProtoSchemaOf(%s) error = %v, want one saying %q", kindName(tt.t), err, tt.want)
		}
	}
}

// TestProtoSchemaOfNames: a nested message never takes the name of a
// field of the message it is declared in, nor of another record.
func TestProtoSchemaOfNames(t *testing.T) {
	a := &Type{Kind: KindRecord, Name: "x.Item", Fields: []Field{{Name: "n", Type: &Type{Kind: KindInt}}}}
	b := &Type{Kind: KindRecord, Name: "y.Item", Fields: []Field{{Name: "s", Type: &Type{Kind: KindString}}}}
	typ := &Type{Kind: KindRecord, Name: "p.root", Fields: []Field{{Name: "Item", Type: a}, {Name: "other", Type: b}}}
	text, err := ProtoSchemaOf(typ)
	if err != nil {
		t.Fatalf("ProtoSchemaOf() error: %v", err)
	}
	for _, want := range []string{"root.Item_2 Item = 1;", "root.Item_3 other = 2;", "message Item_2 {", "message Item_3 {"} {
		if !strings.Contains(text, want) {
			t.Errorf("ProtoSchemaOf() =\n%s\nwant it to hold %q", text, want)
		}
	}
}

// TestJSONSchemaOf: the derived schema compiles, admits what the
// json_schema codec writes for a value of the type (through the codec),
// and refuses a value with a field missing, one too many, or of another
// type; a record that contains itself is under $defs.
func TestJSONSchemaOf(t *testing.T) {
	typ, v := deriveFixture()
	text, err := JSONSchemaOf(typ)
	if err != nil {
		t.Fatalf("JSONSchemaOf() error: %v", err)
	}
	if !strings.Contains(text, `"$ref":"#/$defs/shop.Node"`) || !strings.Contains(text, `"title":"pipe.step"`) {
		t.Errorf("JSONSchemaOf() = %s, want shop.Node under $defs and the title pipe.step", text)
	}
	s, _ := newRegistryFixture(t)
	c, err := Standard().New(JSONSchema, PartValue, Options{"schema": text}, Deps{Schemas: s})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Encode("derived", NoHeaders, v)
	if err != nil {
		t.Fatalf("Encode() error: %v\n%s", err, text)
	}
	if _, err := c.Decode("derived", NoHeaders, b); err != nil {
		t.Fatalf("Decode() error: %v", err)
	}
	js, err := compileJSONSchema(text, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := decodeJSON(b[wireHeader:])
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(map[string]any){
		"missing":    func(m map[string]any) { delete(m, "price") },
		"extra":      func(m map[string]any) { m["nope"] = int64(1) },
		"wrong type": func(m map[string]any) { m["id"] = "seven" },
		"bad nested": func(m map[string]any) { m["tree"] = map[string]any{"name": int64(1), "children": []any{}} },
	} {
		bad, _ := decodeJSON(b[wireHeader:])
		change(bad.(map[string]any))
		if err := validateJSON(js, bad); err == nil {
			t.Errorf("%s: validate(%v) = nil, want an error", name, bad)
		}
	}
	// Absent and null are both fine for a nullable field.
	m := doc.(map[string]any)
	delete(m, "note")
	if err := validateJSON(js, m); err != nil {
		t.Errorf("validate without a nullable field: %v", err)
	}
}

// TestDeriveSchemaKeys: a key may be a scalar in Avro and JSON Schema,
// not in Protobuf (a message); a value must be a record.
func TestDeriveSchemaKeys(t *testing.T) {
	str := &Type{Kind: KindString}
	tests := []struct {
		name string
		part Part
		want string // the schema, or "error: ..." part of the error
	}{
		{Avro, PartKey, `"string"`},
		{JSONSchema, PartKey, `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"string"}`},
		{Protobuf, PartKey, "error: must be a record (a message)"},
		{Avro, PartValue, "error: must be a record"},
		{JSONSchema, PartValue, "error: must be a record"},
	}
	for _, tt := range tests {
		got, err := DeriveSchema(tt.name, tt.part, str)
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != tt.want && !(strings.HasPrefix(tt.want, "error: ") && strings.Contains(got, strings.TrimPrefix(tt.want, "error: "))) {
			t.Errorf("DeriveSchema(%s, %s, string) = %s, want %s", tt.name, tt.part, got, tt.want)
		}
	}
}
