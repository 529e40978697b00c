package processor

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/topology"
)

// dropHeadersStep removes the headers its step names.
type dropHeadersStep struct{ names []string }

func (s dropHeadersStep) process(g *graph, n *node, r *record, emit emitFunc) error {
	drop := func(h kgo.RecordHeader) bool { return slices.Contains(s.names, h.Key) }
	if !slices.ContainsFunc(r.headers, drop) {
		return g.forward(n, r, emit)
	}
	out := *r
	out.headers = slices.DeleteFunc(slices.Clone(r.headers), drop)
	return g.forward(n, &out, emit)
}

func init() {
	register(topology.KindDropHeaders, func(g *graph, n *node) step { return dropHeadersStep{n.t.DropHeaders} })
}
