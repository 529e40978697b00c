package processor

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/metrics"
	"github.com/exactly-dev/exactly/topology"
)

// graph runs the steps of a topology on input records. Stateless steps
// need only the record; per-transaction state lives in the aggregators
// (changed rows, on_commit rows, upstream watermarks: see flush and
// settle) and, per input record, in held and undo (see run).
type graph struct {
	bySource    map[string][]*node     // source topic -> source nodes reading it
	repartition map[string]*aggregator // repartition topic -> the aggregate reading it
	aggs        []*aggregator
	nodes       map[string]*node
	list        []*node // every node
	m           *metrics.Pipeline

	// Limits on record sizes: input (key plus value), and output per
	// topic (set by the processor once it knows the topics' limits).
	maxIn  int64
	maxOut map[string]int64
	// compacted: sink topics whose cleanup.policy compacts (set by the
	// processor); Kafka rejects a record without a key there.
	compacted map[string]bool

	// For dead-lettering late records.
	pipeline, deadLetterTopic string
	// hasIdle: some windowed aggregate advances idle tasks by wall clock,
	// or sends watermarks across a repartition (watermark.go).
	hasIdle bool
	// now is the wall clock (a fake one in tests).
	now func() time.Time
	// asg carries source partition assignments from the client's
	// callbacks to the upstream watermarks (watermark.go).
	asg assignments
	log *slog.Logger
	// offsets tells whether an upstream partition has records left to
	// read (watermark.go); nil: it never has.
	offsets upstreamOffsets

	// Per input record: outputs held back and state changes to undo if
	// it fails (see run).
	held []*kgo.Record
	undo []undoEntry

	// act binds an expression's variables; one for every evaluation,
	// since evaluations never nest.
	act activation
}

// activation returns the graph's activation bound to r.
func (g *graph) activation(r *record) *activation {
	g.act = activation{r: r}
	return &g.act
}

type node struct {
	t    *topology.Node
	outs []*node
	// in and out count the records entering and leaving the node in the
	// open transaction; settle adds them to inC and outC when it commits,
	// so the metrics count committed work only.
	in, out   counter
	inC, outC prometheus.Counter
	// The counts before the record being processed, to undo its counts
	// if it fails.
	inRec, outRec counter
	// route steps: the target of each branch, aligned with t.Routes.
	routes []*node
	// aggregate steps.
	agg *aggregator
}

func newGraph(topo *topology.Topology, m *metrics.Pipeline) *graph {
	g := &graph{bySource: map[string][]*node{}, repartition: map[string]*aggregator{}, nodes: map[string]*node{}, m: m,
		maxIn: topo.Limits.MaxInputBytes, maxOut: map[string]int64{}, compacted: map[string]bool{},
		pipeline: topo.Name, deadLetterTopic: topo.DeadLetterTopic, now: time.Now}
	all := slices.Concat(topo.Sources, topo.Steps, topo.Sinks)
	for _, n := range all {
		gn := &node{t: n, inC: m.RecordsIn.WithLabelValues(n.Name), outC: m.RecordsOut.WithLabelValues(n.Name)}
		g.nodes[n.Name] = gn
		g.list = append(g.list, gn)
		if s := topo.Plan.Step(n.Name); s != nil {
			gn.agg = newAggregator(s, gn)
			gn.agg.g = g
			if w := windowOf(gn.agg); w != nil && (w.IdleTimeout > 0 || gn.agg.watermarked()) {
				g.hasIdle = true
			}
			g.aggs = append(g.aggs, gn.agg)
			if gn.agg.repartition != "" {
				g.repartition[gn.agg.repartition] = gn.agg
			}
		}
	}
	for _, n := range all {
		gn := g.nodes[n.Name]
		for _, o := range n.Outputs {
			gn.outs = append(gn.outs, g.nodes[o.Name])
		}
		for _, r := range n.Routes {
			gn.routes = append(gn.routes, g.nodes[r.To.Name])
		}
	}
	for _, s := range topo.Sources {
		g.bySource[s.Topic] = append(g.bySource[s.Topic], g.nodes[s.Name])
	}
	return g
}

// toJSONSink reports whether n's only output is a sink writing JSON
// values.
func (n *node) toJSONSink() bool {
	if len(n.outs) != 1 {
		return false
	}
	s := n.outs[0].t
	return s.Kind == topology.KindSink && (s.Format == topology.FormatJSON || s.Format == "")
}

// counter counts within one transaction; only the run loop touches it.
type counter int64

func (c *counter) Inc() { *c++ }

// settle adds the counts of the transaction that just ended to the metrics
// if it committed, and resets them.
func (g *graph) settle(committed bool) {
	for _, a := range g.aggs {
		if a.ups != nil {
			a.settleWatermarks(committed)
		}
	}
	for _, n := range g.nodes {
		if committed {
			n.inC.Add(float64(n.in))
			n.outC.Add(float64(n.out))
		}
		n.in, n.out = 0, 0
	}
}

// emitFunc receives each output record.
type emitFunc func(*kgo.Record)

// process runs one input record through every source reading its topic.
func (g *graph) process(in *kgo.Record, emit emitFunc) error {
	if size := int64(len(in.Key) + len(in.Value)); g.maxIn > 0 && size > g.maxIn {
		r := record{headers: in.Headers, ts: in.Timestamp, src: in}
		n := g.entry(in.Topic)
		return g.fail(n, &r, PhaseDecode, fmt.Errorf("%w: %d bytes of key and value, more than limits.max_input_bytes (%d)", errTooLarge, size, g.maxIn))
	}
	if a, ok := g.repartition[in.Topic]; ok {
		if w, wm, idle, ok, err := watermarkOf(in); ok {
			if err != nil {
				return g.fail(a.node, &record{ts: in.Timestamp, src: in}, PhaseDecode, err)
			}
			return g.watermark(a, in, w, wm, idle, emit)
		}
		r := record{headers: withoutInternal(in.Headers), ts: in.Timestamp, src: in}
		var err error
		if r.key, err = format.Decode(topology.FormatJSON, in.Key); err != nil {
			return g.fail(a.node, &r, PhaseDecode, fmt.Errorf("repartition key: %w", err))
		}
		if r.value, err = format.Decode(topology.FormatJSON, in.Value); err != nil {
			return g.fail(a.node, &r, PhaseDecode, fmt.Errorf("repartition value: %w", err))
		}
		r.decodedFrom(topology.FormatJSON, topology.FormatJSON)
		return g.aggregate(a, &r, emit)
	}
	for _, src := range g.bySource[in.Topic] {
		r := record{headers: in.Headers, ts: in.Timestamp, src: in}
		var err error
		if r.key, err = format.Decode(src.t.KeyFormat, in.Key); err != nil {
			return g.fail(src, &r, PhaseDecode, fmt.Errorf("key (format %s): %w", src.t.KeyFormat, err))
		}
		if r.value, err = format.Decode(src.t.Format, in.Value); err != nil {
			return g.fail(src, &r, PhaseDecode, fmt.Errorf("value (format %s): %w", src.t.Format, err))
		}
		r.decodedFrom(src.t.KeyFormat, src.t.Format)
		src.in.Inc()
		if err := g.forward(src, &r, emit); err != nil {
			return err
		}
	}
	return nil
}

// entry returns the node that reads topic first.
func (g *graph) entry(topic string) *node {
	if a, ok := g.repartition[topic]; ok {
		return a.node
	}
	if ns := g.bySource[topic]; len(ns) > 0 {
		return ns[0]
	}
	return &node{t: &topology.Node{Name: topic}}
}

func (g *graph) forward(n *node, r *record, emit emitFunc) error {
	n.out.Inc()
	for _, o := range n.outs {
		if err := g.push(o, r, emit); err != nil {
			return err
		}
	}
	return nil
}

func (g *graph) fail(n *node, r *record, phase Phase, err error) error {
	g.m.Errors.WithLabelValues(n.t.Name, string(phase)).Inc()
	return &RecordError{Topic: r.src.Topic, Partition: r.src.Partition, Offset: r.src.Offset, Node: n.t.Name, Phase: phase, Err: err}
}

func (g *graph) eval(n *node, e *topology.Expr, r *record) (any, error) {
	out, err := g.evalRef(n, e, r)
	if err != nil {
		return nil, err
	}
	return g.native(n, out, r)
}

// evalRef evaluates e on r, leaving the result as CEL's value.
func (g *graph) evalRef(n *node, e *topology.Expr, r *record) (ref.Val, error) {
	out, _, err := e.Program.Eval(g.activation(r))
	if err != nil {
		return nil, g.fail(n, r, PhaseEval, err)
	}
	return out, nil
}

// native converts an expression's result to the plain Go values package
// format encodes; a result that cannot leave the pipeline fails r at n.
func (g *graph) native(n *node, out ref.Val, r *record) (any, error) {
	v, err := native(out)
	if err != nil {
		return nil, g.fail(n, r, PhaseEval, err)
	}
	return v, nil
}

// asJSON encodes out as JSON straight from CEL's values (see rawJSON),
// or reports false for results the general path (native, then
// format.Encode) turns into an error or a Kafka null.
func asJSON(out ref.Val) (rawJSON, bool) {
	if _, null := out.(types.Null); null {
		return nil, false
	}
	return appendCEL(make([]byte, 0, 64), out)
}

func (g *graph) test(n *node, e *topology.Expr, r *record) (bool, error) {
	out, _, err := e.Program.Eval(g.activation(r))
	if err != nil {
		return false, g.fail(n, r, PhaseEval, err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, g.fail(n, r, PhaseEval, fmt.Errorf("%s returned %s, want bool", e.Text, out.Type()))
	}
	return bool(b), nil
}

func (g *graph) push(n *node, r *record, emit emitFunc) error {
	n.in.Inc()
	switch n.t.Kind {
	case topology.KindFilter:
		ok, err := g.test(n, n.t.Expr, r)
		if err != nil || !ok {
			return err
		}
		return g.forward(n, r, emit)

	case topology.KindMap:
		res, err := g.evalRef(n, n.t.Expr, r)
		if err != nil {
			return err
		}
		out := *r
		out.from &^= fromValueMask
		if n.toJSONSink() {
			// Only a JSON sink reads the result: it gets the bytes
			// the general path would give, without the Go values.
			if raw, ok := asJSON(res); ok {
				out.value = raw
				return g.forward(n, &out, emit)
			}
		}
		if out.value, err = g.native(n, res, r); err != nil {
			return err
		}
		return g.forward(n, &out, emit)

	case topology.KindKey:
		k, err := g.eval(n, n.t.Expr, r)
		if err != nil {
			return err
		}
		out := *r
		out.key = k
		out.from &^= fromKeyMask
		return g.forward(n, &out, emit)

	case topology.KindFlatMap:
		v, err := g.eval(n, n.t.Expr, r)
		if err != nil {
			return err
		}
		list, ok := v.([]any)
		if !ok && v != nil {
			return g.fail(n, r, PhaseEval, fmt.Errorf("flat_map returned %T, want a list", v))
		}
		for _, e := range list {
			out := *r
			out.value = e
			out.from &^= fromValueMask
			if err := g.forward(n, &out, emit); err != nil {
				return err
			}
		}
		return nil

	case topology.KindSetHeaders:
		out := *r
		out.headers = slices.Clone(r.headers)
		for _, h := range n.t.Headers {
			v, err := g.eval(n, h.Expr, r)
			if err != nil {
				return err
			}
			b, err := headerBytes(v)
			if err != nil {
				return g.fail(n, r, PhaseEval, fmt.Errorf("header %q: %w", h.Name, err))
			}
			out.headers = setHeader(out.headers, h.Name, b)
		}
		return g.forward(n, &out, emit)

	case topology.KindRoute:
		for i, rt := range n.t.Routes {
			if rt.When != nil {
				ok, err := g.test(n, rt.When, r)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
			}
			n.out.Inc()
			return g.push(n.routes[i], r, emit)
		}
		return nil // no branch matched: dropped, like a filter

	case topology.KindDedupe:
		return g.dedupe(n.agg, r, emit)

	case topology.KindAggregate:
		if n.agg.repartition != "" {
			return g.toRepartition(n.agg, r, emit)
		}
		return g.aggregate(n.agg, r, emit)

	case topology.KindSink:
		kf := n.t.KeyFormat
		switch r.key.(type) {
		case map[string]any, []any:
			if kf == topology.FormatString {
				// A composite key (several group columns, a window)
				// is written as JSON text.
				kf = topology.FormatJSON
			}
		}
		key, ok := r.rawKey(kf)
		if !ok {
			var err error
			if key, err = format.Encode(kf, r.key); err != nil {
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
			if val, err = format.Encode(n.t.Format, r.value); err != nil {
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
		emit(&kgo.Record{Topic: n.t.Topic, Key: key, Value: val, Headers: r.headers, Timestamp: r.ts})
		return nil
	}
	return fmt.Errorf("node %q: unknown kind %q", n.t.Name, n.t.Kind)
}

func headerBytes(v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return []byte(v), nil
	case []byte:
		return v, nil
	case nil:
		return nil, nil
	}
	return format.Encode(topology.FormatJSON, v)
}

// setHeader replaces every header named k with one holding v.
func setHeader(hs []kgo.RecordHeader, k string, v []byte) []kgo.RecordHeader {
	hs = slices.DeleteFunc(hs, func(h kgo.RecordHeader) bool { return h.Key == k })
	return append(hs, kgo.RecordHeader{Key: k, Value: v})
}
