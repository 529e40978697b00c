package processor

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exactly-dev/exactly/internal/sqlitetest"
)

// The windows of a generated stream, checked against SQLite's answer over
// the same events: tumbling, hopping and session windows, in all three
// emit modes, over 3 partitions consumed unevenly, with out-of-order and
// late records. SQLite runs through Python's sqlite3 module (python3 is
// on every machine this project builds on; CI fails without it).

// genEvent is one generated event.
type genEvent struct {
	Part int32  `json:"-"`
	User string `json:"user"`
	TS   int64  `json:"ts"` // epoch ms
	V    int    `json:"v"`
	Late bool   `json:"late"` // certainly late: older than any open window
}

// genEvents makes n events per partition: event times advance 1-20 s per
// event with up to disorder of jitter either way, and about 3% of events
// are hours old, so certainly late.
func genEvents(rng *rand.Rand, parts int32, n int, disorder time.Duration) [][]genEvent {
	out := make([][]genEvent, parts)
	for p := range parts {
		base := ten.UnixMilli()
		for i := range n {
			base += 1000 + rng.Int64N(19_000)
			e := genEvent{Part: p, User: fmt.Sprintf("u%d", rng.IntN(5)), V: 1 + rng.IntN(100)}
			e.TS = base + rng.Int64N(2*disorder.Milliseconds()+1) - disorder.Milliseconds()
			if i%33 == 32 {
				// Certainly late (fed once every partition has been
				// heard from; see feedUnevenly).
				e.TS, e.Late = ten.Add(-6*time.Hour).UnixMilli()+rng.Int64N(1000), true
			}
			out[p] = append(out[p], e)
		}
	}
	return out
}

// sqlite runs query over the events in SQLite and returns its rows, each
// as "user|window_start|window_end|n|sum" with times in ms.
func sqlite(t *testing.T, events []genEvent, query string) []string {
	t.Helper()
	const script = `
import json, sqlite3, sys
data = json.load(sys.stdin)
db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE events (user TEXT, ts INTEGER, v INTEGER, late INTEGER)")
db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", [(e["user"], e["ts"], e["v"], int(e["late"])) for e in data["events"]])
for row in db.execute(data["query"]):
    print("|".join(str(c) for c in row))
`
	return sqlitetest.Rows(t, script, map[string]any{"events": events, "query": query})
}

// The SQL of each window, over on-time events (late ones are dropped by
// the pipeline). :size, :adv, :gap, :grace and :close (the stream time
// at the end, for on_close: only windows closed by then) are replaced.
const (
	sqlTumbling = `SELECT user, (ts / :size) * :size AS ws, (ts / :size) * :size + :size, COUNT(*), SUM(v)
FROM events WHERE late = 0 GROUP BY user, ws HAVING :onclose = 0 OR ws + :size + :grace <= :close`
	sqlHopping = `WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < :size / :adv),
w AS (SELECT user, v, (ts / :adv) * :adv - i * :adv AS ws FROM events, k WHERE late = 0)
SELECT user, ws, ws + :size, COUNT(*), SUM(v) FROM w GROUP BY user, ws HAVING :onclose = 0 OR ws + :size + :grace <= :close`
	sqlSession = `WITH o AS (SELECT user, ts, v,
  CASE WHEN ts - LAG(ts) OVER (PARTITION BY user ORDER BY ts) <= :gap THEN 0 ELSE 1 END AS new FROM events WHERE late = 0),
s AS (SELECT user, ts, v, SUM(new) OVER (PARTITION BY user ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid FROM o)
SELECT user, MIN(ts), MAX(ts), COUNT(*), SUM(v) FROM s GROUP BY user, sid HAVING :onclose = 0 OR MAX(ts) + :gap + :grace < :close`
)

func TestWindowsAgainstSQLite(t *testing.T) {
	const grace = 5 * time.Minute
	const disorder = time.Minute // grace > 2 × disorder: no on-time record can be late
	windows := []struct {
		name, yaml, sql string
		size, adv, gap  time.Duration
	}{
		{"tumbling", "tumbling: 1m", sqlTumbling, time.Minute, time.Minute, 0},
		{"hopping", "hopping: {size: 3m, advance: 1m}", sqlHopping, 3 * time.Minute, time.Minute, 0},
		{"session", "session: {gap: 5s}", sqlSession, 0, 0, 5 * time.Second},
	}
	for seed := range uint64(2) {
		rng := rand.New(rand.NewPCG(seed, 42))
		events := genEvents(rng, 3, 150, disorder)
		var all []genEvent
		var close int64
		for _, es := range events {
			all = append(all, es...)
			for _, e := range es {
				if !e.Late {
					close = max(close, e.TS)
				}
			}
		}
		for _, w := range windows {
			for _, emit := range []string{"on_update", "on_commit", "on_close"} {
				t.Run(fmt.Sprintf("seed%d/%s/%s", seed, w.name, emit), func(t *testing.T) {
					yaml := byUserYAML(w.yaml+"\n        time: value.ts\n        grace: "+grace.String(), "emit: "+emit)
					d := newDriver(t, yaml, 3)
					feedUnevenly(d, rand.New(rand.NewPCG(seed, 7)), events)
					d.settle()
					var got []string
					for _, r := range d.rows("out") {
						ws, _ := time.Parse(time.RFC3339Nano, r["window_start"].(string))
						we, _ := time.Parse(time.RFC3339Nano, r["window_end"].(string))
						got = append(got, fmt.Sprintf("%s|%d|%d|%v|%v", r["user"], ws.UnixMilli(), we.UnixMilli(), r["n"], r["sum"]))
					}
					slices.Sort(got)
					onclose := "0"
					if emit == "on_close" {
						onclose = "1"
					}
					q := strings.NewReplacer(":size", ms(w.size), ":adv", ms(w.adv), ":gap", ms(w.gap), ":grace", ms(grace),
						":close", fmt.Sprint(close), ":onclose", onclose).Replace(w.sql)
					want := sqlite(t, all, q)
					if len(want) == 0 {
						t.Fatal("SQLite found no windows: the test is broken")
					}
					if !slices.Equal(got, want) {
						t.Errorf("%d rows, SQLite %d\nonly ours:   %v\nonly SQLite: %v", len(got), len(want), minus(got, want), minus(want, got))
					}
				})
			}
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprint(d.Milliseconds()) }

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// feedUnevenly runs the events through d in rounds: partition 0 gets far
// more events per round than partition 2, each round is a transaction, and
// the repartition partitions are read in a random order, some only in
// part, so the downstream tasks see the upstream partitions interleaved
// as unevenly as a replayed backlog does.
//
// The certainly-late events come last, once every upstream partition has
// been heard from: before that the downstream clock has not started, and
// nothing is late yet.
func feedUnevenly(d *driver, rng *rand.Rand, events [][]genEvent) {
	defer func() {
		d.deliverAll()
		for _, es := range events {
			for _, e := range es {
				if e.Late {
					v, _ := json.Marshal(e)
					d.input("in", e.Part, e.User, string(v), ten)
				}
			}
		}
		d.commit()
		d.deliverAll()
	}()
	pos := make([]int, len(events))
	share := []int{40, 12, 3}
	for {
		left := false
		for p, es := range events {
			n := min(share[p%len(share)], len(es)-pos[p])
			for _, e := range es[pos[p] : pos[p]+n] {
				if e.Late {
					continue
				}
				v, _ := json.Marshal(e)
				d.input("in", e.Part, e.User, string(v), ten)
			}
			pos[p] += n
			left = left || pos[p] < len(es)
		}
		d.commit()
		for _, q := range rng.Perm(int(d.parts)) {
			n := -1
			if rng.IntN(3) == 0 {
				n = rng.IntN(20)
			}
			d.deliver("w-agg-repartition", int32(q), n)
		}
		d.commit()
		if !left {
			return
		}
	}
}
