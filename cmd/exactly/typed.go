package main

import (
	"context"
	"fmt"
	"time"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/topology"
)

// typeCheck asks the registry for the schema of every source whose
// format has one (format.Factory.Type) and type-checks the expressions
// that see those records (topology.CheckTypes). Sources of the other
// formats stay dyn.
func typeCheck(ctx context.Context, topo *topology.Topology, deps format.Deps) error {
	sources := map[string]topology.SourceTypes{}
	for _, n := range topo.Sources {
		var st topology.SourceTypes
		for _, part := range []struct {
			f    topology.Format
			p    format.Part
			into **format.Type
		}{{n.KeyFormat, format.PartKey, &st.Key}, {n.Format, format.PartValue, &st.Value}} {
			f, ok := format.Standard().Lookup(part.f.Name)
			if !ok || f.Type == nil {
				continue
			}
			t, err := f.Type(ctx, part.p, n.Topic, part.f.Options, deps)
			if err != nil {
				return fmt.Errorf("source %s (topic %s): the schema of its %s: %w", n.Name, n.Topic, part.p, err)
			}
			*part.into = t
		}
		if st.Key != nil || st.Value != nil {
			sources[n.Name] = st
		}
	}
	if len(sources) == 0 {
		return nil
	}
	return topology.CheckTypes(topo, sources)
}

// validateTypes is typeCheck for `exactly validate --registry`: it gives
// a registry that does not answer validateRegistryWait, then fails.
func validateTypes(ctx context.Context, topo *topology.Topology, deps format.Deps) error {
	ctx, cancel := context.WithTimeout(ctx, validateRegistryWait)
	defer cancel()
	return typeCheck(ctx, topo, deps)
}

const validateRegistryWait = 30 * time.Second
