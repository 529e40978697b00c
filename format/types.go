package format

import (
	"context"
	"fmt"

	"github.com/hamba/avro/v2"
)

// Kind is the kind of a Type.
type Kind uint8

// The kinds of values codecs decode to, as expressions see them.
const (
	KindDyn       Kind = iota // unknown: anything
	KindNull                  // only null
	KindBool                  // bool
	KindInt                   // int64
	KindDouble                // float64
	KindString                // string
	KindBytes                 // []byte
	KindDecimal               // Number: exact decimal text, a string to expressions
	KindTimestamp             // time.Time
	KindDuration              // time.Duration
	KindList                  // []any of Elem
	KindMap                   // map[string]any of Elem
	KindRecord                // map[string]any with Fields
)

// Type describes the values a codec decodes, for type-checking a
// pipeline's expressions against a schema before it runs. Record types
// are shared by name, so a recursive schema is a cyclic graph: walk it
// by Name.
type Type struct {
	Kind     Kind
	Name     string  // records: the full name, unique among the records of one schema
	Fields   []Field // records, in schema order
	Elem     *Type   // lists and maps
	Nullable bool    // null is a value too (a union with null)
	// Scale is a decimal's digits after the point, when known: set on
	// the types derived for a sink (an aggregate column's scale), 0
	// elsewhere.
	Scale int
}

// Field is one field of a record Type.
type Field struct {
	Name string
	Type *Type
}

// TypeFunc returns the Type of the values the codecs of a format decode
// for part of topic's records, with the format's options: the schema a
// source reads with (its reader schema, else the subject's latest). nil
// and no error: unknown (no schema registered yet). It may ask the
// registry; ctx bounds that.
type TypeFunc func(ctx context.Context, part Part, topic string, opts Options, deps Deps) (*Type, error)

// avroType is the type of the values avro decodes with schema s.
func avroType(s avro.Schema, seen map[string]*Type) *Type {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	switch s := s.(type) {
	case *avro.NullSchema:
		return &Type{Kind: KindNull, Nullable: true}
	case *avro.PrimitiveSchema:
		switch logicalOf(s) {
		case avro.Decimal:
			return &Type{Kind: KindDecimal}
		case avro.Date, avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros:
			return &Type{Kind: KindTimestamp}
		case avro.TimeMillis, avro.TimeMicros:
			return &Type{Kind: KindDuration}
		}
		switch s.Type() {
		case avro.Boolean:
			return &Type{Kind: KindBool}
		case avro.Int, avro.Long:
			return &Type{Kind: KindInt}
		case avro.Float, avro.Double:
			return &Type{Kind: KindDouble}
		case avro.String:
			return &Type{Kind: KindString}
		case avro.Bytes:
			return &Type{Kind: KindBytes}
		}
	case *avro.RecordSchema:
		if t, ok := seen[s.FullName()]; ok {
			return t
		}
		t := &Type{Kind: KindRecord, Name: s.FullName()}
		seen[s.FullName()] = t
		for _, f := range s.Fields() {
			t.Fields = append(t.Fields, Field{Name: f.Name(), Type: avroType(f.Type(), seen)})
		}
		return t
	case *avro.EnumSchema:
		return &Type{Kind: KindString}
	case *avro.FixedSchema:
		if _, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			return &Type{Kind: KindDecimal}
		}
		return &Type{Kind: KindBytes}
	case *avro.ArraySchema:
		return &Type{Kind: KindList, Elem: avroType(s.Items(), seen)}
	case *avro.MapSchema:
		return &Type{Kind: KindMap, Elem: avroType(s.Values(), seen)}
	case *avro.UnionSchema:
		var branches []*Type
		null := false
		for _, b := range s.Types() {
			if b.Type() == avro.Null {
				null = true
				continue
			}
			branches = append(branches, avroType(b, seen))
		}
		if len(branches) != 1 {
			return &Type{Kind: KindDyn, Nullable: null}
		}
		if !null {
			return branches[0]
		}
		t := *branches[0]
		t.Nullable = true
		if t.Kind == KindRecord {
			// A shared record type stays shared: a nullable record
			// is told apart by this copy's flag only.
			return &Type{Kind: t.Kind, Name: t.Name, Fields: t.Fields, Nullable: true}
		}
		return &t
	}
	return &Type{Kind: KindDyn}
}

// avroTypeOf is the avro format's TypeFunc.
func avroTypeOf(ctx context.Context, part Part, topic string, opts Options, deps Deps) (*Type, error) {
	cdc, err := newAvro(part, opts, deps)
	if err != nil {
		return nil, err
	}
	c := cdc.(*avroCodec)
	if c.given != nil {
		return avroType(c.given, map[string]*Type{}), nil
	}
	subject := c.subject(topic, nil)
	ss, err := c.schemas.ByVersion(ctx, subject, c.opts.version)
	if err != nil {
		if notFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("subject %s: %w", subject, err)
	}
	s, err := c.byID(ctx, ss.ID)
	if err != nil {
		return nil, err
	}
	return avroType(s, map[string]*Type{}), nil
}

// MissingFields lists the fields of the records of written that the
// records of schema lack, by path (line, line.sku, lines[].sku): values
// of type written would lose them when encoded with schema. Records are
// compared where both types have one at the same place (a field, a list
// or map element); anything else is not this function's to judge.
func MissingFields(schema, written *Type) []string {
	var out []string
	var walk func(s, w *Type, path string, seen map[[2]*Type]bool)
	walk = func(s, w *Type, path string, seen map[[2]*Type]bool) {
		if s == nil || w == nil || seen[[2]*Type{s, w}] {
			return // a recursive record: its fields are being walked
		}
		seen[[2]*Type{s, w}] = true
		defer delete(seen, [2]*Type{s, w})
		switch {
		case s.Kind == KindRecord && w.Kind == KindRecord:
			for _, wf := range w.Fields {
				var sf *Field
				for i := range s.Fields {
					if s.Fields[i].Name == wf.Name {
						sf = &s.Fields[i]
					}
				}
				p := wf.Name
				if path != "" {
					p = path + "." + wf.Name
				}
				if sf == nil {
					out = append(out, p)
					continue
				}
				walk(sf.Type, wf.Type, p, seen)
			}
		case s.Kind == KindList && w.Kind == KindList:
			walk(s.Elem, w.Elem, path+"[]", seen)
		case s.Kind == KindMap && w.Kind == KindMap:
			walk(s.Elem, w.Elem, path+"{}", seen)
		}
	}
	walk(schema, written, "", map[[2]*Type]bool{})
	return out
}
