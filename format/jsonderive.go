package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// jsonSchemaDraft is the dialect of derived JSON Schemas.
const jsonSchemaDraft = "https://json-schema.org/draft/2020-12/schema"

// JSONSchemaOf writes t, the type derived for a sink's values or keys
// (see topology.SinkType), as a JSON Schema (draft 2020-12) that admits
// what the json_schema codec writes for values of t: a record as an
// object with its properties, every one required unless nullable
// (an optional field of a map literal may be absent), and
// additionalProperties false; bool as boolean, int as integer, double
// and decimal as number (a decimal is written as a JSON number, its
// digits exact), string as string, bytes as a base64 string, a
// timestamp as a date-time string, a duration as a string (Go's 1h2m3s,
// as the json format writes it), a list as an array, a map as an object
// of additionalProperties, and a nullable type as [X, "null"]. The root
// record's full name is the title (record_name subject strategies name
// the subject after it). A record that contains itself is defined once
// under $defs and referred to by $ref.
func JSONSchemaOf(t *Type) (string, error) {
	if t == nil || t.Kind == KindDyn {
		return "", fmt.Errorf("json_schema: a derived schema cannot be dyn")
	}
	w := &jsonSchemaWriterOf{recursive: recursiveRecords(t), defs: map[string]any{}}
	root, err := w.schema(t, "")
	if err != nil {
		return "", err
	}
	doc := jsonObject{{"$schema", jsonSchemaDraft}}
	if t.Kind == KindRecord {
		doc = append(doc, jsonMember{"title", t.Name})
	}
	doc = append(doc, root.(jsonObject)...)
	if len(w.defs) > 0 {
		names := make([]string, 0, len(w.defs))
		for n := range w.defs {
			names = append(names, n)
		}
		slices.Sort(names)
		defs := make(jsonObject, 0, len(names))
		for _, n := range names {
			defs = append(defs, jsonMember{n, w.defs[n]})
		}
		doc = append(doc, jsonMember{"$defs", defs})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	if _, err := compileJSONSchema(string(b), nil); err != nil {
		return "", fmt.Errorf("json_schema: the derived schema does not compile: %v", err)
	}
	return string(b), nil
}

// jsonObject is a JSON object that keeps its members' order, so derived
// schemas read as people write them (type, then properties...).
type (
	jsonObject []jsonMember
	jsonMember struct {
		Key   string
		Value any
	}
)

func (o jsonObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.Key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(m.Value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

type jsonSchemaWriterOf struct {
	recursive map[string]bool // records that contain themselves: under $defs
	defs      map[string]any
}

// schema is t's schema, always a jsonObject; path names the field, for
// errors.
func (w *jsonSchemaWriterOf) schema(t *Type, path string) (any, error) {
	if t.Kind == KindRecord && w.recursive[t.Name] {
		if _, ok := w.defs[t.Name]; !ok {
			w.defs[t.Name] = nil // before the fields: they refer to it
			s, err := w.record(t, path)
			if err != nil {
				return nil, err
			}
			w.defs[t.Name] = s
		}
		ref := jsonObject{{"$ref", "#/$defs/" + jsonPointerEscape(t.Name)}}
		if t.Nullable {
			return jsonObject{{"anyOf", []any{ref, jsonObject{{"type", "null"}}}}}, nil
		}
		return ref, nil
	}
	var s jsonObject
	typ := ""
	switch t.Kind {
	case KindNull:
		return jsonObject{{"type", "null"}}, nil
	case KindBool:
		typ = "boolean"
	case KindInt:
		typ = "integer"
	case KindDouble, KindDecimal:
		typ = "number"
	case KindString, KindDuration:
		typ = "string"
	case KindBytes:
		typ = "string"
		s = jsonObject{{"contentEncoding", "base64"}}
	case KindTimestamp:
		typ = "string"
		s = jsonObject{{"format", "date-time"}}
	case KindList, KindMap:
		if t.Elem == nil || t.Elem.Kind == KindDyn {
			return nil, fmt.Errorf("json_schema: field %s holds dyn values, which have no type", path)
		}
		e, err := w.schema(t.Elem, path+"[]")
		if err != nil {
			return nil, err
		}
		if t.Kind == KindList {
			typ, s = "array", jsonObject{{"items", e}}
		} else {
			typ, s = "object", jsonObject{{"additionalProperties", e}}
		}
	case KindRecord:
		r, err := w.record(t, path)
		if err != nil {
			return nil, err
		}
		typ, s = "object", r[1:] // after its type
	default:
		where := "the value"
		if path != "" {
			where = "field " + path
		}
		return nil, fmt.Errorf("json_schema: %s is %s, which has no JSON Schema type", where, kindName(t))
	}
	var tv any = typ
	if t.Nullable {
		tv = []string{typ, "null"}
	}
	return append(jsonObject{{"type", tv}}, s...), nil
}

// record is the object schema of record t, starting with its type.
func (w *jsonSchemaWriterOf) record(t *Type, path string) (jsonObject, error) {
	props := make(jsonObject, 0, len(t.Fields))
	required := []string{}
	for _, f := range t.Fields {
		fp := f.Name
		if path != "" {
			fp = path + "." + f.Name
		}
		s, err := w.schema(f.Type, fp)
		if err != nil {
			return nil, derivedFieldErr(t.Name, f.Name, err)
		}
		props = append(props, jsonMember{f.Name, s})
		if !f.Type.Nullable {
			required = append(required, f.Name)
		}
	}
	return jsonObject{{"type", "object"}, {"properties", props}, {"required", required}, {"additionalProperties", false}}, nil
}

// recursiveRecords names the records of t that contain themselves.
func recursiveRecords(t *Type) map[string]bool {
	out := map[string]bool{}
	onPath := map[string]bool{}
	done := map[string]bool{}
	var walk func(t *Type)
	walk = func(t *Type) {
		switch t.Kind {
		case KindList, KindMap:
			if t.Elem != nil {
				walk(t.Elem)
			}
		case KindRecord:
			if onPath[t.Name] {
				out[t.Name] = true
				return
			}
			if done[t.Name] {
				return
			}
			onPath[t.Name] = true
			for _, f := range t.Fields {
				walk(f.Type)
			}
			onPath[t.Name] = false
			done[t.Name] = true
		}
	}
	walk(t)
	return out
}

// jsonPointerEscape escapes a JSON Pointer token (RFC 6901).
func jsonPointerEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '~':
			b.WriteString("~0")
		case '/':
			b.WriteString("~1")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
