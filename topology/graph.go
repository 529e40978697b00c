package topology

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/exactly-dev/exactly/internal/suggest"
)

// Every pass below does work linear in nodes plus edges (sorting aside):
// pipelines are generated too, with tens of thousands of steps, and an
// edge scan per node made validating 32k steps take half a minute.
// Membership checks use maps, not slices.Contains over a node's edges,
// and parser.graphOps counts node and edge visits so a test can check it.

// link resolves names into edges, applies default inputs, and checks the
// shape of the graph: no cycles, nothing unused, nothing unreachable.
func (p *parser) link() {
	all := slices.Concat(p.sources, p.steps, p.sinks)
	// File order, whatever order the top-level lists were written in. The
	// stable sort keeps list order for nodes sharing a position (the same
	// anchored mapping listed twice).
	byFile := slices.Clone(all)
	slices.SortStableFunc(byFile, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.node.Pos.Line, b.node.Pos.Line), cmp.Compare(a.node.Pos.Col, b.node.Pos.Col))
	})
	ordOf := map[*Node]int{}
	for i, e := range byFile {
		e.ord = i
		ordOf[e.node] = i
	}

	names := map[string]*entry{}
	var known []string
	for _, e := range byFile {
		if !e.named {
			continue
		}
		if first := names[e.node.Name]; first != nil {
			p.errorf(e.namePos, e.path+".name", "duplicate node name %q, first defined at %s", e.node.Name, first.node.Pos)
			e.named = false
			continue
		}
		names[e.node.Name] = e
		known = append(known, e.node.Name)
	}
	suggested := 0
	resolve := func(r ref) *entry {
		p.graphOps++
		if e := names[r.name]; e != nil {
			return e
		}
		// A suggestion compares the name with every node name, so only
		// the first few unknown names get one: thousands of unknown names
		// times thousands of nodes would make validating quadratic.
		hint := ""
		if suggested < maxSuggestions {
			suggested++
			p.graphOps += len(known)
			hint = suggest.DidYouMean(r.name, known)
		}
		p.errorf(r.pos, r.key, "unknown node %q%s", r.name, hint)
		// The name was probably meant for a node that now looks unused.
		p.uncertain = true
		return nil
	}

	// Route targets first: they decide which nodes get a default input.
	targeted := map[*entry]bool{}
	for _, e := range p.steps {
		for i, r := range e.tos {
			if r.name == "" {
				continue
			}
			t := resolve(r)
			switch {
			case t == nil:
			case t.node.Kind == KindSource:
				p.errorf(r.pos, r.key, "cannot route to source %q: sources read only from their topic", r.name)
			default:
				e.node.Routes[i].To = t.node
				// A route sending to itself still needs an input
				// of its own; the cycle is reported below.
				if t != e {
					targeted[t] = true
				}
				p.connect(e, t, r)
			}
		}
	}

	// Join tables: read by the join, not fed into it as records.
	p.tablesUsed = map[*entry]bool{}
	for _, e := range p.steps {
		if e.node.Join == nil || e.table.name == "" {
			continue
		}
		t := resolve(e.table)
		switch {
		case t == nil:
		case t.node.Kind == KindAggregate && t.node.Aggregate != nil && t.node.Aggregate.Window == nil:
			// An aggregate's rows: looked up by group, JSON-encoded
			// as its store keys them, in the task holding the group.
			// Both the aggregate's records and the join's go through
			// repartition topics keyed so, with one partition count.
			e.node.Join.Table = t.node
			e.node.Join.Repartition = true
			t.node.Aggregate.GroupByKey = false
			p.tablesUsed[t] = true
		case t.node.Kind != KindSource || !t.node.Table:
			p.errorf(e.table.pos, e.table.key, "join table %q is not a table source or an aggregate step without a window; declare a source with table: true, or name an aggregate step, here", e.table.name)
		default:
			e.node.Join.Table = t.node
			p.tablesUsed[t] = true
		}
	}

	// The other stream of stream-stream joins: an input of the join
	// like its from, told apart by Join.Stream.
	for _, e := range p.steps {
		if e.node.Join == nil || e.stream.name == "" {
			continue
		}
		t := resolve(e.stream)
		switch {
		case t == nil:
			e.bad = true
		case t == e:
			p.errorf(e.stream.pos, e.stream.key, "a join cannot read itself as its other stream")
		case t.node.Kind == KindSink:
			p.errorf(e.stream.pos, e.stream.key, "cannot join with sink %q: sinks have no output", e.stream.name)
		case t.node.Kind == KindSource && t.node.Table:
			p.errorf(e.stream.pos, e.stream.key, "source %q is a table: join it with table: %s, not stream", e.stream.name, e.stream.name)
		case t.node.Kind == KindRoute:
			p.errorf(e.stream.pos, e.stream.key, "cannot join with route step %q: route steps send records only to their branch targets; route into a step and join with that", e.stream.name)
		case e.reads(t):
			p.errorf(e.stream.pos, e.stream.key, "%q is both this join's from and its stream: a stream-stream join needs two different inputs", e.stream.name)
		default:
			e.node.Join.Stream = t.node
			p.connect(t, e, e.stream)
		}
	}

	// Sinks of late records: like route targets, fed by the aggregate.
	lateSinks := map[*Node]*Node{} // late sink -> its aggregate
	stepAt := map[string]*entry{}  // YAML path -> step
	if len(p.lateTo) > 0 {
		for _, e := range p.steps {
			stepAt[e.path] = e
		}
	}
	for _, l := range p.lateTo {
		p.graphOps++
		from := stepAt[l.step]
		t := resolve(l.to)
		switch {
		case from == nil || t == nil:
		case t.node.Kind != KindSink:
			p.errorf(l.to.pos, l.to.key, "late records go to a sink, and %q is not one", l.to.name)
		default:
			l.w.LateTo = t.node
			lateSinks[t.node] = from.node
			targeted[t] = true
			p.connect(from, t, l.to)
		}
	}

	for _, e := range slices.Concat(p.steps, p.sinks) {
		if e.hasFrom {
			for _, r := range e.from {
				src := resolve(r)
				switch {
				case src == nil:
					e.bad = true
				case src.node.Kind == KindSink:
					p.errorf(r.pos, r.key, "cannot read from sink %q: sinks have no output", r.name)
					e.bad = true
				case src.node.Kind == KindSource && src.node.Table && e.node.Join != nil:
					// A table-table join (ttjoin.go checks the rest).
					p.tableJoinInput(e, src, r)
				case src.node.Kind == KindSource && src.node.Global:
					p.errorf(r.pos, r.key, "source %q is a global table: only a join reads it (table: %s), not from; drop global: true to read its changes", r.name, r.name)
					e.bad = true
				case src.node.Kind == KindRoute:
					p.errorf(r.pos, r.key, "cannot read from route step %q: route steps send records only to their branch targets; name this node in a \"to\" of that route instead", r.name)
					e.bad = true
				default:
					p.connect(src, e, r)
				}
			}
			continue
		}
		// A route target gets its records from the route; a default
		// input on top would silently duplicate them.
		if !targeted[e] {
			p.defaultInput(e)
		}
	}

	p.checkJoinTypes()
	p.checkCycles()
	p.checkFlow(all)

	added := map[*Node]*entry{} // input node -> the last entry it was added to
	for _, e := range all {
		for _, in := range e.in {
			p.graphOps++
			if added[in.from.node] != e {
				added[in.from.node] = e
				e.node.Inputs = append(e.node.Inputs, in.from.node)
			}
		}
		slices.SortStableFunc(e.node.Inputs, func(a, b *Node) int { return cmp.Compare(ordOf[a], ordOf[b]) })
		outs := slices.Clone(e.out)
		if e.node.Kind != KindRoute {
			// Route outputs keep branch order, which is evaluation
			// order; everything else lists its readers in file order.
			slices.SortStableFunc(outs, func(a, b *entry) int { return cmp.Compare(a.ord, b.ord) })
		}
		for _, o := range outs {
			p.graphOps++
			if lateSinks[o.node] == e.node && !o.reads(e) {
				continue // late records only, sent by the window
			}
			e.node.Outputs = append(e.node.Outputs, o.node)
		}
	}
}

// maxSuggestions bounds the unknown node names that get a "did you mean".
const maxSuggestions = 100

// reads reports whether e names from in its from.
func (e *entry) reads(from *entry) bool {
	for _, r := range e.from {
		if from.named && r.name == from.node.Name {
			return true
		}
	}
	return false
}

// label names a node in messages: its quoted name, or its path when it has
// none (an error already reported).
func (e *entry) label() string {
	if e.node.Name == "" {
		return e.path
	}
	return strconv.Quote(e.node.Name)
}

// connect adds the edge from -> to, made by r.
func (p *parser) connect(from, to *entry, r ref) {
	p.graphOps++
	to.in = append(to.in, edge{from, r})
	if p.linked == nil {
		p.linked = map[[2]*entry]bool{}
	}
	if !p.linked[[2]*entry{from, to}] {
		p.linked[[2]*entry{from, to}] = true
		from.out = append(from.out, to)
	}
}

// defaultInput connects a step or sink written without from: a step reads
// the step before it (the first step reads the only source); a sink reads
// the last step (or the only source when there are no steps).
func (p *parser) defaultInput(e *entry) {
	r := ref{pos: e.node.Pos, key: e.path + ".from"}
	var prev *entry
	var what string
	if e.node.Kind == KindSink {
		if len(p.steps) > 0 {
			prev, what = p.steps[len(p.steps)-1], "the last step"
		}
	} else if e.index > 0 {
		// The step right before it in the list, unless that one failed
		// to decode, in which case the input is unknown.
		if i := e.seq; i > 0 && p.steps[i-1].index == e.index-1 {
			prev, what = p.steps[i-1], "the previous step"
		} else {
			e.bad, p.uncertain = true, true
			return
		}
	}
	if prev == nil {
		// Table sources are read by joins, never as a default input.
		var streams []*entry
		for _, s := range p.sources {
			if !s.node.Table {
				streams = append(streams, s)
			}
		}
		switch tables := len(p.sources) - len(streams); {
		case p.nSources-tables == 1 && len(streams) == 1:
			p.connect(streams[0], e, r)
		case p.nSources-tables > 1:
			p.errorf(e.node.Pos, r.key, "missing required key \"from\": there are several sources, so name the one(s) to read")
			e.bad, p.uncertain = true, true
		default:
			// No usable source, already reported.
			e.bad, p.uncertain = true, true
		}
		return
	}
	if prev.node.Kind == KindRoute {
		p.errorf(e.node.Pos, r.key, "missing required key \"from\": %s %s is a route, which sends records only to its branch targets", what, prev.label())
		e.bad, p.uncertain = true, true
		return
	}
	p.connect(prev, e, r)
}

// checkCycles reports each cycle once, as the path through its earliest
// node, at the place in the file that closes it.
func (p *parser) checkCycles() {
	for _, scc := range p.stronglyConnected(p.steps) {
		start := scc[0]
		for _, e := range scc {
			p.graphOps++
			if e.ord < start.ord {
				start = e
			}
		}
		if len(scc) == 1 && !p.linked[[2]*entry{start, start}] {
			continue
		}
		path := p.cyclePath(start, scc)
		last := path[len(path)-1]
		var closing ref
		for _, in := range start.in {
			p.graphOps++
			if in.from == last {
				closing = in.ref
				break
			}
		}
		var names []string
		for i, e := range append(path, start) {
			// A long cycle shows its ends: the steps around the
			// place that closes it are what the user looks at.
			if n := len(path) + 1; n > 2*cycleEnds && i >= cycleEnds && i < n-cycleEnds {
				if i == cycleEnds {
					names = append(names, fmt.Sprintf("(%d more steps)", n-2*cycleEnds))
				}
				continue
			}
			// A step without a name (already reported) shows as
			// its path.
			names = append(names, cmp.Or(e.node.Name, e.path))
		}
		p.errorf(closing.pos, closing.key, "cycle: %s", strings.Join(names, " -> "))
	}
}

// cycleEnds is how many steps a cycle message shows at either end of a
// long cycle.
const cycleEnds = 10

// cyclePath returns the shortest path from start back to start inside scc,
// without repeating start at the end.
func (p *parser) cyclePath(start *entry, scc []*entry) []*entry {
	if p.linked[[2]*entry{start, start}] {
		return []*entry{start}
	}
	inSCC := make(map[*entry]bool, len(scc))
	for _, e := range scc {
		inSCC[e] = true
	}
	prev := map[*entry]*entry{start: nil}
	queue := []*entry{start}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		for _, o := range e.out {
			p.graphOps++
			if o == start {
				var path []*entry
				for x := e; x != nil; x = prev[x] {
					path = append(path, x)
				}
				slices.Reverse(path)
				return path
			}
			if _, seen := prev[o]; !seen && inSCC[o] {
				prev[o] = e
				queue = append(queue, o)
			}
		}
	}
	return []*entry{start} // unreachable for a real component
}

// stronglyConnected returns the strongly connected components of the
// graph restricted to nodes (Tarjan's algorithm).
func (p *parser) stronglyConnected(nodes []*entry) [][]*entry {
	var (
		index   = map[*entry]int{}
		low     = map[*entry]int{}
		onStack = map[*entry]bool{}
		stack   []*entry
		out     [][]*entry
		visit   func(*entry)
	)
	visit = func(e *entry) {
		index[e] = len(index)
		low[e] = index[e]
		stack = append(stack, e)
		onStack[e] = true
		for _, o := range e.out {
			p.graphOps++
			if _, seen := index[o]; !seen {
				visit(o)
				low[e] = min(low[e], low[o])
			} else if onStack[o] {
				low[e] = min(low[e], index[o])
			}
		}
		if low[e] == index[e] {
			var scc []*entry
			for {
				x := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[x] = false
				scc = append(scc, x)
				if x == e {
					break
				}
			}
			out = append(out, scc)
		}
	}
	for _, e := range nodes {
		p.graphOps++
		if _, seen := index[e]; !seen {
			visit(e)
		}
	}
	return out
}

// checkFlow checks that every record has somewhere to go and every sink
// gets records: each source and step has an output and each sink is fed,
// through some path, by a source.
func (p *parser) checkFlow(all []*entry) {
	// Nodes downstream of an input problem already reported are exempt
	// from reachability complaints: they follow from that problem.
	tainted := map[*entry]bool{}
	reached := map[*entry]bool{}
	var mark func(e *entry, set map[*entry]bool)
	mark = func(e *entry, set map[*entry]bool) {
		if set[e] {
			return
		}
		set[e] = true
		for _, o := range e.out {
			p.graphOps++
			mark(o, set)
		}
	}
	for _, e := range all {
		if e.bad {
			mark(e, tainted)
		}
	}
	for _, e := range p.sources {
		mark(e, reached)
	}
	if p.uncertain {
		return
	}
	for _, e := range p.sources {
		switch {
		case !e.named:
		case e.node.Table && !p.tablesUsed[e] && len(e.out) == 0:
			p.errorf(e.node.Pos, e.path, "table source %q is read by no join and no step; add a join step with table: %s, or a step with from: %s", e.node.Name, e.node.Name, e.node.Name)
		case len(e.out) == 0 && !e.node.Table:
			p.errorf(e.node.Pos, e.path, "source %q feeds nothing; add a step or sink with from: %s", e.node.Name, e.node.Name)
		}
	}
	for _, e := range p.steps {
		if len(e.out) == 0 && e.named && e.node.Kind != KindRoute && !p.tablesUsed[e] {
			p.errorf(e.node.Pos, e.path, "output of step %q goes nowhere; add a sink with from: %s", e.node.Name, e.node.Name)
		}
	}
	for _, e := range p.sinks {
		if !reached[e] && !tainted[e] {
			p.errorf(e.node.Pos, e.path, "sink %q is not reachable from any source", e.node.Name)
		}
	}
}

// sortSteps returns the steps in topological order, taking among the
// steps whose inputs are all placed the earliest in the list, so a linear
// file keeps its order. Steps on a cycle (an error already reported) go
// last. It is Kahn's algorithm with the ready steps in a heap ordered by
// list position.
func (p *parser) sortSteps() []*entry {
	pending := make([]int, len(p.steps)) // unplaced inputs, by list position
	feeds := map[*entry][]*entry{}       // step -> the steps it feeds, once per edge
	for _, e := range p.steps {
		for _, in := range e.in {
			p.graphOps++
			if in.from.node.Kind != KindSource {
				pending[e.seq]++
				feeds[in.from] = append(feeds[in.from], e)
			}
		}
	}
	ready := &seqHeap{}
	for _, e := range p.steps {
		p.graphOps++
		if pending[e.seq] == 0 {
			heap.Push(ready, e.seq)
		}
	}
	order := make([]*entry, 0, len(p.steps))
	placed := make([]bool, len(p.steps))
	for ready.Len() > 0 {
		e := p.steps[heap.Pop(ready).(int)]
		placed[e.seq] = true
		order = append(order, e)
		for _, to := range feeds[e] {
			p.graphOps++
			if pending[to.seq]--; pending[to.seq] == 0 {
				heap.Push(ready, to.seq)
			}
		}
	}
	for _, e := range p.steps {
		if !placed[e.seq] {
			order = append(order, e)
		}
	}
	return order
}

// seqHeap is a min-heap of positions in parser.steps.
type seqHeap []int

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *seqHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
