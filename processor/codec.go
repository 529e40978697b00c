package processor

import (
	"context"
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
// parser checked the formats against the same registry, so an error is a
// dependency missing from deps (a registry format without a registry).
func newCodecs(n *topology.Node, deps format.Deps) (codecs, error) {
	if n.Kind != topology.KindSource && n.Kind != topology.KindSink {
		return codecs{}, nil
	}
	k, err := newCodec(n.KeyFormat, format.PartKey, deps)
	if err != nil {
		return codecs{}, fmt.Errorf("node %s: key_format %s: %w", n.Name, n.KeyFormat.Name, err)
	}
	v, err := newCodec(n.Format, format.PartValue, deps)
	if err != nil {
		return codecs{}, fmt.Errorf("node %s: format %s: %w", n.Name, n.Format.Name, err)
	}
	return codecs{key: k, value: v}, nil
}

func newCodec(f topology.Format, part format.Part, deps format.Deps) (format.Codec, error) {
	name := f.Name
	if name == "" {
		name = format.JSON // a zero Format is json's
	}
	return format.Standard().New(name, part, f.Options, deps)
}

// prepare calls Prepare on every sink codec that needs the network before
// its first record (registers its schema), in node order. An error fails
// the start.
func (g *graph) prepare(ctx context.Context) error {
	for _, n := range g.list {
		if n.t.Kind != topology.KindSink {
			continue
		}
		for _, c := range []struct {
			part  string
			codec format.Codec
		}{{"key_format", n.codec.key}, {"format", n.codec.value}} {
			p, ok := c.codec.(format.Preparer)
			if !ok {
				continue
			}
			if err := p.Prepare(ctx, n.t.Topic); err != nil {
				return fmt.Errorf("node %s (topic %s) %s: %w", n.t.Name, n.t.Topic, c.part, err)
			}
		}
	}
	return nil
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
