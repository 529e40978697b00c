package processortest

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

// ssEvent is one generated event of the stream-stream join's differential
// test, in processing order.
type ssEvent struct {
	Click bool   `json:"click"`
	ID    string `json:"id"`
	Key   string `json:"k"`
	T     int64  `json:"t"` // event time, ms
}

// Left and outer stream-stream joins with uneven bounds (a click from 3s
// before to 7s after its view), records exactly on the bounds, both
// streams out of order within grace, in three partitions, with commits,
// aborts and crashes on the way: once input ends and idle_timeout lets
// the last windows close, the output is SQL's left (outer) join over the
// same events, each pair and each unmatched row exactly once.
func TestStreamStreamJoinAgainstSQLite(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 13))
	var events []ssEvent
	var hi [2]int64
	now := int64(10_000)
	for i := range 1500 {
		now += int64(rng.IntN(200))
		side := rng.IntN(2)
		at := max(now-int64(rng.IntN(2000)), hi[side]-2000) // within grace (2s) of its side
		if i > 0 && rng.IntN(8) == 0 {
			// Exactly on a bound of an earlier record of the other
			// side, if that stays within grace.
			o := events[rng.IntN(i)]
			if (o.Click && side == 0) || (!o.Click && side == 1) {
				b := []int64{-3000, 7000}[rng.IntN(2)]
				if side == 1 {
					b = []int64{3000, -7000}[rng.IntN(2)]
				}
				if t := o.T - b; t >= hi[side]-2000 {
					at = t
				}
			}
		}
		hi[side] = max(hi[side], at)
		events = append(events, ssEvent{Click: side == 1, ID: fmt.Sprintf("%c%d", "vc"[side], i), Key: fmt.Sprintf("k%d", rng.IntN(40)), T: at})
	}
	for _, typ := range []string{"left", "outer"} {
		t.Run(typ, func(t *testing.T) {
			want := sqliteStreamJoin(t, events, typ)
			if unmatched := len(slices.DeleteFunc(slices.Clone(want), func(r string) bool { return !strings.Contains(r, "None") })); unmatched < 20 || len(want)-unmatched < 200 {
				t.Fatalf("SQLite: %d rows, %d unmatched: the generator tests too little", len(want), unmatched)
			}
			yaml := strings.Replace(streamJoinYAML(typ, "idle_timeout: 1m"), "within: 10s", "before: 3s\n      after: 7s", 1)
			d := New(t, yaml, Partitions(3))
			pipeBatches(d, rng, events, 60, func(e ssEvent) {
				topic := "views"
				if e.Click {
					topic = "clicks"
				}
				d.Pipe(topic, e.Key, fmt.Sprintf(`{"id":%q}`, e.ID), time.UnixMilli(e.T))
			}, nil)
			d.Settle()
			d.Advance(2 * time.Minute)
			var got []string
			for _, r := range d.Records("out") {
				var m struct{ View, Click *string }
				if err := json.Unmarshal(r.Value, &m); err != nil {
					t.Fatal(err)
				}
				s := func(p *string) string {
					if p == nil {
						return "None"
					}
					return *p
				}
				got = append(got, string(r.Key)+"|"+s(m.View)+"|"+s(m.Click))
			}
			slices.Sort(got)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s join: %d rows, SQLite %d; first difference: %s", typ, len(got), len(want), firstDiff(got, want))
			}
			if n := d.Counter("late", "joined"); n != 0 {
				t.Errorf("late = %v, want 0", n)
			}
		})
	}
}

// sqliteStreamJoin is the join in SQLite: a click joins a view of its key
// when its time is from 3s before to 7s after the view's.
func sqliteStreamJoin(t *testing.T, events []ssEvent, typ string) []string {
	t.Helper()
	script := `
import json, sqlite3, sys
events = json.load(sys.stdin)
db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE v (id TEXT, k TEXT, t INTEGER)")
db.execute("CREATE TABLE c (id TEXT, k TEXT, t INTEGER)")
for e in events:
    db.execute("INSERT INTO %s VALUES (?, ?, ?)" % ("c" if e["click"] else "v"), (e["id"], e["k"], e["t"]))
on = "v.k = c.k AND c.t BETWEEN v.t - 3000 AND v.t + 7000"
q = "SELECT v.k, v.id, c.id FROM v LEFT JOIN c ON " + on
if "` + typ + `" == "outer":
    q += " UNION ALL SELECT c.k, NULL, c.id FROM c WHERE NOT EXISTS (SELECT 1 FROM v WHERE " + on + ")"
for row in db.execute(q):
    print("|".join(str(c) for c in row))
`
	out := sqlitetest.Rows(t, script, events)
	slices.Sort(out)
	return out
}
