package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/exactly-dev/exactly/config"
	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/topology"
)

func validateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", stderr)
	pipeline := fs.StringP("pipeline", "c", "", "pipeline file (YAML)")
	config.AddFlags(fs)
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	topo, settings, err := load(ctx, *pipeline, fs)
	if err != nil {
		return err
	}
	for _, w := range settings.Warnings() {
		fmt.Fprintln(stderr, "warning:", w)
	}
	// With a registry (--registry), expressions are checked against the
	// sources' registered schemas too; without one, offline as ever.
	srcl, srWarns, err := settings.RegistryClient()
	if err != nil {
		return usageError{err}
	}
	typed := ""
	if srcl != nil {
		for _, w := range srWarns {
			fmt.Fprintln(stderr, "warning:", w)
		}
		schemas := format.NewSchemas(srcl, nil)
		defer schemas.Close()
		if err := validateTypes(ctx, topo, format.Deps{Schemas: schemas}); err != nil {
			return usageError{err}
		}
		typed = " (expressions checked against the registry's schemas)"
	}
	fmt.Fprintf(stdout, "%s: pipeline %q is valid: %d sources, %d steps, %d sinks%s\n",
		*pipeline, topo.Name, len(topo.Sources), len(topo.Steps), len(topo.Sinks), typed)
	return nil
}

// load loads the pipeline and the settings, reporting the problems of
// both at once. A signal (ctx done) stops it, even in the middle of a
// large pipeline file.
func load(ctx context.Context, pipeline string, fs *pflag.FlagSet) (*topology.Topology, *config.Settings, error) {
	if pipeline == "" {
		return nil, nil, usageError{errors.New("missing -c pipeline.yaml")}
	}
	var errs []error
	topo, err := loadTopology(ctx, pipeline)
	switch {
	case ctx.Err() != nil:
		return nil, nil, err
	case err != nil:
		errs = append(errs, err)
	}
	settings, err := config.Load(fs)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, nil, usageError{errors.Join(errs...)}
	}
	return topo, settings, nil
}

// loadTopology loads the pipeline file, saying so when a signal stopped
// it.
func loadTopology(ctx context.Context, pipeline string) (*topology.Topology, error) {
	topo, err := topology.LoadContext(ctx, pipeline)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("interrupted while loading %s: %w", pipeline, context.Cause(ctx))
	}
	return topo, err
}

func helpOK(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}
