package metrics

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatalf("kfake.NewCluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// newClient returns a client of c with hooks that produces to and
// consumes from topic t from the start. The test closes it, or Cleanup
// does.
func newClient(t *testing.T, c *kfake.Cluster, hooks kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(hooks,
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.DefaultProduceTopic("t"),
		kgo.ConsumeTopics("t"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t *testing.T, cl *kgo.Client, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, kgo.StringRecord("v"+strconv.Itoa(i)))
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
}

func consume(t *testing.T, cl *kgo.Client, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for got := 0; got < n; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d records, want %d: %v", got, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		got += fs.NumRecords()
	}
}

// value returns the sum of the series of name on g whose labels include
// match.
// valueAt is value once it reaches want, or after 10s: franz-go calls its
// produce hooks as it handles the broker's response, which may be just
// after ProduceSync returns.
func valueAt(t *testing.T, g prometheus.Gatherer, name string, match map[string]string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := value(t, g, name, match)
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func value(t *testing.T, g prometheus.Gatherer, name string, match map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather() error: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range match {
				if labels[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

// TestKafkaHooksRebuild runs clients one after the other and side by side
// with one KafkaHooks, as a processor rebuilding its client does: no
// panic, no gather error, and the counters run on across clients. A
// scraper runs all along, so -race sees hooks, client churn and Collect
// interleave.
func TestKafkaHooksRebuild(t *testing.T) {
	reg := prometheus.NewPedanticRegistry() // also checks Collect against Describe
	hooks := KafkaHooks(reg, "p")
	c := newCluster(t)
	produced := map[string]string{"pipeline": "p", "topic": "t"}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := reg.Gather(); err != nil {
				t.Errorf("Gather() during client churn: %v", err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	defer wg.Wait()
	defer close(stop)

	first := newClient(t, c, hooks)
	produce(t, first, 3)
	first.Close()
	if got := value(t, reg, "exactly_kafka_produce_records_total", produced); got != 3 {
		t.Errorf("produce records after the first client = %v, want 3", got)
	}

	second := newClient(t, c, hooks) // the rebuild
	produce(t, second, 2)
	if got := valueAt(t, reg, "exactly_kafka_produce_records_total", produced, 5); got != 5 {
		t.Errorf("produce records after the second client = %v, want 5 (counters must survive a rebuild)", got)
	}

	third := newClient(t, c, hooks) // side by side with second
	produce(t, third, 1)
	if got := valueAt(t, reg, "exactly_kafka_produce_records_total", produced, 6); got != 6 {
		t.Errorf("produce records with two live clients = %v, want 6", got)
	}
	if got := value(t, reg, "exactly_kafka_connects_total", map[string]string{"pipeline": "p"}); got < 3 {
		t.Errorf("connects = %v, want at least one per client (3)", got)
	}
	second.Close()
	third.Close()
}

// TestKafkaHooksBuffered checks the buffered gauges that replace kprom's:
// they read the open clients, and a closed one no more.
func TestKafkaHooksBuffered(t *testing.T) {
	reg := prometheus.NewRegistry()
	hooks := KafkaHooks(reg, "p")
	c := newCluster(t)
	p := map[string]string{"pipeline": "p"}

	producer := newClient(t, c, hooks)
	produce(t, producer, 4)
	producer.Close()

	// A consumer fetches in the background and buffers what it fetched
	// until polled; this one never polls.
	consumer := newClient(t, c, hooks)
	deadline := time.Now().Add(30 * time.Second)
	for value(t, reg, "exactly_kafka_buffered_fetch_records", p) != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("exactly_kafka_buffered_fetch_records = %v, want 4 (client buffers %d)",
				value(t, reg, "exactly_kafka_buffered_fetch_records", p), consumer.BufferedFetchRecords())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := value(t, reg, "exactly_kafka_buffered_fetch_bytes", p); got <= 0 {
		t.Errorf("exactly_kafka_buffered_fetch_bytes = %v, want > 0", got)
	}
	consumer.Close()
	if got := value(t, reg, "exactly_kafka_buffered_fetch_records", p); got != 0 {
		t.Errorf("exactly_kafka_buffered_fetch_records after Close = %v, want 0", got)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() error: %v", err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "exactly_kafka_buffered_") && strings.HasSuffix(mf.GetName(), "_total") {
			t.Errorf("gathered kprom's gauge %s, want it replaced", mf.GetName())
		}
	}
}

func TestKafkaHooksRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	KafkaHooks(reg, "a")
	KafkaHooks(reg, "b") // another pipeline on the same registry
	KafkaHooks(nil, "a") // registers nowhere
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("Gather() error: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("KafkaHooks(reg, %q) twice did not panic", "a")
		}
	}()
	KafkaHooks(reg, "a")
}
