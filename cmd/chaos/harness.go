package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/kafkatest"
)

// run does one chaos run: broker, generator, instances, faults, catch-up,
// stop, check. An error means the run could not be carried out (the
// daemon rejected the pipeline, the broker did not start, ...); a contract
// violation is in the report, not an error.
func run(ctx context.Context, cfg Config) (rep Report, err error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return rep, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	began := time.Now()
	rep = Report{Mode: cfg.Mode, Seed: cfg.Seed, Instances: cfg.Instances, FaultPhaseSeconds: cfg.Duration.Seconds()}
	defer func() { rep.ElapsedSeconds = time.Since(began).Seconds() }()

	logDir := cfg.LogDir
	if logDir == "" {
		if logDir, err = os.MkdirTemp("", "exactly-chaos-"); err != nil {
			return rep, err
		}
		defer func() {
			if err == nil && !cfg.Keep && !rep.Failed() {
				os.RemoveAll(logDir)
				rep.LogDir = ""
			}
		}()
	} else if err := os.MkdirAll(logDir, 0o755); err != nil {
		return rep, err
	}
	rep.LogDir = logDir

	bin := cfg.Bin
	if bin == "" {
		log.Info("building exactly")
		if bin, err = buildBinary(ctx, logDir); err != nil {
			return rep, err
		}
	}
	pipeline := filepath.Join(logDir, "chaos.yaml")
	if err := os.WriteFile(pipeline, []byte(pipelineYAML(cfg.Mode)), 0o644); err != nil {
		return rep, err
	}
	// Validate first: no network, and a daemon that does not know a key
	// (guarantee, before it exists) says so here.
	if out, err := exec.CommandContext(ctx, bin, "validate", "-c", pipeline).CombinedOutput(); err != nil {
		return rep, fmt.Errorf("exactly validate rejected the %s pipeline (%v):\n%s", cfg.Mode, err, out)
	}

	if cfg.KafkaNodes > 0 && cfg.Kafka == nil {
		log.Info("starting Apache Kafka", "version", kafkatest.Version, "nodes", cfg.KafkaNodes)
		kdir := filepath.Join(logDir, "kafka")
		if err := os.MkdirAll(kdir, 0o755); err != nil {
			return rep, err
		}
		k, err := kafkatest.Start(ctx, kafkatest.Options{Nodes: cfg.KafkaNodes, Dir: kdir})
		if err != nil {
			return rep, err
		}
		defer k.Stop()
		cfg.Kafka = k
		cfg.Brokers = strings.Join(k.Addrs(), ",")
	}
	addr := cfg.Brokers
	if addr == "" {
		brk, a, err := startBroker(ctx, bin, logDir, partitions)
		if err != nil {
			return rep, err
		}
		defer brk.kill()
		addr = a
		log.Info("broker started", "addr", addr, "logs", logDir)
	} else if err := createTopics(ctx, addr); err != nil {
		return rep, err
	}

	admCl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...))
	if err != nil {
		return rep, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if err := createWindowTopics(ctx, adm); err != nil {
		return rep, err
	}
	if err := createJoinTopics(ctx, adm); err != nil {
		return rep, err
	}
	if err := createSSJoinTopics(ctx, adm); err != nil {
		return rep, err
	}
	if err := preloadTable(ctx, addr); err != nil {
		return rep, err
	}

	c := &cluster{cfg: cfg, bin: bin, addr: addr, pipeline: pipeline, logDir: logDir, log: log, adm: adm}
	defer c.killAll()

	monCtx, stopMonitor := context.WithCancel(ctx)
	defer stopMonitor()
	mon := &offsetMonitor{adm: adm}
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		mon.run(monCtx)
	}()

	if err := c.start(ctx); err != nil {
		return rep, err
	}
	log.Info("instances started", "instances", cfg.Instances)

	genCtx, stopGen := context.WithCancel(ctx)
	defer stopGen()
	type genResult struct {
		out generated
		err error
	}
	genDone := make(chan genResult, 1)
	go func() {
		out, err := newGenerator(cfg, addr).run(genCtx)
		genDone <- genResult{out, err}
	}()

	c.faults(ctx, mon)
	log.Info("fault phase over", "kills", c.killCount())
	var gen generated
	select {
	case g := <-genDone:
		if g.err != nil {
			return rep, g.err
		}
		gen = g.out
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	rep.GeneratedRecords = len(gen.committed)
	rep.AbortedUpstreamRecords = len(gen.aborted)
	rep.AbortedUpstreamTxns = gen.abortedTxns
	rep.FailedUpstreamTxns = gen.failedTxns
	rep.TableAbortedRows = gen.tableAborted

	// Restart everything, let the group catch up, stop it cleanly.
	if err := c.restartAll(); err != nil {
		return rep, err
	}
	catchUp := time.Now()
	settle := newWindowSettle()
	c.catchUp(ctx, admCl, cfg.CatchUpTimeout, &rep, settle.done)
	rep.CaughtUp = settle.inCaughtUp
	rep.CatchUpSeconds = time.Since(catchUp).Seconds()
	log.Info("catch-up over", "caught_up", rep.CaughtUp, "windows_settled", settle.settled, "took", time.Since(catchUp).Round(time.Millisecond))
	if !rep.CaughtUp {
		rep.Problems = append(rep.Problems, "not caught up; "+describeGroup(ctx, adm))
	}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	unclean := c.stopAll()
	stopMonitor()
	<-monDone
	rep.UncleanStops = len(unclean)
	rep.Problems = append(rep.Problems, unclean...)

	c.mu.Lock()
	kills, pauses := c.mu.kills, c.mu.pauses
	brokerKills, recoveries := c.mu.brokerKills, c.mu.recoveries
	rep.Restarts = c.mu.restarts
	rep.UnexpectedExits = len(c.mu.unexpected)
	rep.Problems = append(rep.Problems, c.mu.unexpected...)
	c.mu.Unlock()

	openTransactions(ctx, adm, &rep)
	coverage(&rep, kills, pauses, c.allProcs(), mon)
	recoveryCoverage(&rep, cfg, recoveries)
	if cfg.BrokerKills > 0 {
		rep.BrokerNodes = cfg.Kafka.Nodes()
		brokerCoverage(&rep, brokerKills)
		replication(ctx, adm, &rep)
	}

	t, err := readTruth(ctx, addr, gen, &rep)
	if err != nil {
		return rep, err
	}
	if raw, err := readUncommitted(ctx, addr, "in"); err != nil {
		return rep, err
	} else {
		for _, r := range raw {
			if r.outcome == outcomeAborted {
				rep.UpstreamAbortedInLog++
			}
		}
	}
	if err := checkOutput(ctx, addr, t, gen, &rep); err != nil {
		return rep, err
	}
	if err := checkWindows(ctx, addr, t, settle, &rep); err != nil {
		return rep, err
	}
	if err := checkJoin(ctx, addr, t, gen, &rep); err != nil {
		return rep, err
	}
	if err := checkSSJoin(ctx, addr, gen.ssAborted, &rep); err != nil {
		return rep, err
	}
	rep.evaluate()
	return rep, nil
}

// openTransactions counts, after every process stopped, the transactions
// the broker still lists as ongoing, and the partitions whose last stable
// offset is below the high watermark (an open transaction holds it back).
func openTransactions(ctx context.Context, adm *kadm.Client, rep *Report) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if ls, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"}); err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("ListTransactions: %v", err))
	} else {
		ls.Each(func(t kadm.ListedTransaction) {
			if strings.EqualFold(t.State, "Ongoing") {
				rep.OpenTransactions++
				rep.OpenTransactionIDs = append(rep.OpenTransactionIDs, t.TxnID)
			}
		})
		sort.Strings(rep.OpenTransactionIDs)
	}
	topics := []string{"in", "out", pipelineName + "-per-key-changelog"}
	hwm, err1 := adm.ListEndOffsets(ctx, topics...)
	lso, err2 := adm.ListCommittedOffsets(ctx, topics...)
	if err := errors.Join(err1, err2); err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("listing offsets: %v", err))
		return
	}
	hwm.Each(func(h kadm.ListedOffset) {
		if h.Err != nil {
			return
		}
		if l, ok := lso.Lookup(h.Topic, h.Partition); ok && l.Err == nil && l.Offset < h.Offset {
			rep.UnstablePartitions++
			rep.example("unstable partition", "%s/%d: last stable offset %d, high watermark %d", h.Topic, h.Partition, l.Offset, h.Offset)
		}
	})
}

// coverage fills the fault figures from the fault events, the process logs
// and the offset history.
func coverage(rep *Report, kills []killEvent, pauses []pauseEvent, procs []*proc, mon *offsetMonitor) {
	rep.Kills = len(kills)
	var recov []time.Duration
	for _, k := range kills {
		switch k.Kind {
		case killAfterRestart:
			rep.KillsAfterRestart++
		case killRebalance:
			rep.KillsRebalance++
		}
		if k.TableRestore {
			rep.KillsTableRestore++
		}
		if k.Probed {
			rep.KillsProbed++
			if k.OpenTxn {
				rep.KillsOpenTxn++
			}
		}
		if d, ok := mon.recovery(k.At); ok {
			recov = append(recov, d)
		}
	}
	if len(recov) > 0 {
		sort.Slice(recov, func(i, j int) bool { return recov[i] < recov[j] })
		rep.RecoveryMeasured = len(recov)
		rep.RecoveryP50 = recov[(len(recov)-1)/2].Seconds()
		rep.RecoveryMax = recov[len(recov)-1].Seconds()
	}
	for _, p := range procs {
		n := logCounts(p.log, 0, []string{logAssigned}, []string{logRebuild}, []string{logRebuild, logFenced})
		rep.Assignments += n[0]
		rep.Rebuilds += n[1]
		rep.FencedRebuilds += n[2]
	}
	rep.ZombiesPaused = len(pauses)
	for _, p := range pauses {
		if p.OpenTxn {
			rep.ZombiesOpenTxn++
		}
		n := logCounts(p.Log, p.LogOffset, []string{logRebuild}, []string{logRebuild, logFenced})
		if n[0] > 0 {
			rep.ZombiesRebuilt++
		}
		if n[1] > 0 {
			rep.ZombiesFenced++
		}
	}
}

// describeGroup says what the broker thinks of the group: its state, its
// members and their assignments, and the committed offsets against the
// end offsets of `in`.
func describeGroup(ctx context.Context, adm *kadm.Client) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var b strings.Builder
	gs, err := adm.DescribeGroups(ctx, pipelineName)
	if err != nil {
		return fmt.Sprintf("describing group %s: %v", pipelineName, err)
	}
	g, ok := gs[pipelineName]
	if !ok {
		return fmt.Sprintf("group %s not described", pipelineName)
	}
	fmt.Fprintf(&b, "group %s: state %s, protocol %s, %d members", g.Group, g.State, g.Protocol, len(g.Members))
	for _, m := range g.Members {
		fmt.Fprintf(&b, "\n  member %s (client %s, host %s)", m.MemberID, m.ClientID, m.ClientHost)
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				fmt.Fprintf(&b, " assigned %s %v", t.Topic, t.Partitions)
			}
		}
	}
	committed, err1 := adm.FetchOffsets(ctx, pipelineName)
	ends, err2 := adm.ListEndOffsets(ctx, "in")
	if err1 == nil && err2 == nil {
		ends.Each(func(o kadm.ListedOffset) {
			c, _ := committed.Lookup(o.Topic, o.Partition)
			fmt.Fprintf(&b, "\n  %s/%d: committed %d, end %d", o.Topic, o.Partition, c.At, o.Offset)
		})
	}
	return b.String()
}

// createTopics creates the input and output topics on a cluster the
// harness did not start, replicated as the cluster's default says.
func createTopics(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	rs, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, -1, nil, "in", "out")
	if err != nil {
		return fmt.Errorf("creating topics in and out on %s: %w", addr, err)
	}
	for _, r := range rs.Sorted() {
		if r.Err != nil {
			return fmt.Errorf("creating topic %s on %s: %w (the harness needs an empty cluster)", r.Topic, addr, r.Err)
		}
	}
	return nil
}
