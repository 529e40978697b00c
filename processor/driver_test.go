package processor

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/metrics"
	"github.com/exactly-dev/exactly/statestore"
)

// driver runs a topology's graph without a broker, for the semantics of
// windows and aggregates (Kafka Streams' TopologyTestDriver): every source
// topic and the repartition topics have parts partitions, every task is
// owned, time is a fake clock, and transactions are explicit (commit).
// Records written to a repartition topic are queued per partition once
// their transaction commits, and processed when the test delivers them,
// in the order it chooses: that is how a test consumes partitions in a
// skewed order.
type driver struct {
	t     *testing.T
	g     *graph
	mem   statestore.Backend
	parts int32
	clock time.Time

	txn    []*kgo.Record                      // produced in the open transaction
	queues map[string]map[int32][]*kgo.Record // repartition topic -> partition -> committed, unread
	out    map[string][]*kgo.Record           // sink topic -> committed records
	byKey  map[string]kgo.TopicPartitioner    // murmur2, as the producer
	offset map[string]map[int32]int64         // next offset per topic partition
	yaml   string
	// changelog holds the committed changelog records per changelog
	// topic and partition, for crash.
	changelog map[string]map[int32][]*kgo.Record
	// unread counts source records written but not read yet (backlog).
	unread map[string]map[int32]int64
}

// driverOffsets answers the graph's idleness checks from the driver's
// source partitions: their end is past the records read by the backlog.
type driverOffsets struct{ d *driver }

func (o driverOffsets) ends(_ context.Context, ws []writer) (map[writer]int64, error) {
	m := map[writer]int64{}
	for _, w := range ws {
		m[w] = o.d.offset[w.topic][w.part] + o.d.unread[w.topic][w.part]
	}
	return m, nil
}

func (o driverOffsets) resume(_ context.Context, ws []writer) (map[writer]int64, error) {
	m := map[writer]int64{}
	for _, w := range ws {
		m[w] = o.d.offset[w.topic][w.part]
	}
	return m, nil
}

// backlog writes n records to a source partition that its reader has not
// read yet (input and skim read them).
func (d *driver) backlog(topic string, part int32, n int64) {
	if d.unread[topic] == nil {
		d.unread[topic] = map[int32]int64{}
	}
	d.unread[topic][part] += n
}

// skim reads n records of a source partition that never reach a window
// (a filter drops them): the reader moves on, nothing else happens.
func (d *driver) skim(topic string, part int32, n int64) {
	for range n {
		off := d.nextOffset(topic, part)
		d.read(topic, part, off)
	}
}

// read notes, as the run loop does, that the reader of a source
// partition is past off.
func (d *driver) read(topic string, part int32, off int64) {
	if d.unread[topic][part] > 0 {
		d.unread[topic][part]--
	}
	d.g.readTo(topic, part, off+1)
}

func newDriver(t *testing.T, yaml string, parts int32) *driver {
	t.Helper()
	d := &driver{t: t, parts: parts, yaml: yaml,
		clock: time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC), queues: map[string]map[int32][]*kgo.Record{},
		out: map[string][]*kgo.Record{}, byKey: map[string]kgo.TopicPartitioner{}, offset: map[string]map[int32]int64{},
		changelog: map[string]map[int32][]*kgo.Record{}, unread: map[string]map[int32]int64{}}
	d.start()
	return d
}

// start builds the graph and its stores, restoring each store from the
// committed changelog records (none at first).
func (d *driver) start() {
	t := d.t
	topo := mustParse(t, d.yaml)
	parts := d.parts
	d.g = newGraph(topo, metrics.NewPipeline(nil, topo.Name))
	d.mem = statestore.NewMemory()
	mem := d.mem
	t.Cleanup(func() { mem.Close() })
	d.g.now = func() time.Time { return d.clock }
	d.g.offsets = driverOffsets{d}
	var sources []string
	partsOf := map[string]int32{}
	assigned := map[string][]int32{}
	for _, s := range topo.Sources {
		sources = append(sources, s.Topic)
		partsOf[s.Topic] = parts
		for p := range parts {
			assigned[s.Topic] = append(assigned[s.Topic], p)
		}
	}
	for _, a := range d.g.aggs {
		a.setWriters(sources, partsOf, parts)
		for p := range parts {
			st, err := d.mem.Open(a.changelog, p)
			if err != nil {
				t.Fatal(err)
			}
			cl := d.changelog[a.changelog][p]
			for i, r := range cl {
				if err := st.Restore(r.Key, r.Value, int64(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.FinishRestore(int64(len(cl))); err != nil {
				t.Fatal(err)
			}
			a.stores[p] = st
		}
	}
	d.g.asg.add(assigned, false)
	d.g.syncUpstreams(d.clock)
}

// crash loses the open transaction and every in-memory state, and starts
// again from the committed changelogs, as a restarted member does.
func (d *driver) crash() {
	d.txn = nil
	d.start()
}

func (d *driver) emit(r *kgo.Record) { d.txn = append(d.txn, r) }

func (d *driver) nextOffset(topic string, part int32) int64 {
	if d.offset[topic] == nil {
		d.offset[topic] = map[int32]int64{}
	}
	o := d.offset[topic][part]
	d.offset[topic][part] = o + 1
	return o
}

// input processes one source record; ts is its timestamp.
func (d *driver) input(topic string, part int32, key, value string, ts time.Time) {
	d.t.Helper()
	r := &kgo.Record{Topic: topic, Partition: part, Offset: d.nextOffset(topic, part), Key: []byte(key), Value: []byte(value), Timestamp: ts}
	d.read(topic, part, r.Offset)
	if err := d.g.run(r, d.emit); err != nil {
		d.t.Fatalf("input %s/%d %s: %v", topic, part, value, err)
	}
}

// deliver processes up to n (all when n < 0) committed records waiting in
// partition part of repartition topic topic.
func (d *driver) deliver(topic string, part int32, n int) int {
	d.t.Helper()
	q := d.queues[topic][part]
	if n < 0 || n > len(q) {
		n = len(q)
	}
	for _, r := range q[:n] {
		if err := d.g.run(r, d.emit); err != nil {
			d.t.Fatalf("repartition record %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
	}
	d.queues[topic][part] = q[n:]
	return n
}

// deliverAll processes every waiting repartition record, partition by
// partition in order, until none is left.
func (d *driver) deliverAll() {
	for {
		n := 0
		for topic := range d.queues {
			for p := range d.parts {
				n += d.deliver(topic, p, -1)
			}
		}
		if n == 0 {
			return
		}
		d.commit()
	}
}

// commit ends the open transaction: aggregates flush, the outputs become
// visible, the stores apply their overlays.
func (d *driver) commit() {
	d.t.Helper()
	var changelog []*kgo.Record
	for _, a := range d.g.aggs {
		if err := d.g.flush(a, d.emit, func(r *kgo.Record) { changelog = append(changelog, r) }); err != nil {
			d.t.Fatal(err)
		}
	}
	for _, r := range changelog {
		if d.changelog[r.Topic] == nil {
			d.changelog[r.Topic] = map[int32][]*kgo.Record{}
		}
		d.changelog[r.Topic][r.Partition] = append(d.changelog[r.Topic][r.Partition], r)
	}
	for _, r := range d.txn {
		if _, ok := d.g.repartition[r.Topic]; ok {
			part := r.Partition
			if r.Key != nil {
				tp := d.byKey[r.Topic]
				if tp == nil {
					tp = kgo.StickyKeyPartitioner(nil).ForTopic(r.Topic)
					d.byKey[r.Topic] = tp
				}
				part = int32(tp.Partition(r, int(d.parts)))
			}
			c := *r
			c.Partition, c.Offset = part, d.nextOffset(r.Topic, part)
			if d.queues[r.Topic] == nil {
				d.queues[r.Topic] = map[int32][]*kgo.Record{}
			}
			d.queues[r.Topic][part] = append(d.queues[r.Topic][part], &c)
			continue
		}
		d.out[r.Topic] = append(d.out[r.Topic], r)
	}
	d.txn = nil
	d.g.settle(true)
	for _, a := range d.g.aggs {
		for p, st := range a.stores {
			if err := st.Commit(int64(len(d.changelog[a.changelog][p]))); err != nil {
				d.t.Fatal(err)
			}
		}
		clear(a.dirty)
		clear(a.rows)
		clear(a.pending)
	}
}

// abort ends the open transaction without committing it: its outputs
// and state changes are dropped, as the records it read will be read
// again.
func (d *driver) abort() {
	d.txn = nil
	d.g.settle(false)
	for _, a := range d.g.aggs {
		for _, st := range a.stores {
			st.Abort()
		}
		clear(a.dirty)
		clear(a.rows)
		clear(a.pending)
	}
}

// advance moves the wall clock and runs what the run loop runs when time
// passes (idle upstreams, idle windows), in the open transaction.
func (d *driver) advance(by time.Duration) {
	d.t.Helper()
	d.clock = d.clock.Add(by)
	if _, err := d.g.tick(d.t.Context(), d.clock, false, d.emit); err != nil {
		d.t.Fatal(err)
	}
}

// settle lets every upstream go idle and delivers everything, as a
// pipeline left running after its input ends.
func (d *driver) settle() {
	d.commit()
	d.deliverAll()
	d.advance(time.Hour)
	d.commit()
	d.deliverAll()
}

// table is the upsert table of a sink topic: the last value per key,
// tombstones deleting; "key\tvalue" lines, sorted.
func (d *driver) table(topic string) []string {
	m := map[string]string{}
	for _, r := range d.out[topic] {
		if r.Value == nil {
			delete(m, string(r.Key))
			continue
		}
		m[string(r.Key)] = string(r.Value)
	}
	var rows []string
	for k, v := range m {
		rows = append(rows, k+"\t"+v)
	}
	slices.Sort(rows)
	return rows
}

// rows decodes table(topic)'s values.
func (d *driver) rows(topic string) []map[string]any {
	var out []map[string]any
	for _, line := range d.table(topic) {
		_, v, _ := strings.Cut(line, "\t")
		var m map[string]any
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			d.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}
