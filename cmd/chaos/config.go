package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Delivery guarantees, as the pipeline key `guarantee` spells them.
const (
	exactlyOnce  = "exactly_once"
	atLeastOnce  = "at_least_once"
	atMostOnce   = "at_most_once"
	partitions   = 6
	pipelineName = "chaos" // also the consumer group and the txn id prefix
)

// Daemon timeouts. On the embedded broker, the same as the crash tests in
// cmd/exactly use. Apache Kafka refuses a session timeout below its
// group.min.session.timeout.ms (6s by default), so against a real cluster
// the instances run with 6s, which a stock broker accepts. The pauses last
// longer than the session timeout so the group moves a paused member's
// partitions away; the transaction timeout is below it, so the broker
// aborts the paused member's transaction first.
const (
	sessionTimeout          = 4 * time.Second
	transactionTimeout      = 3 * time.Second
	rebalanceTimeout        = 8 * time.Second
	kafkaSessionTimeout     = 6 * time.Second
	kafkaTransactionTimeout = 5 * time.Second
	kafkaRebalanceTimeout   = 12 * time.Second
	commitInterval          = 100 * time.Millisecond
	stopTimeout             = 30 * time.Second
)

// Config is one chaos run.
type Config struct {
	// Mode is the pipeline's delivery guarantee, and so the contract the
	// output is held to: exactly_once, at_least_once or at_most_once.
	Mode string
	// Duration of the fault phase: input streams in and faults happen
	// over it. Catching up and checking come after.
	Duration time.Duration
	// Records is how many input records commit upstream (records of
	// aborted upstream transactions come on top).
	Records int
	// Keys is how many distinct keys the input has; HotKeys is the
	// fraction of them (0 to 1) that get half of the records.
	Keys    int
	HotKeys float64
	// AbortFraction is the share of input batches written in upstream
	// transactions that abort (default 0.05).
	AbortFraction float64
	// Instances is how many `exactly run` processes share the group, 1 to 3.
	Instances int
	// Seed makes input, fault choices and fault timing repeatable (the
	// processes' own timing is not).
	Seed uint64
	// Kills is how many SIGKILLs to send over the fault phase; Pauses how
	// many SIGSTOP pauses of PauseFor (default session timeout + 2s).
	Kills    int
	Pauses   int
	PauseFor time.Duration
	// CatchUpTimeout bounds the wait, after the fault phase, for the group
	// to commit every input record (default 2 minutes).
	CatchUpTimeout time.Duration
	// Brokers is a running Kafka cluster to use (host:port, commas
	// between seeds), which must not hold the topics in and out, the
	// group chaos or its changelog yet; empty starts `exactly broker`
	// (the embedded broker) for the run, or with KafkaNodes an Apache
	// Kafka cluster.
	Brokers string
	// KafkaNodes, 1 or 3, starts an Apache Kafka cluster of that many
	// nodes on loopback for the run (kafkatest: Java 17 and Maven), with
	// topics replicated on every node and, on 3 nodes,
	// min.insync.replicas=2. 0 (default) uses Brokers or the embedded
	// broker.
	KafkaNodes int
	// Kafka is the cluster the harness may SIGKILL nodes of (BrokerKills);
	// set by KafkaNodes, or by a test that shares its cluster.
	Kafka brokerNodes
	// BrokerKills is how many broker SIGKILLs to send over the fault
	// phase, on a 3-node Kafka cluster: aimed in turn at the leader of an
	// input partition, of an output partition, the group coordinator and
	// an instance's transaction coordinator, and in turn mid-stream,
	// mid-commit and while an instance restores. Each killed node
	// restarts after BrokerDown (default 1 to 3s, at random).
	BrokerKills int
	BrokerDown  time.Duration
	// SessionTimeout, TransactionTimeout and RebalanceTimeout are the
	// instances' settings; 0 picks 4s, 3s, 8s on the embedded broker and
	// 6s, 5s, 12s on Apache Kafka (its group.min.session.timeout.ms is 6s).
	SessionTimeout     time.Duration
	TransactionTimeout time.Duration
	RebalanceTimeout   time.Duration
	// StaticMembership runs the instances with --static-membership.
	StaticMembership bool
	// RecoveryKills, instead of the random kills and pauses, SIGKILLs
	// this many times an instance of a settled group, restarts it at
	// once and measures the time until every partition it owned commits
	// again (needs Kills, Pauses and BrokerKills 0).
	RecoveryKills int
	// Bin is an exactly binary; empty builds ./cmd/exactly of the module
	// in the working directory.
	Bin string
	// LogDir receives the pipeline file and every process's log; empty
	// makes a temporary directory, removed at the end unless Keep is set
	// or the contract failed.
	LogDir string
	Keep   bool
	// Logger receives progress (each fault as it happens); nil discards.
	Logger *slog.Logger
}

// shortConfig is the setting the test suite runs: at least 20 kills and 3
// pauses in 90 seconds, on 2 cores within 3 minutes all told.
func shortConfig() Config {
	return Config{
		Mode:      exactlyOnce,
		Duration:  90 * time.Second,
		Records:   40_000,
		Keys:      500,
		HotKeys:   0.1,
		Instances: 3,
		Seed:      1,
		Kills:     24,
		Pauses:    3,
	}
}

// soakConfig is the long setting (--soak).
func soakConfig() Config {
	c := shortConfig()
	c.Duration = 10 * time.Minute
	c.Records = 1_000_000
	c.Keys = 10_000
	c.Kills = 160
	c.Pauses = 20
	c.CatchUpTimeout = 10 * time.Minute
	return c
}

func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = exactlyOnce
	}
	if c.AbortFraction == 0 {
		c.AbortFraction = 0.05
	}
	realKafka := c.Brokers != "" || c.KafkaNodes > 0 || c.Kafka != nil
	if c.SessionTimeout == 0 {
		c.SessionTimeout = sessionTimeout
		if realKafka {
			c.SessionTimeout = kafkaSessionTimeout
		}
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = transactionTimeout
		if realKafka {
			c.TransactionTimeout = kafkaTransactionTimeout
		}
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = rebalanceTimeout
		if realKafka {
			c.RebalanceTimeout = kafkaRebalanceTimeout
		}
	}
	if c.PauseFor == 0 {
		c.PauseFor = c.SessionTimeout + 2*time.Second
	}
	if c.CatchUpTimeout == 0 {
		c.CatchUpTimeout = 2 * time.Minute
	}
}

// validate reports every bad setting at once.
func (c *Config) validate() error {
	var errs []error
	switch c.Mode {
	case exactlyOnce, atLeastOnce, atMostOnce:
	default:
		errs = append(errs, fmt.Errorf("--mode %q: want exactly_once, at_least_once or at_most_once", c.Mode))
	}
	if c.Duration < 5*time.Second {
		errs = append(errs, fmt.Errorf("--duration %s: want at least 5s", c.Duration))
	}
	if c.Records < 1 {
		errs = append(errs, fmt.Errorf("--records %d: want at least 1", c.Records))
	}
	if c.Keys < 1 {
		errs = append(errs, fmt.Errorf("--keys %d: want at least 1", c.Keys))
	}
	if c.HotKeys < 0 || c.HotKeys > 1 {
		errs = append(errs, fmt.Errorf("--hot-keys %g: want a fraction from 0 to 1", c.HotKeys))
	}
	if c.AbortFraction < 0 || c.AbortFraction >= 1 {
		errs = append(errs, fmt.Errorf("abort fraction %g: want 0 to below 1", c.AbortFraction))
	}
	if c.Instances < 1 || c.Instances > 3 {
		errs = append(errs, fmt.Errorf("--instances %d: want 1 to 3", c.Instances))
	}
	if c.Kills < 0 || c.Pauses < 0 {
		errs = append(errs, fmt.Errorf("--kills %d, --pauses %d: want 0 or more", c.Kills, c.Pauses))
	}
	if c.PauseFor <= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("pause %s: want longer than the session timeout %s, or the paused member is no zombie", c.PauseFor, c.SessionTimeout))
	}
	if c.TransactionTimeout >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("transaction timeout %s: want below the session timeout %s", c.TransactionTimeout, c.SessionTimeout))
	}
	if c.KafkaNodes != 0 && c.KafkaNodes != 1 && c.KafkaNodes != 3 {
		errs = append(errs, fmt.Errorf("--kafka-nodes %d: want 1 or 3 (or 0 for the embedded broker)", c.KafkaNodes))
	}
	if c.KafkaNodes != 0 && c.Brokers != "" {
		errs = append(errs, fmt.Errorf("--kafka-nodes %d and --brokers %s: want one of them", c.KafkaNodes, c.Brokers))
	}
	if c.BrokerKills < 0 || c.RecoveryKills < 0 {
		errs = append(errs, fmt.Errorf("--broker-kills %d, --recovery-kills %d: want 0 or more", c.BrokerKills, c.RecoveryKills))
	}
	if c.BrokerKills > 0 && c.KafkaNodes != 3 && (c.Kafka == nil || c.Kafka.Nodes() != 3) {
		errs = append(errs, fmt.Errorf("--broker-kills %d: needs a 3-node Apache Kafka cluster the harness runs (--kafka-nodes 3), so that one node down loses nothing", c.BrokerKills))
	}
	if c.RecoveryKills > 0 && (c.Kills > 0 || c.Pauses > 0 || c.BrokerKills > 0) {
		errs = append(errs, fmt.Errorf("--recovery-kills %d: measures alone, want --kills 0 --pauses 0 --broker-kills 0 (got %d, %d, %d)", c.RecoveryKills, c.Kills, c.Pauses, c.BrokerKills))
	}
	return errors.Join(errs...)
}

// pipelineYAML is the pipeline under test. The guarantee key is left out
// for exactly_once, the default, so the harness also runs against a daemon
// that does not know the key.
func pipelineYAML(mode string) string {
	var b strings.Builder
	b.WriteString("name: " + pipelineName + "\n")
	if mode != exactlyOnce {
		b.WriteString("guarantee: " + mode + "\n")
	}
	// Late records of the windows go to the dead-letter topic, so the
	// checker can tell a record judged late from one lost; any other bad
	// record still stops the pipeline.
	b.WriteString("dead_letter_topic: " + dlqTopic + "\non_error: stop\n")
	b.WriteString(`sources:
  - {name: in, topic: in}
  - {name: ` + tableTopic + `, topic: ` + tableTopic + `, table: true}
  - {name: ` + ssLeftTopic + `, topic: ` + ssLeftTopic + `}
  - {name: ` + ssRightTopic + `, topic: ` + ssRightTopic + `}
steps:
  - name: tag
    from: in
    map: '{"id": value.id, "key": value.key, "seq": value.seq, "amount": value.amount}'
  - name: per-key
    aggregate:
      group_by: key
      columns:
        n: {fn: count}
        total: {fn: sum, of: value.amount}
        last_id: {fn: last, of: value.id}
        last_seq: {fn: last, of: value.seq}
`)
	for _, w := range []struct{ step, emit string }{{winCloseStep, "on_close"}, {winCommitStep, "on_commit"}} {
		fmt.Fprintf(&b, `  - name: %s
    from: tag
    aggregate:
      group_by: {g: 'value.id %% %d'}
      window: {tumbling: %s, grace: %s, late: dead_letter}
      columns:
        n: {fn: count}
        total: {fn: sum, of: value.amount}
      emit: %s
`, w.step, windowGroups, windowSize, windowGrace, w.emit)
	}
	// The joins: see join.go.
	for _, j := range joins {
		from := "tag"
		if j.rekey != "" {
			fmt.Fprintf(&b, "  - {name: %s, from: tag, key: key}\n", j.rekey)
			from = j.rekey
		}
		fmt.Fprintf(&b, `  - name: %s
    from: %s
    join:
      table: %s
      type: left
      output: '{"id": value.id, "key": value.key, "seq": value.seq, "row": table}'
`, j.step, from, tableTopic)
	}
	// The stream-stream join: see ssjoin.go.
	ssStep, ssSink := ssJoinYAML()
	b.WriteString(ssStep)
	b.WriteString("sinks:\n  - {name: out, topic: out, from: per-key}\n")
	b.WriteString(ssSink)
	for _, j := range joins {
		fmt.Fprintf(&b, "  - {name: %s-sink, topic: %s, from: %s}\n", j.step, j.topic, j.step)
	}
	fmt.Fprintf(&b, `  - {name: %s-sink, topic: %s, from: %s}
  - {name: %s-sink, topic: %s, from: %s}
`, winCloseStep, winCloseTopic, winCloseStep, winCommitStep, winCommitTopic, winCommitStep)
	return b.String()
}

// parseFlags returns the run's config and the --json destination.
func parseFlags(args []string, stderr io.Writer) (Config, string, error) {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `chaos: run exactly under SIGKILLs, SIGSTOP zombies and aborted upstream
transactions, then check every output update against the ground truth

usage: go run ./cmd/chaos [flags]

`)
		fs.PrintDefaults()
	}
	def := shortConfig()
	c := def
	soak := fs.Bool("soak", false, "long setting: 10m fault phase, 1,000,000 records, 10,000 keys, 160 kills, 20 pauses (other flags still override)")
	fs.StringVar(&c.Mode, "mode", def.Mode, "delivery guarantee under test: exactly_once, at_least_once or at_most_once")
	fs.DurationVar(&c.Duration, "duration", def.Duration, "length of the fault phase")
	fs.IntVar(&c.Records, "records", def.Records, "input records that commit upstream")
	fs.IntVar(&c.Keys, "keys", def.Keys, "distinct keys")
	fs.Float64Var(&c.HotKeys, "hot-keys", def.HotKeys, "fraction of keys that get half of the records")
	fs.IntVar(&c.Instances, "instances", def.Instances, "exactly run processes, 1 to 3")
	fs.Uint64Var(&c.Seed, "seed", def.Seed, "seed of input and faults")
	fs.IntVar(&c.Kills, "kills", def.Kills, "SIGKILLs over the fault phase")
	fs.IntVar(&c.Pauses, "pauses", def.Pauses, "SIGSTOP pauses longer than the session timeout (zombies)")
	fs.DurationVar(&c.CatchUpTimeout, "catch-up-timeout", 2*time.Minute, "how long to wait for the group to commit every input record after the fault phase")
	fs.StringVar(&c.Brokers, "brokers", "", "an empty Kafka cluster to run against, host:port[,host:port...] (default: start the embedded broker)")
	fs.IntVar(&c.KafkaNodes, "kafka-nodes", 0, "start an Apache Kafka cluster of 1 or 3 nodes on loopback for the run (needs java and mvn; default: the embedded broker)")
	fs.IntVar(&c.BrokerKills, "broker-kills", 0, "broker SIGKILLs over the fault phase, by role in turn (needs --kafka-nodes 3)")
	fs.BoolVar(&c.StaticMembership, "static-membership", false, "run the instances as static group members")
	fs.IntVar(&c.RecoveryKills, "recovery-kills", 0, "instead of random faults, kill an instance of a settled group this many times, restart it at once and measure until its partitions commit again (with --kills 0 --pauses 0)")
	fs.StringVar(&c.Bin, "bin", "", "exactly binary (default: go build ./cmd/exactly of this module)")
	jsonPath := fs.String("json", "", "also write the report as JSON to this file (- for stdout)")
	fs.StringVar(&c.LogDir, "log-dir", "", "directory for the pipeline file and process logs (default: a temporary one)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the logs directory (it is always kept when the contract fails)")
	if err := fs.Parse(args); err != nil {
		return Config{}, "", err
	}
	if fs.NArg() > 0 {
		return Config{}, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *soak {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		s := soakConfig()
		if !set["duration"] {
			c.Duration = s.Duration
		}
		if !set["records"] {
			c.Records = s.Records
		}
		if !set["keys"] {
			c.Keys = s.Keys
		}
		if !set["kills"] {
			c.Kills = s.Kills
		}
		if !set["pauses"] {
			c.Pauses = s.Pauses
		}
		if !set["catch-up-timeout"] {
			c.CatchUpTimeout = s.CatchUpTimeout
		}
	}
	c.setDefaults()
	return c, *jsonPath, c.validate()
}
