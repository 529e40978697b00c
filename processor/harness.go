package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/metrics"
	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
)

// Harness runs a pipeline without a broker, stateful steps included, for
// tests of its semantics (Kafka Streams' TopologyTestDriver; package
// processortest wraps it for Go tests). It runs the same graph, stores and
// transaction ends as a member; what a broker would do is simulated:
//
//   - Every source topic and every repartition topic has the harness's
//     partition count, and every task is owned.
//   - Time is a fake wall clock, moved by Advance.
//   - Transactions are explicit: Commit applies the stores' overlays and
//     makes the outputs visible, Abort drops them, Crash drops every
//     in-memory state and restores the stores from the committed
//     changelog records.
//   - Records written to a repartition topic are queued per partition once
//     their transaction commits, and processed when the test delivers them
//     (Deliver, DeliverAll), in the order it chooses: that is how a test
//     consumes partitions in a skewed order.
//
// A Harness is not safe for concurrent use.
type Harness struct {
	topo  *topology.Topology
	g     *graph
	tasks *tasks // flush and end transactions as a member does
	mem   statestore.Backend
	parts int32
	clock time.Time
	deps  format.Deps // of the codecs

	txn    []*kgo.Record                      // produced in the open transaction
	queues map[string]map[int32][]*kgo.Record // repartition topic -> partition -> committed, unread
	out    map[string][]*kgo.Record           // sink topic -> committed records
	byKey  map[string]kgo.TopicPartitioner    // murmur2, as the producer
	offset map[string]map[int32]int64         // next offset per topic partition
	// changelog holds the committed changelog records per changelog
	// topic and partition, for Crash.
	changelog map[string]map[int32][]*kgo.Record
	// unread counts source records written but not read yet (backlog).
	unread map[string]map[int32]int64
	// tableTxn holds the records of table topics the open transaction
	// read: committed, they are what a crash restores the tables from.
	tableTxn []*kgo.Record
	// stats counts the bad records the graph handles itself (a window's
	// final row, a join's unmatched row failing), across crashes.
	stats Stats
}

// NewHarness starts topo's graph with partitions partitions per topic and
// the wall clock at start.
func NewHarness(topo *topology.Topology, partitions int32, start time.Time) (*Harness, error) {
	return NewHarnessDeps(topo, partitions, start, format.Deps{})
}

// NewHarnessDeps is NewHarness with the codecs' dependencies (a schema
// registry).
func NewHarnessDeps(topo *topology.Topology, partitions int32, start time.Time, deps format.Deps) (*Harness, error) {
	if partitions <= 0 {
		return nil, fmt.Errorf("harness: %d partitions, want at least 1", partitions)
	}
	h := &Harness{topo: topo, parts: partitions, clock: start, queues: map[string]map[int32][]*kgo.Record{},
		out: map[string][]*kgo.Record{}, byKey: map[string]kgo.TopicPartitioner{}, offset: map[string]map[int32]int64{},
		changelog: map[string]map[int32][]*kgo.Record{}, unread: map[string]map[int32]int64{}, deps: deps}
	if err := h.start(); err != nil {
		return nil, err
	}
	return h, nil
}

// start builds the graph and its stores, restoring each store from the
// committed changelog records (none at first).
func (h *Harness) start() error {
	if h.mem != nil {
		h.mem.Close()
	}
	g, err := newGraph(h.topo, metrics.NewPipeline(nil, h.topo.Name), h.deps)
	if err != nil {
		return err
	}
	if err := g.prepare(context.Background()); err != nil {
		return err
	}
	h.g = g
	h.g.stats = &h.stats
	h.mem = statestore.NewMemory()
	h.tasks = newTasks(h.g, h.topo.Plan, h.mem, nil, nil, slog.New(slog.DiscardHandler), &Stats{}, h.g.m)
	h.g.now = func() time.Time { return h.clock }
	h.g.offsets = harnessOffsets{h}
	partsOf := map[string]int32{}
	assigned := map[string][]int32{}
	for _, s := range h.topo.Plan.Sources {
		partsOf[s] = h.parts
		for p := range h.parts {
			assigned[s] = append(assigned[s], p)
		}
	}
	for _, a := range h.g.aggs {
		a.setWriters(h.topo.Plan.Sources, partsOf, h.parts)
		for p := range h.parts {
			st, err := h.mem.Open(a.changelog, p)
			if err != nil {
				return err
			}
			cl := h.changelog[a.changelog][p]
			for i, r := range cl {
				if err := st.Restore(r.Key, r.Value, int64(i)); err != nil {
					return err
				}
			}
			if err := st.FinishRestore(int64(len(cl))); err != nil {
				return err
			}
			a.stores[p] = st
		}
	}
	h.g.asg.add(assigned, false)
	h.g.syncUpstreams(h.clock)
	return nil
}

// Reassign takes task partition p from this member, as a rebalance does
// (its stores closed; call it between transactions), lets the wall clock
// move on by away while another member would own the task, and gives it
// back: its stores restored from the committed changelogs.
func (h *Harness) Reassign(p int32, away time.Duration) error {
	for _, a := range h.g.aggs {
		if err := a.dropTask(p); err != nil {
			return err
		}
	}
	h.clock = h.clock.Add(away)
	for _, a := range h.g.aggs {
		st, err := h.mem.Open(a.changelog, p)
		if err != nil {
			return err
		}
		cl := h.changelog[a.changelog][p]
		if err := st.Wipe(); err != nil {
			return err
		}
		for i, r := range cl {
			if err := st.Restore(r.Key, r.Value, int64(i)); err != nil {
				return err
			}
		}
		if err := st.FinishRestore(int64(len(cl))); err != nil {
			return err
		}
		a.stores[p] = st
	}
	return nil
}

// Close releases the stores.
func (h *Harness) Close() error { return h.mem.Close() }

// Now returns the harness's wall clock.
func (h *Harness) Now() time.Time { return h.clock }

// Partitions returns the partition count of every topic.
func (h *Harness) Partitions() int32 { return h.parts }

// Crash loses the open transaction and every in-memory state, and starts
// again from the committed changelogs, as a restarted member does.
func (h *Harness) Crash() error {
	h.txn, h.tableTxn = nil, nil
	return h.start()
}

func (h *Harness) emit(r *kgo.Record) { h.txn = append(h.txn, r) }

func (h *Harness) nextOffset(topic string, part int32) int64 {
	if h.offset[topic] == nil {
		h.offset[topic] = map[int32]int64{}
	}
	o := h.offset[topic][part]
	h.offset[topic][part] = o + 1
	return o
}

// Input processes one source record in the open transaction; ts is its
// timestamp. A bad record's error is returned as a *RecordError, as the
// run loop sees it (the pipeline's on_error policy is the run loop's, not
// the harness's).
func (h *Harness) Input(topic string, part int32, key, value []byte, ts time.Time) error {
	if part < 0 || part >= h.parts {
		return fmt.Errorf("harness: partition %d of %s, want 0 to %d", part, topic, h.parts-1)
	}
	r := &kgo.Record{Topic: topic, Partition: part, Offset: h.nextOffset(topic, part), Key: key, Value: value, Timestamp: ts}
	for _, gt := range h.g.globals {
		if gt.node.Topic == topic {
			gt.apply(r) // read by the instance's own reader, outside transactions
			return nil
		}
	}
	h.read(topic, part, r.Offset)
	err := h.g.run(r, h.emit)
	if re := (*RecordError)(nil); err != nil && (!errors.As(err, &re) || h.topo.OnError == topology.OnErrorStop) {
		return err
	}
	// A bad record is skipped or dead-lettered (by the caller): its
	// offset commits all the same, so a table's topic still holds it as
	// the key's row, and a crash restores it.
	for _, a := range h.g.aggs {
		if a.table && a.changelog == topic {
			h.tableTxn = append(h.tableTxn, r)
			break
		}
	}
	return err
}

// Backlog writes n records to a source partition that its reader has not
// read yet: the partition is behind (Input and Skim read them).
func (h *Harness) Backlog(topic string, part int32, n int64) {
	if h.unread[topic] == nil {
		h.unread[topic] = map[int32]int64{}
	}
	h.unread[topic][part] += n
}

// Skim reads n records of a source partition that never reach a stateful
// step (a filter drops them): the reader moves on, nothing else happens.
func (h *Harness) Skim(topic string, part int32, n int64) {
	for range n {
		h.read(topic, part, h.nextOffset(topic, part))
	}
}

// read notes, as the run loop does, that the reader of a source
// partition is past off.
func (h *Harness) read(topic string, part int32, off int64) {
	if h.unread[topic][part] > 0 {
		h.unread[topic][part]--
	}
	h.g.readTo(topic, part, off+1)
}

// harnessOffsets answers the graph's idleness checks from the harness's
// source partitions: their end is past the records read by the backlog.
type harnessOffsets struct{ h *Harness }

func (o harnessOffsets) ends(_ context.Context, ws []writer) (map[writer]int64, error) {
	m := map[writer]int64{}
	for _, w := range ws {
		m[w] = o.h.offset[w.topic][w.part] + o.h.unread[w.topic][w.part]
	}
	return m, nil
}

func (o harnessOffsets) resume(_ context.Context, ws []writer) (map[writer]int64, error) {
	m := map[writer]int64{}
	for _, w := range ws {
		m[w] = o.h.offset[w.topic][w.part]
	}
	return m, nil
}

// Deliver processes up to n (all when n < 0) committed records waiting in
// partition part of repartition topic topic, and returns how many.
func (h *Harness) Deliver(topic string, part int32, n int) (int, error) {
	q := h.queues[topic][part]
	if len(q) == 0 {
		return 0, nil // nothing written to it yet
	}
	if n < 0 || n > len(q) {
		n = len(q)
	}
	for i, r := range q[:n] {
		if err := h.g.run(r, h.emit); err != nil {
			h.queues[topic][part] = q[i+1:]
			return i + 1, fmt.Errorf("repartition record %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
	}
	h.queues[topic][part] = q[n:]
	return n, nil
}

// DeliverAll processes every waiting repartition record, partition by
// partition in order, committing after each round, until none is left.
func (h *Harness) DeliverAll() error {
	for {
		n := 0
		for _, topic := range slices.Sorted(mapsKeys(h.queues)) {
			for p := range h.parts {
				k, err := h.Deliver(topic, p, -1)
				if err != nil {
					return err
				}
				n += k
			}
		}
		if n == 0 {
			return nil
		}
		if err := h.Commit(); err != nil {
			return err
		}
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Commit ends the open transaction: stateful steps flush, the outputs
// become visible, the stores apply their overlays.
func (h *Harness) Commit() error {
	var changelog []*kgo.Record
	if err := h.tasks.flush(h.emit, func(r *kgo.Record) { changelog = append(changelog, r) }); err != nil {
		return err
	}
	changelog = append(changelog, h.tableTxn...) // the topic is a table's changelog
	h.tableTxn = nil
	for _, r := range changelog {
		if h.changelog[r.Topic] == nil {
			h.changelog[r.Topic] = map[int32][]*kgo.Record{}
		}
		r.Offset = int64(len(h.changelog[r.Topic][r.Partition])) // as the broker assigns it
		h.changelog[r.Topic][r.Partition] = append(h.changelog[r.Topic][r.Partition], r)
	}
	for _, r := range h.txn {
		_, join := h.g.joinRepartition[r.Topic]
		if _, ok := h.g.repartition[r.Topic]; ok || join {
			part := r.Partition
			if r.Key != nil {
				tp := h.byKey[r.Topic]
				if tp == nil {
					tp = kgo.StickyKeyPartitioner(nil).ForTopic(r.Topic)
					h.byKey[r.Topic] = tp
				}
				part = int32(tp.Partition(r, int(h.parts)))
			}
			c := *r
			c.Partition, c.Offset = part, h.nextOffset(r.Topic, part)
			if h.queues[r.Topic] == nil {
				h.queues[r.Topic] = map[int32][]*kgo.Record{}
			}
			h.queues[r.Topic][part] = append(h.queues[r.Topic][part], &c)
			continue
		}
		h.out[r.Topic] = append(h.out[r.Topic], r)
	}
	h.txn = nil
	h.g.settle(true)
	return h.tasks.ended(true)
}

// Abort ends the open transaction without committing it: its outputs and
// state changes are dropped, as the records it read will be read again.
func (h *Harness) Abort() {
	h.txn, h.tableTxn = nil, nil
	h.g.settle(false)
	h.tasks.ended(false)
}

// Advance moves the wall clock and runs, in the open transaction, what the
// run loop runs when time passes: idle upstreams go idle, idle windows
// close.
func (h *Harness) Advance(by time.Duration) error {
	h.clock = h.clock.Add(by)
	_, err := h.g.tick(context.Background(), h.clock, false, h.emit)
	return err
}

// Settle lets every upstream go idle and delivers everything, as a
// pipeline left running after its input ends.
func (h *Harness) Settle() error {
	for _, f := range []func() error{h.Commit, h.DeliverAll, func() error { return h.Advance(time.Hour) }, h.Commit, h.DeliverAll} {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// Stats are the harness's run counters: of them only Skipped and
// DeadLettered count, for the bad records the graph handles itself (the
// records Input fails are its caller's to count).
func (h *Harness) Stats() *Stats { return &h.stats }

// Output returns the committed records written to a topic (a sink, the
// dead-letter topic), in order.
func (h *Harness) Output(topic string) []*kgo.Record { return slices.Clone(h.out[topic]) }

// Counter returns the value of one of the pipeline's counters, for a
// step: "records_in", "records_out", "late", "dead_lettered" (phase late),
// "join_matches", "join_misses" (and "join_unmatched"), "join_expired_window", "join_expired_ttl",
// "join_buffered" (stream-stream joins: records buffered, as committed).
func (h *Harness) Counter(name, step string) (float64, error) {
	m := h.g.m
	var c prometheus.Counter
	switch name {
	case "late":
		c = m.LateRecords.WithLabelValues(step)
	case "dead_lettered":
		c = m.DeadLettered.WithLabelValues(step, string(PhaseLate))
	case "records_in":
		c = m.RecordsIn.WithLabelValues(step)
	case "records_out":
		c = m.RecordsOut.WithLabelValues(step)
	case "join_matches":
		c = m.JoinLookups.WithLabelValues(step, "match")
	case "join_misses":
		c = m.JoinLookups.WithLabelValues(step, "miss")
	case "join_unmatched":
		c = m.JoinLookups.WithLabelValues(step, "unmatched")
	case "join_expired_window", "join_expired_ttl":
		c = m.JoinExpired.WithLabelValues(step, name[len("join_expired_"):])
	case "join_buffered":
		// A gauge per partition: their sum.
		total := 0.0
		for p := range h.parts {
			var v dto.Metric
			if err := m.JoinBuffered.WithLabelValues(step, strconv.Itoa(int(p))).Write(&v); err != nil {
				return 0, err
			}
			total += v.GetGauge().GetValue()
		}
		return total, nil
	default:
		return 0, fmt.Errorf("harness: no counter %q", name)
	}
	var v dto.Metric
	if err := c.Write(&v); err != nil {
		return 0, err
	}
	return v.GetCounter().GetValue(), nil
}
