package format

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr/srfake"
)

func TestStandard(t *testing.T) {
	r := Standard()
	if got, want := r.Names(), []string{JSON, String, Bytes, Avro, Protobuf, JSONSchema}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Standard().Names() = %q, want %q", got, want)
	}
	reg := srfake.New()
	defer reg.Close()
	deps := Deps{Schemas: newTestSchemas(t, reg)}
	for _, name := range r.Names() {
		if name == Avro || name == Protobuf || name == JSONSchema {
			// Without a registry they cannot be made.
			if _, err := r.New(name, PartValue, nil, Deps{}); !errors.Is(err, ErrNoRegistry) {
				t.Errorf("New(%s) without a registry error = %v, want ErrNoRegistry", name, err)
			}
		}
		for _, part := range []Part{PartKey, PartValue} {
			c, err := r.New(name, part, nil, deps)
			if err != nil {
				t.Fatalf("New(%s, %s) error: %v", name, part, err)
			}
			// A tombstone stays a tombstone in every format.
			if v, err := c.Decode("t", NoHeaders, nil); v != nil || err != nil {
				t.Errorf("%s: Decode(nil) = %#v, %v, want nil, nil", name, v, err)
			}
			if b, err := c.Encode("t", NoHeaders, nil); b != nil || err != nil {
				t.Errorf("%s: Encode(nil) = %q, %v, want nil, nil", name, b, err)
			}
		}
	}
}

func TestRegistryCheck(t *testing.T) {
	r, err := NewRegistry(testFactory(), jsonFactory)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want []string // error texts, in order; nil: no error
		is   error    // an error every error wraps
	}{
		{"json", nil, nil, nil},
		{"json", Options{}, nil, nil},
		{"xml", nil, []string{`unknown format "xml" (want test or json)`}, ErrUnknownFormat},
		{"json", Options{"schema": "x"}, []string{`option schema: unknown option "schema" of format json (it takes none)`}, ErrUnknownOption},
		{"test", Options{"schemas": "x", "zz": 1}, []string{
			`option schemas: unknown option "schemas" of format test (it takes schema or strict)`,
			`option zz: unknown option "zz" of format test (it takes schema or strict)`,
		}, ErrUnknownOption},
		{"test", Options{"schema": "orders", "strict": true}, nil, nil},
		{"test", Options{"strict": "yes"}, []string{`option strict: want true or false, got "yes"`}, nil},
	}
	for _, tt := range tests {
		err := r.Check(tt.name, tt.opts)
		if tt.want == nil {
			if err != nil {
				t.Errorf("Check(%s, %v) error: %v", tt.name, tt.opts, err)
			}
			continue
		}
		if err == nil || err.Error() != strings.Join(tt.want, "\n") {
			t.Errorf("Check(%s, %v) error = %v, want %q", tt.name, tt.opts, err, tt.want)
			continue
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("Check(%s, %v) error = %v, want one wrapping %v", tt.name, tt.opts, err, tt.is)
		}
		var oe *OptionError
		if strings.HasPrefix(tt.want[0], "option ") && !errors.As(err, &oe) {
			t.Errorf("Check(%s, %v) error = %#v, want an *OptionError", tt.name, tt.opts, err)
		}
	}
}

// TestRegistryNew checks that a codec gets its part and options, and each
// call the topic and headers.
func TestRegistryNew(t *testing.T) {
	r, err := NewRegistry(testFactory())
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.New("test", PartKey, Options{"schema": "orders"}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Decode("in", testHeaders{"id": "7"}, []byte("x"))
	if want := "key orders in 7 x"; err != nil || got != want {
		t.Errorf("Decode = %q, %v, want %q", got, err, want)
	}
	b, err := c.Encode("out", testHeaders{"id": "8"}, "y")
	if want := "key orders out 8 y"; err != nil || string(b) != want {
		t.Errorf("Encode = %q, %v, want %q", b, err, want)
	}
	if _, err := r.New("test", PartValue, Options{"strict": 1}, Deps{}); err == nil {
		t.Error("New with a bad option: no error, want Check's")
	}
}

func TestNewRegistryErrors(t *testing.T) {
	newNil := func(Part, Options, Deps) (Codec, error) { return nil, nil }
	tests := []struct {
		fs   []Factory
		want string
	}{
		{[]Factory{{New: newNil}}, "format factory 0 has no name"},
		{[]Factory{{Name: "a"}}, "format a has no New function"},
		{[]Factory{{Name: "a", New: newNil}, {Name: "a", New: newNil}}, "format a registered twice"},
	}
	for _, tt := range tests {
		if _, err := NewRegistry(tt.fs...); err == nil || err.Error() != tt.want {
			t.Errorf("NewRegistry(%d factories) error = %v, want %s", len(tt.fs), err, tt.want)
		}
	}
}

// testFactory is a format with options, as the schema registry formats
// will be: it writes what it was given.
func testFactory() Factory {
	return Factory{
		Name:    "test",
		Options: []string{"schema", "strict"},
		Check: func(o Options) error {
			if v, ok := o["strict"]; ok {
				if _, ok := v.(bool); !ok {
					return &OptionError{Key: "strict", Err: fmt.Errorf("want true or false, got %#v", v)}
				}
			}
			return nil
		},
		New: func(part Part, o Options, _ Deps) (Codec, error) {
			schema, _ := o["schema"].(string)
			return testCodec{part.String() + " " + schema}, nil
		},
	}
}

type testCodec struct{ prefix string }

func (c testCodec) Decode(topic string, h Headers, b []byte) (any, error) {
	id, _ := h.Get("id")
	return c.prefix + " " + topic + " " + string(id) + " " + string(b), nil
}

func (c testCodec) Encode(topic string, h Headers, v any) ([]byte, error) {
	id, _ := h.Get("id")
	return []byte(c.prefix + " " + topic + " " + string(id) + " " + v.(string)), nil
}

type testHeaders map[string]string

func (h testHeaders) Get(k string) ([]byte, bool) {
	v, ok := h[k]
	return []byte(v), ok
}
