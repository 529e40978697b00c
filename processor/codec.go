package processor

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/topology"
)

// codecs are the codecs of a source's or sink's key and value.
type codecs struct {
	key, value format.Codec
}

// newCodecs returns the codecs of n's formats; nothing for steps. The
// parser checked the formats against the same registry, and the standard
// formats need no dependencies, so an error is a broken invariant: a
// topology that was not parsed.
func newCodecs(n *topology.Node) codecs {
	if n.Kind != topology.KindSource && n.Kind != topology.KindSink {
		return codecs{}
	}
	k, err := newCodec(n.KeyFormat, format.PartKey)
	if err != nil {
		panic(fmt.Sprintf("node %q: key_format: %v", n.Name, err))
	}
	v, err := newCodec(n.Format, format.PartValue)
	if err != nil {
		panic(fmt.Sprintf("node %q: format: %v", n.Name, err))
	}
	return codecs{key: k, value: v}
}

func newCodec(f topology.Format, part format.Part) (format.Codec, error) {
	name := f.Name
	if name == "" {
		name = format.JSON // a zero Format is json's
	}
	return format.Standard().New(name, part, f.Options, format.Deps{})
}

// kafkaHeaders gives codecs a record's headers. A *kgo.Record converts to
// it in place, so passing one to a codec allocates nothing.
type kafkaHeaders kgo.Record

func (r *kafkaHeaders) Get(key string) ([]byte, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return r.Headers[i].Value, true
		}
	}
	return nil, false
}

// jsonCodec writes composite keys of sinks whose key format is string.
var jsonCodec, _ = format.Standard().New(format.JSON, format.PartKey, nil, format.Deps{})
