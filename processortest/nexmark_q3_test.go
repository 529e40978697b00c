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

// q3Event is one generated event of the q3 test: a version of a person
// or of an auction (or its delete), in processing order.
type q3Event struct {
	Person   bool   `json:"is_person"`
	ID       int    `json:"id"`
	Deleted  bool   `json:"deleted"`
	Name     string `json:"name"`
	City     string `json:"city"`
	State    string `json:"state"`
	Category int    `json:"category"`
	Seller   int    `json:"seller"`
}

// Nexmark q3 (testdata/nexmark/q3.yaml) over generated persons and
// auctions that are created, changed (a person moves, an auction changes
// category or seller) and deleted, on 3 partitions, with aborts and
// crashes on the way and the join's subscription and response partitions
// catching up in random order and amounts: at three points, once every
// record is delivered, the output read as a table (latest row per auction,
// tombstones delete) is what SQLite answers over the tables as they stand.
func TestNexmarkQ3AgainstSQLite(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 11))
	states := []string{"OR", "ID", "CA", "WA", "NY"}
	cities := []string{"Portland", "Boise", "Fresno", "Seattle", "Albany"}
	var events []q3Event
	for range 3000 {
		e := q3Event{Person: rng.IntN(3) == 0, Deleted: rng.IntN(12) == 0}
		if e.Person {
			e.ID = rng.IntN(25)
			i := rng.IntN(len(states))
			e.Name, e.City, e.State = fmt.Sprintf("p%d-%d", e.ID, rng.IntN(100)), cities[i], states[i]
		} else {
			e.ID = 1000 + rng.IntN(80)
			e.Category, e.Seller = 9+rng.IntN(3), rng.IntN(30) // some sellers never exist
		}
		events = append(events, e)
	}

	d := Load(t, "../testdata/nexmark/q3.yaml", Partitions(3))
	at := time.Unix(0, 0)
	pipe := func(e q3Event) {
		topic, key := "auctions", fmt.Sprint(e.ID)
		value := fmt.Sprintf(`{"id":%d,"category":%d,"seller":%d}`, e.ID, e.Category, e.Seller)
		if e.Person {
			topic = "persons"
			value = fmt.Sprintf(`{"id":%d,"name":%q,"city":%q,"state":%q}`, e.ID, e.Name, e.City, e.State)
		}
		if e.Deleted {
			d.PipeTo(topic, d.partition(topic, []byte(key)), []byte(key), nil, at)
			return
		}
		d.Pipe(topic, key, value, at)
	}
	internal := []string{"q3-with-seller-subscription", "q3-with-seller-response"}
	checks := []int{1000, 2000, len(events)}
	for i := 0; i < len(events); {
		n := min(1+rng.IntN(60), len(events)-i, checks[0]-i)
		for _, e := range events[i : i+n] {
			pipe(e)
		}
		switch rng.IntN(10) {
		case 0: // aborted: read again
			d.Abort()
			continue
		case 1: // crashed: read again after the restore
			d.Crash()
			continue
		}
		// Some internal partitions catch up, others lag.
		for range rng.IntN(4) {
			d.Deliver(internal[rng.IntN(2)], int32(rng.IntN(3)), rng.IntN(20))
		}
		d.Commit()
		i += n
		if i == checks[0] {
			d.Settle()
			checkQ3(t, d, events[:i])
			checks = checks[1:]
		}
	}
}

func checkQ3(t *testing.T, d *Driver, events []q3Event) {
	t.Helper()
	var got []string
	for _, line := range d.Table("q3") {
		key, v, _ := strings.Cut(line, "\t")
		var m struct {
			ID                int
			Name, City, State string
		}
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			t.Fatal(err)
		}
		if key != fmt.Sprint(m.ID) {
			t.Errorf("row %s keyed %s, want its auction id", v, key)
		}
		got = append(got, fmt.Sprintf("%d|%s|%s|%s", m.ID, m.Name, m.City, m.State))
	}
	slices.Sort(got)
	want := sqliteQ3(t, events)
	if len(want) < 5 {
		t.Fatalf("SQLite found %d rows: the generator makes too few matches to test anything", len(want))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("q3 after %d events: %d rows, SQLite %d; first difference: %s", len(events), len(got), len(want), firstDiff(got, want))
	}
}

// sqliteQ3 is q3 in SQLite over the tables as the events leave them: the
// latest version of each person and auction, unless it is a delete.
func sqliteQ3(t *testing.T, events []q3Event) []string {
	t.Helper()
	const script = `
import json, sqlite3, sys
events = json.load(sys.stdin)
db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT, city TEXT, state TEXT)")
db.execute("CREATE TABLE auction (id INTEGER PRIMARY KEY, category INTEGER, seller INTEGER)")
for e in events:
    table = "person" if e["is_person"] else "auction"
    db.execute(f"DELETE FROM {table} WHERE id = ?", (e["id"],))
    if e["deleted"]:
        continue
    if e["is_person"]:
        db.execute("INSERT INTO person VALUES (?, ?, ?, ?)", (e["id"], e["name"], e["city"], e["state"]))
    else:
        db.execute("INSERT INTO auction VALUES (?, ?, ?)", (e["id"], e["category"], e["seller"]))
q = """
SELECT A.id, P.name, P.city, P.state
FROM auction A JOIN person P ON A.seller = P.id
WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA')
"""
for row in db.execute(q):
    print("|".join(str(c) for c in row))
`
	return sqlitetest.Rows(t, script, events)
}
