package kafkatest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The switch: EXACTLY_TEST_BROKER picks the broker the crash, chaos,
// restore, Pebble, dead-letter and seed-table tests run against.
//
//	EXACTLY_TEST_BROKER=embedded  kfake, in-process (default)
//	EXACTLY_TEST_BROKER=kafka     Apache Kafka Version, from kafkatest
//
// With kafka, EXACTLY_TEST_KAFKA_TXN_VERSION=0 formats the cluster with
// transaction.version=0 (transactions as 3.x brokers run them), and
// EXACTLY_TEST_KAFKA_NODES=3 runs three nodes instead of one.
const (
	BrokerEnv     = "EXACTLY_TEST_BROKER"
	TxnVersionEnv = "EXACTLY_TEST_KAFKA_TXN_VERSION"
	NodesEnv      = "EXACTLY_TEST_KAFKA_NODES"
)

// Selected reports whether the tests run against real Kafka. An unknown
// value panics: a typo must not silently test the embedded broker.
func Selected() bool {
	switch v := os.Getenv(BrokerEnv); v {
	case "", "embedded", "kfake":
		return false
	case "kafka":
		return true
	default:
		panic(fmt.Sprintf("%s=%q: want embedded (the default) or kafka", BrokerEnv, v))
	}
}

// EnvOptions are the cluster options the environment asks for.
func EnvOptions() (Options, error) {
	var o Options
	switch v := os.Getenv(TxnVersionEnv); v {
	case "":
	case "0", "1", "2":
		o.Features = append(o.Features, "transaction.version="+v)
	default:
		return o, fmt.Errorf("%s=%q: want 0, 1 or 2", TxnVersionEnv, v)
	}
	switch v := os.Getenv(NodesEnv); v {
	case "", "1":
		o.Nodes = 1
	case "3":
		o.Nodes = 3
	default:
		return o, fmt.Errorf("%s=%q: want 1 or 3", NodesEnv, v)
	}
	return o, nil
}

var shared struct {
	sync.Mutex
	c   *Cluster
	err error
}

// Shared returns the test binary's one cluster, started on first use with
// EnvOptions. Tests that share it use topic, group and transactional id
// names of their own. Call Main from TestMain so the cluster stops when
// the tests end (the watchdogs kill it anyway if the binary dies).
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.c == nil && shared.err == nil {
		var o Options
		if o, shared.err = EnvOptions(); shared.err == nil {
			shared.c, shared.err = Start(context.Background(), o)
		}
	}
	if shared.err != nil {
		t.Fatalf("starting Apache Kafka %s: %v", Version, shared.err)
	}
	return shared.c
}

// Main starts the shared cluster first when real Kafka is selected (so no
// test's deadline pays for the start), runs the tests and then stops it:
//
//	func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }
func Main(m *testing.M) int {
	if Selected() {
		shared.Lock()
		var o Options
		if o, shared.err = EnvOptions(); shared.err == nil {
			start := time.Now()
			shared.c, shared.err = Start(context.Background(), o)
			if shared.err == nil {
				fmt.Fprintf(os.Stderr, "kafkatest: Apache Kafka %s, %d node(s) %v, started in %s at %s\n",
					Version, o.Nodes, o.Features, time.Since(start).Round(100*time.Millisecond), strings.Join(shared.c.Addrs(), ","))
			}
		}
		shared.Unlock()
	}
	code := m.Run()
	shared.Lock()
	if shared.c != nil {
		shared.c.Stop()
	}
	shared.Unlock()
	return code
}

// SkipUnlessEmbedded skips a test that needs the embedded broker (fault
// injection through kfake's ControlKey, its data dir) when real Kafka is
// selected, with the reason.
func SkipUnlessEmbedded(t testing.TB, why string) {
	t.Helper()
	if Selected() {
		t.Skipf("embedded broker only (%s=kafka selected): %s", BrokerEnv, why)
	}
}

// Name returns prefix plus a suffix unique in the test binary's run, for
// topics, groups and transactional ids on a shared cluster.
func Name(prefix string) string {
	names.Lock()
	defer names.Unlock()
	names.n++
	return fmt.Sprintf("%s-%d-%d", strings.TrimSuffix(prefix, "-"), os.Getpid(), names.n)
}

var names struct {
	sync.Mutex
	n int
}
