package format

import (
	"slices"
	"testing"
)

// TestMissingFields names, by path, the fields of written records that a
// schema's records lack: at the top, in a nested record, in a list's and
// a map's records; fields only the schema has, and places where the two
// types are not both records, are not reported.
func TestMissingFields(t *testing.T) {
	str := &Type{Kind: KindString}
	line := func(fields ...string) *Type {
		r := &Type{Kind: KindRecord, Name: "Line"}
		for _, f := range fields {
			r.Fields = append(r.Fields, Field{Name: f, Type: str})
		}
		return r
	}
	rec := func(l *Type, fields ...string) *Type {
		r := &Type{Kind: KindRecord, Name: "Order", Fields: []Field{
			{Name: "first", Type: l},
			{Name: "lines", Type: &Type{Kind: KindList, Elem: l}},
			{Name: "by_sku", Type: &Type{Kind: KindMap, Elem: l}},
		}}
		for _, f := range fields {
			r.Fields = append(r.Fields, Field{Name: f, Type: str})
		}
		return r
	}
	schema := rec(line("sku"), "id", "only_in_schema")
	written := rec(line("sku", "qty"), "id", "note")
	got := MissingFields(schema, written)
	want := []string{"first.qty", "lines[].qty", "by_sku{}.qty", "note"}
	if !slices.Equal(got, want) {
		t.Errorf("MissingFields = %q, want %q", got, want)
	}
	if got := MissingFields(written, written); len(got) != 0 {
		t.Errorf("MissingFields of a type with itself = %q, want none", got)
	}
	if got := MissingFields(str, written); len(got) != 0 {
		t.Errorf("MissingFields of a string schema = %q, want none (not records)", got)
	}
}
