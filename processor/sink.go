package processor

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/topology"
)

// sinkStep encodes a record and writes it to the sink's topic, in the
// open transaction.
type sinkStep struct{}

func (sinkStep) process(g *graph, n *node, r *record, emit emitFunc) error {
	// The codecs see the headers of the record they encode.
	out := &kgo.Record{Topic: n.t.Topic, Headers: r.headers, Timestamp: r.ts}
	kf, kc := n.t.KeyFormat, n.codec.key
	switch r.key.(type) {
	case map[string]any, []any:
		if kf.Is(format.String) {
			// A composite key (several group columns, a window)
			// is written as JSON text.
			kf, kc = topology.FormatJSON, jsonCodec
		}
	}
	key, ok := r.rawKey(kf)
	if !ok {
		var err error
		if key, err = kc.Encode(n.t.Topic, (*kafkaHeaders)(out), r.key); err != nil {
			if errors.Is(err, format.ErrRegistryUnavailable) {
				return err // not the record's fault: stop, never dead-letter
			}
			return g.fail(n, r, PhaseEncode, fmt.Errorf("key (format %s): %w", n.t.KeyFormat, err))
		}
	}
	if key == nil && g.compacted[n.t.Topic] {
		// Kafka rejects it (INVALID_RECORD), and the failed
		// produce would fail the whole transaction, again on
		// every retry.
		return g.fail(n, r, PhaseProduce, fmt.Errorf("%w: topic %s compacts (cleanup.policy compact) and Kafka refuses a record without a key there; key the record (a key: step, or a group_by that is never null)", errNullKey, n.t.Topic))
	}
	val, ok := r.rawValue(n.t.Format)
	if raw, isRaw := r.value.(rawJSON); !ok && isRaw {
		val = raw
	} else if !ok {
		var err error
		if val, err = n.codec.value.Encode(n.t.Topic, (*kafkaHeaders)(out), r.value); err != nil {
			if errors.Is(err, format.ErrRegistryUnavailable) {
				return err // not the record's fault: stop, never dead-letter
			}
			return g.fail(n, r, PhaseEncode, fmt.Errorf("value (format %s): %w", n.t.Format, err))
		}
	}
	if limit := g.maxOut[n.t.Topic]; limit > 0 {
		size := sizeOf(key, val, r.headers)
		if size > limit {
			return g.fail(n, r, PhaseProduce, fmt.Errorf("%w: output of %d bytes, more than topic %s accepts (%d, from limits.max_output_bytes or its max.message.bytes less batch overhead)", errTooLarge, size, n.t.Topic, limit))
		}
	}
	n.out.Inc()
	out.Key, out.Value = key, val
	emit(out)
	return nil
}

func init() {
	register(topology.KindSink, func(*graph, *node) step { return sinkStep{} })
}
