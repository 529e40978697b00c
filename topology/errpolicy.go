package topology

import (
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/exactly-dev/exactly/internal/suggest"
)

// ErrorPolicy says what happens to a record that cannot be decoded,
// evaluated, encoded or produced.
type ErrorPolicy string

const (
	// OnErrorDeadLetter writes the original record, unchanged, to the
	// dead-letter topic, with headers naming where it came from and why
	// it failed, in the same transaction as the input offsets.
	OnErrorDeadLetter ErrorPolicy = "dead_letter"
	// OnErrorSkip drops the record and counts it.
	OnErrorSkip ErrorPolicy = "skip"
	// OnErrorStop stops the pipeline with an error naming the record;
	// nothing of its transaction is committed.
	OnErrorStop ErrorPolicy = "stop"
)

// Limits bound what one record may cost.
type Limits struct {
	// MaxInputBytes: a larger input record (key plus value) is a decode
	// error. Default 8 MiB.
	MaxInputBytes int64
	// MaxOutputBytes: a larger output record (key, value and headers) is
	// a produce error, caught before it is produced so it never wedges a
	// transaction. 0 (the default) takes each sink topic's
	// max.message.bytes when the pipeline starts.
	MaxOutputBytes int64
	// MaxEvalCost bounds the CEL cost of one evaluation of one
	// expression; past it the evaluation fails (an eval error). Default
	// 1,000,000.
	MaxEvalCost uint64
}

const (
	defaultMaxInputBytes = 8 << 20
	defaultMaxEvalCost   = 1_000_000
)

var (
	policies = []string{string(OnErrorDeadLetter), string(OnErrorSkip), string(OnErrorStop)}
)

// errorPolicy decodes on_error and dead_letter_topic, and limits. It runs
// before the steps, whose expressions need the cost limit.
func (p *parser) errorPolicy(f *fields, t *Topology) {
	t.Limits = Limits{MaxInputBytes: defaultMaxInputBytes, MaxEvalCost: defaultMaxEvalCost}
	if v := f.get("limits"); v != nil {
		if lf := p.mapping(v, "limits", "limits", limitKeys); lf != nil {
			if x := lf.get("max_input_bytes"); x != nil {
				t.Limits.MaxInputBytes = int64(p.positive(x, "limits.max_input_bytes"))
			}
			if x := lf.get("max_output_bytes"); x != nil {
				t.Limits.MaxOutputBytes = int64(p.positive(x, "limits.max_output_bytes"))
			}
			if x := lf.get("max_eval_cost"); x != nil {
				t.Limits.MaxEvalCost = uint64(p.positive(x, "limits.max_eval_cost"))
			}
		}
	}
	p.costLimit = t.Limits.MaxEvalCost

	if v := f.get("dead_letter_topic"); v != nil {
		if s, ok := p.str(v, "dead_letter_topic"); ok {
			if !topicName.MatchString(s) || s == "." || s == ".." {
				p.errorf(p.pos(v), "dead_letter_topic", "invalid topic %q: use 1 to 249 letters, digits, '.', '_' or '-'", s)
			}
			t.DeadLetterTopic = s
			p.dlq = v
		}
	}
	t.OnError = OnErrorStop
	if t.DeadLetterTopic != "" {
		t.OnError = OnErrorDeadLetter
	}
	if v := f.get("on_error"); v != nil {
		if s, ok := p.str(v, "on_error"); ok {
			switch {
			case !slices.Contains(policies, s):
				p.errorf(p.pos(v), "on_error", "unknown policy %q (want dead_letter, skip or stop)%s", s, suggest.DidYouMean(s, policies))
			case s == string(OnErrorDeadLetter) && t.DeadLetterTopic == "":
				p.errorf(p.pos(v), "on_error", "dead_letter needs dead_letter_topic: name the topic bad records go to")
			default:
				t.OnError = ErrorPolicy(s)
			}
		}
	}
}

// checkDeadLetterTopic rejects a dead-letter topic that the pipeline also
// reads or writes: bad records would loop or mix with good ones.
func (p *parser) checkDeadLetterTopic(t *Topology) {
	if p.dlq == nil {
		return
	}
	for _, e := range slices.Concat(p.sources, p.sinks) {
		if e.node.Topic == t.DeadLetterTopic {
			p.errorf(p.pos(p.dlq), "dead_letter_topic", "topic %q is also %s %q of the pipeline; use a topic of its own", t.DeadLetterTopic, e.node.Kind, e.node.Name)
		}
	}
}

// positive decodes a positive integer.
func (p *parser) positive(v *yaml.Node, key string) uint64 {
	d := deref(v)
	if d.Kind == yaml.ScalarNode && d.ShortTag() == "!!int" {
		var n uint64
		if err := d.Decode(&n); err == nil && n > 0 && n < 1<<62 {
			return n
		}
	}
	got := describe(v)
	if d.Kind == yaml.ScalarNode {
		got = d.Value
	}
	p.errorf(p.pos(v), key, "want a positive integer, got %s", got)
	return 0
}
