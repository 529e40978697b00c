package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/exactly-dev/exactly/config"
	"github.com/exactly-dev/exactly/topology"
)

func validateCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", stderr)
	pipeline := fs.StringP("pipeline", "c", "", "pipeline file (YAML)")
	config.AddFlags(fs)
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	topo, settings, err := load(*pipeline, fs)
	if err != nil {
		return err
	}
	for _, w := range settings.Warnings() {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "%s: pipeline %q is valid: %d sources, %d steps, %d sinks\n",
		*pipeline, topo.Name, len(topo.Sources), len(topo.Steps), len(topo.Sinks))
	return nil
}

// load loads the pipeline and the settings, reporting the problems of
// both at once.
func load(pipeline string, fs *pflag.FlagSet) (*topology.Topology, *config.Settings, error) {
	if pipeline == "" {
		return nil, nil, usageError{errors.New("missing -c pipeline.yaml")}
	}
	var errs []error
	topo, err := topology.Load(pipeline)
	if err != nil {
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

func helpOK(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}
