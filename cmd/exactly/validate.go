package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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
	brokers := settings.Kafka.Brokers
	online := fs.Changed("brokers") && !(len(brokers) == 1 && brokers[0] == config.Embedded)
	if online {
		kopts, _, err := settings.KafkaOpts()
		if err != nil {
			return usageError{err}
		}
		if err := checkTopics(ctx, topo.Plan, brokers, kopts); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%s: pipeline %q is valid: %d sources, %d steps, %d sinks%s\n",
		*pipeline, topo.Name, len(topo.Sources), len(topo.Steps), len(topo.Sinks), typed)
	for _, g := range topo.Plan.CoPartitionGroups() {
		how := "checked at run; pass --brokers to check now"
		if online {
			how = "checked on the brokers: equal"
		}
		fmt.Fprintf(stdout, "co-partitioned (one partition count): %s (%s)\n", strings.Join(g, ", "), how)
	}
	return nil
}

// checkTopics checks, on the brokers, what `run` would check at start
// before it creates anything: the source topics exist, the topics one task
// reads together have one partition count, and an existing repartition or
// changelog topic has the count the pipeline would create it with. It
// only reads metadata. A problem with the pipeline against the cluster is
// a usage error (exit 2), as a problem in the file is; failing to ask is
// not.
func checkTopics(ctx context.Context, pl *topology.Plan, brokers []string, kopts []kgo.Opt) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append(slices.Clone(kopts), kgo.SeedBrokers(brokers...))...)
	if err != nil {
		return fmt.Errorf("connecting to --brokers: %w", err)
	}
	defer cl.Close()
	topics := slices.Clone(pl.Sources)
	for _, g := range pl.Globals {
		topics = append(topics, g.Topic)
	}
	internal := pl.Topics()
	for _, it := range internal {
		topics = append(topics, it.Name)
	}
	details, err := kadm.NewClient(cl).ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("reading topic metadata from %s: %w", strings.Join(brokers, ","), err)
	}
	var errs []error
	counts := map[string]int32{}
	for _, t := range topics[:len(topics)-len(internal)] {
		d, ok := details[t]
		if !ok || d.Err != nil {
			errs = append(errs, fmt.Errorf("source topic %s does not exist on %s: create it first", t, strings.Join(brokers, ",")))
			continue
		}
		counts[t] = int32(len(d.Partitions))
	}
	parts := pl.Partitions(counts)
	if err := pl.CheckCoPartitioned(parts); err != nil {
		errs = append(errs, err)
	}
	for _, it := range internal {
		d, ok := details[it.Name]
		want, known := parts[it.Name]
		if !ok || d.Err != nil || !known || !it.Exact {
			continue // created at run
		}
		if got := int32(len(d.Partitions)); got != want {
			fix := "delete it (it holds only in-flight records)"
			if it.Purpose == "changelog" {
				fix = "its state is partitioned for the old count; delete it and reprocess the source from its start"
			}
			errs = append(errs, fmt.Errorf("%s topic %s has %d partitions, the pipeline needs %d (as %s): %s, or give the source back %d partitions",
				it.Purpose, it.Name, got, want, countSource(it), fix, got))
		}
	}
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	return nil
}

// countSource says where internal topic it takes its partition count from.
func countSource(it topology.InternalTopic) string {
	if it.PartitionsOf == "" {
		return "the most of any source topic"
	}
	return "topic " + it.PartitionsOf
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
