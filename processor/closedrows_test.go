package processor

import (
	"strings"
	"testing"
	"time"
)

// Rows that time passing makes (a window's final row, emit: on_close; a
// stream-stream join's unmatched row once its window closed) have no
// source record: they stand for one with partition -1. A keyed step
// after them that reads its input's partitions directly (a dedupe, an
// aggregate grouped by the key) looked its task up by that partition, and
// the processor stopped: "no store for partition -1 of in (not restored);
// this is a bug". They belong to the task that made them, partition p,
// whose keys they keep.
func TestRowsOfTimePassingReachKeyedSteps(t *testing.T) {
	windowed := `
name: w
sources:
  - {name: in, topic: in}
steps:
  - name: agg
    aggregate:
      group_by: key
      window:
        tumbling: 1m
      columns:
        n: {fn: count}
      emit: on_close
STEP
sinks:
  - {name: out, topic: out}
`
	for _, tc := range []struct {
		name, yaml string
		run        func(d *driver)
	}{
		{"window then dedupe", strings.Replace(windowed, "STEP", "  - name: once\n    dedupe: {id: value.n, ttl: 1h}", 1), func(d *driver) {
			d.input("in", 1, "k", `{}`, at(0))
			d.input("in", 1, "k", `{}`, at(5*time.Minute)) // closes [10:00, 10:01)
		}},
		{"window then aggregate by key", strings.Replace(windowed, "STEP", "  - name: once\n    aggregate:\n      group_by: key\n      columns: {m: {fn: count}}", 1), func(d *driver) {
			d.input("in", 1, "k", `{}`, at(0))
			d.input("in", 1, "k", `{}`, at(5*time.Minute))
		}},
		{"window closed by idleness then dedupe", strings.Replace(strings.Replace(windowed, "STEP", "  - name: once\n    dedupe: {id: value.n, ttl: 1h}", 1),
			"tumbling: 1m", "tumbling: 1m\n        idle_timeout: 10s", 1), func(d *driver) {
			d.input("in", 1, "k", `{}`, at(0))
			d.commit()
			d.advance(2 * time.Minute) // the tick closes the window
		}},
		{"stream join unmatched then dedupe", strings.Replace(streamJoinYAML(""), "sinks:", "  - name: once\n    from: joined\n    dedupe: {id: value.view, ttl: 1h}\nsinks:", 1), func(d *driver) {
			d.input("views", 1, "k", `{"id":1}`, at(0))
			d.input("views", 1, "k2", `{"id":2}`, at(time.Minute))
			d.input("clicks", 1, "k2", `{"id":3}`, at(time.Minute)) // the clock passes view 1's window
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, tc.yaml, 2)
			tc.run(d)
			d.commit()
			if len(d.Output("out")) == 0 {
				t.Fatal("no output: the row time passing made did not reach the step after it")
			}
			once := d.g.aggs[len(d.g.aggs)-1]
			if once.node.t.Name != "once" {
				t.Fatalf("last stateful step is %s, want once", once.node.t.Name)
			}
			if n0, n1 := once.stores[0].Len(), once.stores[1].Len(); n0 != 0 || n1 == 0 {
				t.Errorf("step once holds %d entries in task 0 and %d in task 1, want them all in task 1, whose rows they are", n0, n1)
			}
		})
	}
}
