package processor

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/interpreter"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/topology"
)

// record is a record on its way through the graph: decoded key and value,
// headers, timestamp and the input record it came from. Steps never
// mutate a record's key, value or headers in place (a fan-out shares
// them); they build new ones.
type record struct {
	key, value any
	headers    []kgo.RecordHeader
	ts         time.Time
	src        *kgo.Record
	// from holds the formats key and value were decoded from (see
	// decodedFrom) while they are still src's own, no step having
	// replaced them. A sink writing the same format writes src's bytes
	// as they came: encoding the decoded value again would re-space it,
	// re-order its keys and rewrite its numbers (1.7e12 as
	// 1700000000000.0), altering fields no expression touched. One byte,
	// so the record stays in its allocation size class.
	from uint8
	// task is, for a row time passing made (a window's final row, a
	// stream-stream join's unmatched row: src stands for no record and
	// its partition is -1), the partition of the task that made it; see
	// taskOf. It sits in from's padding: the record keeps its size.
	task int32
	// chg is set when the record is a change of a table row (changes.go):
	// value is then the new row (nil: the row was deleted) and chg the
	// row it replaced.
	chg *change
}

// taskOf is the task partition r belongs to, for the keyed steps after
// it that read their input's partitions directly (a dedupe, an aggregate
// grouped by the key, a stream-stream join keyed as read): its source
// record's partition, or for a row time passing made, the partition of
// the task that made it. Such a row keeps the keys of that task's records
// (a window's row is keyed by its group and window, the group being the
// record key when nothing regrouped it), so it is that task's, as the
// rows a record makes are its partition's.
func (r *record) taskOf() int32 {
	if r.src.Partition >= 0 {
		return r.src.Partition
	}
	return r.task
}

// The codes of formats in record.from: the key's in the low two bits, the
// value's in the next two; 0 once a step replaced it.
const (
	fromKeyMask   = 0b0011
	fromValueMask = 0b1100
	// fromNumbers: the value is an aggregate's row, whose exact numbers
	// (format.Number) expressions see as int or double (changes.go).
	fromNumbers = 0b10000
)

func formatCode(f topology.Format) uint8 {
	if len(f.Options) > 0 {
		return 0 // never reused: a format with options may differ from its like
	}
	switch f.Name {
	case format.JSON, "":
		return 1
	case format.String:
		return 2
	case format.Bytes:
		return 3
	}
	return 0
}

// decodedFrom records that r's key and value are src's, decoded from
// formats kf and vf.
func (r *record) decodedFrom(kf, vf topology.Format) {
	r.from = formatCode(kf) | formatCode(vf)<<2
}

// rawKey returns the input's key bytes when r's key is still the input's
// own and f is the format it was decoded from.
func (r *record) rawKey(f topology.Format) ([]byte, bool) {
	c := r.from & fromKeyMask
	if c == 0 || c != formatCode(f) {
		return nil, false
	}
	return r.src.Key, true
}

// rawValue is rawKey for the value.
func (r *record) rawValue(f topology.Format) ([]byte, bool) {
	c := r.from & fromValueMask >> 2
	if c == 0 || c != formatCode(f) {
		return nil, false
	}
	return r.src.Value, true
}

// activation binds the expression variables for one record without
// building a map per record.
type activation struct {
	r       *record
	table   any               // a join's row (join outputs only)
	other   any               // the other stream's value (stream-stream join outputs only)
	headers map[string]string // built on first use
}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case topology.VarKey:
		return a.r.key, true
	case topology.VarValue:
		if a.r.from&fromNumbers != 0 {
			return rowForCEL(a.r.value), true
		}
		return a.r.value, true
	case topology.VarHeaders:
		if a.headers == nil {
			a.headers = make(map[string]string, len(a.r.headers))
			for _, h := range a.r.headers {
				a.headers[h.Key] = validUTF8(h.Value)
			}
		}
		return a.headers, true
	case topology.VarTimestamp:
		return a.r.ts, true
	case topology.VarTopic:
		return a.r.src.Topic, true
	case topology.VarPartition:
		return int64(a.r.src.Partition), true
	case topology.VarOffset:
		return a.r.src.Offset, true
	case topology.VarTable:
		return a.table, true
	case topology.VarOther:
		return a.other, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// Phase names where in the path of a record something failed.
type Phase string

const (
	PhaseDecode Phase = "decode"
	PhaseEval   Phase = "eval"
	PhaseEncode Phase = "encode"
)

// RecordError is a failure to process one input record. It names the
// record and the node, so the record can be found with any Kafka client.
type RecordError struct {
	Topic     string
	Partition int32
	Offset    int64
	Node      string
	Phase     Phase
	Err       error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("record %s/%d@%d: node %q: %s: %v", e.Topic, e.Partition, e.Offset, e.Node, e.Phase, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }
