package processor

import (
	"errors"
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

	// joins: the topics joined records are read from (tasks pause them
	// until their tables are restored).
	joins []string
	// globals: the global tables, by source name (global.go).
	globals map[string]*globalTable
	// joinRepartition: repartition topic -> the join step reading it.
	joinRepartition map[string]*node
	// tableJoins: a table's store -> the table-table joins reading it
	// (ttjoin.go).
	tableJoins map[*aggregator][]*node

	// For dead-lettering late records and a stream-stream join's
	// unmatched rows (whose failure is handled where it happens).
	pipeline, deadLetterTopic string
	onError                   topology.ErrorPolicy
	// hasIdle: some windowed aggregate advances idle tasks by wall clock,
	// or sends watermarks across a repartition (watermark.go).
	hasIdle bool
	// now is the wall clock (a fake one in tests).
	now func() time.Time
	// asg carries source partition assignments from the client's
	// callbacks to the upstream watermarks (watermark.go).
	asg assignments
	log *slog.Logger
	// stats counts the bad records the graph handles itself (emitOwn);
	// nil: not counted.
	stats *Stats
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

	// sender is the node whose output is being pushed (set just before
	// each push): a stream-stream join tells its two inputs apart by it.
	sender *node
	// streamJoins are the stream-stream join steps (streamjoin.go).
	streamJoins []*streamJoin
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
	// step is what the node does with each record.
	step step
	// route steps: the target of each branch, aligned with t.Routes.
	routes []*node
	// aggregate steps.
	agg *aggregator
	// sources and sinks.
	codec codecs
	// changes: the step uses the old rows of the changes it reads
	// (changes.go).
	changes bool
}

func newGraph(topo *topology.Topology, m *metrics.Pipeline, deps format.Deps) (*graph, error) {
	g := &graph{bySource: map[string][]*node{}, repartition: map[string]*aggregator{}, nodes: map[string]*node{}, m: m,
		maxIn: topo.Limits.MaxInputBytes, maxOut: map[string]int64{}, compacted: map[string]bool{},
		pipeline: topo.Name, deadLetterTopic: topo.DeadLetterTopic, onError: topo.OnError, now: time.Now}
	g.globals, g.joinRepartition = map[string]*globalTable{}, map[string]*node{}
	for _, n := range topo.Plan.Globals {
		g.globals[n.Name] = newGlobalTable(n)
	}
	all := slices.Concat(topo.Sources, topo.Steps, topo.Sinks)
	for _, n := range all {
		cs, err := newCodecs(n, deps)
		if err != nil {
			return nil, err
		}
		gn := &node{t: n, inC: m.RecordsIn.WithLabelValues(n.Name), outC: m.RecordsOut.WithLabelValues(n.Name), codec: cs, changes: readsChanges(n)}
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
		make, ok := steps[n.Kind]
		if !ok {
			panic(fmt.Sprintf("processor: no runtime step for kind %q (register one)", n.Kind))
		}
		gn.step = make(g, gn)
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
	for _, a := range g.aggs {
		a.oldRows = slices.ContainsFunc(a.node.outs, func(o *node) bool { return o.changes })
	}
	for _, j := range topo.Plan.Joins {
		if j.Global != nil {
			continue
		}
		if !slices.Contains(g.joins, j.Input) {
			g.joins = append(g.joins, j.Input)
		}
	}
	return g, nil
}

// toJSONSink reports whether n's only output is a sink writing JSON
// values.
func (n *node) toJSONSink() bool {
	if len(n.outs) != 1 {
		return false
	}
	s := n.outs[0].t
	return s.Kind == topology.KindSink && s.Format.Is(format.JSON)
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
	for _, s := range g.streamJoins {
		s.settle(committed)
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
		if s := g.streamJoinOf(a); s != nil {
			return s.fromRepartition(g, in, emit)
		}
		r := record{headers: withoutInternal(in.Headers), ts: in.Timestamp, src: in}
		var err error
		if r.key, err = format.DecodeJSON(in.Key); err != nil {
			return g.fail(a.node, &r, PhaseDecode, fmt.Errorf("repartition key: %w", err))
		}
		var tagged bool
		if r.value, tagged, err = decodeInternal(in.Value); err != nil {
			return g.fail(a.node, &r, PhaseDecode, fmt.Errorf("repartition value: %w", err))
		}
		r.decodedFrom(topology.FormatJSON, topology.FormatJSON)
		if tagged {
			r.from &^= fromValueMask // the bytes are not the value's JSON
		}
		if a.node.t.Aggregate.Retract {
			if err := changeFromRepartition(&r); err != nil {
				return g.fail(a.node, &r, PhaseDecode, err)
			}
		}
		return g.aggregate(a, &r, emit)
	}
	if n, ok := g.joinRepartition[in.Topic]; ok {
		return g.fromRepartition(n, in, emit)
	}
	for _, src := range g.bySource[in.Topic] {
		r := record{headers: in.Headers, ts: in.Timestamp, src: in}
		var err error
		if r.key, err = src.codec.key.Decode(in.Topic, (*kafkaHeaders)(in), in.Key); err != nil {
			if errors.Is(err, format.ErrRegistryUnavailable) {
				return err // not the record's fault: stop, never dead-letter
			}
			return g.fail(src, &r, PhaseDecode, fmt.Errorf("key (format %s): %w", src.t.KeyFormat, err))
		}
		if r.value, err = src.codec.value.Decode(in.Topic, (*kafkaHeaders)(in), in.Value); err != nil {
			if errors.Is(err, format.ErrRegistryUnavailable) {
				return err // not the record's fault: stop, never dead-letter
			}
			return g.fail(src, &r, PhaseDecode, fmt.Errorf("value (format %s): %w", src.t.Format, err))
		}
		r.decodedFrom(src.t.KeyFormat, src.t.Format)
		src.in.Inc()
		if src.agg != nil && src.agg.table {
			if err := g.tableRecord(src, &r, emit); err != nil {
				return err
			}
			continue
		}
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
		g.sender = n
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
// a codec's Encode) turns into an error or a Kafka null.
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

// push runs n's step on r.
func (g *graph) push(n *node, r *record, emit emitFunc) error {
	n.in.Inc()
	if r.chg != nil && !n.changes {
		r = asStream(r)
	}
	return n.step.process(g, n, r, emit)
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
	return format.EncodeJSON(v)
}

// setHeader replaces every header named k with one holding v.
func setHeader(hs []kgo.RecordHeader, k string, v []byte) []kgo.RecordHeader {
	hs = slices.DeleteFunc(hs, func(h kgo.RecordHeader) bool { return h.Key == k })
	return append(hs, kgo.RecordHeader{Key: k, Value: v})
}
