package format

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/reporter"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// protoSchema is one registered Protobuf schema compiled: the file the
// registry holds under an id, linked with its references, so that a
// message index from the wire picks one of its message types.
type protoSchema struct {
	file protoreflect.FileDescriptor
}

// protoMainFile is the name the registered schema is compiled under. Its
// own name is not in the registry (only its references have names), and
// it must differ from every import path so that a schema importing a file
// by any name still compiles.
const protoMainFile = "exactly/registered.proto"

// confluentProtos are the files Confluent's serializers treat as built in
// and never register as references (their Java ProtobufSchema ships them,
// as protocompile ships google/protobuf/*.proto): a schema may import them
// without a reference for them.
var confluentProtos = map[string]string{
	"confluent/meta.proto": `syntax = "proto3";
package confluent;
import "google/protobuf/descriptor.proto";
option go_package = "github.com/confluentinc/schema-registry/confluent/meta";
message Meta {
  string doc = 1;
  map<string, string> params = 2;
  repeated string tags = 3;
}
extend google.protobuf.FileOptions { Meta file_meta = 1088; }
extend google.protobuf.MessageOptions { Meta message_meta = 1088; }
extend google.protobuf.FieldOptions { Meta field_meta = 1088; }
extend google.protobuf.EnumOptions { Meta enum_meta = 1088; }
extend google.protobuf.EnumValueOptions { Meta enum_value_meta = 1088; }
`,
	"confluent/type/decimal.proto": `syntax = "proto3";
package confluent.type;
option go_package = "github.com/confluentinc/schema-registry/confluent/type/decimal";
message Decimal {
  // The two's-complement representation of the unscaled integer value in big-endian byte order
  bytes value = 1;
  // The precision
  uint32 precision = 2;
  // The scale
  int32 scale = 3;
}
`,
}

// compileProto compiles the text of a registered Protobuf schema. imports
// holds the text of every file it imports, directly or through another
// import, by import path (the references' names); the well-known
// google/protobuf files and Confluent's built-in files need not be there.
// A schema that does not compile is an error naming the file, line and
// column protocompile reports.
func compileProto(text string, imports map[string]string) (*protoSchema, error) {
	srcs := make(map[string]string, len(imports)+len(confluentProtos)+1)
	for name, t := range confluentProtos {
		srcs[name] = t
	}
	for name, t := range imports {
		srcs[name] = t
	}
	srcs[protoMainFile] = text
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(srcs),
		}),
		// The first error is enough to name the problem; the rest are
		// usually its consequences.
		Reporter: reporter.NewReporter(nil, nil),
	}
	files, err := c.Compile(context.Background(), protoMainFile)
	if err != nil {
		return nil, fmt.Errorf("protobuf schema does not compile: %w", err)
	}
	return &protoSchema{file: files[0]}, nil
}

// errBadMessageIndex is wrapped by the error for a message index (from
// the wire or the message option) that names no message of the schema.
var errBadMessageIndex = errors.New("message index names no message of the schema")

// message returns the message type a wire message index names: the first
// number picks a top-level message of the file, each next one a message
// nested in the one before, all counted from 0 in declaration order.
func (s *protoSchema) message(index []int) (protoreflect.MessageDescriptor, error) {
	if len(index) == 0 {
		return nil, fmt.Errorf("empty message index: %w", errBadMessageIndex)
	}
	msgs := s.file.Messages()
	var md protoreflect.MessageDescriptor
	for i, n := range index {
		if n < 0 || n >= msgs.Len() {
			where := "the file"
			if md != nil {
				where = string(md.FullName())
			}
			return nil, fmt.Errorf("message index %v: entry %d is %d, but %s has %d message types: %w",
				index, i, n, where, msgs.Len(), errBadMessageIndex)
		}
		md = msgs.Get(n)
		msgs = md.Messages()
	}
	return md, nil
}

// messageByName returns the message type called name (full name, e.g.
// shop.Order, or the name without the package, e.g. Order or
// Order.Line) with its wire index. An empty name picks the file's first
// message, as Confluent's serializers do for a schema of one message.
func (s *protoSchema) messageByName(name string) (protoreflect.MessageDescriptor, []int, error) {
	msgs := s.file.Messages()
	if msgs.Len() == 0 {
		return nil, nil, errors.New("protobuf schema declares no message type")
	}
	if name == "" {
		return msgs.Get(0), []int{0}, nil
	}
	full := strings.TrimPrefix(name, ".")
	if pkg := s.file.Package(); pkg != "" && !strings.HasPrefix(full, string(pkg)+".") {
		full = string(pkg) + "." + full
	}
	var found protoreflect.MessageDescriptor
	var index []int
	var names []string
	var walk func(msgs protoreflect.MessageDescriptors, path []int)
	walk = func(msgs protoreflect.MessageDescriptors, path []int) {
		for i := range msgs.Len() {
			md := msgs.Get(i)
			p := append(path[:len(path):len(path)], i)
			if md.IsMapEntry() {
				continue
			}
			names = append(names, string(md.FullName()))
			if string(md.FullName()) == full && found == nil {
				found, index = md, p
			}
			walk(md.Messages(), p)
		}
	}
	walk(msgs, nil)
	if found == nil {
		return nil, nil, fmt.Errorf("message %q is not in the protobuf schema (it has %s)", name, orList(names))
	}
	return found, index, nil
}
