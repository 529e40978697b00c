package processor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/topology"
)

// A global table: every instance reads every partition of the table's
// topic into memory, with a reader of its own (no group, read_committed,
// from the start), before the processor joins its group, and keeps it
// current while the processor runs. It is for small dimension tables:
// joins with it need no co-partitioning. As with Kafka Streams'
// GlobalKTable it is not part of the transactions: a row is there once
// the reader has read it, and after a restart the table is read again
// from the topic (only committed records).
type globalTable struct {
	node *topology.Node
	mu   sync.RWMutex
	rows map[string][]byte
	// loaded is closed once the reader has reached the offsets that
	// were the topic's ends when it started.
	loaded chan struct{}
	lag    atomic.Int64
}

func newGlobalTable(n *topology.Node) *globalTable {
	return &globalTable{node: n, rows: map[string][]byte{}, loaded: make(chan struct{})}
}

// get returns key's row.
func (gt *globalTable) get(key []byte) ([]byte, bool) {
	gt.mu.RLock()
	defer gt.mu.RUnlock()
	v, ok := gt.rows[string(key)]
	return v, ok
}

// apply applies one record of the table's topic: a null value deletes.
func (gt *globalTable) apply(r *kgo.Record) {
	gt.mu.Lock()
	defer gt.mu.Unlock()
	if r.Value == nil {
		delete(gt.rows, string(r.Key))
		return
	}
	gt.rows[string(r.Key)] = r.Value
}

// read runs the table's reader until ctx ends.
func (gt *globalTable) read(ctx context.Context, brokers []string, opts []kgo.Opt, log *slog.Logger, lag func(float64)) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(gt.node.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500 * time.Millisecond),
		// Transaction markers come with the records: the position that
		// loaded compares with the topic's end moves past them. A topic
		// an exactly-once writer fills ends in a commit marker, which
		// takes an offset and is no record: counted from the records
		// alone, the position stayed one short of the end and the table
		// never loaded.
		kgo.KeepControlRecords()}, opts...)...)
	if err != nil {
		return fmt.Errorf("global table %s: creating its reader: %w", gt.node.Name, err)
	}
	defer cl.Close()
	// Where the topic ends now: the table is loaded once the reader
	// gets there (a read_committed reader stops at the last stable
	// offset).
	var ends kadm.ListedOffsets
	for {
		if ends, err = kadm.NewClient(cl).ListCommittedOffsets(ctx, gt.node.Topic); err == nil {
			err = ends.Error()
		}
		if err == nil {
			break
		}
		log.Warn("global table: listing the topic's end offsets; trying again", "table", gt.node.Name, "topic", gt.node.Topic, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	target := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			target[o.Partition] = o.Offset
		}
	})
	pos := map[int32]int64{}
	hwm := map[int32]int64{}
	loaded := false
	check := func() {
		var behind int64
		for p, h := range hwm {
			behind += max(0, h-pos[p])
		}
		gt.lag.Store(behind)
		lag(float64(behind))
		if loaded {
			return
		}
		for p, end := range target {
			if pos[p] < end {
				return
			}
		}
		loaded = true
		close(gt.loaded)
		log.Info("global table loaded", "table", gt.node.Name, "topic", gt.node.Topic, "keys", gt.size())
	}
	check()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(t string, p int32, err error) {
			if ctx.Err() == nil {
				log.Warn("global table: fetch error", "table", gt.node.Name, "topic", t, "partition", p, "err", err)
			}
		})
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			for _, r := range fp.Records {
				if !r.Attrs.IsControl() {
					gt.apply(r)
				}
				pos[fp.Partition] = r.Offset + 1
			}
			hwm[fp.Partition] = fp.LastStableOffset
		})
		check()
	}
	return nil
}

func (gt *globalTable) size() int {
	gt.mu.RLock()
	defer gt.mu.RUnlock()
	return len(gt.rows)
}

// startGlobals starts the readers of the global tables and waits until
// every table is loaded (or ctx ends). The readers run until stop.
func (p *Processor) startGlobals(ctx context.Context) (stop func(), err error) {
	if len(p.g.globals) == 0 {
		return func() {}, nil
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, gt := range p.g.globals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := gt.read(rctx, p.cfg.Brokers, append([]kgo.Opt{kgo.ClientID(p.cfg.ClientID)}, p.cfg.KafkaOpts...), p.log,
				p.m.GlobalTableLag.WithLabelValues(gt.node.Name).Set); err != nil {
				p.log.Error("global table reader stopped", "table", gt.node.Name, "err", err)
			}
		}()
	}
	stop = func() { cancel(); wg.Wait() }
	for _, gt := range p.g.globals {
		select {
		case <-gt.loaded:
		case <-ctx.Done():
			stop()
			return func() {}, ctx.Err()
		}
	}
	return stop, nil
}

// globalsLoaded reports the first global table not loaded yet, or "".
func (g *graph) globalsLoading() string {
	for _, gt := range g.globals {
		select {
		case <-gt.loaded:
		default:
			return fmt.Sprintf("loading global table %s (%d records behind)", gt.node.Name, gt.lag.Load())
		}
	}
	return ""
}
