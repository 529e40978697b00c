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
// formats stay dyn. Then it gives every avro sink with no schema, given
// or registered, one derived from what reaches it (deriveSinkSchemas).
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
	if len(sources) > 0 {
		if err := topology.CheckTypes(topo, sources); err != nil {
			return err
		}
	}
	return deriveSinkSchemas(ctx, topo, deps, sources)
}

// deriveSinkSchemas sets the schema option of every avro sink that has
// none (no schema, schema_file or version) and whose subject has no
// schema registered, to an Avro schema of the CEL type of the values
// that reach it (topology.SinkType, format.AvroSchemaOf). The sink then
// registers it at start, as if it had been given. A type too dynamic to
// derive is an error naming the expression's file:line:col.
func deriveSinkSchemas(ctx context.Context, topo *topology.Topology, deps format.Deps, sources map[string]topology.SourceTypes) error {
	f, ok := format.Standard().Lookup(format.Avro)
	if !ok || f.Type == nil {
		return nil
	}
	for _, n := range topo.Sinks {
		if n.Format.Name != format.Avro || n.Format.Options["schema"] != nil || n.Format.Options["schema_file"] != nil || n.Format.Options["version"] != nil {
			continue
		}
		registered, err := f.Type(ctx, format.PartValue, n.Topic, n.Format.Options, deps)
		if err != nil {
			return fmt.Errorf("sink %s (topic %s): the schema of its value: %w", n.Name, n.Topic, err)
		}
		if registered != nil {
			continue // the subject's latest version is written with
		}
		t, err := topology.SinkType(topo, sources, n)
		if err != nil {
			return err
		}
		text, err := format.AvroSchemaOf(t)
		if err != nil {
			return fmt.Errorf("sink %s (topic %s): %w", n.Name, n.Topic, err)
		}
		opts := format.Options{"schema": text}
		for k, v := range n.Format.Options {
			opts[k] = v
		}
		n.Format.Options = opts
	}
	return nil
}

// validateTypes is typeCheck for `exactly validate --registry`: it gives
// a registry that does not answer validateRegistryWait, then fails.
func validateTypes(ctx context.Context, topo *topology.Topology, deps format.Deps) error {
	ctx, cancel := context.WithTimeout(ctx, validateRegistryWait)
	defer cancel()
	return typeCheck(ctx, topo, deps)
}

const validateRegistryWait = 30 * time.Second
