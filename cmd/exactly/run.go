package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/config"
	"github.com/exactly-dev/exactly/metrics"
	"github.com/exactly-dev/exactly/processor"
	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
)

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	pipeline := fs.StringP("pipeline", "c", "", "pipeline file (YAML)")
	inputs := fs.StringArray("input", nil, "with the embedded broker: load a JSON-lines file into a topic before starting, as topic=path (repeatable)")
	untilCaughtUp := fs.Bool("until-caught-up", false, "stop once the group has committed every input record (for batch runs and demos)")
	printOutput := fs.Bool("print-output", false, "on exit, print what a read_committed reader sees on the sink topics")
	config.AddFlags(fs)
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	topo, s, err := load(*pipeline, fs)
	if err != nil {
		return err
	}
	log := newLogger(s, stderr)
	tuneGC(log)
	kopts, _, err := s.KafkaOpts()
	if err != nil {
		return usageError{err}
	}
	for _, w := range s.Warnings() {
		log.Warn(w)
	}

	brokers := s.Kafka.Brokers
	embedded := len(brokers) == 1 && brokers[0] == config.Embedded
	if len(*inputs) > 0 && !embedded {
		return usageError{errors.New("--input loads sample data into the embedded broker only; use your own producer for a real cluster")}
	}
	if embedded {
		b, err := broker.Start(broker.Options{Port: s.Embedded.Port, Partitions: s.Embedded.Partitions, Logger: log})
		if err != nil {
			return err
		}
		defer b.Close()
		brokers = b.Addrs()
		log.Info("embedded broker started", "addr", strings.Join(brokers, ","))
		if err := seed(ctx, brokers, topo, int32(s.Embedded.Partitions), *inputs, log); err != nil {
			return err
		}
	}

	var state statestore.Backend
	if s.State.Dir != "" {
		dir := filepath.Join(s.State.Dir, topo.Name+"-"+s.InstanceID)
		if state, err = statestore.NewPebbleWithLogger(dir, s.State.CacheBytes, log); err != nil {
			return err
		}
		defer state.Close()
	}
	reg := metrics.NewRegistry()
	p, err := processor.New(topo, processor.Config{
		State:              state,
		Metrics:            metrics.NewPipeline(reg, topo.Name),
		KafkaOpts:          append(kopts, metrics.KafkaHooks(reg, topo.Name)),
		Brokers:            brokers,
		ClientID:           s.Kafka.ClientID,
		InstanceID:         s.InstanceID,
		CommitInterval:     s.CommitInterval,
		TransactionTimeout: s.Kafka.TransactionTimeout,
		SessionTimeout:     s.Kafka.SessionTimeout,
		RebalanceTimeout:   s.Kafka.RebalanceTimeout,
		ShutdownTimeout:    s.ShutdownTimeout,
		Logger:             log,
	})
	if err != nil {
		return usageError{err}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	// The HTTP server stops last, so /metrics stays scrapable while the
	// pipeline drains.
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	if s.HTTP.Addr != "" {
		srv := metrics.NewServer(s.HTTP.Addr, reg, p.Ready, log).
			WithTLS(s.HTTP.TLS.CertFile, s.HTTP.TLS.KeyFile).
			WithBasicAuth(s.HTTP.BasicAuth.Username, s.HTTP.BasicAuth.Password.Value())
		if err := srv.Listen(); err != nil {
			return err
		}
		log.Info("serving /metrics, /livez and /readyz", "addr", srv.Addr())
		g.Go(func() error { return srv.Run(httpCtx) })
	}
	g.Go(func() error {
		defer stopHTTP()
		return p.Run(gctx)
	})
	if *untilCaughtUp {
		g.Go(func() error {
			err := waitCaughtUp(gctx, brokers, topo.Group, p.Consumed(), kopts...)
			if err == nil {
				log.Info("caught up: every input record is committed; stopping")
				cancel()
			}
			return nil
		})
	}
	err = g.Wait()
	if err == nil && *printOutput {
		pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer pcancel()
		err = printCommitted(pctx, stdout, brokers, p.SinkTopics(), kopts...)
	}
	return err
}

// seed creates the pipeline's topics on the embedded broker and loads the
// sample inputs.
func seed(ctx context.Context, brokers []string, topo *topology.Topology, partitions int32, inputs []string, log *slog.Logger) error {
	var topics []string
	for _, n := range append(append([]*topology.Node{}, topo.Sources...), topo.Sinks...) {
		topics = append(topics, n.Topic)
	}
	if err := broker.CreateTopics(ctx, brokers, partitions, topics...); err != nil {
		return err
	}
	for _, in := range inputs {
		topic, path, ok := strings.Cut(in, "=")
		if !ok || topic == "" || path == "" {
			return usageError{fmt.Errorf("--input %q: want topic=path", in)}
		}
		n, err := broker.ProduceFile(ctx, brokers, topic, path)
		if err != nil {
			return usageError{err}
		}
		log.Info("loaded input", "topic", topic, "file", path, "records", n)
	}
	return nil
}

// defaultGCPercent is the garbage collector's target when GOGC is not
// set. Nearly everything a pipeline allocates is garbage within one
// transaction (decoded records, outputs until the broker acknowledges
// them); the live heap is small, so letting it grow to five times its
// size before a collection costs little memory and saves about a fifth of
// the CPU per JSON record (see the README's Performance section). GOGC,
// and GOMEMLIMIT for a hard bound, override it as in any Go program.
const defaultGCPercent = 400

func tuneGC(log *slog.Logger) {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(defaultGCPercent)
	log.Debug("garbage collector target set; GOGC overrides it", "gogc", defaultGCPercent)
}
