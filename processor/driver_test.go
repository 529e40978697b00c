package processor

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// driver is the Harness for this package's tests: it fails the test on
// errors, and its fields (the graph, the outputs) are the harness's.
type driver struct {
	*Harness
	t *testing.T
}

func newDriver(t *testing.T, yaml string, parts int32) *driver {
	t.Helper()
	h, err := NewHarness(mustParse(t, yaml), parts, time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return &driver{Harness: h, t: t}
}

func (d *driver) check(err error) {
	d.t.Helper()
	if err != nil {
		d.t.Fatal(err)
	}
}

func (d *driver) crash() { d.t.Helper(); d.check(d.Crash()) }

// input processes one source record; ts is its timestamp.
func (d *driver) input(topic string, part int32, key, value string, ts time.Time) {
	d.t.Helper()
	if err := d.Input(topic, part, []byte(key), []byte(value), ts); err != nil {
		d.t.Fatalf("input %s/%d %s: %v", topic, part, value, err)
	}
}

func (d *driver) backlog(topic string, part int32, n int64) { d.Backlog(topic, part, n) }
func (d *driver) skim(topic string, part int32, n int64)    { d.Skim(topic, part, n) }

func (d *driver) deliver(topic string, part int32, n int) int {
	d.t.Helper()
	k, err := d.Deliver(topic, part, n)
	d.check(err)
	return k
}

func (d *driver) deliverAll()              { d.t.Helper(); d.check(d.DeliverAll()) }
func (d *driver) commit()                  { d.t.Helper(); d.check(d.Commit()) }
func (d *driver) abort()                   { d.Abort() }
func (d *driver) advance(by time.Duration) { d.t.Helper(); d.check(d.Advance(by)) }
func (d *driver) settle()                  { d.t.Helper(); d.check(d.Settle()) }

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
