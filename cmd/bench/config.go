package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/exactly-dev/exactly/kafkatest"
)

// Config is one bench invocation.
type Config struct {
	// Records is how many records each input topic holds, and how many
	// entries the restore changelog holds (default 1,000,000).
	Records int
	// Partitions of every topic (default 6).
	Partitions int
	// ValueBytes is the size of each input value, bytes and JSON alike
	// (default 100; JSON values are padded to it, and are longer when
	// their fields alone are).
	ValueBytes int
	// Keys is how many distinct keys the input has: the groups of the
	// aggregate (default 10,000).
	Keys int
	// Runs is how many counted runs each mode gets, after one discarded
	// warm-up (default 5).
	Runs int
	// Modes to run, a subset of a-g in any order (default all).
	Modes []string
	// Latency, when positive, delays the broker's answer to every
	// Produce, OffsetCommit and transaction request by this much
	// (default 0: off).
	Latency time.Duration
	// CommitInterval fixes the commit interval of every mode; 0 picks one
	// per mode from its warm-up (see the package doc).
	CommitInterval time.Duration
	// Seed orders the runs; 0 takes one from the clock (printed, so an
	// order can be repeated).
	Seed uint64
	// BrokerMemLimit is the broker's GOMEMLIMIT; it runs with GOGC=off
	// (default 8GiB).
	BrokerMemLimit string
	// Bin is an exactly binary; empty builds ./cmd/exactly of the module
	// in the working directory.
	Bin string
	// RunTimeout bounds each run (default 10m).
	RunTimeout time.Duration
	// Broker is the broker the runs go through: "embedded" (default),
	// kfake in a process of its own, or "kafka", a 1-node Apache Kafka
	// cluster from kafkatest (needs java; Maven fetches its jars once).
	Broker string
	// LogDir receives the pipeline files and every process's log; empty
	// makes a temporary directory, removed at the end unless a run failed.
	LogDir string
}

// The default setting: the size.
func defaultConfig() Config {
	return Config{
		Records:        1_000_000,
		Partitions:     6,
		ValueBytes:     100,
		Keys:           10_000,
		Runs:           5,
		Modes:          allModes(),
		BrokerMemLimit: "8GiB",
		RunTimeout:     10 * time.Minute,
		Broker:         brokerEmbedded,
	}
}

// The brokers --broker picks.
const (
	brokerEmbedded = "embedded"
	brokerKafka    = "kafka"
)

// quick is the --quick setting, for trying the tool out.
func (c *Config) quick() {
	c.Records = 100_000
	c.Runs = 2
}

func (c *Config) validate() error {
	var errs []error
	if c.Records < 1000 {
		errs = append(errs, fmt.Errorf("--records %d: want at least 1000", c.Records))
	}
	if c.Partitions < 1 || c.Partitions > 1000 {
		errs = append(errs, fmt.Errorf("--partitions %d: want 1 to 1000", c.Partitions))
	}
	if c.ValueBytes < 1 || c.ValueBytes > 100_000 {
		errs = append(errs, fmt.Errorf("--value-bytes %d: want 1 to 100000", c.ValueBytes))
	}
	if c.Keys < 1 {
		errs = append(errs, fmt.Errorf("--keys %d: want at least 1", c.Keys))
	}
	if c.Runs < 1 {
		errs = append(errs, fmt.Errorf("--runs %d: want at least 1", c.Runs))
	}
	if len(c.Modes) == 0 {
		errs = append(errs, errors.New("--modes: want at least one of a,b,c,d,e,f,g"))
	}
	for _, m := range c.Modes {
		if modeByID(m) == nil {
			errs = append(errs, fmt.Errorf("--modes: unknown mode %q; want a subset of a,b,c,d,e,f,g (see --help)", m))
		}
	}
	if c.Latency < 0 || c.Latency > time.Second {
		errs = append(errs, fmt.Errorf("--latency %s: want 0 (off) to 1s", c.Latency))
	}
	if c.CommitInterval < 0 || c.CommitInterval > time.Minute {
		errs = append(errs, fmt.Errorf("--commit-interval %s: want 0 (auto) to 1m", c.CommitInterval))
	}
	switch c.Broker {
	case brokerEmbedded:
	case brokerKafka:
		if c.Latency > 0 {
			errs = append(errs, fmt.Errorf("--latency %s with --broker kafka: the latency model slows the embedded broker down to a real cluster's round trips; Apache Kafka has its own, drop --latency", c.Latency))
		}
	default:
		errs = append(errs, fmt.Errorf("--broker %q: want embedded (kfake, the default) or kafka (Apache Kafka %s from kafkatest)", c.Broker, kafkatest.Version))
	}
	if c.RunTimeout < time.Second {
		errs = append(errs, fmt.Errorf("--run-timeout %s: want at least 1s", c.RunTimeout))
	}
	return errors.Join(errs...)
}

// parseFlags returns the config and the --json path.
func parseFlags(args []string, stderr io.Writer) (Config, string, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./cmd/bench [flags]\n\nmeasures exactly's cost per record against a bare franz-go copy loop; see `go doc ./cmd/bench`.\nmodes: a baseline copy loop, b pass-through exactly-once, c JSON filter+map exactly-once,\n       d keyed count+sum exactly-once, e the same at_least_once, f changelog restore\n\nflags:")
		fs.PrintDefaults()
	}
	quick := fs.Bool("quick", false, "a quick run: 100,000 records and 2 counted runs (explicit --records and --runs still win)")
	fs.IntVar(&cfg.Records, "records", cfg.Records, "records per input topic, and entries of the restore changelog")
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of every topic")
	fs.IntVar(&cfg.ValueBytes, "value-bytes", cfg.ValueBytes, "bytes per input value")
	fs.IntVar(&cfg.Keys, "keys", cfg.Keys, "distinct keys of the input (the aggregate's groups)")
	fs.IntVar(&cfg.Runs, "runs", cfg.Runs, "counted runs per mode, after one discarded warm-up")
	modes := fs.String("modes", strings.Join(cfg.Modes, ","), "modes to run, comma-separated: a,b,c,d,e,f,g")
	fs.DurationVar(&cfg.Latency, "latency", 0, "latency model: the broker answers Produce, OffsetCommit and transaction requests this late, e.g. 3ms (0: off)")
	fs.DurationVar(&cfg.CommitInterval, "commit-interval", 0, "commit interval of every mode (0: per mode, from its warm-up, so a run spans about 40 transactions; at most 100ms)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the run order (0: from the clock)")
	fs.StringVar(&cfg.BrokerMemLimit, "broker-memlimit", cfg.BrokerMemLimit, "GOMEMLIMIT of the broker, which runs with GOGC=off")
	fs.StringVar(&cfg.Bin, "exactly", "", "exactly binary to run (default: go build ./cmd/exactly)")
	fs.DurationVar(&cfg.RunTimeout, "run-timeout", cfg.RunTimeout, "bound on each run")
	fs.StringVar(&cfg.Broker, "broker", cfg.Broker, "broker to run against: embedded (kfake in its own process) or kafka (a 1-node Apache Kafka "+kafkatest.Version+" from kafkatest; needs java, Maven fetches the jars into .cache/ once)")
	fs.StringVar(&cfg.LogDir, "log-dir", "", "keep pipeline files and process logs here (default: a temporary directory, removed unless a run failed)")
	jsonPath := fs.String("json", "", "also write the report as JSON to this file (- for stdout)")
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		q := cfg
		q.quick()
		if !set["records"] {
			cfg.Records = q.Records
		}
		if !set["runs"] {
			cfg.Runs = q.Runs
		}
	}
	cfg.Modes = nil
	for _, m := range strings.Split(*modes, ",") {
		if m = strings.TrimSpace(m); m != "" && !slices.Contains(cfg.Modes, m) {
			cfg.Modes = append(cfg.Modes, m)
		}
	}
	return cfg, *jsonPath, cfg.validate()
}
