package config

import (
	"log/slog"
	"reflect"
	"strconv"
	"strings"
)

// redacted is what a set Secret shows instead of its value.
const redacted = "[redacted]"

// Secret is a setting that must never be shown: a password, a key, a
// token. It formats as "[redacted]" when set and "" when not, in fmt (any
// verb, %+v and %#v of an enclosing struct included), slog and text or
// JSON encoding, so printing Settings cannot leak it. Value returns the
// secret itself, for the one place that needs it.
type Secret string

// Value returns the secret.
func (s Secret) Value() string { return string(s) }

// String returns "[redacted]", or "" when the secret is not set.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString is String quoted, for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler (JSON and YAML use it).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

var secretType = reflect.TypeFor[Secret]()

// Redacted returns every setting by key (kafka.sasl.username), secrets
// replaced by "[redacted]" when set and "" when not, for logging the
// effective settings at start or printing them in "exactly validate".
func (s *Settings) Redacted() map[string]any {
	out := map[string]any{}
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
			if tag == "" || !f.IsExported() {
				continue
			}
			key, fv := prefix+tag, v.Field(i)
			switch {
			case f.Type == secretType:
				out[key] = fv.Interface().(Secret).String()
			case f.Type.Kind() == reflect.Struct:
				walk(key+".", fv)
			case f.Type.Kind() == reflect.Slice:
				out[key] = reflect.AppendSlice(reflect.MakeSlice(f.Type, 0, fv.Len()), fv).Interface()
			default:
				out[key] = fv.Interface()
			}
		}
	}
	walk("", reflect.ValueOf(s).Elem())
	return out
}
