package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/exactly-dev/exactly/broker"
)

func brokerCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("broker", stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, brokerUsage)
		fs.PrintDefaults()
	}
	port := fs.Int("port", 9092, "port to listen on at 127.0.0.1 (0: a free port)")
	dataDir := fs.String("data-dir", "", "persist the log here, so a restarted broker keeps its data (default: memory only); a SIGKILL loses the abort of open transactions, see above")
	partitions := fs.Int("partitions", 3, "partitions of auto-created topics and of --topic without a count")
	topics := fs.StringArray("topic", nil, "create a topic at start, as name or name:partitions (repeatable)")
	logLevel := fs.String("log-level", "warn", "broker log level: error, warn")
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(*logLevel))); err != nil {
		return usageError{fmt.Errorf("--log-level: %w", err)}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	if *dataDir != "" {
		log.Warn("the embedded broker is for trying things out: if it is SIGKILLed, a transaction open at the crash is taken as aborted without an abort marker, and read_committed readers then skip that producer's later committed transactions; run Apache Kafka for anything that must survive a crash (see exactly broker --help)", "data_dir", *dataDir)
	}
	b, err := broker.Start(broker.Options{Port: *port, DataDir: *dataDir, Partitions: *partitions, Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()
	for _, t := range *topics {
		name, n := t, int32(*partitions)
		if i := strings.LastIndexByte(t, ':'); i > 0 {
			p, err := strconv.Atoi(t[i+1:])
			if err != nil || p < 1 {
				return usageError{fmt.Errorf("--topic %q: want name or name:partitions", t)}
			}
			name, n = t[:i], int32(p)
		}
		if err := broker.CreateTopics(ctx, b.Addrs(), n, name); err != nil {
			return err
		}
	}
	// The address goes to stdout, alone on its line, for scripts and tests.
	fmt.Fprintln(stdout, strings.Join(b.Addrs(), ","))
	log.Info("embedded broker listening; stop with SIGTERM or Ctrl-C", "addr", strings.Join(b.Addrs(), ","))
	<-ctx.Done()
	return nil
}

// brokerUsage is `exactly broker --help`: what the embedded broker is for,
// and the defects of kfake, found here and shown by the tests in
// broker/defects_test.go against Apache Kafka.
const brokerUsage = `usage: exactly broker [flags]

Runs the embedded Kafka broker (kfake, in this process) on 127.0.0.1, for
trying exactly and Kafka clients out. It is not Apache Kafka, and not for
production or for judging correctness, recovery or speed. Known defects,
each absent from Apache Kafka (broker/defects_test.go shows Kafka's
behaviour with EXACTLY_TEST_BROKER=kafka):

  - --data-dir and a crash: when the broker is SIGKILLed and restarted, a
    transaction open at the crash is taken as aborted without an abort
    marker in the log, and read_committed readers then skip every later
    transaction of that producer until its next abort, committed ones
    included (a pipeline running through such a crash lost and re-emitted
    records). Stop it with SIGTERM or Ctrl-C; Kafka keeps the open
    transaction and aborts it with a marker.
  - Members killed while joining a consumer group can stay in it as ghosts:
    in a chaos run a dynamic group of 3 instances held 7 members and
    answered no JoinGroup for 224 s (static membership,
    kafka.static_membership, did not stall). Kafka expires them after their
    session timeout.
  - Its log cleaner compacts past open transactions, so a key's committed
    value can be lost to a newer value that is later aborted; the cleaner is
    therefore kept off here. Kafka compacts only below the first open
    transaction.
  - When a fetch response reaches the request's size limit inside a
    partition, it leaves out that partition's aborted transactions.
  - It does not validate topic configs (Kafka refuses a null key on a
    compacted topic, an unknown cleanup.policy, ...).

To run the same tests and pipelines against Apache Kafka, see "Against a
real cluster" in the README.

flags:
`
