package processortest

import (
	"strings"
	"testing"
	"time"
)

// windowFailYAML is a windowed count whose final rows go through a map
// that fails on a row with n 2 (a missing field).
func windowFailYAML(policy string) string {
	return policy + `
name: w
sources:
  - {name: in, topic: in}
steps:
  - name: agg
    aggregate:
      group_by: key
      window:
        tumbling: 1m
        grace: 0s
      columns:
        n: {fn: count}
      emit: on_close
  - name: m
    map: '{"n": value.n == 2 ? value.missing : value.n, "start": value.window_start}'
sinks:
  - {name: out, topic: out}
`
}

// A window's final row that fails in a step after the aggregate is the
// row's own bad record, not the one of the record whose event time closed
// the window: that record and every later one go on, the window stays
// closed, and the row is skipped, dead-lettered (the row itself, with
// headers naming the aggregate and the window) or stops the pipeline.
func TestWindowFinalRowFails(t *testing.T) {
	pipe := func(d *Driver) {
		d.Pipe("in", "k", `{}`, nine)                     // window 09:00
		d.Pipe("in", "k", `{}`, nine.Add(time.Second))    // n 2: its final row fails
		d.Commit()                                        //
		d.Pipe("in", "k", `{}`, nine.Add(70*time.Second)) // closes 09:00; window 09:01
	}
	t.Run("stop", func(t *testing.T) {
		d := New(t, windowFailYAML(""))
		d.Pipe("in", "k", `{}`, nine)
		d.Pipe("in", "k", `{}`, nine.Add(time.Second))
		d.Commit()
		err := d.PipeError("in", "k", `{}`, nine.Add(70*time.Second))
		if got := err.Error(); !strings.Contains(got, `node "m"`) || !strings.Contains(got, `final row of window [2026-04-01T09:00:00Z, 2026-04-01T09:01:00Z) of aggregate "agg"`) {
			t.Errorf("error = %q, want the final row of agg's window 09:00 failing at m", got)
		}
	})
	t.Run("idle", func(t *testing.T) { // closed by idle_timeout, not by a record
		d := New(t, strings.Replace(windowFailYAML("on_error: skip"), "grace: 0s", "grace: 0s\n        idle_timeout: 1s", 1))
		d.Pipe("in", "k", `{}`, nine)
		d.Pipe("in", "k", `{}`, nine.Add(time.Second))
		d.Commit()
		d.Advance(time.Second)
		d.Advance(2 * time.Minute) // closes 09:00: its row fails, skipped
		d.Commit()
		d.Pipe("in", "k", `{}`, nine.Add(200*time.Second))
		d.Commit()
		if got := d.Stats().Skipped.Load(); got != 1 {
			t.Errorf("skipped = %d, want 1", got)
		}
		if got := timed(d, "out"); got != "" {
			t.Errorf("output = %s, want none", got)
		}
	})
	for _, policy := range []string{"on_error: skip", "on_error: dead_letter\ndead_letter_topic: dlq"} {
		t.Run(policy[len("on_error: "):][:4], func(t *testing.T) {
			d := New(t, windowFailYAML(policy))
			pipe(d)
			d.Pipe("in", "k", `{}`, nine.Add(130*time.Second)) // closes 09:01 (n 1)
			d.Commit()
			d.Crash()                                          // the closed window stays closed once committed
			d.Pipe("in", "k", `{}`, nine.Add(190*time.Second)) // closes 09:02 (n 1)
			d.Commit()
			want := `{"key":"k","window_start":"2026-04-01T09:01:00Z"} {"n":1,"start":"2026-04-01T09:01:00Z"} @02:00` + "\n" + `{"key":"k","window_start":"2026-04-01T09:02:00Z"} {"n":1,"start":"2026-04-01T09:02:00Z"} @03:00`
			if got := timed(d, "out"); got != want {
				t.Errorf("output =\n%s\nwant\n%s", got, want)
			}
			st := d.Stats()
			if strings.Contains(policy, "skip") {
				if st.Skipped.Load() != 1 || st.DeadLettered.Load() != 0 {
					t.Errorf("skipped, dead-lettered = %d, %d, want 1, 0", st.Skipped.Load(), st.DeadLettered.Load())
				}
				return
			}
			if st.Skipped.Load() != 0 || st.DeadLettered.Load() != 1 {
				t.Errorf("skipped, dead-lettered = %d, %d, want 0, 1", st.Skipped.Load(), st.DeadLettered.Load())
			}
			dl := d.Records("dlq")
			if len(dl) != 1 {
				t.Fatalf("dead letters = %d, want 1 (the 09:00 final row)", len(dl))
			}
			hs := map[string]string{}
			for _, h := range dl[0].Headers {
				hs[h.Key] = string(h.Value)
			}
			if got, want := string(dl[0].Key), `{"key":"k","window_start":"2026-04-01T09:00:00Z"}`; got != want {
				t.Errorf("dead letter key = %s, want %s", got, want)
			}
			if v := string(dl[0].Value); !strings.Contains(v, `"n":2`) || !strings.Contains(v, `"window_end":"2026-04-01T09:01:00Z"`) {
				t.Errorf("dead letter value = %s, want the final row (n 2, window 09:00-09:01)", v)
			}
			for k, want := range map[string]string{"exactly.node": "m", "exactly.window.node": "agg",
				"exactly.window.start": "2026-04-01T09:00:00Z", "exactly.window.end": "2026-04-01T09:01:00Z", "exactly.source.offset": "-1"} {
				if hs[k] != want {
					t.Errorf("dead letter header %s = %q, want %q (all: %v)", k, hs[k], want, hs)
				}
			}
		})
	}
}

// A stream-stream join's unmatched row skipped or dead-lettered at window
// close counts in the run's stats, as the dead-letter metric counts it.
func TestStreamStreamJoinUnmatchedFailsCounted(t *testing.T) {
	base := strings.Replace(streamJoinYAML("left", ""),
		`output: '{"view": value == null ? null : value.id, "click": other == null ? null : other.id}'`,
		`output: '{"view": value.id, "click": other.id}'`, 1)
	for _, policy := range []string{"on_error: skip\n", "on_error: dead_letter\ndead_letter_topic: dlq\n"} {
		d := New(t, policy+base)
		d.Pipe("views", "k1", `{"id":"v1"}`, sec(0)) // never matched: its row fails at close
		d.Commit()
		d.Pipe("clicks", "k2", `{"id":"c2"}`, sec(100))
		d.Pipe("views", "k2", `{"id":"v2"}`, sec(100)) // closes v1's window
		d.Commit()
		st := d.Stats()
		want := [2]int64{1, 0}
		if strings.Contains(policy, "dead_letter") {
			want = [2]int64{0, 1}
		}
		if got := [2]int64{st.Skipped.Load(), st.DeadLettered.Load()}; got != want {
			t.Errorf("%s: skipped, dead-lettered = %v, want %v", strings.TrimSpace(policy), got, want)
		}
	}
}

// A stream-stream join matches keys by their bytes as written, as the
// producers' partitioner places them (and as the stream-table and
// table-table joins look them up): JSON keys equal as values but written
// differently ({"a":1,"b":2} and {"b":2,"a":1}, 1 and 1.0) do not match,
// whether or not they share a partition; the same bytes do.
func TestStreamStreamJoinKeyBytes(t *testing.T) {
	yaml := strings.Replace(streamJoinYAML("inner", ""), "  - {name: views, topic: views}\n  - {name: clicks, topic: clicks}",
		"  - {name: views, topic: views, key_format: json}\n  - {name: clicks, topic: clicks, key_format: json}", 1)
	d := New(t, yaml, Partitions(1)) // one partition: before, decoded values matched here only
	d.Pipe("views", `{"a":1,"b":2}`, `{"id":"v1"}`, sec(0))
	d.Pipe("clicks", `{"b":2,"a":1}`, `{"id":"c1"}`, sec(1))
	d.Pipe("views", `1`, `{"id":"v2"}`, sec(2))
	d.Pipe("clicks", `1.0`, `{"id":"c2"}`, sec(3))
	d.Pipe("clicks", `{"a":1,"b":2}`, `{"id":"c3"}`, sec(4))
	d.Commit()
	if got, want := timed(d, "out"), `{"a":1,"b":2} {"click":"c3","view":"v1"} @00:04`; got != want {
		t.Errorf("output =\n%s\nwant\n%s", got, want)
	}
}

// A table-table join remembers, in its changelog-backed store, that a
// key's row came out: after (Ada, gold) came out and the plan's next row
// failed (a bad record, skipped, yet the plans table's row, as a crash's
// restore from the topic shows), deleting the user still deletes the
// joined row with a tombstone. Before, the row before the delete was made
// from the failed plan row, failed again, and no tombstone was owed.
func TestTableTableJoinDeleteAfterFailedOtherSide(t *testing.T) {
	yaml := tableJoinOutputYAML("inner", `{"user": value.name, "plan": table.tier}`)
	d := New(t, "on_error: skip\n"+yaml)
	at := time.Unix(0, 0)
	d.Pipe("users", "u1", `{"name":"Ada"}`, at)
	d.Pipe("plans", "u1", `{"tier":"gold"}`, at)
	d.PipeError("plans", "u1", `{"level":"x"}`, at) // output fails: skipped
	d.Commit()
	d.Crash() // the plans table now holds the failed row, as its topic does
	d.PipeTo("users", d.partition("users", []byte("u1")), []byte("u1"), nil, at)
	d.Commit()
	if got, want := stream(d, "out"), "u1 {\"plan\":\"gold\",\"user\":\"Ada\"}\nu1 <tombstone>\n"; got != want {
		t.Errorf("output =\n%s\nwant\n%s", got, want)
	}
}
