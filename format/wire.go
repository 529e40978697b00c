package format

import (
	"encoding/binary"
	"fmt"
)

// The Confluent wire format, which every Schema Registry serializer
// writes (Java's KafkaAvroSerializer, confluent-kafka-python, franz-go's
// sr.Serde): a magic byte 0, the schema id as 4 bytes big-endian, then
// the payload. Protobuf payloads start with the message indexes (see
// AppendIndexes); Avro and JSON Schema payloads do not.
//
// A schema id may also travel in a header instead (Confluent's
// header-based ids, KIP-less, from client 8.x): not supported yet; such a
// record lacks the magic byte and is ErrWireFormat.
const (
	wireMagic  = 0
	wireHeader = 5 // magic byte and id
)

// AppendWireHeader appends the magic byte and id to b.
func AppendWireHeader(b []byte, id int) []byte {
	b = append(b, wireMagic)
	return binary.BigEndian.AppendUint32(b, uint32(id))
}

// SplitWire returns the schema id of b and its payload. Bytes without the
// magic byte, or shorter than the header, are ErrWireFormat (class
// wire_format).
func SplitWire(b []byte) (id int, payload []byte, err error) {
	if len(b) < wireHeader {
		return 0, nil, classed("wire_format", fmt.Errorf("%w: %d bytes, shorter than the 5-byte header (magic byte 0, 4-byte schema id): was it written without a registry serializer?", ErrWireFormat, len(b)))
	}
	if b[0] != wireMagic {
		return 0, nil, classed("wire_format", fmt.Errorf("%w: first byte is 0x%02x, not the magic byte 0: was it written without a registry serializer?", ErrWireFormat, b[0]))
	}
	return int(binary.BigEndian.Uint32(b[1:5])), b[5:], nil
}

// AppendIndexes appends protobuf message indexes as Confluent writes them
// after the header: the count then each index, zig-zag varints, with the
// common [0] (the first message of the file) shortened to a single 0.
func AppendIndexes(b []byte, indexes []int) []byte {
	if len(indexes) == 0 || len(indexes) == 1 && indexes[0] == 0 {
		return append(b, 0)
	}
	b = binary.AppendVarint(b, int64(len(indexes)))
	for _, i := range indexes {
		b = binary.AppendVarint(b, int64(i))
	}
	return b
}

// SplitIndexes reads the protobuf message indexes at the start of a
// payload (after SplitWire) and returns them and the rest. At most 100
// indexes are accepted (nesting deeper than that is garbage).
func SplitIndexes(b []byte) (indexes []int, rest []byte, err error) {
	n, k := binary.Varint(b)
	if k <= 0 || n < 0 || n > 100 {
		return nil, nil, classed("wire_format", fmt.Errorf("%w: bad protobuf message index count", ErrWireFormat))
	}
	b = b[k:]
	if n == 0 {
		return []int{0}, b, nil
	}
	indexes = make([]int, n)
	for i := range indexes {
		v, k := binary.Varint(b)
		if k <= 0 || v < 0 {
			return nil, nil, classed("wire_format", fmt.Errorf("%w: bad protobuf message index", ErrWireFormat))
		}
		indexes[i], b = int(v), b[k:]
	}
	return indexes, b, nil
}
