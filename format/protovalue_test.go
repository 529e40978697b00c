package format

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// TestProtoWellKnownMissingField: a registry may serve its own copy of a
// well-known type's file; one that lacks a field the format reads is an
// error naming the type and the field, for each field in turn, never a
// panic.
func TestProtoWellKnownMissingField(t *testing.T) {
	// msg is an empty message of type pkg.name whose fields are the
	// int64 fields numbered ns.
	msg := func(pkg, name string, ns ...int32) *dynamicpb.Message {
		t.Helper()
		d := &descriptorpb.DescriptorProto{Name: proto.String(name)}
		for _, n := range ns {
			d.Field = append(d.Field, &descriptorpb.FieldDescriptorProto{
				Name: proto.String("f" + string(rune('0'+n))), Number: proto.Int32(n),
				Type:  descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum(),
				Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			})
		}
		fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
			Name: proto.String(pkg + "/" + name + ".proto"), Package: proto.String(pkg), Syntax: proto.String("proto3"),
			MessageType: []*descriptorpb.DescriptorProto{d},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return dynamicpb.NewMessage(fd.Messages().Get(0))
	}
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"Timestamp without nanos, decoded", func() error {
			_, err := decodeTimestamp(msg("google.protobuf", "Timestamp", 1))
			return err
		}, "google.protobuf.Timestamp has no field 2"},
		{"Timestamp without seconds, encoded", func() error {
			return encodeTimestamp(msg("google.protobuf", "Timestamp", 2), "2024-03-01T12:30:15Z")
		}, "google.protobuf.Timestamp has no field 1"},
		{"Duration without nanos, decoded", func() error {
			_, err := decodeDuration(msg("google.protobuf", "Duration", 1))
			return err
		}, "google.protobuf.Duration has no field 2"},
		{"Decimal without scale, decoded", func() error {
			_, err := decodeDecimal(msg("confluent.type", "Decimal", 1, 2))
			return err
		}, "confluent.type.Decimal has no field 3"},
		{"Decimal without precision, encoded", func() error {
			return encodeDecimal(msg("confluent.type", "Decimal", 1, 3), Number("1.5"))
		}, "confluent.type.Decimal has no field 2"},
		{"Struct without fields, encoded", func() error {
			return encodeStruct(msg("google.protobuf", "Struct"), map[string]any{})
		}, "google.protobuf.Struct has no field 1"},
	} {
		if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}
