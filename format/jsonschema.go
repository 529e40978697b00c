package format

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"github.com/twmb/franz-go/pkg/sr"
)

var jsonSchemaFactory = registryFactory(JSONSchema, jsonSchemaOptions, checkJSONSchemaOptions, jsonSchemaTypeOf,
	func(s *Schemas, part Part, o sinkSchemaOpts) Codec {
		return &jsonSchemaCodec{schemas: s, part: part, opts: o}
	})

// jsonSchemaCodec is the json_schema format: the json format's values,
// validated against the registered schema both ways, so that a sink never
// writes a record its readers' schema refuses.
type jsonSchemaCodec struct {
	schemas *Schemas
	part    Part
	opts    sinkSchemaOpts

	enc writers[*jsonSchemaWriter]
}

type jsonSchemaWriter struct {
	id     int
	schema *jsonschema.Schema
}

const jsonSchemaKind = "json_schema"

// jsonSchemaBase is the URL a registered schema is compiled under, and
// against which reference names (relative, e.g. address.json) resolve. No
// schema is ever loaded from a URL: every one is given (see compile).
const jsonSchemaBase = "mem://registry/"

// compiledJSONSchema returns the schema with id compiled; like
// compiledProto, it fetches before Parsed so that only a compile error is
// cached.
func compiledJSONSchema(ctx context.Context, s *Schemas, id int) (*jsonschema.Schema, error) {
	sch, err := s.ByID(ctx, id)
	if err != nil {
		return nil, err
	}
	refs := map[string]string{}
	if err := fetchReferences(ctx, s, sch.References, refs); err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	v, err := s.Parsed(ctx, jsonSchemaKind, id, func(sch sr.Schema) (any, error) {
		if sch.Type != sr.TypeJSON {
			return nil, classed("schema_mismatch", fmt.Errorf("%w: schema id %d is %s, not JSON: is the topic written in another format?", ErrSchemaMismatch, id, schemaTypeName(sch.Type)))
		}
		js, err := compileJSONSchema(sch.Schema, refs)
		if err != nil {
			return nil, classed("schema_mismatch", fmt.Errorf("schema id %d: %w", id, err))
		}
		return js, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*jsonschema.Schema), nil
}

// compileJSONSchema compiles a registered JSON Schema and the schemas it
// references by name. A schema without $schema is draft-07, as
// Confluent's serializers assume. Nothing is fetched: a $ref to a schema
// not among refs (a URL, a file) is an error.
func compileJSONSchema(text string, refs map[string]string) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.UseLoader(jsonschema.SchemeURLLoader{}) // no scheme: no file or network reads
	main, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("json schema is not JSON: %w", err)
	}
	const mainURL = jsonSchemaBase + "schema.json"
	if err := c.AddResource(mainURL, main); err != nil {
		return nil, fmt.Errorf("json schema: %w", err)
	}
	// A reference's name is what $ref says: relative to the registered
	// schema's own $id when it has one, else to mainURL.
	bases := []string{jsonSchemaBase}
	if obj, ok := main.(map[string]any); ok {
		if id, ok := obj["$id"].(string); ok {
			if u, err := url.Parse(id); err == nil && u.IsAbs() {
				bases = append(bases, id)
			}
		}
	}
	for name, t := range refs {
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(t))
		if err != nil {
			return nil, fmt.Errorf("json schema reference %s is not JSON: %w", name, err)
		}
		seen := map[string]bool{}
		for _, base := range bases {
			b, _ := url.Parse(base)
			r, err := url.Parse(name)
			if err != nil {
				return nil, fmt.Errorf("json schema reference name %q is not a URL: %w", name, err)
			}
			u := b.ResolveReference(r).String()
			if seen[u] || u == mainURL {
				continue
			}
			seen[u] = true
			if err := c.AddResource(u, doc); err != nil {
				return nil, fmt.Errorf("json schema reference %s: %w", name, err)
			}
		}
	}
	js, err := c.Compile(mainURL)
	if err != nil {
		return nil, fmt.Errorf("json schema does not compile: %w", err)
	}
	return js, nil
}

// validateJSON validates v (a value the json format decodes to) against
// js; the error lists every failed keyword with its place in the
// document, on one line.
func validateJSON(js *jsonschema.Schema, v any) error {
	err := js.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	var msgs []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			if _, ok := e.ErrorKind.(*kind.Schema); !ok {
				msgs = append(msgs, e.Error()) // "at '/path': what failed"
			}
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(msgs) == 0 {
		return errors.New(strings.ReplaceAll(ve.Error(), "\n", "; "))
	}
	slices.Sort(msgs) // the validator's order follows map iteration
	return errors.New(strings.Join(msgs, "; "))
}

func (c *jsonSchemaCodec) Decode(_ string, _ Headers, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	id, payload, err := SplitWire(b)
	if err != nil {
		return nil, err
	}
	js, err := compiledJSONSchema(context.Background(), c.schemas, id)
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON(payload)
	if err != nil {
		return nil, classed("schema_mismatch", fmt.Errorf("%w: schema id %d: %w", ErrSchemaMismatch, id, err))
	}
	if err := validateJSON(js, v); err != nil {
		return nil, classed("schema_mismatch", fmt.Errorf("%w: record is not valid against json schema id %d: %w", ErrSchemaMismatch, id, err))
	}
	return v, nil
}

// Prepare looks the sink's schema up, so that a missing subject fails the
// start rather than the first record.
func (c *jsonSchemaCodec) Prepare(ctx context.Context, topic string) error {
	_, err := c.writer(ctx, topic)
	return err
}

func (c *jsonSchemaCodec) writer(ctx context.Context, topic string) (*jsonSchemaWriter, error) {
	return c.enc.get(topic, func() (*jsonSchemaWriter, error) {
		subject, ss, err := c.opts.writerSchema(ctx, c.schemas, c.part, topic)
		if err != nil {
			return nil, err
		}
		js, err := compiledJSONSchema(ctx, c.schemas, ss.ID)
		if err != nil {
			return nil, fmt.Errorf("subject %s (schema id %d): %w", subject, ss.ID, err)
		}
		return &jsonSchemaWriter{id: ss.ID, schema: js}, nil
	})
}

func (c *jsonSchemaCodec) Encode(topic string, _ Headers, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	w, err := c.writer(context.Background(), topic)
	if err != nil {
		return nil, err
	}
	b, err := appendJSON(AppendWireHeader(make([]byte, 0, 64), w.id), v)
	if err != nil {
		return nil, err
	}
	// Validate what readers will see: the written document read back, so
	// that a Number, a timestamp or bytes are checked as the JSON number
	// or string they become.
	doc, err := decodeJSON(b[wireHeader:])
	if err != nil {
		return nil, err
	}
	if err := validateJSON(w.schema, doc); err != nil {
		return nil, classed("schema_mismatch", fmt.Errorf("%w: value is not valid against json schema id %d: %w", ErrSchemaMismatch, w.id, err))
	}
	return b, nil
}
