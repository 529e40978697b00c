package format

import (
	"context"
	"fmt"
	"slices"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The TypeFuncs of protobuf and json_schema: the Type of what a source
// decodes, from the schema its options name (the given schema, else the
// subject's version, default the latest), so that `exactly validate
// --registry` checks expressions against it. A topic can carry other
// schemas (a record's id picks its own); the type is the subject's.

// protobufTypeOf is the protobuf format's TypeFunc: the type of the
// message the options name (message, default the file's first).
func protobufTypeOf(ctx context.Context, part Part, topic string, opts Options, deps Deps) (*Type, error) {
	if deps.Schemas == nil {
		return nil, ErrNoRegistry
	}
	o, err := newSinkSchemaOpts(Protobuf, opts)
	if err != nil {
		return nil, err
	}
	var ps *protoSchema
	subject := "the given schema"
	if o.schema != "" {
		if ps, err = compileProto(o.schema, nil); err != nil {
			return nil, err
		}
	} else {
		if subject, err = o.subjectFor(part, topic); err != nil {
			return nil, err
		}
		ss, err := deps.Schemas.ByVersion(ctx, subject, o.version)
		if err != nil {
			if notFound(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("subject %s: %w", subject, err)
		}
		if ps, err = compiledProto(ctx, deps.Schemas, ss.ID); err != nil {
			return nil, fmt.Errorf("subject %s: %w", subject, err)
		}
	}
	md, _, err := ps.messageByName(o.message)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", subject, err)
	}
	return protoType(md, map[protoreflect.FullName]*Type{}), nil
}

// protoType is the Type of the values protoMessageValue makes of md's
// messages. Record types are shared by full name, so a recursive message
// is a cyclic graph.
func protoType(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*Type) *Type {
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return &Type{Kind: KindTimestamp}
	case "google.protobuf.Duration":
		return &Type{Kind: KindDuration}
	case "confluent.type.Decimal":
		return &Type{Kind: KindDecimal}
	case "google.protobuf.Struct", "google.protobuf.Empty":
		return &Type{Kind: KindMap, Elem: &Type{Kind: KindDyn}}
	case "google.protobuf.ListValue":
		return &Type{Kind: KindList, Elem: &Type{Kind: KindDyn}}
	case "google.protobuf.Value":
		return &Type{Kind: KindDyn, Nullable: true}
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
		"google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue":
		if fd := md.Fields().ByNumber(1); fd != nil {
			t := protoScalarType(fd)
			t.Nullable = true
			return t
		}
	}
	if t, ok := seen[md.FullName()]; ok {
		return t
	}
	t := &Type{Kind: KindRecord, Name: string(md.FullName())}
	seen[md.FullName()] = t
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		t.Fields = append(t.Fields, Field{Name: string(fd.Name()), Type: protoFieldType(fd, seen)})
	}
	return t
}

func protoFieldType(fd protoreflect.FieldDescriptor, seen map[protoreflect.FullName]*Type) *Type {
	switch {
	case fd.IsList():
		return &Type{Kind: KindList, Elem: protoSingularType(fd, seen)}
	case fd.IsMap():
		return &Type{Kind: KindMap, Elem: protoSingularType(fd.MapValue(), seen)}
	}
	t := protoSingularType(fd, seen)
	// An unset field with presence decodes to null. A scalar says so
	// (CEL's nullable scalars); a message does not: CEL lets null be
	// compared with a record, timestamp or duration anyway, and a
	// nullable record would be dyn, its fields unchecked.
	if fd.HasPresence() && fd.Message() == nil && !t.Nullable {
		c := *t
		c.Nullable = true
		return &c
	}
	return t
}

func protoSingularType(fd protoreflect.FieldDescriptor, seen map[protoreflect.FullName]*Type) *Type {
	if md := fd.Message(); md != nil {
		return protoType(md, seen)
	}
	return protoScalarType(fd)
}

// protoScalarType follows protoSingular: unsigned integers are int (a
// uint64 above 9223372036854775807 is a uint, as in the json format).
func protoScalarType(fd protoreflect.FieldDescriptor) *Type {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return &Type{Kind: KindBool}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return &Type{Kind: KindDouble}
	case protoreflect.StringKind, protoreflect.EnumKind:
		return &Type{Kind: KindString}
	case protoreflect.BytesKind:
		return &Type{Kind: KindBytes}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return &Type{Kind: KindDyn}
	}
	return &Type{Kind: KindInt}
}

// jsonSchemaTypeOf is the json_schema format's TypeFunc.
func jsonSchemaTypeOf(ctx context.Context, part Part, topic string, opts Options, deps Deps) (*Type, error) {
	if deps.Schemas == nil {
		return nil, ErrNoRegistry
	}
	o, err := newSinkSchemaOpts(JSONSchema, opts)
	if err != nil {
		return nil, err
	}
	var js *jsonschema.Schema
	if o.schema != "" {
		if js, err = compileJSONSchema(o.schema, nil); err != nil {
			return nil, err
		}
	} else {
		subject, err := o.subjectFor(part, topic)
		if err != nil {
			return nil, err
		}
		ss, err := deps.Schemas.ByVersion(ctx, subject, o.version)
		if err != nil {
			if notFound(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("subject %s: %w", subject, err)
		}
		if js, err = compiledJSONSchema(ctx, deps.Schemas, ss.ID); err != nil {
			return nil, fmt.Errorf("subject %s: %w", subject, err)
		}
	}
	w := jsonTyper{seen: map[*jsonschema.Schema]*Type{}, names: map[string]bool{}}
	root := js.Title
	if root == "" {
		root = "value"
	}
	return w.typ(js, root), nil
}

// jsonTyper works out the Type of the values a JSON Schema admits, as
// the json format decodes them: an object with properties is a record
// of them (sorted by name), one without a map; an array a list; integer
// int, number double, and so on. A value of several types is dyn; one
// that may be null is nullable. What the schema does not pin down
// (anyOf of different types, if/then) is dyn: never a false error.
type jsonTyper struct {
	seen  map[*jsonschema.Schema]*Type
	names map[string]bool
}

func (w *jsonTyper) typ(s *jsonschema.Schema, name string) *Type {
	if s == nil {
		return &Type{Kind: KindDyn}
	}
	if t, ok := w.seen[s]; ok {
		return t
	}
	// A $ref alone (draft-07 ignores its siblings), or one allOf branch.
	if s.Ref != nil && s.Types == nil && len(s.Properties) == 0 {
		return w.typ(s.Ref, name)
	}
	if len(s.AllOf) == 1 && s.Types == nil && len(s.Properties) == 0 {
		return w.typ(s.AllOf[0], name)
	}
	var kinds []string
	if s.Types != nil {
		kinds = s.Types.ToStrings()
	} else if s.Enum != nil {
		kinds = jsonKinds(s.Enum.Values)
	} else if s.Const != nil {
		kinds = jsonKinds([]any{*s.Const})
	} else if len(s.Properties) > 0 {
		kinds = []string{"object"}
	}
	nullable := slices.Contains(kinds, "null")
	kinds = slices.DeleteFunc(kinds, func(k string) bool { return k == "null" })
	if len(kinds) != 1 {
		return &Type{Kind: KindDyn, Nullable: nullable}
	}
	var t *Type
	switch kinds[0] {
	case "boolean":
		t = &Type{Kind: KindBool}
	case "integer":
		t = &Type{Kind: KindInt}
	case "number":
		t = &Type{Kind: KindDouble}
	case "string":
		t = &Type{Kind: KindString}
	case "array":
		item, _ := s.Items.(*jsonschema.Schema)
		if s.Items2020 != nil {
			item = s.Items2020
		}
		t = &Type{Kind: KindList, Elem: w.typ(item, name+"[]")}
	case "object":
		if len(s.Properties) == 0 {
			elem, _ := s.AdditionalProperties.(*jsonschema.Schema)
			t = &Type{Kind: KindMap, Elem: w.typ(elem, name+"{}")}
			break
		}
		if w.names[name] {
			name = s.Location // unique
		}
		w.names[name] = true
		t = &Type{Kind: KindRecord, Name: name}
		w.seen[s] = t // before the fields: a recursive schema refers to it
		props := make([]string, 0, len(s.Properties))
		for p := range s.Properties {
			props = append(props, p)
		}
		slices.Sort(props)
		for _, p := range props {
			t.Fields = append(t.Fields, Field{Name: p, Type: w.typ(s.Properties[p], name+"."+p)})
		}
	default:
		t = &Type{Kind: KindDyn}
	}
	if nullable {
		if t.Kind == KindRecord {
			return &Type{Kind: t.Kind, Name: t.Name, Fields: t.Fields, Nullable: true}
		}
		t.Nullable = true
	}
	return t
}

// jsonKinds are the JSON Schema type names of vs.
func jsonKinds(vs []any) []string {
	var out []string
	add := func(k string) {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	for _, v := range vs {
		switch v.(type) {
		case nil:
			add("null")
		case bool:
			add("boolean")
		case string:
			add("string")
		case []any:
			add("array")
		case map[string]any:
			add("object")
		default:
			add("number")
		}
	}
	return out
}
