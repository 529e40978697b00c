package format

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// ProtoSchemaOf writes t, the type derived for a sink's values or keys
// (see topology.SinkType), as a proto3 file of one top-level message,
// which Confluent's serializers and the protobuf codec write as the
// file's first message (index 0):
//
//   - the package is the record's namespace (the pipeline's name, or the
//     source schema's for a record passed on whole), the message its
//     name; every other record is a message nested in that one, named
//     after its own name (made unique with _2, _3... when two records
//     share one), so a record that contains itself still compiles
//   - fields are numbered from 1 in the record's order: int as int64,
//     double, string, bytes and bool as themselves, a decimal as
//     confluent.type.Decimal, a timestamp as google.protobuf.Timestamp,
//     a duration as google.protobuf.Duration, a list as repeated, a map
//     as map<string, X>
//   - a nullable scalar is an optional field (proto3 explicit presence):
//     unset reads back as null, and the wire is that of a plain field, so
//     readers without presence support still read it. The wrapper types
//     (Int64Value...) would say the same with an import and a nested
//     message per value. A message field (record, decimal, timestamp,
//     duration) has presence already.
//
// Refused, with the field's path: a type that is dyn or always null,
// and what protobuf has no field for: a list of lists or of maps, a map
// of lists or of maps, and a list or map whose values may be null
// (repeated fields and map values cannot hold null).
func ProtoSchemaOf(t *Type) (string, error) {
	if t == nil || t.Kind != KindRecord {
		return "", fmt.Errorf("protobuf: a derived schema must be a record (a message), not %s: key or map the records by a map literal ({\"id\": ...})", kindName(t))
	}
	w := &protoWriterOf{names: map[string]string{}, used: map[string]bool{}}
	pkg, root := splitName(t.Name)
	w.root = protoIdent(root)
	w.names[t.Name] = w.root
	w.used[w.root] = true
	for _, f := range t.Fields {
		// Nested messages share the root's scope with its fields.
		w.used[f.Name] = true
	}
	w.queue = []*Type{t}
	for len(w.queue) > 0 {
		r := w.queue[0]
		w.queue = w.queue[1:]
		if err := w.message(r); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	b.WriteString("syntax = \"proto3\";\n")
	if pkg != "" {
		fmt.Fprintf(&b, "package %s;\n", protoPackage(pkg))
	}
	if len(w.imports) > 0 {
		b.WriteString("\n")
		slices.Sort(w.imports)
		for _, i := range w.imports {
			fmt.Fprintf(&b, "import %q;\n", i)
		}
	}
	b.WriteString("\nmessage " + w.root + " {\n")
	b.WriteString(w.fields[t.Name])
	for _, n := range w.order[1:] {
		b.WriteString("\n  message " + w.names[n] + " {\n")
		b.WriteString(indent(w.fields[n], "  "))
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	text := b.String()
	if _, err := compileProto(text, nil); err != nil {
		return "", fmt.Errorf("protobuf: the derived schema does not compile: %v", err)
	}
	return text, nil
}

// protoWriterOf collects the messages of a derived file: the root's
// fields, then one nested message per other record, in the order they
// are first met (breadth first), so the text is the same every time.
type protoWriterOf struct {
	root    string
	names   map[string]string // record full name -> message name
	used    map[string]bool   // message names taken
	order   []string          // record full names, root first
	fields  map[string]string // record full name -> its field lines
	queue   []*Type
	imports []string
}

func (w *protoWriterOf) message(r *Type) error {
	if w.fields == nil {
		w.fields = map[string]string{}
	}
	if _, done := w.fields[r.Name]; done {
		return nil
	}
	w.order = append(w.order, r.Name)
	w.fields[r.Name] = "" // before the fields: a record may contain itself
	var b strings.Builder
	for i, f := range r.Fields {
		if !protoFieldName.MatchString(f.Name) {
			return derivedFieldErr(r.Name, f.Name, fmt.Errorf("protobuf: field %s of record %s is not a protobuf field name (a letter, then letters, digits and _): rename it in the map literal", f.Name, r.Name))
		}
		label, typ, err := w.fieldType(f.Type, r.Name+"."+f.Name)
		if err != nil {
			return derivedFieldErr(r.Name, f.Name, err)
		}
		fmt.Fprintf(&b, "  %s%s %s = %d;\n", label, typ, f.Name, i+1)
	}
	w.fields[r.Name] = b.String()
	return nil
}

var protoFieldName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// fieldType is the label ("repeated ", "optional " or none) and the type
// of a field of type t; path names it for errors.
func (w *protoWriterOf) fieldType(t *Type, path string) (label, typ string, err error) {
	switch t.Kind {
	case KindList:
		if err := w.element(t, path); err != nil {
			return "", "", err
		}
		_, typ, err := w.fieldType(t.Elem, path+"[]")
		return "repeated ", typ, err
	case KindMap:
		if err := w.element(t, path); err != nil {
			return "", "", err
		}
		_, typ, err := w.fieldType(t.Elem, path+"{}")
		return "", "map<string, " + typ + ">", err
	}
	typ, err = w.singular(t, path)
	if err != nil {
		return "", "", err
	}
	if t.Nullable && !protoIsMessage(t) {
		label = "optional "
	}
	return label, typ, nil
}

// element refuses the lists and maps protobuf has no field for.
func (w *protoWriterOf) element(t *Type, path string) error {
	what := "a list"
	if t.Kind == KindMap {
		what = "a map"
	}
	switch e := t.Elem; {
	case e == nil || e.Kind == KindDyn:
		return fmt.Errorf("protobuf: field %s is %s of dyn values, which have no protobuf type", path, what)
	case e.Kind == KindList || e.Kind == KindMap:
		return fmt.Errorf("protobuf: field %s is %s of %ss, which protobuf has no field for (repeated and map fields hold scalars or messages): make the inner one a record (a map literal)", path, what, kindName(e))
	case e.Nullable:
		return fmt.Errorf("protobuf: field %s is %s of values that may be null, which protobuf cannot hold (repeated and map fields have no null): drop the nulls, or give the sink a schema", path, what)
	}
	return nil
}

func protoIsMessage(t *Type) bool {
	switch t.Kind {
	case KindRecord, KindDecimal, KindTimestamp, KindDuration:
		return true
	}
	return false
}

func (w *protoWriterOf) singular(t *Type, path string) (string, error) {
	switch t.Kind {
	case KindBool:
		return "bool", nil
	case KindInt:
		return "int64", nil
	case KindDouble:
		return "double", nil
	case KindString:
		return "string", nil
	case KindBytes:
		return "bytes", nil
	case KindDecimal:
		w.use("confluent/type/decimal.proto")
		return "confluent.type.Decimal", nil
	case KindTimestamp:
		w.use("google/protobuf/timestamp.proto")
		return "google.protobuf.Timestamp", nil
	case KindDuration:
		w.use("google/protobuf/duration.proto")
		return "google.protobuf.Duration", nil
	case KindRecord:
		name, ok := w.names[t.Name]
		if !ok {
			_, short := splitName(t.Name)
			name = protoIdent(short)
			for i := 2; w.used[name]; i++ {
				name = fmt.Sprintf("%s_%d", protoIdent(short), i)
			}
			w.used[name] = true
			w.names[t.Name] = name
			w.queue = append(w.queue, t)
		}
		if name == w.root {
			return w.root, nil
		}
		return w.root + "." + name, nil
	case KindNull:
		return "", fmt.Errorf("protobuf: field %s is always null, which has no protobuf type: drop it, or give it a typed value", path)
	}
	return "", fmt.Errorf("protobuf: field %s is %s, which has no protobuf type", path, kindName(t))
}

func (w *protoWriterOf) use(file string) {
	if !slices.Contains(w.imports, file) {
		w.imports = append(w.imports, file)
	}
}

// splitName splits a record's full name at its last dot.
func splitName(full string) (namespace, name string) {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "", full
}

var notProtoIdent = regexp.MustCompile(`[^A-Za-z0-9_]`)

// protoIdent makes s a protobuf identifier (a letter or _, then letters,
// digits and _).
func protoIdent(s string) string {
	s = notProtoIdent.ReplaceAllString(s, "_")
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		s = "_" + s
	}
	return s
}

// protoPackage makes each dotted part of ns an identifier.
func protoPackage(ns string) string {
	parts := strings.Split(ns, ".")
	for i, p := range parts {
		parts[i] = protoIdent(p)
	}
	return strings.Join(parts, ".")
}

func indent(s, by string) string {
	if s == "" {
		return s
	}
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = by + l
		}
	}
	return strings.Join(lines, "")
}
