package processortest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

var nine = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

// windowYAML is the shared window pipeline with window and emit in place.
func windowYAML(window, emit string) string {
	return pipelineYAML("window/window.yaml.tmpl", "WINDOW", window, "EMIT", emit)
}

// in is one record of key k, value {"v": v}, at 09:00 plus at.
type in struct {
	at time.Duration
	v  int
}

// Window semantics, one table: each case pipes its records in one
// transaction (or one per record), and the sink's table must be exactly
// the rows given (window start and the row's n and sum).
func TestWindows(t *testing.T) {
	row := func(start string, n, sum int) string {
		return fmt.Sprintf(`%s n=%d sum=%d`, start, n, sum)
	}
	for _, tc := range []struct {
		name, window, emit string
		records            []in
		perRecord          bool // commit after each record
		want               []string
		late               float64
	}{
		{name: "tumbling", window: "tumbling: 1m", emit: "emit: on_update",
			records: []in{{10 * time.Second, 1}, {90 * time.Second, 2}, {150 * time.Second, 4}},
			want:    []string{row("09:00", 1, 1), row("09:01", 1, 2), row("09:02", 1, 4)}},
		{name: "hopping: a record is in size/advance windows", window: "hopping: {size: 2m, advance: 1m}", emit: "emit: on_update",
			records: []in{{10 * time.Second, 1}, {90 * time.Second, 2}, {150 * time.Second, 4}},
			want:    []string{row("08:59", 1, 1), row("09:00", 2, 3), row("09:01", 2, 6), row("09:02", 1, 4)}},
		{name: "session: a record between two sessions merges them", window: "session: {gap: 3m}\n        grace: 5m", emit: "emit: on_update",
			records: []in{{0, 1}, {time.Minute, 2}, {6 * time.Minute, 4}, {3*time.Minute + 30*time.Second, 8}},
			want:    []string{row("09:00", 4, 15)}},
		{name: "session: records exactly a gap apart share a session", window: "session: {gap: 2m}", emit: "emit: on_update",
			records: []in{{0, 1}, {2 * time.Minute, 2}, {5 * time.Minute, 4}},
			want:    []string{row("09:00", 2, 3), row("09:05", 1, 4)}},
		{name: "grace: 20s late counts, 2m late is dropped and counted", window: "tumbling: 1m\n        grace: 30s\n        late: dead_letter", emit: "emit: on_update",
			records: []in{{10 * time.Second, 1}, {80 * time.Second, 2}, {50 * time.Second, 4}, {200 * time.Second, 8}, {40 * time.Second, 16}},
			want:    []string{row("09:00", 2, 5), row("09:01", 1, 2), row("09:03", 1, 8)}, late: 1},
		{name: "on_close: one final row per closed window", window: "tumbling: 5m\n        grace: 0s", emit: "emit: on_close",
			records: minutes(60),
			want: []string{row("09:00", 5, 5), row("09:05", 5, 5), row("09:10", 5, 5), row("09:15", 5, 5), row("09:20", 5, 5), row("09:25", 5, 5),
				row("09:30", 5, 5), row("09:35", 5, 5), row("09:40", 5, 5), row("09:45", 5, 5), row("09:50", 5, 5)}},
		{name: "on_commit: windows closed in the transaction of their last update still emit", window: "tumbling: 1m\n        grace: 0s", emit: "emit: on_commit",
			records: []in{{10 * time.Second, 1}, {70 * time.Second, 2}},
			want:    []string{row("09:00", 1, 1), row("09:01", 1, 2)}},
		{name: "on_commit, one transaction per record", window: "tumbling: 1m", emit: "emit: on_commit", perRecord: true,
			records: []in{{10 * time.Second, 1}, {20 * time.Second, 2}, {70 * time.Second, 4}},
			want:    []string{row("09:00", 2, 3), row("09:01", 1, 4)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(t, windowYAML(tc.window, tc.emit))
			for _, r := range tc.records {
				d.Pipe("in", "k", fmt.Sprintf(`{"v":%d}`, r.v), nine.Add(r.at))
				if tc.perRecord {
					d.Commit()
				}
			}
			d.Commit()
			var got []string
			for _, m := range d.Rows("out") {
				start, _ := time.Parse(time.RFC3339, m["window_start"].(string))
				got = append(got, row(start.Format("15:04"), int(m["n"].(float64)), int(m["sum"].(float64))))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("rows =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if late := d.Counter("late", "agg"); late != tc.late {
				t.Errorf("late records = %v, want %v", late, tc.late)
			}
			if n := len(d.Records("w-dlq")); float64(n) != tc.late {
				t.Errorf("%d dead letters, want one per late record (%v)", n, tc.late)
			}
		})
	}
}

// minutes is n records of value 1, one a minute from 09:00.
func minutes(n int) []in {
	var out []in
	for i := range n {
		out = append(out, in{time.Duration(i) * time.Minute, 1})
	}
	return out
}

// A quiet partition's windows close by wall clock with idle_timeout, on
// the fake clock: no row before, the final row after.
func TestIdleTimeoutClosesByWallClock(t *testing.T) {
	start := time.Date(2026, 4, 1, 9, 0, 20, 0, time.UTC)
	d := New(t, windowYAML("tumbling: 10s\n        grace: 0s\n        idle_timeout: 1s", "emit: on_close"), Start(start))
	for i := range 10 {
		d.Pipe("in", "k", `{"v":1}`, nine.Add(time.Duration(i)*time.Second))
	}
	d.Commit()
	if got := d.Table("out"); len(got) != 0 {
		t.Fatalf("rows before any idle time: %q", got)
	}
	d.Advance(500 * time.Millisecond)
	if got := d.Table("out"); len(got) != 0 {
		t.Fatalf("rows before idle_timeout passed: %q", got)
	}
	d.Advance(2 * time.Second)
	if got := d.Rows("out"); len(got) != 1 || got[0]["n"] != float64(10) {
		t.Errorf("rows after idle_timeout = %v, want the final row with n 10", got)
	}
}

// A crash loses the open transaction and restores committed state only:
// the records of the open transaction, piped again, count once.
func TestCrashRestoresCommittedState(t *testing.T) {
	d := New(t, windowYAML("tumbling: 1m", "emit: on_update"))
	d.Pipe("in", "k", `{"v":1}`, nine)
	d.Commit()
	d.Pipe("in", "k", `{"v":2}`, nine.Add(time.Second))
	d.Crash()
	d.Pipe("in", "k", `{"v":2}`, nine.Add(time.Second))
	d.Commit()
	if got := d.Rows("out"); len(got) != 1 || got[0]["n"] != float64(2) || got[0]["sum"] != float64(3) {
		t.Errorf("rows = %v, want n 2, sum 3", got)
	}
}

// dedupe: within the TTL a replay is dropped, after a crash too (the
// seen-set is restored from the changelog); past the TTL an id passes
// again.
func TestDedupe(t *testing.T) {
	d := Load(t, "../testdata/dedupe/dedupe.yaml")
	send := func(at time.Duration, ids ...int) {
		for _, id := range ids {
			d.Pipe("in", fmt.Sprint(id), fmt.Sprintf(`{"id":%d,"at":"%s"}`, id, at), nine.Add(at))
		}
	}
	send(0, 1, 2, 3)
	send(time.Second, 1, 2)
	d.Commit()
	d.Crash()
	send(5*time.Second, 3)
	d.Commit()
	send(time.Minute, 1)
	d.Commit()
	var got []string
	for _, r := range d.Records("out") {
		got = append(got, string(r.Value))
	}
	want := []string{`{"id":1,"at":"0s"}`, `{"id":2,"at":"0s"}`, `{"id":3,"at":"0s"}`, `{"id":1,"at":"1m0s"}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("outputs =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The seed examples' published tables, reached here without a broker: the
// user totals after five events and, after a crash, after seven; the
// window example loaded in one go over three partitions.
func TestSeedTables(t *testing.T) {
	d := Load(t, "../testdata/aggregate/user_totals.yaml", Partitions(3))
	d.PipeFile("events", "../testdata/aggregate/events.jsonl")
	d.Commit()
	golden(t, d.Table("user-totals"), "../testdata/aggregate/user_totals_5.golden")
	d.Crash()
	d.PipeFile("events", "../testdata/aggregate/events-later.jsonl")
	d.Commit()
	golden(t, d.Table("user-totals"), "../testdata/aggregate/user_totals_7.golden")

	w := Load(t, "../testdata/window/tumbling.yaml", Partitions(3))
	w.PipeFile("events", "../testdata/aggregate/events.jsonl")
	w.PipeFile("events", "../testdata/aggregate/events-later.jsonl")
	w.Settle()
	golden(t, w.Table("per-minute"), "../testdata/window/tumbling.golden")
}

func golden(t *testing.T, got []string, path string) {
	t.Helper()
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if text := strings.Join(got, "\n") + "\n"; text != string(want) {
		t.Errorf("table =\n%s\nwant (%s)\n%s", text, path, want)
	}
}
