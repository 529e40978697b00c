package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/exactly-dev/exactly/topology"
)

// describeCmd prints the compiled topology of a pipeline: its nodes with
// their expressions, the stores and internal topics its aggregate steps
// need, and its edges, as text or as a Mermaid flowchart. Like validate
// it needs no network, so partition counts are stated in words.
func describeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("describe", stderr)
	pipeline := fs.StringP("pipeline", "c", "", "pipeline file (YAML)")
	format := fs.String("format", "text", "output format: text, or mermaid for a flowchart to paste into Markdown")
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	var describe func(io.Writer, *topology.Topology) error
	switch *format {
	case "text":
		describe = topology.Describe
	case "mermaid":
		describe = topology.DescribeMermaid
	default:
		return usageError{fmt.Errorf("flag --format: unknown format %q (want text or mermaid)", *format)}
	}
	if *pipeline == "" {
		return usageError{errors.New("missing -c pipeline.yaml")}
	}
	topo, err := loadTopology(ctx, *pipeline)
	switch {
	case ctx.Err() != nil:
		return err
	case err != nil:
		return usageError{err}
	}
	return describe(stdout, topo)
}
