// Package broker runs the embedded Kafka broker: kfake, a Kafka-protocol
// broker written in Go, on loopback. It backs `kafka.brokers: embedded`,
// the `exactly broker` command and the tests by default (package kafkatest
// runs the same tests on Apache Kafka).
//
// kfake implements transactions, groups, admin requests, aborted
// transaction indexes and read_committed. It compacts without regard for
// open transactions, so we keep its log cleaner off (log.cleaner.backoff.ms
// very high) and never compact a changelog while a transaction may be open
// on it. Its other known differences from Kafka: a fetch response that
// reaches its size limit inside a partition leaves out that partition's
// aborted transactions; after a SIGKILL and a restart with a data dir, a
// transaction open at the crash counts as aborted without a marker; it
// does not validate topic configs; members killed while joining stay in
// their group as ghosts. So only Kafka proves a claim of correctness,
// recovery time or speed.
package broker

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/internal/kafkaerr"
)

// Options configure an embedded broker.
type Options struct {
	// Port to listen on at 127.0.0.1; 0 picks a free port.
	Port int
	// DataDir, when set, persists the log there so a restarted broker
	// keeps its topics, offsets and committed transactions. Empty keeps
	// everything in memory.
	DataDir string
	// Partitions is the partition count of topics created without one
	// (auto-created or with -1). Default 3.
	Partitions int
	// Logger receives the broker's warnings and errors; nil discards them.
	Logger *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	c *kfake.Cluster
}

// Start starts a broker. Close stops it.
func Start(opts Options) (*Broker, error) {
	if opts.Partitions <= 0 {
		opts.Partitions = 3
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(opts.Partitions),
		kfake.AllowAutoTopicCreation(),
		// Short enough for tests that shrink the session timeout.
		kfake.GroupMinSessionTimeout(time.Second),
		kfake.BrokerConfigs(map[string]string{
			// As a broker config too: DescribeConfigs reports these,
			// and exactly checks its session timeout against them at
			// start (kfake would report Kafka's 6s otherwise).
			"group.min.session.timeout.ms": "1000",
			// kfake compacts regardless of open transactions: keep
			// the cleaner from running on its own.
			"log.cleaner.backoff.ms": strconv.Itoa(int((365 * 24 * time.Hour).Milliseconds())),
		}),
	}
	if opts.Port != 0 {
		kopts = append(kopts, kfake.Ports(opts.Port))
	}
	if opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(opts.DataDir))
	}
	if opts.Logger != nil {
		kopts = append(kopts, kfake.WithLogger(logger{opts.Logger}))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("starting embedded broker: %w", err)
	}
	return &Broker{c: c}, nil
}

// Addrs returns the broker's listen addresses, host:port.
func (b *Broker) Addrs() []string { return b.c.ListenAddrs() }

// Close stops the broker, flushing its data directory if it has one.
func (b *Broker) Close() { b.c.Close() }

// CreateTopics creates topics with the given partition count on the
// cluster at addrs, leaving existing topics alone.
func CreateTopics(ctx context.Context, addrs []string, partitions int32, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resps, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topics...)
	if err != nil {
		return fmt.Errorf("creating topics %v: %w", topics, err)
	}
	for _, r := range resps.Sorted() {
		if r.Err != nil && !kafkaerr.TopicExists(r.Err) {
			return fmt.Errorf("creating topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

type logger struct{ l *slog.Logger }

func (l logger) Logf(level kfake.LogLevel, msg string, args ...any) {
	var lv slog.Level
	switch level {
	case kfake.LogLevelError:
		lv = slog.LevelError
	case kfake.LogLevelWarn:
		lv = slog.LevelWarn
	default:
		return // kfake's info logs every request
	}
	l.l.Log(context.Background(), lv, fmt.Sprintf(msg, args...), "component", "embedded-broker")
}

// Cluster returns the kfake cluster, for tests that inject broker errors
// with its Control functions.
func (b *Broker) Cluster() *kfake.Cluster { return b.c }
