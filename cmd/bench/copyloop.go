package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/metrics"
)

// The baseline is this binary run as `__copy`: what a user would write by
// hand with franz-go to copy a topic at least once. It joins a consumer
// group, polls up to 10,000 records at a time (as exactly does), produces
// each record unchanged (key, value, headers, timestamp) without waiting,
// and every commit interval flushes the producer and then commits the
// polled offsets. Client settings are kgo's defaults, plus those exactly
// sets that change the work done: read_committed and a 500ms fetch max
// wait. It stops once it has copied --records records, flushed and
// committed, and prints {"records":N,"commits":M} on stdout.

type copyConfig struct {
	brokers  []string
	group    string
	from, to string
	records  int64
	interval time.Duration
}

type copyResult struct {
	Records int64 `json:"records"`
	Commits int64 `json:"commits"`
	// The commit time quantiles, from the histogram exactly keeps
	// (exactly_txn_commit_duration_seconds), estimated the same way.
	CommitP50Seconds float64 `json:"commit_p50_seconds"`
	CommitP99Seconds float64 `json:"commit_p99_seconds"`
}

func copyMain(args []string) int {
	var cfg copyConfig
	fs := flag.NewFlagSet(copyCmd, flag.ContinueOnError)
	brokers := fs.String("brokers", "", "seed brokers, comma-separated")
	fs.StringVar(&cfg.group, "group", "", "consumer group")
	fs.StringVar(&cfg.from, "from", "", "input topic")
	fs.StringVar(&cfg.to, "to", "", "output topic")
	fs.Int64Var(&cfg.records, "records", 0, "stop after copying this many records")
	fs.DurationVar(&cfg.interval, "commit-interval", 100*time.Millisecond, "flush and commit this often")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.brokers = strings.Split(*brokers, ",")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := copyLoop(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "copy:", err)
		return 1
	}
	return 0
}

func copyLoop(ctx context.Context, cfg copyConfig, stdout io.Writer) error {
	if cfg.group == "" || cfg.from == "" || cfg.to == "" || cfg.records <= 0 {
		return errors.New("want --group, --from, --to and a positive --records")
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.brokers...),
		kgo.ConsumerGroup(cfg.group),
		kgo.ConsumeTopics(cfg.from),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		return err
	}
	defer cl.Close()

	var mu sync.Mutex
	var produceErr error
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if produceErr == nil {
				produceErr = err
			}
			mu.Unlock()
		}
	}
	commit := func() error {
		if err := cl.Flush(ctx); err != nil {
			return fmt.Errorf("flushing: %w", err)
		}
		mu.Lock()
		err := produceErr
		mu.Unlock()
		if err != nil {
			return fmt.Errorf("producing to %s: %w", cfg.to, err)
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			return fmt.Errorf("committing offsets: %w", err)
		}
		return nil
	}

	var res copyResult
	// exactly's commit time histogram, so both are estimated alike.
	reg := prometheus.NewRegistry()
	hist := metrics.NewPipeline(reg, cfg.group).CommitDuration
	last := time.Now()
	for res.Records < cfg.records {
		fetches := cl.PollRecords(ctx, 10_000)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("fetching %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		fetches.EachRecord(func(r *kgo.Record) {
			cl.Produce(ctx, &kgo.Record{Topic: cfg.to, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}, promise)
			res.Records++
		})
		if res.Records >= cfg.records || time.Since(last) >= cfg.interval {
			start := time.Now()
			if err := commit(); err != nil {
				return err
			}
			hist.Observe(time.Since(start).Seconds())
			res.Commits++
			last = time.Now()
		}
	}
	if q, n := metrics.CommitQuantiles(reg, 0.5, 0.99); n > 0 {
		res.CommitP50Seconds, res.CommitP99Seconds = q[0].Seconds(), q[1].Seconds()
	}
	return json.NewEncoder(stdout).Encode(res)
}
