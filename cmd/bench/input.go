package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// createTopic creates topic with the given partitions and configs.
func createTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int, configs map[string]*string) error {
	resp, err := adm.CreateTopic(ctx, int32(partitions), 1, configs, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		if resp.ErrMessage != "" {
			err = fmt.Errorf("%s: %w", resp.ErrMessage, err)
		}
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	// Kafka answers CreateTopics once its controller has the topic; the
	// broker's metadata may lag, and exactly refuses a sink its metadata
	// does not show. Wait until every partition has a leader.
	for {
		m, err := adm.Metadata(ctx, topic)
		if err == nil {
			if t, ok := m.Topics[topic]; ok && t.Err == nil && len(t.Partitions) == partitions {
				led := true
				for _, p := range t.Partitions {
					led = led && p.Err == nil && p.Leader >= 0
				}
				if led {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s created, but its partitions have no leaders yet: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// key returns the key of input record i: one of keys users, the
// aggregate's groups.
func key(i, keys int) []byte { return []byte("u" + strconv.Itoa(i%keys)) }

// jsonValue returns the value of JSON input record i, padded to size:
// {"id":123,"amount":45.6,"user":"u123","pad":"..."}. Amounts run from
// 0.1 to 999.9 and are never whole, so they always decode as doubles.
func jsonValue(i, keys, size int, pad []byte) []byte {
	amount := strconv.Itoa((i*7919)%1000) + "." + strconv.Itoa(1+i%9)
	b := make([]byte, 0, size+16)
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `,"amount":`...)
	b = append(b, amount...)
	b = append(b, `,"user":"`...)
	b = append(b, key(i, keys)...)
	b = append(b, `","pad":"`...)
	n := max(0, size-len(b)-2)
	b = append(b, pad[i%(len(pad)-n):][:n]...)
	return append(b, `"}`...)
}

// randomText returns n pseudo-random letters and digits: input that
// compresses about as badly as real data does.
func randomText(n int, seed uint64) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	r := rand.New(rand.NewPCG(seed, 0x62656e6368))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return b
}

// producer collects the first error of asynchronous produces.
type producer struct {
	cl  *kgo.Client
	mu  sync.Mutex
	err error
}

func (p *producer) produce(ctx context.Context, r *kgo.Record) {
	p.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
		if err != nil {
			p.mu.Lock()
			if p.err == nil {
				p.err = fmt.Errorf("producing to %s: %w", r.Topic, err)
			}
			p.mu.Unlock()
		}
	})
}

func (p *producer) flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// preload writes the input topics: records records of valueBytes each,
// keyed by user and partitioned by key (kgo's default partitioner, which
// is Kafka's), uncompressed as a plain producer would write them.
func preload(ctx context.Context, brokers []string, cfg Config, topics []string, reg *benchRegistry) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(100_000),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	p := &producer{cl: cl}
	pad := randomText(1<<20+cfg.ValueBytes, 1)
	for _, topic := range topics {
		for i := range cfg.Records {
			r := &kgo.Record{Topic: topic, Key: key(i, cfg.Keys)}
			switch topic {
			case bytesTopic:
				off := (i * 7919) % (len(pad) - cfg.ValueBytes)
				r.Value = pad[off : off+cfg.ValueBytes : off+cfg.ValueBytes]
			case jsonTopic:
				r.Value = jsonValue(i, cfg.Keys, cfg.ValueBytes, pad)
			case avroTopic:
				if reg == nil {
					return fmt.Errorf("topic %s needs the bench's registry", topic)
				}
				v, err := reg.avroValue(jsonValue(i, cfg.Keys, cfg.ValueBytes, pad))
				if err != nil {
					return err
				}
				r.Value = v
			default:
				return fmt.Errorf("no generator for topic %s", topic)
			}
			p.produce(ctx, r)
		}
	}
	return p.flush(ctx)
}

// preloadChangelog writes entries distinct keys into the restore
// pipeline's changelog, in transactions of 10,000 records as exactly
// writes it (so the log holds control records too), spread evenly over
// the partitions. Keys and rows are encoded as the aggregate encodes them:
// the group key as JSON, the row as a JSON list of accumulators.
func preloadChangelog(ctx context.Context, brokers []string, topic string, partitions, entries int) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.TransactionalID("bench-changelog-loader"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	p := &producer{cl: cl}
	const perTxn = 10_000
	for start := 0; start < entries; start += perTxn {
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		for i := start; i < min(start+perTxn, entries); i++ {
			n := 1 + i%97
			k := strconv.AppendInt([]byte(`"k`), int64(i), 10)
			k = append(k, '"')
			v := fmt.Appendf(nil, `[{"n":%d},{"n":%d,"s":"%d.%d"}]`, n, n, n*37, i%10)
			p.produce(ctx, &kgo.Record{Topic: topic, Partition: int32(i % partitions), Key: k, Value: v})
		}
		if err := p.flush(ctx); err != nil {
			return err
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return fmt.Errorf("committing changelog transaction: %w", err)
		}
	}
	return nil
}
