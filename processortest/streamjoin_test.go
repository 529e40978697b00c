package processortest

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// streamJoinYAML is the shared stream-stream join pipeline with join type
// typ, within 10s, grace 2s and the join setting extra (or none).
func streamJoinYAML(typ, extra string) string {
	return pipelineYAML("join/stream_join.yaml", "TYPE", typ, "WITHIN", "10s", "GRACE", "2s", "EXTRA", extra)
}

func sec(s int) time.Time { return time.Unix(int64(s), 0) }

func timed(d *Driver, topic string) string {
	var out []string
	for _, r := range d.Records(topic) {
		out = append(out, string(r.Key)+" "+string(r.Value)+" @"+r.Timestamp.UTC().Format("04:05"))
	}
	return strings.Join(out, "\n")
}

// A stream-stream join on event time, with out-of-order and late records:
// pairs within 10s match as they arrive; the unmatched rows of a left or
// outer join come out only once their window has closed (the task's clock,
// the minimum over both streams, passed their time plus 10s plus grace),
// never as a null before a match; a record more than grace behind the
// clock is late and dropped.
func TestStreamStreamJoin(t *testing.T) {
	const (
		v1c1 = `k1 {"click":"c1","view":"v1"} @00:05`
		v2   = `k2 {"click":null,"view":"v2"} @00:20`
		c2   = `k3 {"click":"c2","view":null} @00:30`
		v3c3 = `k1 {"click":"c3","view":"v3"} @00:50`
		v4c3 = `k1 {"click":"c3","view":"v4"} @00:45`
		v5c5 = `k9 {"click":"c5","view":"v5"} @01:40`
	)
	for _, tc := range []struct {
		typ  string
		want []string
	}{
		{"inner", []string{v1c1, v3c3, v4c3, v5c5}},
		{"left", []string{v1c1, v2, v3c3, v4c3, v5c5}},
		{"outer", []string{v1c1, v2, c2, v3c3, v4c3, v5c5}},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			d := New(t, streamJoinYAML(tc.typ, ""))
			d.Pipe("views", "k1", `{"id":"v1"}`, sec(0))
			d.Commit()
			d.Pipe("clicks", "k1", `{"id":"c1"}`, sec(5)) // matches v1
			d.Pipe("views", "k2", `{"id":"v2"}`, sec(20)) // never matched
			d.Commit()
			d.Pipe("clicks", "k3", `{"id":"c2"}`, sec(30)) // never matched
			d.Pipe("clicks", "k1", `{"id":"c3"}`, sec(45)) // the clock stays at 20: views are behind
			d.Commit()
			// The clock moves to 45 (clicks' latest): v2 (20+10+2) and
			// c2 (30+10+2) close, unmatched; then v3 matches c3.
			d.Pipe("views", "k1", `{"id":"v3"}`, sec(50))
			d.Pipe("views", "k1", `{"id":"v4"}`, sec(44))  // out of order, within grace: matches c3
			d.Pipe("clicks", "k1", `{"id":"c4"}`, sec(40)) // late: 40 < 45-2
			d.Commit()
			d.Pipe("views", "k9", `{"id":"v5"}`, sec(100))
			d.Pipe("clicks", "k9", `{"id":"c5"}`, sec(100))
			d.Commit()
			if got, want := timed(d, "out"), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("output =\n%s\nwant\n%s", got, want)
			}
			if n := d.Counter("late", "joined"); n != 1 {
				t.Errorf("late = %v, want 1 (c4)", n)
			}
		})
	}
}

// The buffers are state like any other: an abort drops the records it
// buffered and the matches it marked, a crash restores what committed, so
// a record matched before a crash is not emitted unmatched after it, and
// one unmatched at the crash still comes out once, when its window
// closes.
func TestStreamStreamJoinAbortAndCrash(t *testing.T) {
	d := New(t, streamJoinYAML("left", ""))
	d.Pipe("views", "k1", `{"id":"v1"}`, sec(0))
	d.Commit()
	d.Pipe("clicks", "k1", `{"id":"c1"}`, sec(5))
	d.Abort() // the match is gone with it: read again below
	d.Crash()
	d.Pipe("clicks", "k1", `{"id":"c1"}`, sec(5))
	d.Pipe("views", "k2", `{"id":"v2"}`, sec(10))
	d.Commit()
	d.Pipe("clicks", "k2", `{"id":"aborted"}`, sec(11)) // would match v2
	d.Abort()
	d.Crash()
	// Event time moves past every window: v1 was matched, v2 was not.
	d.Pipe("views", "k9", `{"id":"v9"}`, sec(100))
	d.Pipe("clicks", "k9", `{"id":"c9"}`, sec(100))
	d.Commit()
	d.Crash()
	d.Pipe("views", "k9", `{"id":"v10"}`, sec(200))
	d.Pipe("clicks", "k9", `{"id":"c10"}`, sec(200))
	d.Commit()
	want := strings.Join([]string{
		`k1 {"click":"c1","view":"v1"} @00:05`,
		`k2 {"click":null,"view":"v2"} @00:10`,
		`k9 {"click":"c9","view":"v9"} @01:40`,
		`k9 {"click":"c10","view":"v10"} @03:20`,
	}, "\n")
	if got := timed(d, "out"); got != want {
		t.Errorf("output =\n%s\nwant\n%s", got, want)
	}
	// v9 and c9 have left the buffers (tombstones); v10 and c10 wait.
	if n := d.Counter("join_buffered", "joined"); n != 2 {
		t.Errorf("buffered = %v, want 2", n)
	}
	if n := d.Counter("join_expired_window", "joined"); n != 2 {
		t.Errorf("expired (window) since the last crash = %v, want 2 (v9, c9)", n)
	}
}

// With idle_timeout, unmatched rows still come out when input stops: a
// side quiet that long stops holding the clock back, and once both are
// quiet the clock moves on by wall clock. Without it they wait for more
// input.
func TestStreamStreamJoinIdleTimeout(t *testing.T) {
	for _, tc := range []struct {
		extra string
		want  string
	}{
		{"", ""},
		{"idle_timeout: 1m", `k1 {"click":null,"view":"v1"} @00:00`},
	} {
		t.Run(tc.extra, func(t *testing.T) {
			d := New(t, streamJoinYAML("left", tc.extra))
			d.Pipe("views", "k1", `{"id":"v1"}`, sec(0))
			d.Commit()
			d.Advance(30 * time.Second)
			if got := timed(d, "out"); got != "" {
				t.Fatalf("after 30s: %s, want nothing yet", got)
			}
			d.Advance(31 * time.Second)
			if got := timed(d, "out"); got != tc.want {
				t.Errorf("after 61s: %q, want %q", got, tc.want)
			}
		})
	}
}

// One side quiet for idle_timeout stops holding the clock back while the
// other goes on: its records' windows close by the active side's time.
func TestStreamStreamJoinOneSideQuiet(t *testing.T) {
	d := New(t, streamJoinYAML("left", "idle_timeout: 1m"))
	d.Pipe("views", "k1", `{"id":"v1"}`, sec(0))
	d.Commit()
	d.Advance(2 * time.Minute) // clicks quiet, but views too: the clock moves by wall clock
	d.Pipe("views", "k2", `{"id":"v2"}`, sec(200))
	d.Commit()
	// Clicks, never seen, are still quiet: the clock is views' 300, and
	// v2's window (200+10+2) closes at once.
	d.Pipe("views", "k3", `{"id":"v3"}`, sec(300))
	d.Commit()
	want := strings.Join([]string{
		`k1 {"click":null,"view":"v1"} @00:00`,
		`k2 {"click":null,"view":"v2"} @03:20`,
	}, "\n")
	if got := timed(d, "out"); got != want {
		t.Errorf("output =\n%s\nwant\n%s", got, want)
	}
}

// ttl bounds how long a record waits in a buffer (wall clock) whatever
// event time does: it leaves unmatched (emitted by a left join), counted
// as expired by ttl, and no longer matches.
func TestStreamStreamJoinTTL(t *testing.T) {
	d := New(t, strings.Replace(streamJoinYAML("left", "ttl: 1m"), "within: 10s", "within: 1h", 1))
	d.Pipe("views", "k1", `{"id":"v1"}`, sec(0))
	d.Commit()
	if n := d.Counter("join_buffered", "joined"); n != 1 {
		t.Errorf("buffered = %v, want 1", n)
	}
	d.Advance(2 * time.Minute)
	d.Pipe("clicks", "k1", `{"id":"c1"}`, sec(5)) // v1 is gone: no match
	d.Commit()
	if got, want := timed(d, "out"), `k1 {"click":null,"view":"v1"} @00:00`; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
	if n := d.Counter("join_expired_ttl", "joined"); n != 1 {
		t.Errorf("expired (ttl) = %v, want 1", n)
	}
	if n := d.Counter("join_buffered", "joined"); n != 1 {
		t.Errorf("buffered = %v, want 1 (c1)", n)
	}
}

// A key step before a stream-stream join sends both sides through the
// step's repartition topic, keyed by the join key; the task's event time
// is then the minimum over the upstream partitions of both streams, so a
// partition running ahead does not make another's records late.
func TestStreamStreamJoinAfterKeyStep(t *testing.T) {
	yaml := pipelineYAML("join/stream_join_rekeyed.yaml", "WITHIN", "10s", "EXTRA", "idle_timeout: 1m")
	d := New(t, yaml, Partitions(3))
	// Views keyed by view id, spread over partitions; clicks keyed by
	// user.
	d.Pipe("views", "a", `{"id":"v1","user":"u1"}`, sec(0))
	d.Pipe("views", "b", `{"id":"v2","user":"u2"}`, sec(100)) // another partition, far ahead
	d.Pipe("views", "c", `{"id":"v3","user":"u1"}`, sec(1))
	d.Commit()
	d.Pipe("clicks", "u1", `{"id":"c1"}`, sec(5)) // matches v1 and v3, not late though views reached 100
	d.Commit()
	d.Settle()             // input ends: every upstream goes idle, the clock reaches 100
	d.Advance(time.Minute) // and idle_timeout moves it on: v2's window closes
	var got []string
	for _, r := range d.Records("out") {
		got = append(got, string(r.Key)+" "+string(r.Value))
	}
	slices.Sort(got)
	want := []string{
		`u1 {"click":"c1","view":"v1"}`,
		`u1 {"click":"c1","view":"v3"}`,
		`u2 {"click":null,"view":"v2"}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("output =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := d.Counter("late", "joined"); n != 0 {
		t.Errorf("late = %v, want 0", n)
	}
}
