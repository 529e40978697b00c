package processor

import (
	"fmt"

	"github.com/exactly-dev/exactly/topology"
)

// step is what a node of the graph does with each record that reaches it:
// forward what it makes of it to its outputs (g.forward), emit it (a
// sink), keep it in state, or drop it. A failing record returns g.fail's
// error. Steps run on the run loop only.
//
// A stateful step (the plan lists it) also gets an aggregator: its stores
// per task, the rows the open transaction changed, and the flush that
// writes them and their changelog records as the transaction ends; the
// tasks restore its stores before any record of a task is processed.
type step interface {
	process(g *graph, n *node, r *record, emit emitFunc) error
}

// steps makes the runtime step of each kind; every operation registers
// its own, in the file that implements it.
var steps = map[topology.Kind]func(*graph, *node) step{}

func register(k topology.Kind, make func(*graph, *node) step) {
	if _, dup := steps[k]; dup {
		panic(fmt.Sprintf("processor: step kind %q registered twice", k))
	}
	steps[k] = make
}

// sourceStep forwards: a source's records enter the graph decoded (run).
type sourceStep struct{}

func (sourceStep) process(g *graph, n *node, r *record, emit emitFunc) error {
	return g.forward(n, r, emit)
}

// aggregateStep sends a record to its group's task: through the
// repartition topic, or straight to the aggregate when the record is
// already partitioned by its group.
type aggregateStep struct{ a *aggregator }

func (s aggregateStep) process(g *graph, n *node, r *record, emit emitFunc) error {
	if s.a.repartition != "" {
		if r.chg != nil {
			return g.toRepartitionChange(s.a, r, emit)
		}
		return g.toRepartition(s.a, r, emit)
	}
	return g.aggregate(s.a, r, emit)
}

// dedupeStep passes a record whose id was not seen within the TTL.
type dedupeStep struct{ a *aggregator }

func (s dedupeStep) process(g *graph, n *node, r *record, emit emitFunc) error {
	return g.dedupe(s.a, r, emit)
}

func init() {
	register(topology.KindSource, func(*graph, *node) step { return sourceStep{} })
	register(topology.KindAggregate, func(g *graph, n *node) step { return aggregateStep{n.agg} })
	register(topology.KindDedupe, func(g *graph, n *node) step { return dedupeStep{n.agg} })
}
