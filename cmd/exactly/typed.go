package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/topology"
)

// typeCheck asks the registry for the schema of every source whose
// format has one (format.Factory.Type) and type-checks the expressions
// that see those records (topology.CheckTypes). Sources of the other
// formats stay dyn. Then it gives every avro, protobuf and json_schema
// sink key and value with no schema, given or registered, one derived
// from what reaches it (deriveSinkSchemas).
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

// deriveSinkSchemas sets the schema option of every sink key and value
// whose format derives one (avro, protobuf, json_schema) and has none
// (no schema, schema_file or version) and whose subject has no schema
// registered, to a schema of the CEL type of what reaches it
// (topology.SinkSchema). The sink then registers
// it at start, as if it had been given. A type too dynamic to derive is
// an error naming the expression's file:line:col.
func deriveSinkSchemas(ctx context.Context, topo *topology.Topology, deps format.Deps, sources map[string]topology.SourceTypes) error {
	for _, n := range topo.Sinks {
		for _, part := range []struct {
			f *topology.Format
			p format.Part
		}{{&n.KeyFormat, format.PartKey}, {&n.Format, format.PartValue}} {
			o := part.f.Options
			if !format.Derives(part.f.Name) || o["schema"] != nil || o["schema_file"] != nil || o["version"] != nil {
				continue
			}
			f, ok := format.Standard().Lookup(part.f.Name)
			if !ok || f.Type == nil {
				continue
			}
			registered, err := f.Type(ctx, part.p, n.Topic, o, deps)
			if err != nil {
				return fmt.Errorf("sink %s (topic %s): the schema of its %s: %w", n.Name, n.Topic, part.p, err)
			}
			if registered != nil {
				// The subject's latest version is written with. A
				// field the pipeline writes that it lacks would be
				// dropped from every record (Avro writes the schema's
				// fields only): that is a start-up error, when the
				// output's type is known.
				if derived, err := topology.SinkPartType(topo, sources, n, part.p); err == nil && derived != nil {
					if missing := format.MissingFields(registered, derived); len(missing) > 0 {
						return fmt.Errorf("sink %s (topic %s): the schema registered for its %s has no field %s, which the pipeline writes: every record would lose it; register a version of the subject with it, or give the sink a schema", n.Name, n.Topic, part.p, strings.Join(missing, ", "))
					}
				}
				continue
			}
			text, err := topology.SinkSchema(topo, sources, n, part.p)
			var terr *topology.Error
			if err != nil && !errors.As(err, &terr) {
				if part.p == format.PartKey {
					return fmt.Errorf("sink %s (topic %s): its key: %w", n.Name, n.Topic, err)
				}
				return fmt.Errorf("sink %s (topic %s): %w", n.Name, n.Topic, err)
			}
			if err != nil {
				return err
			}
			opts := format.Options{"schema": text}
			for k, v := range o {
				opts[k] = v
			}
			part.f.Options = opts
		}
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
