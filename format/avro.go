package format

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// Avro is the name of the Avro format: the Confluent wire format (magic
// byte 0, 4-byte schema id, Avro binary) with schemas in a Schema
// Registry (registry.urls). See avrobin.go for the values it decodes to.
//
// Sources decode each record with its writer schema, looked up by the id
// it carries (cached for the life of the process). With a reader schema
// (schema, schema_file, or subject and version), the value is then
// resolved to it as Avro's schema resolution says: fields the reader
// adds take their defaults, fields it lacks are dropped, int and long
// widen to float and double.
//
// Sinks write with one schema, chosen at start: the schema given
// (schema or schema_file), registered under the subject (an incompatible
// schema fails the start), or else the subject's registered version
// (version, default the latest).
const Avro = "avro"

// The subject naming strategies, the values of subject_strategy.
const (
	TopicName       = "topic_name"        // <topic>-key, <topic>-value (Confluent's default)
	RecordName      = "record_name"       // the record's full name
	TopicRecordName = "topic_record_name" // <topic>-<record full name>
)

var avroOptions = []string{"schema", "schema_file", "subject", "subject_strategy", "version"}

// AvroFactory is the avro format's factory; Standard holds it.
var AvroFactory = Factory{
	Name:    Avro,
	Options: avroOptions,
	Check:   checkAvro,
	New:     newAvro,
	Type:    avroTypeOf,
}

// avroParse parses a schema on its own (named types in a cache of its own,
// so two schemas may both name a record T).
func avroParse(text string) (avro.Schema, error) {
	return avro.ParseWithCache(text, "", &avro.SchemaCache{})
}

type avroOpts struct {
	schema   string // inline text, or schema_file's contents once read
	file     string
	subject  string
	strategy string
	version  int // 0: latest
}

func parseAvroOpts(o Options) (avroOpts, []error) {
	var a avroOpts
	var errs []error
	str := func(k string) string {
		v, ok := o[k]
		if !ok || v == nil {
			return ""
		}
		s, ok := v.(string)
		if !ok {
			errs = append(errs, &OptionError{Key: k, Err: fmt.Errorf("want a string, got %v", v)})
		}
		return s
	}
	a.schema, a.file, a.subject, a.strategy = str("schema"), str("schema_file"), str("subject"), str("subject_strategy")
	if a.schema != "" && a.file != "" {
		errs = append(errs, &OptionError{Key: "schema_file", Err: errors.New("set with schema: give the schema one way")})
	}
	if a.schema != "" {
		if _, err := avro.ParseWithCache(a.schema, "", &avro.SchemaCache{}); err != nil {
			errs = append(errs, &OptionError{Key: "schema", Err: fmt.Errorf("not an Avro schema: %v", err)})
		}
	}
	switch a.strategy {
	case "", TopicName:
		a.strategy = TopicName
	case RecordName, TopicRecordName:
		if a.schema == "" && a.file == "" && a.subject == "" {
			errs = append(errs, &OptionError{Key: "subject_strategy", Err: fmt.Errorf("%s names the subject after the record, so it needs schema or schema_file", a.strategy)})
		}
	default:
		errs = append(errs, &OptionError{Key: "subject_strategy", Err: fmt.Errorf("unknown strategy %q (want %s, %s or %s)", a.strategy, TopicName, RecordName, TopicRecordName)})
	}
	if v, ok := o["version"]; ok && v != nil {
		switch v := v.(type) {
		case int:
			a.version = v
		case int64:
			a.version = int(v)
		case string:
			if v != "latest" {
				errs = append(errs, &OptionError{Key: "version", Err: fmt.Errorf("%q: want a version number or latest", v)})
			}
		default:
			errs = append(errs, &OptionError{Key: "version", Err: fmt.Errorf("%v: want a version number or latest", v)})
		}
		if a.version < 0 {
			errs = append(errs, &OptionError{Key: "version", Err: fmt.Errorf("%d: versions start at 1", a.version)})
		}
		if a.schema != "" || a.file != "" {
			errs = append(errs, &OptionError{Key: "version", Err: errors.New("set with a schema: a given schema is registered, a version is looked up; keep one")})
		}
	}
	return a, errs
}

func checkAvro(o Options) error {
	_, errs := parseAvroOpts(o)
	return errors.Join(errs...)
}

func newAvro(part Part, o Options, deps Deps) (Codec, error) {
	if deps.Schemas == nil {
		return nil, ErrNoRegistry
	}
	a, errs := parseAvroOpts(o)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if a.file != "" {
		b, err := os.ReadFile(a.file)
		if err != nil {
			return nil, &OptionError{Key: "schema_file", Err: err}
		}
		a.schema = string(b)
	}
	c := &avroCodec{part: part, opts: a, schemas: deps.Schemas}
	if a.schema != "" {
		s, err := avro.ParseWithCache(a.schema, "", &avro.SchemaCache{})
		if err != nil {
			return nil, &OptionError{Key: "schema_file", Err: fmt.Errorf("%s is not an Avro schema: %v", a.file, err)}
		}
		c.given = s
	}
	c.mu.writers = map[string]*avroSchema{}
	c.mu.readers = map[string]*avroSchema{}
	c.mu.compat = map[[2]int]error{}
	return c, nil
}

// avroSchema is a parsed schema and its registry id (0 for a reader
// schema given inline).
type avroSchema struct {
	id     int
	schema avro.Schema
}

type avroCodec struct {
	part    Part
	opts    avroOpts
	schemas *Schemas
	given   avro.Schema // schema or schema_file, parsed

	mu struct {
		sync.Mutex
		writers map[string]*avroSchema // sink: by topic
		readers map[string]*avroSchema // source: by topic
		compat  map[[2]int]error       // (writer id, reader id): resolvable?
	}
}

// subject names the subject of topic under the strategy.
func (c *avroCodec) subject(topic string, s avro.Schema) string {
	if c.opts.subject != "" {
		return c.opts.subject
	}
	name := ""
	if n, ok := s.(avro.NamedSchema); ok {
		name = n.FullName()
	}
	switch c.opts.strategy {
	case RecordName:
		return name
	case TopicRecordName:
		return topic + "-" + name
	}
	return topic + "-" + c.part.String()
}

// parse parses a registry schema, its references first, into one cache.
func (c *avroCodec) parse(ctx context.Context, sch sr.Schema) (any, error) {
	if sch.Type != sr.TypeAvro {
		return nil, classed("schema_mismatch", fmt.Errorf("avro: %w: the schema is %s, not Avro", ErrSchemaMismatch, sch.Type))
	}
	cache := &avro.SchemaCache{}
	if err := c.parseRefs(ctx, sch.References, cache, 0); err != nil {
		return nil, err
	}
	s, err := avro.ParseWithCache(sch.Schema, "", cache)
	if err != nil {
		return nil, classed("schema_mismatch", fmt.Errorf("avro: %w: the registry's schema does not parse: %v", ErrSchemaMismatch, err))
	}
	return s, nil
}

func (c *avroCodec) parseRefs(ctx context.Context, refs []sr.SchemaReference, cache *avro.SchemaCache, depth int) error {
	if depth > 32 {
		return errors.New("avro: schema references nested deeper than 32")
	}
	for _, ref := range refs {
		ss, err := c.schemas.ByVersion(ctx, ref.Subject, ref.Version)
		if err != nil {
			return fmt.Errorf("avro: reference %s: %w", ref.Name, err)
		}
		if err := c.parseRefs(ctx, ss.References, cache, depth+1); err != nil {
			return err
		}
		if _, err := avro.ParseWithCache(ss.Schema.Schema, "", cache); err != nil {
			return fmt.Errorf("avro: reference %s (subject %s version %d) does not parse: %v", ref.Name, ref.Subject, ref.Version, err)
		}
	}
	return nil
}

func (c *avroCodec) byID(ctx context.Context, id int) (avro.Schema, error) {
	v, err := c.schemas.Parsed(ctx, Avro, id, func(sch sr.Schema) (any, error) { return c.parse(ctx, sch) })
	if err != nil {
		return nil, err
	}
	return v.(avro.Schema), nil
}

// waitCtx is the context of requests made from Decode and Encode, which
// have none: they wait for the registry until Schemas is closed.
var waitCtx = context.Background()

func (c *avroCodec) Decode(topic string, _ Headers, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	id, payload, err := SplitWire(b)
	if err != nil {
		return nil, err
	}
	ws, err := c.byID(waitCtx, id)
	if err != nil {
		return nil, err
	}
	v, err := decodeAvro(ws, payload)
	if err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	if c.given == nil && c.opts.subject == "" && c.opts.version == 0 {
		return v, nil // no reader schema: the writer's
	}
	rs, err := c.reader(topic)
	if err != nil {
		return nil, err
	}
	if err := c.compatible(id, ws, rs); err != nil {
		return nil, err
	}
	return resolveAvro(rs.schema, v)
}

// reader returns the reader schema for topic, loading it at the first
// record.
func (c *avroCodec) reader(topic string) (*avroSchema, error) {
	c.mu.Lock()
	rs, ok := c.mu.readers[topic]
	c.mu.Unlock()
	if ok {
		return rs, nil
	}
	if c.given != nil {
		rs = &avroSchema{id: -1, schema: c.given}
	} else {
		ss, err := c.schemas.ByVersion(waitCtx, c.subject(topic, nil), c.opts.version)
		if err != nil {
			return nil, fmt.Errorf("reader schema: %w", err)
		}
		s, err := c.byID(waitCtx, ss.ID)
		if err != nil {
			return nil, fmt.Errorf("reader schema: %w", err)
		}
		rs = &avroSchema{id: ss.ID, schema: s}
	}
	c.mu.Lock()
	c.mu.readers[topic] = rs
	c.mu.Unlock()
	return rs, nil
}

// compatible checks once per writer id that the reader can read it.
func (c *avroCodec) compatible(id int, ws avro.Schema, rs *avroSchema) error {
	k := [2]int{id, rs.id}
	c.mu.Lock()
	err, ok := c.mu.compat[k]
	c.mu.Unlock()
	if ok {
		return err
	}
	if e := avro.NewSchemaCompatibility().Compatible(rs.schema, ws); e != nil {
		err = classed("schema_mismatch", fmt.Errorf("avro: %w: the reader schema cannot read writer schema id %d: %v", ErrSchemaMismatch, id, e))
	}
	c.mu.Lock()
	c.mu.compat[k] = err
	c.mu.Unlock()
	return err
}

func (c *avroCodec) Encode(topic string, _ Headers, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	w, err := c.writer(waitCtx, topic)
	if err != nil {
		return nil, err
	}
	aw := &avroWriter{b: AppendWireHeader(make([]byte, 0, 64), w.id)}
	if err := aw.value(w.schema, v); err != nil {
		return nil, err
	}
	return aw.b, nil
}

// Prepare registers or looks up the sink's schema for topic.
func (c *avroCodec) Prepare(ctx context.Context, topic string) error {
	_, err := c.writer(ctx, topic)
	return err
}

func (c *avroCodec) writer(ctx context.Context, topic string) (*avroSchema, error) {
	c.mu.Lock()
	w, ok := c.mu.writers[topic]
	c.mu.Unlock()
	if ok {
		return w, nil
	}
	subject := c.subject(topic, c.given)
	var id int
	if c.given != nil {
		ss, err := c.schemas.Register(ctx, subject, sr.Schema{Schema: c.given.String(), Type: sr.TypeAvro})
		if err != nil {
			return nil, fmt.Errorf("registering the avro schema under subject %s: %w", subject, err)
		}
		id = ss.ID
	} else {
		ss, err := c.schemas.ByVersion(ctx, subject, c.opts.version)
		if err != nil {
			return nil, fmt.Errorf("the sink's avro schema: %w (or give one with schema or schema_file)", err)
		}
		id = ss.ID
	}
	s, err := c.byID(ctx, id)
	if err != nil {
		return nil, err
	}
	w = &avroSchema{id: id, schema: s}
	c.mu.Lock()
	c.mu.writers[topic] = w
	c.mu.Unlock()
	return w, nil
}

// resolveAvro turns v, decoded with a writer schema, into the value of
// reader schema s (Avro's schema resolution); compatible has already
// checked the two schemas.
func resolveAvro(s avro.Schema, v any) (any, error) {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	switch s := s.(type) {
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, avroUnfit(v, s, "")
		}
		out := make(map[string]any, len(s.Fields()))
		for _, f := range s.Fields() {
			fv, ok := m[f.Name()]
			if !ok {
				for _, a := range f.Aliases() {
					if fv, ok = m[a]; ok {
						break
					}
				}
			}
			if !ok {
				if !f.HasDefault() {
					return nil, classed("schema_mismatch", fmt.Errorf("avro: %w: the writer has no field %s and the reader schema gives it no default", ErrSchemaMismatch, f.Name()))
				}
				d, err := fromDefault(f.Type(), f.Default())
				if err != nil {
					return nil, fieldErr(f.Name(), err)
				}
				out[f.Name()] = d
				continue
			}
			rv, err := resolveAvro(f.Type(), fv)
			if err != nil {
				return nil, fieldErr(f.Name(), err)
			}
			out[f.Name()] = rv
		}
		return out, nil
	case *avro.UnionSchema:
		i := unionBranch(s, v)
		if i < 0 {
			return nil, avroUnfit(v, s, "")
		}
		return resolveAvro(s.Types()[i], v)
	case *avro.ArraySchema:
		l, ok := v.([]any)
		if !ok {
			return nil, avroUnfit(v, s, "")
		}
		out := make([]any, len(l))
		for i, e := range l {
			rv, err := resolveAvro(s.Items(), e)
			if err != nil {
				return nil, err
			}
			out[i] = rv
		}
		return out, nil
	case *avro.MapSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, avroUnfit(v, s, "")
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			rv, err := resolveAvro(s.Values(), e)
			if err != nil {
				return nil, err
			}
			out[k] = rv
		}
		return out, nil
	case *avro.EnumSchema:
		str, _ := v.(string)
		for _, sym := range s.Symbols() {
			if sym == str {
				return str, nil
			}
		}
		if s.HasDefault() {
			return s.Default(), nil
		}
		return nil, avroUnfit(v, s, "not a symbol of the reader's enum")
	case *avro.PrimitiveSchema:
		switch s.Type() {
		case avro.Float, avro.Double:
			if _, isTime := v.(time.Time); !isTime {
				if f, ok := asFloat64(v); ok {
					if _, isNum := v.(Number); !isNum {
						return f, nil
					}
				}
			}
		case avro.String:
			if b, ok := v.([]byte); ok {
				return string(b), nil
			}
		case avro.Bytes:
			if str, ok := v.(string); ok && s.Logical() == nil {
				return []byte(str), nil
			}
		}
		return v, nil
	}
	return v, nil
}
