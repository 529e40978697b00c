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
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/config"
	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/metrics"
	"github.com/exactly-dev/exactly/processor"
	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
)

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	defer func() {
		// A stop signal during start-up (creating topics, reading their
		// limits, loading inputs, joining the group) cancels whatever
		// request was under way, and its error is ctx's. Nothing was
		// processed or left half done then (a stop once processing runs
		// ends the open transaction, and Run returns nil), so it is a
		// clean stop, not a failure.
		if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			err = nil
		}
	}()
	fs := newFlags("run", stderr)
	pipeline := fs.StringP("pipeline", "c", "", "pipeline file (YAML)")
	inputs := fs.StringArray("input", nil, "with the embedded broker: load a JSON-lines file into a topic before starting, as topic=path (repeatable)")
	untilCaughtUp := fs.Bool("until-caught-up", false, "stop once the group has committed every input record (for batch runs and demos)")
	printOutput := fs.Bool("print-output", false, "on exit, print what a read_committed reader sees on the sink topics")
	config.AddFlags(fs)
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	topo, s, err := load(ctx, *pipeline, fs)
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
	srcl, srWarns, err := s.RegistryClient()
	if err != nil {
		return usageError{err}
	}
	var deps format.Deps
	if srcl != nil {
		for _, w := range srWarns {
			log.Warn(w)
		}
		deps.Schemas = format.NewSchemas(srcl, log)
		// A record waiting for a new schema id while the registry is
		// down must not hold up a stop: Close ends the wait.
		defer context.AfterFunc(ctx, deps.Schemas.Close)()
		defer deps.Schemas.Close()
		// Expressions are checked against the sources' schemas before
		// anything starts; a registry that is down is waited for.
		if err := typeCheck(ctx, topo, deps); err != nil {
			return usageError{err}
		}
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
		PurgeInterval:      purgeInterval(s.State.RepartitionPurgeInterval),
		StaticMembership:   s.Kafka.StaticMembership,
		Logger:             log,
		Formats:            deps,
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
		// Run logs the address, with TLS and basic auth.
		g.Go(func() error { return srv.Run(httpCtx) })
	}
	g.Go(func() error {
		defer stopHTTP()
		return p.Run(gctx)
	})
	if *untilCaughtUp {
		g.Go(func() error {
			err := waitCaughtUp(gctx, brokers, topo.Group, p.Consumed(), p.Settled, kopts...)
			if err == nil {
				// The commit times of the whole run, for batch runs
				// and the bench (the histogram's p50 and p99).
				attrs := []any{}
				if q, n := metrics.CommitQuantiles(reg, 0.5, 0.99); n > 0 {
					attrs = append(attrs, "transactions", n, "commit_p50", q[0], "commit_p99", q[1])
				}
				log.Info("caught up: every input record is committed; stopping", attrs...)
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
// them), so letting the heap grow to five times its live size before a
// collection saves about a fifth of the CPU per JSON record (see the
// README's Performance section). In-memory state is live heap, though:
// so that a large state cannot grow the heap to five times its size past
// a container's memory, the collector also gets a soft limit of 90% of
// the container's memory when GOMEMLIMIT is not set, and collects harder
// as it nears it. GOGC and GOMEMLIMIT override both, as in any Go
// program.
const defaultGCPercent = 400

func tuneGC(log *slog.Logger) {
	gogc, limit := "set by GOGC", "set by GOMEMLIMIT"
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
		gogc = strconv.Itoa(defaultGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		limit = "none (no container memory limit found; set GOMEMLIMIT with large in-memory state)"
		if c := containerMemoryLimit("/sys/fs/cgroup"); c > 0 {
			debug.SetMemoryLimit(c / 10 * 9)
			limit = fmt.Sprintf("%d MiB (90%% of the container's %d MiB)", c/10*9>>20, c>>20)
		}
	}
	log.Info("garbage collector", "gogc", gogc, "memory_limit", limit)
}

// containerMemoryLimit returns the memory limit of the cgroup mounted at
// root (v2 memory.max, or v1 memory/memory.limit_in_bytes), or 0 when
// there is none.
func containerMemoryLimit(root string) int64 {
	for _, f := range []string{filepath.Join(root, "memory.max"), filepath.Join(root, "memory", "memory.limit_in_bytes")} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0 // "max", or v1's way of saying unlimited
		}
		return n
	}
	return 0
}

// purgeInterval maps state.repartition_purge_interval (0: never) onto
// processor.Config.PurgeInterval (negative: never).
func purgeInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
