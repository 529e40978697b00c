package topology

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

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
	resolve := func(r ref) *entry {
		if e := names[r.name]; e != nil {
			return e
		}
		p.errorf(r.pos, r.key, "unknown node %q%s", r.name, didYouMean(r.name, known))
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
				connect(e, t, r)
			}
		}
	}

	// Sinks of late records: like route targets, fed by the aggregate.
	lateSinks := map[*Node]*Node{} // late sink -> its aggregate
	for _, l := range p.lateTo {
		from := entryAt(p.steps, l.step)
		t := resolve(l.to)
		switch {
		case from == nil || t == nil:
		case t.node.Kind != KindSink:
			p.errorf(l.to.pos, l.to.key, "late records go to a sink, and %q is not one", l.to.name)
		default:
			l.w.LateTo = t.node
			lateSinks[t.node] = from.node
			targeted[t] = true
			connect(from, t, l.to)
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
				case src.node.Kind == KindRoute:
					p.errorf(r.pos, r.key, "cannot read from route step %q: route steps send records only to their branch targets; name this node in a \"to\" of that route instead", r.name)
					e.bad = true
				default:
					connect(src, e, r)
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

	p.checkCycles()
	p.checkFlow(all)

	for _, e := range all {
		for _, in := range e.in {
			if !slices.Contains(e.node.Inputs, in.from.node) {
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
			if lateSinks[o.node] == e.node && !o.reads(e) {
				continue // late records only, sent by the window
			}
			e.node.Outputs = append(e.node.Outputs, o.node)
		}
	}
}

// entryAt returns the entry at YAML path path, or nil.
func entryAt(es []*entry, path string) *entry {
	for _, e := range es {
		if e.path == path {
			return e
		}
	}
	return nil
}

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
func connect(from, to *entry, r ref) {
	to.in = append(to.in, edge{from, r})
	if !slices.Contains(from.out, to) {
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
		if i := slices.Index(p.steps, e); i > 0 && p.steps[i-1].index == e.index-1 {
			prev, what = p.steps[i-1], "the previous step"
		} else {
			e.bad, p.uncertain = true, true
			return
		}
	}
	if prev == nil {
		switch {
		case p.nSources == 1 && len(p.sources) == 1:
			connect(p.sources[0], e, r)
		case p.nSources > 1:
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
	connect(prev, e, r)
}

// checkCycles reports each cycle once, as the path through its earliest
// node, at the place in the file that closes it.
func (p *parser) checkCycles() {
	for _, scc := range stronglyConnected(p.steps) {
		start := scc[0]
		for _, e := range scc {
			if e.ord < start.ord {
				start = e
			}
		}
		selfLoop := slices.Contains(start.out, start)
		if len(scc) == 1 && !selfLoop {
			continue
		}
		path := cyclePath(start, scc)
		last := path[len(path)-1]
		var closing ref
		for _, in := range start.in {
			if in.from == last {
				closing = in.ref
				break
			}
		}
		var names []string
		for _, e := range append(path, start) {
			// A step without a name (already reported) shows as
			// its path.
			names = append(names, cmp.Or(e.node.Name, e.path))
		}
		p.errorf(closing.pos, closing.key, "cycle: %s", strings.Join(names, " -> "))
	}
}

// cyclePath returns the shortest path from start back to start inside scc,
// without repeating start at the end.
func cyclePath(start *entry, scc []*entry) []*entry {
	if slices.Contains(start.out, start) {
		return []*entry{start}
	}
	prev := map[*entry]*entry{start: nil}
	queue := []*entry{start}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		for _, o := range e.out {
			if o == start {
				var path []*entry
				for x := e; x != nil; x = prev[x] {
					path = append(path, x)
				}
				slices.Reverse(path)
				return path
			}
			if _, seen := prev[o]; !seen && slices.Contains(scc, o) {
				prev[o] = e
				queue = append(queue, o)
			}
		}
	}
	return []*entry{start} // unreachable for a real component
}

// stronglyConnected returns the strongly connected components of the
// graph restricted to nodes (Tarjan's algorithm).
func stronglyConnected(nodes []*entry) [][]*entry {
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
		if len(e.out) == 0 && e.named {
			p.errorf(e.node.Pos, e.path, "source %q feeds nothing; add a step or sink with from: %s", e.node.Name, e.node.Name)
		}
	}
	for _, e := range p.steps {
		if len(e.out) == 0 && e.named && e.node.Kind != KindRoute {
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
// last.
func (p *parser) sortSteps() []*entry {
	pending := map[*entry]int{}
	for _, e := range p.steps {
		for _, in := range e.in {
			if in.from.node.Kind != KindSource {
				pending[e]++
			}
		}
	}
	var order []*entry
	done := map[*entry]bool{}
	for len(order) < len(p.steps) {
		next := -1
		for i, e := range p.steps {
			if !done[e] && pending[e] == 0 {
				next = i
				break
			}
		}
		if next < 0 {
			for _, e := range p.steps {
				if !done[e] {
					order = append(order, e)
				}
			}
			break
		}
		e := p.steps[next]
		done[e] = true
		order = append(order, e)
		for _, in := range edgesFrom(e, p.steps) {
			pending[in]--
		}
	}
	return order
}

// edgesFrom lists, once per edge, the steps e feeds.
func edgesFrom(e *entry, steps []*entry) []*entry {
	var to []*entry
	for _, s := range steps {
		for _, in := range s.in {
			if in.from == e {
				to = append(to, s)
			}
		}
	}
	return to
}
