package format

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/sr"
)

// The options of the protobuf and json_schema formats, named as avro's.
// Every record is read by the schema id it carries; the options say which
// schema a sink writes with, and which one `validate --registry` types a
// source's values by:
//
//   - schema or schema_file: the schema text (a .proto file, or a JSON
//     Schema), registered under the subject when the pipeline starts (the
//     registry refusing it as incompatible fails the start). A given
//     .proto may import only google/protobuf/*.proto and Confluent's
//     confluent/*.proto, which need no reference.
//   - subject: the subject; default named by subject_strategy.
//   - subject_strategy: topic_name (default: <topic>-value, <topic>-key),
//     record_name (the record's full name: a protobuf message's, or a JSON
//     Schema's title) or topic_record_name (<topic>-<record name>).
//   - version: the subject's version to write with when no schema is
//     given; default the latest at start ("latest").
//   - message (protobuf): the message type written, by full name
//     (shop.Order) or within the package (Order, Order.Line); default the
//     file's first message, as Confluent's serializers assume.
type sinkSchemaOpts struct {
	format   string // Protobuf or JSONSchema
	schema   string // inline text, or schema_file's once read
	file     string
	subject  string
	strategy string
	version  int // 0: latest
	message  string
}

var (
	protobufOptions   = []string{"message", "schema", "schema_file", "subject", "subject_strategy", "version"}
	jsonSchemaOptions = []string{"schema", "schema_file", "subject", "subject_strategy", "version"}
)

// parseSinkSchemaOpts reads and checks opts offline: an inline schema is
// compiled (it cannot use references), a file is not read.
func parseSinkSchemaOpts(format string, o Options) (sinkSchemaOpts, []error) {
	a := sinkSchemaOpts{format: format}
	var errs []error
	str := func(k string) string {
		v, ok := o[k]
		if !ok || v == nil {
			return ""
		}
		s, ok := v.(string)
		if !ok || s == "" {
			errs = append(errs, &OptionError{Key: k, Err: fmt.Errorf("want a non-empty string, got %v", v)})
		}
		return s
	}
	a.schema, a.file, a.subject, a.strategy, a.message = str("schema"), str("schema_file"), str("subject"), str("subject_strategy"), str("message")
	if a.schema != "" && a.file != "" {
		errs = append(errs, &OptionError{Key: "schema_file", Err: errors.New("set with schema: give the schema one way")})
	}
	if v, ok := o["version"]; ok && v != nil {
		switch v := v.(type) {
		case int:
			a.version = v
			if v < 1 {
				errs = append(errs, &OptionError{Key: "version", Err: fmt.Errorf("%d: versions start at 1 (or say latest)", v)})
			}
		case string:
			if v != "latest" {
				errs = append(errs, &OptionError{Key: "version", Err: fmt.Errorf("%q: want a version number or latest", v)})
			}
		default:
			errs = append(errs, &OptionError{Key: "version", Err: fmt.Errorf("%v: want a version number or latest", v)})
		}
		if a.schema != "" || a.file != "" {
			errs = append(errs, &OptionError{Key: "version", Err: errors.New("set with a schema: a given schema is registered, a version is looked up; keep one")})
		}
	}
	if a.schema != "" {
		if _, err := a.recordName(); err != nil {
			errs = append(errs, &OptionError{Key: "schema", Err: err})
		}
	}
	switch a.strategy {
	case "", TopicName:
		a.strategy = TopicName
	case RecordName, TopicRecordName:
		if a.subject == "" && a.schema == "" && a.file == "" && !(format == Protobuf && strings.Contains(a.message, ".")) {
			what := "schema or schema_file (its title names the record)"
			if format == Protobuf {
				what = "schema or schema_file, or message as a full name (package.Message)"
			}
			errs = append(errs, &OptionError{Key: "subject_strategy", Err: fmt.Errorf("%s names the subject after the record, so it needs %s", a.strategy, what)})
		}
	default:
		errs = append(errs, &OptionError{Key: "subject_strategy", Err: fmt.Errorf("unknown strategy %q (want %s, %s or %s)", a.strategy, TopicName, RecordName, TopicRecordName)})
	}
	return a, errs
}

func checkProtobufOptions(o Options) error {
	_, errs := parseSinkSchemaOpts(Protobuf, o)
	return errors.Join(errs...)
}

func checkJSONSchemaOptions(o Options) error {
	_, errs := parseSinkSchemaOpts(JSONSchema, o)
	return errors.Join(errs...)
}

// newSinkSchemaOpts parses o for a codec, reading schema_file.
func newSinkSchemaOpts(format string, o Options) (sinkSchemaOpts, error) {
	a, errs := parseSinkSchemaOpts(format, o)
	if len(errs) > 0 {
		return a, errors.Join(errs...)
	}
	if a.file != "" {
		b, err := os.ReadFile(a.file)
		if err != nil {
			return a, &OptionError{Key: "schema_file", Err: err}
		}
		a.schema = string(b)
		if _, err := a.recordName(); err != nil {
			return a, &OptionError{Key: "schema_file", Err: fmt.Errorf("%s: %w", a.file, err)}
		}
	}
	return a, nil
}

// recordName compiles the given schema (which must have no references)
// and returns the name of the record it writes: the message's full name,
// or the JSON Schema's title.
func (a sinkSchemaOpts) recordName() (string, error) {
	if a.format == JSONSchema {
		var title string
		if a.schema != "" {
			js, err := compileJSONSchema(a.schema, nil)
			if err != nil {
				return "", err
			}
			title = js.Title
		}
		return title, nil
	}
	if a.schema == "" {
		return strings.TrimPrefix(a.message, "."), nil
	}
	ps, err := compileProto(a.schema, nil)
	if err != nil {
		return "", err
	}
	md, _, err := ps.messageByName(a.message)
	if err != nil {
		return "", err
	}
	return string(md.FullName()), nil
}

// subjectFor names the subject a sink on topic writes under.
func (a sinkSchemaOpts) subjectFor(part Part, topic string) (string, error) {
	if a.subject != "" {
		return a.subject, nil
	}
	if a.strategy == TopicName {
		return topic + "-" + part.String(), nil
	}
	name, err := a.recordName()
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", fmt.Errorf("subject_strategy %s: the schema has no title to name the subject after: give it one, or set subject", a.strategy)
	}
	if a.strategy == RecordName {
		return name, nil
	}
	return topic + "-" + name, nil
}

// writerSchema is the subject and schema id a sink on topic writes with:
// the given schema registered under the subject, or the subject's
// version.
func (a sinkSchemaOpts) writerSchema(ctx context.Context, s *Schemas, part Part, topic string) (subject string, ss sr.SubjectSchema, err error) {
	subject, err = a.subjectFor(part, topic)
	if err != nil {
		return "", ss, err
	}
	if a.schema != "" {
		typ := sr.TypeProtobuf
		if a.format == JSONSchema {
			typ = sr.TypeJSON
		}
		ss, err = s.Register(ctx, subject, sr.Schema{Schema: a.schema, Type: typ})
		return subject, ss, err
	}
	ss, err = s.ByVersion(ctx, subject, a.version)
	return subject, ss, err
}

// registryFactory is the Factory of a format whose codecs need the
// registry (protobuf, json_schema): New fails without one, and reads the
// sink schema options (sinkSchemaOpts) before newCodec makes the codec.
func registryFactory(name string, options []string, check func(Options) error, typ TypeFunc, newCodec func(*Schemas, Part, sinkSchemaOpts) Codec) Factory {
	return Factory{
		Name:    name,
		Options: options,
		Check:   check,
		New: func(part Part, opts Options, deps Deps) (Codec, error) {
			if deps.Schemas == nil {
				return nil, ErrNoRegistry
			}
			o, err := newSinkSchemaOpts(name, opts)
			if err != nil {
				return nil, err
			}
			return newCodec(deps.Schemas, part, o), nil
		},
		Type: typ,
	}
}

// writers holds a registry-backed sink codec's writer per topic: its
// schema looked up, and compiled, once.
type writers[W any] struct {
	mu sync.Mutex
	m  map[string]W
}

// get returns topic's writer, made by build the first time. Two records
// racing to make it both build; the schema lookups are cached, and the
// writers alike.
func (ws *writers[W]) get(topic string, build func() (W, error)) (W, error) {
	ws.mu.Lock()
	w, ok := ws.m[topic]
	ws.mu.Unlock()
	if ok {
		return w, nil
	}
	w, err := build()
	if err != nil {
		return w, err
	}
	ws.mu.Lock()
	if ws.m == nil {
		ws.m = map[string]W{}
	}
	ws.m[topic] = w
	ws.mu.Unlock()
	return w, nil
}
