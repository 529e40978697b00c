package format

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// Codec turns the bytes of one part (key or value) of a Kafka record into
// a value and back, for one source or sink. A codec may be called from one
// goroutine at a time per source or sink; codecs that share caches across
// sources and sinks (a schema cache) synchronize them themselves.
//
// Both methods get the record's topic and headers, which codecs that look
// schemas up need (a subject is named after the topic, a schema id may
// travel in a header). h is valid during the call only: a codec must not
// keep it.
type Codec interface {
	// Decode decodes b. A nil b (a Kafka null, a tombstone) must decode
	// to nil, so that a tombstone stays a tombstone.
	Decode(topic string, h Headers, b []byte) (any, error)
	// Encode encodes v, one of the values Decode returns (plus Number
	// and time.Time). A nil v must encode to a nil slice (a Kafka null).
	// A value the format cannot represent is an error wrapping
	// ErrUnsupported.
	Encode(topic string, h Headers, v any) ([]byte, error)
}

// Headers gives a codec read access to a record's headers.
type Headers interface {
	// Get returns the value of the last header named key (Kafka allows a
	// name more than once; the last one wins, as in the Java clients).
	Get(key string) (value []byte, ok bool)
}

// NoHeaders is the Headers of a record without any.
var NoHeaders Headers = noHeaders{}

type noHeaders struct{}

func (noHeaders) Get(string) ([]byte, bool) { return nil, false }

// Part says which part of a record a codec handles. Formats whose schemas
// are named after the topic name key and value schemas apart
// ("<topic>-key", "<topic>-value").
type Part uint8

const (
	PartValue Part = iota
	PartKey
)

func (p Part) String() string {
	if p == PartKey {
		return "key"
	}
	return "value"
}

// Options are a format's settings from a pipeline file: the keys of the
// long form (format: {name: NAME, KEY: VALUE...}) other than name, with
// the values YAML decodes them to (string, int, float64, bool, nil, []any,
// map[string]any). nil when the short form (format: NAME) is used.
type Options map[string]any

// Equal reports whether o and p hold the same keys and values.
func (o Options) Equal(p Options) bool {
	if len(o) == 0 && len(p) == 0 {
		return true
	}
	return reflect.DeepEqual(o, p)
}

// String writes o as "k1: v1, k2: v2", keys sorted.
func (o Options) String() string {
	var b strings.Builder
	for i, k := range sortedKeys(o) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %v", k, o[k])
	}
	return b.String()
}

// OptionError is a bad option value, found by a Factory's Check: the
// parser reports it at the value's position in the pipeline file.
type OptionError struct {
	Key string // the option's key
	Err error  // what is wrong and what would be right
}

func (e *OptionError) Error() string { return fmt.Sprintf("option %s: %v", e.Key, e.Err) }
func (e *OptionError) Unwrap() error { return e.Err }

// Deps are what codecs need beyond their options and that a pipeline file
// does not hold: things shared by every codec of a process and made once
// at start, such as a schema registry client and its schema cache. The
// json, string and bytes codecs need none. A field added here is set by
// the caller of Registry.New; a codec whose dependency is missing fails
// New, not a record.
type Deps struct {
	// Schemas is the Schema Registry client and the schema cache shared
	// by every codec of the process; nil when registry.urls is not set,
	// and then the registry formats fail New with ErrNoRegistry.
	Schemas *Schemas
}

// Preparer is a Codec that needs the network before its first record: a
// sink's codec registers or looks up its schema. The processor calls
// Prepare once for each codec of a sink (key and value), with the sink's
// topic, at start, before it reports ready; an error fails the start (a
// schema incompatible with the subject is ErrIncompatible). A registry
// that is down makes Prepare wait (Schemas retries) until ctx ends.
// Source codecs are not prepared: they learn their schemas from the
// records (by id), and load a configured reader schema at their first
// record.
type Preparer interface {
	Prepare(ctx context.Context, topic string) error
}

// Factory makes the codecs of one format. Adding a format is adding one
// Factory to Standard.
type Factory struct {
	// Name is the format's name in pipeline files, e.g. json.
	Name string
	// Options lists the option keys the format takes: Registry.Check
	// rejects any other, and the parser suggests one of these for a
	// misspelt key. nil: none.
	Options []string
	// Check validates option values (only keys from Options reach it).
	// It runs offline, by `exactly validate` too: no network, no files.
	// Errors are *OptionError naming the key. nil: every value is fine.
	Check func(Options) error
	// New returns a codec for part of the records of a source or sink,
	// with options Check accepted. It may fail only for want of
	// something in deps.
	New func(part Part, opts Options, deps Deps) (Codec, error)
	// Type, when set, returns the type of the values the format's codecs
	// decode (see TypeFunc), so that `exactly validate --registry` and
	// `run` type-check expressions against a source's schema. nil: the
	// values are dyn.
	Type TypeFunc
}

// ErrUnknownOption is wrapped by the *OptionError for an option key the
// format does not take.
var ErrUnknownOption = errors.New("unknown option")

// ErrUnknownFormat is wrapped by Registry errors for a name it does not
// hold.
var ErrUnknownFormat = errors.New("unknown format")

// Registry maps format names to their factories. It is not changed once
// made, so it is safe to share.
type Registry struct {
	names  []string // in the order given to NewRegistry
	byName map[string]*Factory
}

// NewRegistry returns a registry of fs. Names must be unique and non-empty.
func NewRegistry(fs ...Factory) (*Registry, error) {
	r := &Registry{byName: make(map[string]*Factory, len(fs))}
	for i := range fs {
		f := fs[i]
		switch {
		case f.Name == "":
			return nil, fmt.Errorf("format factory %d has no name", i)
		case f.New == nil:
			return nil, fmt.Errorf("format %s has no New function", f.Name)
		case r.byName[f.Name] != nil:
			return nil, fmt.Errorf("format %s registered twice", f.Name)
		}
		r.names = append(r.names, f.Name)
		r.byName[f.Name] = &f
	}
	return r, nil
}

// Names returns the names of the formats r holds, in registration order.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// Lookup returns the factory of the format called name.
func (r *Registry) Lookup(name string) (Factory, bool) {
	if f, ok := r.byName[name]; ok {
		return *f, true
	}
	return Factory{}, false
}

// Check validates a format name and its options offline: the name must
// be known, every option key one the format takes, and Check must accept
// the values. Unknown keys and bad values are *OptionError.
func (r *Registry) Check(name string, opts Options) error {
	f, ok := r.byName[name]
	if !ok {
		return fmt.Errorf("%w %q (want %s)", ErrUnknownFormat, name, orList(r.names))
	}
	var errs []error
	for _, k := range sortedKeys(opts) {
		if !slices.Contains(f.Options, k) {
			errs = append(errs, &OptionError{Key: k, Err: fmt.Errorf("%w %q of format %s (%s)", ErrUnknownOption, k, name, f.takes())})
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if f.Check != nil {
		return f.Check(opts)
	}
	return nil
}

// takes says which options f takes, for error messages.
func (f *Factory) takes() string {
	if len(f.Options) == 0 {
		return "it takes none"
	}
	return "it takes " + orList(f.Options)
}

// New returns a codec of the format called name, checking opts first.
func (r *Registry) New(name string, part Part, opts Options, deps Deps) (Codec, error) {
	if err := r.Check(name, opts); err != nil {
		return nil, err
	}
	return r.byName[name].New(part, opts, deps)
}

// Standard returns the registry of every format exactly has: json,
// string, bytes, and the Schema Registry formats avro, protobuf and
// json_schema (which need Deps.Schemas).
func Standard() *Registry { return standard() }

var standard = sync.OnceValue(func() *Registry {
	r, err := NewRegistry(jsonFactory, stringFactory, bytesFactory, AvroFactory, protobufFactory, jsonSchemaFactory)
	if err != nil {
		panic(err) // a broken invariant: the list above is fixed
	}
	return r
})

// orList writes names as "a, b or c".
func orList(names []string) string {
	switch len(names) {
	case 0:
		return "none"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func sortedKeys(o Options) []string {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
