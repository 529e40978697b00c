package processor

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Behind a repartition, a task's clock follows the upstream watermarks
// even while none of its own groups gets a record. idle_timeout measured
// the quiet from the task's last data record, and added all of it to the
// clock the watermarks had brought: a task whose keys were quiet for 31
// minutes while the others kept the clock current moved it 31 minutes
// into the future, closing a window at 10:30 that ends at 11:00. The
// record of 10:41 that followed, on time by every watermark, was dropped
// as late, and the window's final row missed it. The quiet counts from
// the last time the clock moved.
func TestIdleTimeoutAfterWatermarks(t *testing.T) {
	d := newDriver(t, byUserYAML("tumbling: 1h\n        idle_timeout: 1m", "emit: on_close"), 2)
	// Two users whose groups go to different repartition partitions.
	part := func(user string) int {
		kb, _ := json.Marshal(user) // one group column: the key is its value
		return kgo.StickyKeyPartitioner(nil).ForTopic("w-agg-repartition").Partition(&kgo.Record{Key: kb}, 2)
	}
	busy, quiet := "a", ""
	for i := range 100 {
		if u := fmt.Sprintf("u%d", i); part(u) != part(busy) {
			quiet = u
			break
		}
	}
	if quiet == "" {
		t.Fatal("no user in the other repartition partition")
	}
	input := func(user string, at time.Time) {
		d.input("in", 0, "k", fmt.Sprintf(`{"user":%q,"v":1}`, user), at)
		d.commit()
		d.deliverAll()
	}
	input(quiet, at(0))
	for i := 1; i <= 40; i++ {
		// The busy user's records keep event time in step with the
		// wall clock; the quiet user's task sees only watermarks.
		d.advance(time.Minute)
		d.commit()
		input(busy, at(time.Duration(i)*time.Minute))
	}
	input(quiet, at(41*time.Minute)) // on time: its window ends at 11:00
	if n, _ := d.Counter("late", "agg"); n != 0 {
		t.Errorf("%v late records, want none: no record came after its window's end", n)
	}
	d.settle()
	input(busy, at(3*time.Hour)) // closes every window
	d.settle()
	found := false
	for _, row := range d.rows("out") {
		if row["user"] == quiet {
			found = true
			if row["n"] != float64(2) {
				t.Errorf("final row of %s = %v, want n 2 (10:00 and 10:41)", quiet, row)
			}
		}
	}
	if !found {
		t.Errorf("no final row of %s", quiet)
	}
}

// The same for a stream-stream join behind its repartition topic: a
// task whose keys were quiet for half an hour while watermarks kept its
// clock current moved the clock half an hour ahead, closed a view's
// window early (its unmatched row out) and dropped the click that came on
// time for it.
func TestStreamJoinIdleTimeoutAfterWatermarks(t *testing.T) {
	d := newDriver(t, pipelineYAML("join/stream_join_rekeyed.yaml", "WITHIN", "1h", "EXTRA", "idle_timeout: 1m"), 2)
	part := func(user string) int {
		kb, _ := json.Marshal(user)
		return kgo.StickyKeyPartitioner(nil).ForTopic("pairs-joined-repartition").Partition(&kgo.Record{Key: kb}, 2)
	}
	busy, quiet := "a", ""
	for i := range 100 {
		if u := fmt.Sprintf("u%d", i); part(u) != part(busy) {
			quiet = u
			break
		}
	}
	send := func(topic, user string, id int, at time.Time) {
		d.input(topic, 0, user, fmt.Sprintf(`{"user":%q,"id":%d}`, user, id), at)
		d.commit()
		d.deliverAll()
	}
	send("views", quiet, 1, at(0))
	for i := 1; i <= 40; i++ {
		d.advance(time.Minute)
		d.commit()
		send("views", busy, 100+i, at(time.Duration(i)*time.Minute))
		send("clicks", busy, 200+i, at(time.Duration(i)*time.Minute))
	}
	send("clicks", quiet, 2, at(41*time.Minute)) // within 1h of the view
	if n, _ := d.Counter("late", "joined"); n != 0 {
		t.Errorf("%v late records, want none", n)
	}
	matched := false
	for _, r := range d.Output("out") {
		if string(r.Value) == `{"click":2,"view":1}` {
			matched = true
		}
		if string(r.Value) == `{"click":null,"view":1}` {
			t.Errorf("view 1 was output unmatched before its window (1h after 10:00) closed")
		}
	}
	if !matched {
		t.Errorf("view 1 and click 2 (41 minutes apart, within 1h) did not match")
	}
}
