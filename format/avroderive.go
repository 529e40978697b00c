package format

import (
	"encoding/json"
	"fmt"
	"strings"
)

// AvroSchemaOf writes t, the type derived for a sink's values (see
// topology.SinkType), as an Avro schema: records as records (their names
// as given), int as long, double as double, decimals as bytes with the
// decimal logical type (precision 38, t's scale), timestamps as
// timestamp-millis, lists as arrays, maps as maps, and a nullable type as
// a union with null first and a null default, so a later schema may drop
// the field and stay compatible.
func AvroSchemaOf(t *Type) (string, error) {
	if t == nil || t.Kind != KindRecord {
		return "", fmt.Errorf("avro: a sink's derived schema must be a record, not %s", kindName(t))
	}
	return avroSchemaText(t)
}

// avroSchemaText is t's Avro schema, whatever its kind.
func avroSchemaText(t *Type) (string, error) {
	if t == nil {
		return "", fmt.Errorf("avro: a derived schema cannot be dyn")
	}
	v, err := avroSchemaValue(t, map[string]bool{}, "")
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	if _, err := avroParse(string(b)); err != nil {
		return "", fmt.Errorf("avro: the derived schema does not parse: %v", err)
	}
	return string(b), nil
}

func kindName(t *Type) string {
	if t == nil {
		return "dyn"
	}
	return [...]string{"dyn", "null", "bool", "int", "double", "string", "bytes", "decimal", "timestamp", "duration", "list", "map", "record"}[t.Kind]
}

// avroSchemaValue is t as a JSON value of its schema; path names the
// field, for errors.
func avroSchemaValue(t *Type, defined map[string]bool, path string) (any, error) {
	var s any
	switch t.Kind {
	case KindNull:
		return "null", nil
	case KindBool:
		s = "boolean"
	case KindInt:
		s = "long"
	case KindDouble:
		s = "double"
	case KindString:
		s = "string"
	case KindBytes:
		s = "bytes"
	case KindDecimal:
		s = avroLogical{Type: "bytes", LogicalType: "decimal", Precision: 38, Scale: &t.Scale}
	case KindTimestamp:
		s = avroLogical{Type: "long", LogicalType: "timestamp-millis"}
	case KindList, KindMap:
		e, err := avroSchemaValue(t.Elem, defined, path+"[]")
		if err != nil {
			return nil, err
		}
		if t.Kind == KindList {
			s = avroArray{Type: "array", Items: e}
		} else {
			s = avroMap{Type: "map", Values: e}
		}
	case KindRecord:
		if defined[t.Name] {
			s = t.Name // defined once, then referred to by name
			break
		}
		defined[t.Name] = true
		fields := make([]avroField, 0, len(t.Fields))
		for _, f := range t.Fields {
			fp := f.Name
			if path != "" {
				fp = path + "." + f.Name
			}
			ft, err := avroSchemaValue(f.Type, defined, fp)
			if err != nil {
				return nil, derivedFieldErr(t.Name, f.Name, err)
			}
			field := avroField{Name: f.Name, Type: ft}
			if f.Type.Nullable {
				field.Default = json.RawMessage("null")
			}
			fields = append(fields, field)
		}
		rec := avroRecord{Type: "record", Name: t.Name, Fields: fields}
		if i := strings.LastIndexByte(t.Name, '.'); i >= 0 {
			rec.Name, rec.Namespace = t.Name[i+1:], t.Name[:i]
		}
		s = rec
	default:
		return nil, fmt.Errorf("avro: field %s is %s, which has no Avro type", path, kindName(t))
	}
	if t.Nullable {
		return []any{"null", s}, nil
	}
	return s, nil
}

// The parts of a schema, as structs so that the JSON keeps the order
// people write schemas in (type, name, then the rest).
type (
	avroRecord struct {
		Type      string      `json:"type"`
		Name      string      `json:"name"`
		Namespace string      `json:"namespace,omitempty"`
		Fields    []avroField `json:"fields"`
	}
	avroField struct {
		Name    string          `json:"name"`
		Type    any             `json:"type"`
		Default json.RawMessage `json:"default,omitempty"`
	}
	avroLogical struct {
		Type        string `json:"type"`
		LogicalType string `json:"logicalType"`
		Precision   int    `json:"precision,omitempty"`
		Scale       *int   `json:"scale,omitempty"`
	}
	avroArray struct {
		Type  string `json:"type"`
		Items any    `json:"items"`
	}
	avroMap struct {
		Type   string `json:"type"`
		Values any    `json:"values"`
	}
)
