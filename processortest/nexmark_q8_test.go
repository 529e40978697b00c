package processortest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exactly-dev/exactly/internal/sqlitetest"
)

// q8Event is one generated event of the q8 test, in processing order.
type q8Event struct {
	Person   bool   `json:"is_person"`
	ID       int    `json:"id"` // person id, or auction id
	Name     string `json:"name"`
	Seller   int    `json:"seller"`
	DateTime int64  `json:"date_time"` // ms
}

// Nexmark q8 (a window join) over generated persons and auctions, in three
// partitions, each stream out of order by up to its grace, with commits,
// aborts and crashes on the way, checked against SQLite's answer over the
// same events.
func TestNexmarkQ8AgainstSQLite(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	var events []q8Event
	now, persons := int64(0), 0
	for range 4000 {
		now += int64(rng.IntN(40)) // about 50 events a second
		// Each stream is late by up to 5s (the grace) behind its own
		// newest time, never more: nothing is late, so SQL's answer
		// is the whole answer.
		at := now - int64(rng.IntN(5000))
		if rng.IntN(3) == 0 {
			persons++
			events = append(events, q8Event{Person: true, ID: persons, Name: fmt.Sprintf("p%d", persons), DateTime: at})
			continue
		}
		// Sellers: mostly recent persons, some older or unknown.
		seller := persons - rng.IntN(60) + 5
		events = append(events, q8Event{ID: len(events), Seller: seller, DateTime: at})
	}
	// Each side out of order by at most its grace: clamp to the side's
	// running maximum minus 5s.
	var hi [2]int64
	for i := range events {
		s := 0
		if events[i].Person {
			s = 1
		}
		events[i].DateTime = max(events[i].DateTime, hi[s]-5000)
		hi[s] = max(hi[s], events[i].DateTime)
	}

	want := sqliteQ8(t, events)
	if len(want) < 100 {
		t.Fatalf("SQLite found %d rows: the generator makes too few matches to test anything", len(want))
	}
	file, err := os.ReadFile("../testdata/nexmark/q8.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// As written (auctions keyed by seller: the topics are
	// co-partitioned), and with auctions keyed by auction id and a key
	// step by seller (both sides through the join's repartition topic,
	// event time from the upstream partitions' watermarks).
	rekeyed := strings.Replace(strings.Replace(string(file), "steps:\n", "steps:\n  - {name: by-seller, from: auctions, key: 'string(int(value.seller))'}\n", 1),
		"stream: auctions", "stream: by-seller", 1)
	for _, tc := range []struct {
		name, yaml string
		auctionKey func(e q8Event) string
	}{
		{"co-partitioned", string(file), func(e q8Event) string { return fmt.Sprint(e.Seller) }},
		{"rekeyed", rekeyed, func(e q8Event) string { return fmt.Sprintf("a%d", e.ID) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runQ8(t, rng, events, tc.yaml, tc.auctionKey, want)
		})
	}
}

func runQ8(t *testing.T, rng *rand.Rand, events []q8Event, yaml string, auctionKey func(q8Event) string, want []string) {
	d := New(t, yaml, Partitions(3))
	pipe := func(e q8Event) {
		at := time.UnixMilli(e.DateTime)
		if e.Person {
			d.Pipe("persons", fmt.Sprint(e.ID), fmt.Sprintf(`{"id":%d,"name":%q,"dateTime":%d}`, e.ID, e.Name, e.DateTime), at)
			return
		}
		d.Pipe("auctions", auctionKey(e), fmt.Sprintf(`{"id":%d,"seller":%d,"dateTime":%d}`, e.ID, e.Seller, e.DateTime), at)
	}
	pipeBatches(d, rng, events, 100, pipe, nil)
	d.Settle()

	var got []string
	for _, r := range d.Records("q8") {
		var m struct {
			ID        int
			Name      string
			Starttime int64
		}
		if err := json.Unmarshal(r.Value, &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d|%s|%d", m.ID, m.Name, m.Starttime))
	}
	slices.Sort(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("q8: %d rows, SQLite %d; first difference: %s", len(got), len(want), firstDiff(got, want))
	}
	if n := d.Counter("late", "with-auction"); n != 0 {
		t.Errorf("late = %v, want 0 (the generator stays within grace)", n)
	}
}

// sqliteQ8 is q8 in SQLite: persons and auctions grouped into 10s tumbling
// windows, joined on person id = seller and window start.
func sqliteQ8(t *testing.T, events []q8Event) []string {
	t.Helper()
	const script = `
import json, sqlite3, sys
events = json.load(sys.stdin)
db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE person (id INTEGER, name TEXT, date_time INTEGER)")
db.execute("CREATE TABLE auction (id INTEGER, seller INTEGER, date_time INTEGER)")
for e in events:
    if e["is_person"]:
        db.execute("INSERT INTO person VALUES (?, ?, ?)", (e["id"], e["name"], e["date_time"]))
    else:
        db.execute("INSERT INTO auction VALUES (?, ?, ?)", (e["id"], e["seller"], e["date_time"]))
q = """
SELECT p.id, p.name, p.starttime
FROM (SELECT id, name, date_time - date_time % 10000 AS starttime FROM person GROUP BY id, name, starttime) p
JOIN (SELECT seller, date_time - date_time % 10000 AS starttime FROM auction GROUP BY seller, starttime) a
  ON p.id = a.seller AND p.starttime = a.starttime
"""
for row in db.execute(q):
    print("|".join(str(c) for c in row))
`
	return sqlitetest.Rows(t, script, events)
}
