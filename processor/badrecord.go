package processor

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/statestore"
)

// PhaseProduce is a record error found before producing: an output larger
// than its topic accepts.
const PhaseProduce Phase = "produce"

// Headers the dead-letter record carries besides the original ones.
const (
	HeaderTopic     = "exactly.source.topic"
	HeaderPartition = "exactly.source.partition"
	HeaderOffset    = "exactly.source.offset"
	HeaderPipeline  = "exactly.pipeline"
	HeaderNode      = "exactly.node"
	HeaderPhase     = "exactly.phase"
	HeaderClass     = "exactly.error.class"
	HeaderMessage   = "exactly.error.message"
	// HeaderOmitted is set when the original key and value did not fit
	// in the dead-letter topic and were left out: it says how large
	// they were and where the original is (the source coordinates).
	HeaderOmitted = "exactly.omitted"
)

// maxErrorMessage bounds the error message header, so a huge error (one
// quoting a huge value) cannot make the dead-letter record too large.
const maxErrorMessage = 1024

// run processes one input record as a unit: its outputs are held back and
// its state changes recorded, so that if the record fails part way
// (after one branch of a fan-out already produced, or an aggregate
// already counted it), nothing of it remains: the outputs are dropped and
// the state changes undone, and the caller applies the error policy to the
// whole record.
func (g *graph) run(in *kgo.Record, emit emitFunc) error {
	g.held = g.held[:0]
	g.undo = g.undo[:0]
	for _, n := range g.list {
		n.inRec, n.outRec = n.in, n.out
	}
	err := g.process(in, func(r *kgo.Record) { g.held = append(g.held, r) })
	if err != nil {
		for i := len(g.undo) - 1; i >= 0; i-- {
			g.undo[i].revert()
		}
		for _, n := range g.list {
			n.in, n.out = n.inRec, n.outRec
		}
		return err
	}
	for _, r := range g.held {
		emit(r)
	}
	return nil
}

// undoEntry restores one store key, and its changelog mark, to what it was
// before the failed record touched it.
type undoEntry struct {
	a        *aggregator
	st       statestore.Store
	part     int32
	key      []byte
	prev     []byte
	hadPrev  bool
	dirty    dirtyRow
	hadDirty bool

	// A cached aggregate row instead (st nil): its accumulators before.
	cached    *cachedRow
	hadCached bool
	prevAccs  []acc
	prevR     record

	// A pending on_commit row instead (pend set): what was there.
	pend        bool
	prevPending *pendingRow
	hadPending  bool

	// Anything else: a function that puts it back.
	fn func()
}

func (u *undoEntry) revert() {
	if u.fn != nil {
		u.fn()
		return
	}
	if u.pend {
		if u.hadPending {
			u.a.pending[u.part][string(u.key)] = u.prevPending
		} else {
			delete(u.a.pending[u.part], string(u.key))
		}
		return
	}
	if u.cached != nil {
		if !u.hadCached {
			delete(u.a.rows[u.part], string(u.key))
			return
		}
		u.cached.accs, u.cached.r = u.prevAccs, u.prevR
		return
	}
	if u.hadPrev {
		u.st.Put(u.key, u.prev)
	} else {
		u.st.Put(u.key, nil)
	}
	if u.hadDirty {
		u.a.dirty[u.part][string(u.key)] = u.dirty
	} else if m := u.a.dirty[u.part]; m != nil {
		delete(m, string(u.key))
	}
}

// deadLetter builds the dead-letter record of in: its key, value and
// headers unchanged, plus headers saying where it came from and why it
// failed. When that is more than the dead-letter topic accepts (limit,
// 0: unknown), the key and value are left out and HeaderOmitted points at
// the original in its source topic: a dead-letter write that cannot
// succeed would fail every transaction holding it, and the pipeline
// would stall on the record forever.
func deadLetter(topic, pipeline string, in *kgo.Record, re *RecordError, limit int64) *kgo.Record {
	msg := re.Err.Error()
	if len(msg) > maxErrorMessage {
		msg = msg[:maxErrorMessage-3] + "..."
	}
	hs := make([]kgo.RecordHeader, 0, len(in.Headers)+8)
	hs = append(hs, in.Headers...)
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderTopic, Value: []byte(in.Topic)},
		kgo.RecordHeader{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(in.Partition)))},
		kgo.RecordHeader{Key: HeaderOffset, Value: []byte(strconv.FormatInt(in.Offset, 10))},
		kgo.RecordHeader{Key: HeaderPipeline, Value: []byte(pipeline)},
		kgo.RecordHeader{Key: HeaderNode, Value: []byte(re.Node)},
		kgo.RecordHeader{Key: HeaderPhase, Value: []byte(re.Phase)},
		kgo.RecordHeader{Key: HeaderClass, Value: []byte(errorClass(re))},
		kgo.RecordHeader{Key: HeaderMessage, Value: []byte(msg)},
	)
	out := &kgo.Record{Topic: topic, Key: in.Key, Value: in.Value, Headers: hs, Timestamp: in.Timestamp}
	size := recordSize(out)
	if limit <= 0 || size <= limit {
		return out
	}
	// Too large: leave out the key and value, and the original headers
	// too if that is not enough. Ours (the message truncated) stay well
	// under any topic's limit.
	ours := hs[len(in.Headers):]
	omitted := "key and value"
	out.Key, out.Value = nil, nil
	note := func() kgo.RecordHeader {
		return kgo.RecordHeader{Key: HeaderOmitted, Value: fmt.Appendf(nil,
			"%s left out (key %d, value %d bytes, %d headers): the record is %d bytes, more than %s accepts (%d); the original is at %s/%d@%d",
			omitted, len(in.Key), len(in.Value), len(in.Headers), size, topic, limit, in.Topic, in.Partition, in.Offset)}
	}
	out.Headers = append(hs, note())
	if recordSize(out) > limit {
		omitted = "key, value and headers"
		out.Headers = append(slices.Clone(ours), note())
	}
	return out
}

// recordSize is what limits count of a record (see sizeOf).
func recordSize(r *kgo.Record) int64 { return sizeOf(r.Key, r.Value, r.Headers) }

// sizeOf is what a record of key, value and headers takes in a batch,
// less the fixed overhead batchOverhead covers: the bytes, and for each
// header its two length varints (at most 5 bytes each).
func sizeOf(key, value []byte, headers []kgo.RecordHeader) int64 {
	n := len(key) + len(value)
	for _, h := range headers {
		n += len(h.Key) + len(h.Value) + 10
	}
	return int64(n)
}

// errTooLarge marks size-limit errors.
var errTooLarge = errors.New("record too large")

// errNullKey marks a record without a key bound for a compacted topic.
var errNullKey = errors.New("null key for a compacted topic")

// errorClass names the kind of failure in a word, for routing and
// dashboards; the message has the details.
func errorClass(re *RecordError) string {
	if c := format.Class(re.Err); c != "" {
		return c // a codec's own class: unknown_schema, wire_format, schema_mismatch
	}
	msg := re.Err.Error()
	switch {
	case errors.Is(re.Err, errTooLarge):
		return "too_large"
	case errors.Is(re.Err, errNullKey):
		return "null_key"
	case strings.Contains(msg, "UTF-8"):
		return "invalid_utf8"
	case strings.Contains(msg, "invalid JSON"):
		return "invalid_json"
	case strings.Contains(msg, "no such key"), strings.Contains(msg, "no such attribute"):
		return "missing_field"
	case strings.Contains(msg, "division by zero"), strings.Contains(msg, "modulus by zero"):
		return "division_by_zero"
	case strings.Contains(msg, "cost limit"):
		return "cost_limit"
	case strings.Contains(msg, "no matching overload"), strings.Contains(msg, "no such overload"), strings.Contains(msg, "want"):
		return "type_error"
	}
	return string(re.Phase) + "_error"
}
