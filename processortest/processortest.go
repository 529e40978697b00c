// Package processortest runs a pipeline in memory for Go tests, stateful
// steps included, in the spirit of Kafka Streams' TopologyTestDriver: pipe
// records in, move a fake wall clock, commit, abort, simulate a crash
// (uncommitted state dropped, stores restored from the committed
// changelog), and read what a read_committed consumer of the sink topics
// would see. It runs the runtime's own graph, stores and transaction ends
// (processor.Harness); only the broker is simulated, so tests of window,
// dedupe and aggregate semantics run in milliseconds. What only a broker
// can show (rebalances, fencing, restores over the network) stays in the
// broker-backed tests.
package processortest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/processor"
	"github.com/exactly-dev/exactly/topology"
)

// Driver is one pipeline under test. Every method fails the test on an
// error, so tests read as scripts.
type Driver struct {
	h     *processor.Harness
	t     testing.TB
	byKey map[string]kgo.TopicPartitioner
}

// Option changes how New starts the pipeline.
type Option func(*options)

type options struct {
	partitions int32
	start      time.Time
}

// Partitions sets the partition count of every topic (default 1).
func Partitions(n int32) Option { return func(o *options) { o.partitions = n } }

// Start sets the fake wall clock's start (default 2026-04-01 12:00 UTC).
func Start(t time.Time) Option { return func(o *options) { o.start = t } }

// New starts the pipeline in yamlText.
func New(t testing.TB, yamlText string, opts ...Option) *Driver {
	t.Helper()
	topo, err := topology.Parse(t.Name()+".yaml", []byte(yamlText))
	if err != nil {
		t.Fatalf("pipeline:\n%v", err)
	}
	return start(t, topo, opts)
}

// Load starts the pipeline in the file at path.
func Load(t testing.TB, path string, opts ...Option) *Driver {
	t.Helper()
	topo, err := topology.Load(path)
	if err != nil {
		t.Fatalf("pipeline:\n%v", err)
	}
	return start(t, topo, opts)
}

func start(t testing.TB, topo *topology.Topology, opts []Option) *Driver {
	t.Helper()
	o := options{partitions: 1, start: time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)}
	for _, f := range opts {
		f(&o)
	}
	h, err := processor.NewHarness(topo, o.partitions, o.start)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return &Driver{h: h, t: t, byKey: map[string]kgo.TopicPartitioner{}}
}

func (d *Driver) check(err error) {
	d.t.Helper()
	if err != nil {
		d.t.Fatal(err)
	}
}

// Now is the fake wall clock.
func (d *Driver) Now() time.Time { return d.h.Now() }

// Pipe processes one record of a source topic in the open transaction, in
// the partition its key hashes to (Kafka's murmur2, as producers do;
// partition 0 without a key).
func (d *Driver) Pipe(topic, key, value string, ts time.Time) {
	d.t.Helper()
	var k []byte
	if key != "" {
		k = []byte(key)
	}
	d.PipeTo(topic, d.partition(topic, k), k, []byte(value), ts)
}

// PipeTo processes one record in a given partition; a nil key or value is
// Kafka's null.
func (d *Driver) PipeTo(topic string, partition int32, key, value []byte, ts time.Time) {
	d.t.Helper()
	if err := d.h.Input(topic, partition, key, value, ts); err != nil {
		d.t.Fatalf("record %s/%d key %q: %v", topic, partition, key, err)
	}
}

// PipeError processes one record that must fail (a bad record), and
// returns its error.
func (d *Driver) PipeError(topic, key, value string, ts time.Time) error {
	d.t.Helper()
	err := d.h.Input(topic, d.partition(topic, []byte(key)), []byte(key), []byte(value), ts)
	if err == nil {
		d.t.Fatalf("record %s key %q passed, want an error", topic, key)
	}
	return err
}

// PipeFile processes every record of a JSON-lines input file (the format
// of `exactly run --input`), each with the clock's time as its timestamp.
func (d *Driver) PipeFile(topic, path string) {
	d.t.Helper()
	recs, err := broker.ReadFile(path, topic)
	d.check(err)
	for _, r := range recs {
		d.PipeTo(topic, d.partition(topic, r.Key), r.Key, r.Value, d.Now())
	}
}

func (d *Driver) partition(topic string, key []byte) int32 {
	if key == nil {
		return 0
	}
	p := d.byKey[topic]
	if p == nil {
		p = kgo.StickyKeyPartitioner(nil).ForTopic(topic)
		d.byKey[topic] = p
	}
	return int32(p.Partition(&kgo.Record{Key: key}, int(d.h.Partitions())))
}

// Commit ends the open transaction and delivers what it wrote to
// repartition topics, committing again, until nothing is left in flight.
func (d *Driver) Commit() {
	d.t.Helper()
	d.check(d.h.Commit())
	d.check(d.h.DeliverAll())
}

// Abort drops the open transaction: its outputs and state changes.
func (d *Driver) Abort() { d.h.Abort() }

// Crash drops every uncommitted and in-memory state and restores the
// stores from the committed changelog, as a restarted member does.
func (d *Driver) Crash() {
	d.t.Helper()
	d.check(d.h.Crash())
}

// Advance moves the wall clock (idle timeouts, upstream idleness) and
// commits what that closed.
func (d *Driver) Advance(by time.Duration) {
	d.t.Helper()
	d.check(d.h.Advance(by))
	d.Commit()
}

// Settle commits, lets every upstream go idle and delivers everything, as
// a pipeline left running after its input ends.
func (d *Driver) Settle() {
	d.t.Helper()
	d.check(d.h.Settle())
}

// Deliver processes, in the open transaction, up to n (all when n < 0)
// committed and unread records of partition part of an internal topic
// (repartition, or a join's subscription or response topic), and returns
// how many it processed. Settle delivers everything; Deliver lets a test
// choose the order in which partitions catch up.
func (d *Driver) Deliver(topic string, part int32, n int) int {
	d.t.Helper()
	k, err := d.h.Deliver(topic, part, n)
	d.check(err)
	return k
}

// Records returns the committed records of a topic, in order.
func (d *Driver) Records(topic string) []*kgo.Record { return d.h.Output(topic) }

// Table is the upsert table of a topic: the last value per key, null
// values deleting; "key\tvalue" lines, sorted.
func (d *Driver) Table(topic string) []string {
	m := map[string]string{}
	for _, r := range d.h.Output(topic) {
		if r.Value == nil {
			delete(m, string(r.Key))
			continue
		}
		m[string(r.Key)] = string(r.Value)
	}
	rows := make([]string, 0, len(m))
	for k, v := range m {
		rows = append(rows, k+"\t"+v)
	}
	slices.Sort(rows)
	return rows
}

// Rows decodes Table's values as JSON objects.
func (d *Driver) Rows(topic string) []map[string]any {
	d.t.Helper()
	var out []map[string]any
	for _, line := range d.Table(topic) {
		_, v, _ := strings.Cut(line, "\t")
		var m map[string]any
		d.check(json.Unmarshal([]byte(v), &m))
		out = append(out, m)
	}
	return out
}

// Stats are the run's counters of bad records the pipeline handled
// itself, as a member counts them (Skipped, DeadLettered): rows that fail
// as a window closes or a join's unmatched row comes out.
func (d *Driver) Stats() *processor.Stats { return d.h.Stats() }

// Counter is one of the pipeline's counters for a step: "late",
// "dead_lettered" (late records), "records_in", "records_out",
// "join_matches", "join_misses", and for stream-stream joins
// "join_unmatched", "join_expired_window", "join_expired_ttl" and
// "join_buffered" (records buffered, as committed).
func (d *Driver) Counter(name, step string) float64 {
	d.t.Helper()
	v, err := d.h.Counter(name, step)
	d.check(err)
	return v
}
