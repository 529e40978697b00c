package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/metrics"
	"github.com/exactly-dev/exactly/processor"
	"github.com/exactly-dev/exactly/topology"
)

var (
	passThroughProfile = flag.String("passthrough.cpuprofile", "", "BenchmarkPassThrough: write a CPU profile of the processing alone (not the preload) to this file")
	profileMode        = flag.String("passthrough.mode", "b", "BenchmarkPassThrough: the mode whose pipeline runs (b, c, d or e)")
)

// BenchmarkPassThrough runs mode b's pipeline (or -passthrough.mode's) in this process, wired as
// `exactly run` wires it (metrics and kgo hooks included), against the
// bench's broker process: b.N input records, so ns/op is wall time per
// record. It exists to profile the pass-through, since `exactly run` has
// no profiling flag:
//
//	go test -run '^$' -bench PassThrough -benchtime 1000000x ./cmd/bench -passthrough.cpuprofile /tmp/pt.prof
//	go tool pprof -top /tmp/pt.prof
//
// (-cpuprofile works too, but also profiles the preload.)
func BenchmarkPassThrough(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	brk, err := startBroker(ctx, self, filepath.Join(dir, "broker.log"), 6, 0, "8GiB")
	if err != nil {
		b.Fatal(err)
	}
	defer brk.close()
	cfg := defaultConfig()
	cfg.Records = b.N
	cl, err := kgo.NewClient(kgo.SeedBrokers(brk.addr))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	m := modeByID(*profileMode)
	if m == nil || m.baseline() || m.restore() {
		b.Fatalf("-passthrough.mode %q: want b, c, d or e", *profileMode)
	}
	name := "bench-" + m.id + "-profile"
	for _, t := range []string{m.input, outTopic(name)} {
		if err := createTopic(ctx, adm, t, cfg.Partitions, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := preload(ctx, []string{brk.addr}, cfg, []string{m.input}, nil); err != nil {
		b.Fatal(err)
	}
	if _, err := brk.gc(); err != nil {
		b.Fatal(err)
	}
	topo, err := topology.Parse(name+".yaml", []byte(m.yaml(name, outTopic(name))))
	if err != nil {
		b.Fatal(err)
	}
	reg := metrics.NewRegistry()
	p, err := processor.New(topo, processor.Config{
		Brokers:            []string{brk.addr},
		InstanceID:         "bench",
		CommitInterval:     clampInterval(time.Duration(b.N) * time.Microsecond / targetTxns),
		TransactionTimeout: 10 * time.Second,
		SessionTimeout:     45 * time.Second,
		RebalanceTimeout:   60 * time.Second,
		ShutdownTimeout:    30 * time.Second,
		Metrics:            metrics.NewPipeline(reg, name),
		KafkaOpts:          []kgo.Opt{metrics.KafkaHooks(reg, name)},
	})
	if err != nil {
		b.Fatal(err)
	}
	if *passThroughProfile != "" {
		f, err := os.Create(*passThroughProfile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	b.ResetTimer()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		// Stop once every record is committed.
		for runCtx.Err() == nil && p.Stats().RecordsIn.Load() < int64(b.N) {
			time.Sleep(time.Millisecond)
		}
		stop()
	}()
	if err := p.Run(runCtx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if got := p.Stats().RecordsIn.Load(); got != int64(b.N) {
		b.Fatalf("committed %d input records, want %d", got, b.N)
	}
	b.ReportMetric(float64(p.Stats().Commits.Load()), "txns")
	if mfs, err := reg.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() == "exactly_txn_commit_duration_seconds" {
				h := mf.GetMetric()[0].GetHistogram()
				b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount())*1000, "ms/commit")
			}
		}
	}
}
