package processor

import (
	"fmt"
	"slices"

	"github.com/exactly-dev/exactly/topology"
)

// The stateless steps: each looks at one record and forwards what it makes
// of it.

type filterStep struct{}

func (filterStep) process(g *graph, n *node, r *record, emit emitFunc) error {
	if r.chg != nil {
		return g.filterChange(n, r, emit)
	}
	ok, err := g.test(n, n.t.Expr, r)
	if err != nil || !ok {
		return err
	}
	return g.forward(n, r, emit)
}

type mapStep struct{}

func (mapStep) process(g *graph, n *node, r *record, emit emitFunc) error {
	if r.chg != nil {
		return g.mapChange(n, r, emit)
	}
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
}

type keyStep struct{}

func (keyStep) process(g *graph, n *node, r *record, emit emitFunc) error {
	k, err := g.eval(n, n.t.Expr, r)
	if err != nil {
		return err
	}
	out := *r
	out.key = k
	out.from &^= fromKeyMask
	return g.forward(n, &out, emit)
}

type flatMapStep struct{}

func (flatMapStep) process(g *graph, n *node, r *record, emit emitFunc) error {
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
}

type setHeadersStep struct{}

func (setHeadersStep) process(g *graph, n *node, r *record, emit emitFunc) error {
	out := *r
	out.headers = slices.Clone(r.headers)
	in := r
	if r.chg != nil && r.value == nil && r.chg.old != nil {
		in = oldRecord(r) // a deleted row's headers come from the row it deletes
	}
	for _, h := range n.t.Headers {
		v, err := g.eval(n, h.Expr, in)
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
}

type routeStep struct{}

func (routeStep) process(g *graph, n *node, r *record, emit emitFunc) error {
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
		g.sender = n
		return g.push(n.routes[i], r, emit)
	}
	return nil // no branch matched: dropped, like a filter
}

func init() {
	register(topology.KindFilter, func(*graph, *node) step { return filterStep{} })
	register(topology.KindMap, func(*graph, *node) step { return mapStep{} })
	register(topology.KindKey, func(*graph, *node) step { return keyStep{} })
	register(topology.KindFlatMap, func(*graph, *node) step { return flatMapStep{} })
	register(topology.KindSetHeaders, func(*graph, *node) step { return setHeadersStep{} })
	register(topology.KindRoute, func(*graph, *node) step { return routeStep{} })
}
