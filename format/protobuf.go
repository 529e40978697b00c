package format

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The names of the Schema Registry formats this file and jsonschema.go
// add to Standard.
const (
	// Protobuf decodes Confluent's Protobuf wire format: magic byte 0,
	// the 4-byte schema id, the message indexes (zig-zag varints: a
	// count then one index per nesting level, or a single 0 for the
	// file's first message), then the message. The writer's schema is
	// fetched by id and its .proto text (with its references) compiled
	// once; values are mapped as protovalue.go describes.
	Protobuf = "protobuf"
	// JSONSchema decodes Confluent's JSON Schema wire format: magic byte
	// 0, the 4-byte schema id, then a JSON document, which must be valid
	// against the schema; values are those of the json format.
	JSONSchema = "json_schema"
)

var protobufFactory = registryFactory(Protobuf, protobufOptions, checkProtobufOptions, protobufTypeOf,
	func(s *Schemas, part Part, o sinkSchemaOpts) Codec {
		return &protoCodec{schemas: s, part: part, opts: o}
	})

// protoCodec is the protobuf format. Decoding needs nothing but the
// registry; encoding looks its schema up once per topic (Prepare, or the
// first record).
type protoCodec struct {
	schemas *Schemas
	part    Part
	opts    sinkSchemaOpts

	enc writers[*protoWriter]
}

// protoWriter is what a sink writes with: the schema id and the message
// type with its wire index.
type protoWriter struct {
	id    int
	md    protoreflect.MessageDescriptor
	index []int
}

// protoSchemaKind keys compiled Protobuf schemas in the Schemas cache.
const protoSchemaKind = "protobuf"

// compiledProto returns the schema with id compiled, fetching it and its
// references from the registry the first time.
//
// The fetches happen before Parsed, not inside its parse function:
// Parsed caches a parse's error for good (a schema never changes), and a
// registry that is down when a reference is first wanted must not make
// the id fail forever. Once cached, the fetches are map lookups.
func compiledProto(ctx context.Context, s *Schemas, id int) (*protoSchema, error) {
	sch, err := s.ByID(ctx, id)
	if err != nil {
		return nil, err
	}
	imports := map[string]string{}
	if err := fetchReferences(ctx, s, sch.References, imports); err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	v, err := s.Parsed(ctx, protoSchemaKind, id, func(sch sr.Schema) (any, error) {
		if sch.Type != sr.TypeProtobuf {
			return nil, classed("schema_mismatch", fmt.Errorf("%w: schema id %d is %s, not PROTOBUF: is the topic written in another format?", ErrSchemaMismatch, id, schemaTypeName(sch.Type)))
		}
		ps, err := compileProto(sch.Schema, imports)
		if err != nil {
			return nil, classed("schema_mismatch", fmt.Errorf("schema id %d: %w", id, err))
		}
		return ps, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*protoSchema), nil
}

func schemaTypeName(t sr.SchemaType) string {
	b, _ := t.MarshalText()
	return string(b)
}

// fetchReferences puts the text of every schema refs name, and of their
// own references, into texts by reference name.
func fetchReferences(ctx context.Context, s *Schemas, refs []sr.SchemaReference, texts map[string]string) error {
	for _, ref := range refs {
		if _, ok := texts[ref.Name]; ok {
			continue
		}
		ss, err := s.ByVersion(ctx, ref.Subject, ref.Version)
		if err != nil {
			return fmt.Errorf("reference %s (subject %s version %d): %w", ref.Name, ref.Subject, ref.Version, err)
		}
		texts[ref.Name] = ss.Schema.Schema
		if err := fetchReferences(ctx, s, ss.References, texts); err != nil {
			return err
		}
	}
	return nil
}

func (c *protoCodec) Decode(_ string, _ Headers, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	id, payload, err := SplitWire(b)
	if err != nil {
		return nil, err
	}
	// A new id waits for the registry (Schemas retries) rather than
	// failing the record: see Schemas.
	ps, err := compiledProto(context.Background(), c.schemas, id)
	if err != nil {
		return nil, err
	}
	index, payload, err := SplitIndexes(payload)
	if err != nil {
		return nil, err
	}
	md, err := ps.message(index)
	if err != nil {
		return nil, classed("schema_mismatch", fmt.Errorf("%w: schema id %d: %w", ErrSchemaMismatch, id, err))
	}
	m := dynamicpb.NewMessage(md)
	if err := unmarshalProto(payload, m); err != nil {
		return nil, classed("schema_mismatch", fmt.Errorf("%w: bytes do not parse as protobuf %s (schema id %d): %v", ErrSchemaMismatch, md.FullName(), id, err))
	}
	return protoMessageValue(m)
}

// unmarshalProto is proto.Unmarshal, with a panic turned into an error:
// protobuf-go v1.36 panics ("cannot convert nil to map key") on a map
// entry whose key field comes again with the wrong wire type, decoding
// into a dynamicpb message (FuzzProtobufDecode found it). A hostile
// record must be a bad record, not a crashed pipeline.
func unmarshalProto(b []byte, m proto.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed protobuf (the decoder panicked: %v)", r)
		}
	}()
	if err := proto.Unmarshal(b, m); err != nil {
		return errors.New(protoErrText(err))
	}
	return nil
}

// protoErrText is protobuf-go's error text without its "proto: " prefix,
// with a plain space where it randomly writes a non-breaking one (it does
// so on purpose, so that nobody matches its texts; dead letters and
// golden files need them stable).
func protoErrText(err error) string {
	return strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\u00a0", " "), "proto: ")
}

// Prepare looks up the schema the codec writes to topic with and checks
// that it has the message type asked for, so that a missing subject or a
// misspelt message fails the start, not the first record.
func (c *protoCodec) Prepare(ctx context.Context, topic string) error {
	_, err := c.writer(ctx, topic)
	return err
}

func (c *protoCodec) writer(ctx context.Context, topic string) (*protoWriter, error) {
	return c.enc.get(topic, func() (*protoWriter, error) {
		subject, ss, err := c.opts.writerSchema(ctx, c.schemas, c.part, topic)
		if err != nil {
			return nil, err
		}
		ps, err := compiledProto(ctx, c.schemas, ss.ID)
		if err != nil {
			return nil, fmt.Errorf("subject %s (schema id %d): %w", subject, ss.ID, err)
		}
		md, index, err := ps.messageByName(c.opts.message)
		if err != nil {
			return nil, fmt.Errorf("subject %s (schema id %d): %w: set format option message to one of them", subject, ss.ID, err)
		}
		return &protoWriter{id: ss.ID, md: md, index: index}, nil
	})
}

var protoMarshal = proto.MarshalOptions{Deterministic: true}

func (c *protoCodec) Encode(topic string, _ Headers, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	w, err := c.writer(context.Background(), topic)
	if err != nil {
		return nil, err
	}
	m := dynamicpb.NewMessage(w.md)
	if err := setProtoMessage(m, v); err != nil {
		return nil, classed("schema_mismatch", fmt.Errorf("%w (schema id %d): %w", ErrSchemaMismatch, w.id, err))
	}
	b := AppendIndexes(AppendWireHeader(make([]byte, 0, 64), w.id), w.index)
	b, err = protoMarshal.MarshalAppend(b, m)
	if err != nil {
		return nil, classed("schema_mismatch", fmt.Errorf("%w: protobuf %s (schema id %d): %s", ErrSchemaMismatch, w.md.FullName(), w.id, protoErrText(err)))
	}
	return b, nil
}
