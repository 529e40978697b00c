package format

import (
	"errors"
	"fmt"
)

// Derives reports whether a sink of format name with no schema, given or
// registered, can have one derived from the type of what it writes
// (DeriveSchema).
func Derives(name string) bool {
	return name == Avro || name == Protobuf || name == JSONSchema
}

// DeriveSchema writes t, the type derived for part of a sink's records,
// as a schema of format name: AvroSchemaOf, ProtoSchemaOf or
// JSONSchemaOf. A key may be any type in Avro and JSON Schema (a group
// value is often a string); a value, and any protobuf schema, must be a
// record.
func DeriveSchema(name string, part Part, t *Type) (string, error) {
	switch name {
	case Avro:
		if part == PartKey && t != nil && t.Kind != KindRecord {
			return avroSchemaText(t)
		}
		return AvroSchemaOf(t)
	case Protobuf:
		return ProtoSchemaOf(t)
	case JSONSchema:
		if part == PartValue && (t == nil || t.Kind != KindRecord) {
			return "", fmt.Errorf("json_schema: a sink's derived schema must be a record, not %s", kindName(t))
		}
		return JSONSchemaOf(t)
	}
	return "", fmt.Errorf("format %s has no schema to derive", name)
}

// FieldError is a derived schema's refusal of one field of a record
// (its type has no field of the format), so that the caller can place it
// at the expression that made the field.
type FieldError struct {
	Record, Field string // the record's full name and the field's name
	Err           error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// derivedFieldErr wraps err as a FieldError of record's field, unless it is one
// already (of a record nested in it: the innermost names the place).
func derivedFieldErr(record, field string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return err
	}
	return &FieldError{Record: record, Field: field, Err: err}
}
