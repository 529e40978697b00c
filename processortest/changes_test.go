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

const tiersYAML = "../testdata/tables/spend_tiers.yaml"

func table(d *Driver, topic string) string { return strings.Join(d.Table(topic), "\n") }

// A user who moves between tiers leaves the old tier's row and joins the
// new one's; a deleted user leaves the table; a tier left without users
// is deleted (a tombstone); a change that keeps a user in its tier with
// the same contribution outputs nothing.
func TestRetractingAggregateOverTable(t *testing.T) {
	d := Load(t, tiersYAML)
	at := time.Unix(0, 0)
	d.Pipe("cons_user_spend", "u1", `{"spend": 50, "country": "NL"}`, at)
	d.Pipe("cons_user_spend", "u2", `{"spend": 70.5, "country": "DE"}`, at)
	d.Pipe("cons_user_spend", "u3", `{"spend": 500, "country": "NL"}`, at)
	d.Commit()
	want := `bronze	{"countries":2,"key":"bronze","spend":120.50,"users":2}
silver	{"countries":1,"key":"silver","spend":500.00,"users":1}`
	if got := table(d, "tiers"); got != want {
		t.Fatalf("tiers =\n%s\nwant\n%s", got, want)
	}
	n := len(d.Records("tiers"))
	d.Pipe("cons_user_spend", "u1", `{"spend": 50, "country": "NL"}`, at) // the same row again
	d.Commit()
	if got := len(d.Records("tiers")); got != n {
		t.Errorf("an unchanged row output %d records, want none", got-n)
	}
	d.Pipe("cons_user_spend", "u1", `{"spend": 150, "country": "FR"}`, at) // bronze -> silver
	d.PipeTo("cons_user_spend", 0, []byte("u2"), nil, at)                  // deleted
	d.Commit()
	want = `silver	{"countries":2,"key":"silver","spend":650.00,"users":2}`
	if got := table(d, "tiers"); got != want {
		t.Fatalf("tiers =\n%s\nwant\n%s", got, want)
	}
	recs := d.Records("tiers")
	if last := recs[len(recs)-1]; string(last.Key) != "bronze" || last.Value != nil {
		t.Errorf("last record %s=%s, want the tombstone of bronze (its last user left)", last.Key, last.Value)
	}
}

// An aggregate's rows are a table: an aggregate over them retracts, and a
// filter after an aggregate is SQL's HAVING: a row that stops qualifying
// is deleted with a tombstone, one that never qualified outputs nothing.
func TestHavingDeletesRowsThatStopQualifying(t *testing.T) {
	d := Load(t, "../testdata/tables/spend_tiers_having.yaml")
	at := time.Unix(0, 0)
	d.Pipe("events", "u1", `{"amount": 20}`, at)
	d.Pipe("events", "u2", `{"amount": 30}`, at)
	d.Pipe("events", "u3", `{"amount": 150}`, at) // silver alone: never qualifies
	d.Commit()
	if got, want := table(d, "tiers"), `bronze	{"key":"bronze","spend":50.00,"users":2}`; got != want {
		t.Fatalf("tiers =\n%s\nwant\n%s", got, want)
	}
	for _, r := range d.Records("tiers") {
		if string(r.Key) == "silver" {
			t.Errorf("silver output %s, want nothing: it never had two users", r.Value)
		}
	}
	d.Pipe("events", "u1", `{"amount": 100}`, at) // u1: 120, to silver
	d.Commit()
	if got, want := table(d, "tiers"), `silver	{"key":"silver","spend":270.00,"users":2}`; got != want {
		t.Fatalf("tiers =\n%s\nwant\n%s", got, want)
	}
	recs := d.Records("tiers")
	var tail []string
	for _, r := range recs[len(recs)-2:] {
		tail = append(tail, fmt.Sprintf("%s=%s", r.Key, r.Value))
	}
	if got, want := strings.Join(tail, " "), `bronze= silver={"key":"silver","spend":270.00,"users":2}`; got != want {
		t.Errorf("last records %s, want %s", got, want)
	}
}

// visitorsYAML counts the distinct users of the visits of each group
// (group_by groupBy) in column visitors, and has one more column.
func visitorsYAML(groupBy, column string) string {
	return `name: p
sources: [{name: visits, topic: visits}]
steps:
  - name: per-page
    aggregate:
      group_by: ` + groupBy + `
      columns:
        visitors: {fn: count_distinct, of: value.user}
        ` + column + `
sinks: [{name: out, topic: out}]
`
}

// count_distinct counts distinct values (1.5 and 1.50 are one), on a
// stream and, retracting, on a table.
func TestCountDistinct(t *testing.T) {
	d := New(t, visitorsYAML("value.page", "prices: {fn: count_distinct, of: value.price}"))
	at := time.Unix(0, 0)
	for _, v := range []string{
		`{"page": "a", "user": "x", "price": 1.5}`,
		`{"page": "a", "user": "y", "price": 1.50}`,
		`{"page": "a", "user": "x", "price": 2}`,
		`{"page": "a", "user": null, "price": null}`,
		`{"page": "b", "user": "x", "price": 1}`,
	} {
		d.Pipe("visits", "", v, at)
	}
	d.Commit()
	want := `a	{"key":"a","prices":2,"visitors":2}
b	{"key":"b","prices":1,"visitors":1}`
	if got := table(d, "out"); got != want {
		t.Errorf("out =\n%s\nwant\n%s", got, want)
	}

	// On a table: a value leaves the set only when no row holds it.
	d = Load(t, tiersYAML)
	d.Pipe("cons_user_spend", "u1", `{"spend": 1, "country": "NL"}`, at)
	d.Pipe("cons_user_spend", "u2", `{"spend": 2, "country": "NL"}`, at)
	d.Pipe("cons_user_spend", "u3", `{"spend": 3, "country": "BE"}`, at)
	d.Pipe("cons_user_spend", "u1", `{"spend": 1, "country": "DE"}`, at)
	d.Commit()
	if got, want := table(d, "tiers"), `bronze	{"countries":3,"key":"bronze","spend":6.00,"users":3}`; got != want {
		t.Errorf("tiers =\n%s\nwant\n%s", got, want)
	}
	d.PipeTo("cons_user_spend", 0, []byte("u2"), nil, at)
	d.Commit()
	if got, want := table(d, "tiers"), `bronze	{"countries":2,"key":"bronze","spend":4.00,"users":2}`; got != want {
		t.Errorf("tiers =\n%s\nwant\n%s", got, want)
	}
}

// Retractions are state like the rest: an abort drops the table updates
// and the group changes they made; a crash restores both the table and the
// groups from what was committed, so later changes subtract what the
// groups really hold.
func TestRetractionAbortAndCrash(t *testing.T) {
	d := Load(t, tiersYAML)
	at := time.Unix(0, 0)
	d.Pipe("cons_user_spend", "u1", `{"spend": 50, "country": "NL"}`, at)
	d.Pipe("cons_user_spend", "u2", `{"spend": 60, "country": "NL"}`, at)
	d.Commit()
	d.Pipe("cons_user_spend", "u1", `{"spend": 5000, "country": "NL"}`, at)
	d.Abort()
	d.Pipe("cons_user_spend", "u2", `{"spend": 6000, "country": "NL"}`, at)
	d.Crash()
	d.Pipe("cons_user_spend", "u1", `{"spend": 500, "country": "NL"}`, at) // bronze -> silver
	d.Commit()
	want := `bronze	{"countries":1,"key":"bronze","spend":60.00,"users":1}
silver	{"countries":1,"key":"silver","spend":500.00,"users":1}`
	if got := table(d, "tiers"); got != want {
		t.Errorf("tiers =\n%s\nwant\n%s", got, want)
	}
	d.Crash()
	d.PipeTo("cons_user_spend", 0, []byte("u2"), nil, at)
	d.Commit()
	if got, want := table(d, "tiers"), `silver	{"countries":1,"key":"silver","spend":500.00,"users":1}`; got != want {
		t.Errorf("after a crash and a delete, tiers =\n%s\nwant\n%s", got, want)
	}
	// The deleted group stays deleted across a crash (a changelog
	// tombstone): a new user starts it afresh.
	d.Crash()
	d.Pipe("cons_user_spend", "u3", `{"spend": 1, "country": "BE"}`, at)
	d.Commit()
	if got, want := table(d, "tiers"), `bronze	{"countries":1,"key":"bronze","spend":1.00,"users":1}
silver	{"countries":1,"key":"silver","spend":500.00,"users":1}`; got != want {
		t.Errorf("after a crash, a deleted group's new row =\n%s\nwant\n%s", got, want)
	}
}

// tierRow is a row of a tiers sink (Countries stays 0 where the pipeline
// has no such column).
type tierRow struct {
	Key       string
	Users     int
	Spend     json.Number
	Countries int
}

// tierRows is the tiers table of d as the SQLite scripts print theirs:
// each row as line gives it, sorted.
func tierRows(t *testing.T, d *Driver, line func(tierRow) string) []string {
	t.Helper()
	var rows []string
	for _, kv := range d.Table("tiers") {
		_, v, _ := strings.Cut(kv, "\t")
		var r tierRow
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, line(r))
	}
	slices.Sort(rows)
	return rows
}

// userSpend is one generated change of cons_user_spend.
type userSpend struct {
	Seq     int     `json:"seq"`
	User    string  `json:"user"`
	Deleted bool    `json:"deleted"`
	Spend   float64 `json:"spend"`
	Country string  `json:"country"`
}

// Users per spend tier over generated changes of cons_user_spend (users
// created, moved between tiers, deleted), in three partitions, with
// aborts and crashes on the way, against SQLite's GROUP BY over the
// latest row of each user.
func TestSpendTiersAgainstSQLite(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 6))
	var changes []userSpend
	for i := range 4000 {
		c := userSpend{Seq: i, User: fmt.Sprintf("u%d", rng.IntN(150))}
		if rng.IntN(8) == 0 {
			c.Deleted = true
		} else {
			// Cents, across the tier boundaries.
			c.Spend = float64(rng.IntN(200_000)) / 100
			c.Country = []string{"NL", "DE", "BE", "FR", "ES"}[rng.IntN(5)]
		}
		changes = append(changes, c)
	}
	d := Load(t, tiersYAML, Partitions(3))
	at := time.Unix(0, 0)
	pipeBatches(d, rng, changes, 80, func(c userSpend) {
		if c.Deleted {
			d.PipeTo("cons_user_spend", d.partition("cons_user_spend", []byte(c.User)), []byte(c.User), nil, at)
			return
		}
		d.Pipe("cons_user_spend", c.User, fmt.Sprintf(`{"spend": %.2f, "country": %q}`, c.Spend, c.Country), at)
	}, nil)
	got := tierRows(t, d, func(r tierRow) string {
		return fmt.Sprintf("%s|%d|%s|%d", r.Key, r.Users, r.Spend, r.Countries)
	})
	const script = `
import json, sqlite3, sys
changes = json.load(sys.stdin)
db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE spend (user TEXT PRIMARY KEY, cents INTEGER, country TEXT)")
for c in changes:
    if c["deleted"]:
        db.execute("DELETE FROM spend WHERE user = ?", (c["user"],))
    else:
        db.execute("INSERT OR REPLACE INTO spend VALUES (?, ?, ?)", (c["user"], round(c["spend"] * 100), c["country"]))
q = """
SELECT tier, COUNT(*), SUM(cents), COUNT(DISTINCT country) FROM (
  SELECT *, CASE WHEN cents >= 100000 THEN 'gold' WHEN cents >= 10000 THEN 'silver' ELSE 'bronze' END AS tier
  FROM spend) GROUP BY tier
"""
for tier, users, cents, countries in db.execute(q):
    print("%s|%d|%d.%02d|%d" % (tier, users, cents // 100, cents % 100, countries))
`
	want := sqlitetest.Rows(t, script, changes)
	if len(want) != 3 {
		t.Fatalf("SQLite found tiers %v: the generator should fill all three", want)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tiers:\n%s\nSQLite:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// An aggregate's rows are a table a join can look records up in, in the
// same pipeline: each order meets its user's row as the task has it when
// the order is processed (the spend so far), or null before any.
func TestJoinWithAggregateRows(t *testing.T) {
	d := New(t, pipelineYAML("join/aggregate_rows.yaml", "TYPE", "left",
		"OUTPUT", `{"order": value.id, "spend": table == null ? null : table.spend, "big": table != null && table.spend > 100}`), Partitions(3))
	at := time.Unix(0, 0)
	d.Pipe("orders", "u1", `{"id": 1}`, at)
	d.Commit()
	d.Pipe("events", "", `{"user": "u1", "amount": 60.5}`, at)
	d.Pipe("events", "", `{"user": "u2", "amount": 10}`, at)
	d.Commit()
	d.Pipe("orders", "u1", `{"id": 2}`, at)
	d.Pipe("orders", "u2", `{"id": 3}`, at)
	d.Commit()
	d.Pipe("events", "", `{"user": "u1", "amount": 60}`, at)
	d.Commit()
	d.Crash()
	d.Pipe("orders", "u1", `{"id": 4}`, at)
	d.Commit()
	want := `u1 {"big":false,"order":1,"spend":null}
u1 {"big":false,"order":2,"spend":60.5}
u1 {"big":true,"order":4,"spend":120.5}
u2 {"big":false,"order":3,"spend":10}`
	lines := strings.Split(values(d, "out"), "\n")
	slices.Sort(lines) // partitions interleave
	if got := strings.Join(lines, "\n"); got != want {
		t.Errorf("out =\n%s\nwant\n%s", got, want)
	}
}

// A count_distinct set is bounded: the value past topology.MaxDistinct
// fails its record (a bad record), and a failing record leaves no value
// in the set.
func TestCountDistinctBoundAndUndo(t *testing.T) {
	d := New(t, visitorsYAML("key", "spent: {fn: sum, of: value.x}"))
	at := time.Unix(0, 0)
	d.Pipe("visits", "a", `{"user": "u0", "x": 1}`, at)
	// visitors counts u1, then spent fails: the record leaves no trace.
	if err := d.PipeError("visits", "a", `{"user": "u1", "x": "one"}`, at); !strings.Contains(err.Error(), "spent") {
		t.Errorf("error %v, want it to name column spent", err)
	}
	d.Pipe("visits", "a", `{"user": "u0", "x": 1}`, at)
	d.Commit()
	if got, want := table(d, "out"), `a	{"key":"a","spent":2,"visitors":1}`; got != want {
		t.Fatalf("out = %s, want %s (the failed record's user must not count)", got, want)
	}
	for i := 1; i < 10000; i++ {
		d.Pipe("visits", "a", fmt.Sprintf(`{"user": "u%d", "x": 0}`, i), at)
	}
	err := d.PipeError("visits", "a", `{"user": "one too many", "x": 0}`, at)
	if !strings.Contains(err.Error(), "count_distinct holds 10000 distinct values") {
		t.Errorf("error %v, want the bound", err)
	}
	d.Pipe("visits", "a", `{"user": "u7", "x": 0}`, at) // a value it holds still counts
	d.Commit()
	if got, want := table(d, "out"), `a	{"key":"a","spent":2,"visitors":10000}`; got != want {
		t.Errorf("out = %s, want %s", got, want)
	}
}

// tierCountYAML counts the users of each tier of the spend table (step
// tiers), with one more line of aggregate settings agg (or none), then
// the step after it.
func tierCountYAML(agg, step string) string {
	return `name: p
sources: [{name: spend, topic: spend, table: true}]
steps:
  - name: tiers
    from: spend
    aggregate:
      group_by: value.tier
      columns: {users: {fn: count}}
      ` + agg + `
  - ` + step + `
sinks: [{name: out, topic: out}]
`
}

// HAVING with emit: on_commit: the row as it stands at commit is compared
// with the one output at the previous commit, so a group that qualified
// and stops within one transaction is deleted once, and one that
// qualifies only in the middle of a transaction outputs nothing.
func TestHavingOnCommit(t *testing.T) {
	d := New(t, tierCountYAML("emit: on_commit", "{name: having, filter: value.users >= 2}"))
	at := time.Unix(0, 0)
	d.Pipe("spend", "u1", `{"tier": "a"}`, at)
	d.Pipe("spend", "u2", `{"tier": "a"}`, at)
	d.Pipe("spend", "u3", `{"tier": "b"}`, at)
	d.Commit()
	d.Pipe("spend", "u1", `{"tier": "b"}`, at) // b qualifies, a stops
	d.Pipe("spend", "u2", `{"tier": "b"}`, at)
	d.Pipe("spend", "u3", `{"tier": "c"}`, at) // b back to 2
	d.Commit()
	if got, want := values(d, "out"), `a {"key":"a","users":2}
a 
b {"key":"b","users":2}`; got != sortedLines(want, got) {
		t.Errorf("out =\n%s\nwant (in any order of keys)\n%s", got, want)
	}
}

// sortedLines returns want if got holds the same lines in another order
// that keeps each key's records in order, else got's lines differ anyway.
func sortedLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	slices.Sort(w)
	slices.Sort(g)
	if strings.Join(w, "\n") == strings.Join(g, "\n") {
		return got
	}
	return want
}

// purchase is one generated event of the HAVING differential test.
type purchase struct {
	User  string `json:"user"`
	Cents int    `json:"cents"`
}

// The tiers of at least two users, over each user's spend summed from a
// stream of purchases and refunds (an aggregate of an aggregate's rows,
// then HAVING), in three partitions with aborts and crashes, against
// SQLite: the upsert table the sink holds, tombstones applied, is the
// query's answer.
func TestHavingAgainstSQLite(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 13))
	var events []purchase
	for range 3000 {
		// Each user's spend walks at random, so users cross tiers
		// and the narrow silver tier keeps gaining and losing its
		// second user.
		events = append(events, purchase{User: fmt.Sprintf("u%d", rng.IntN(12)), Cents: rng.IntN(60_001) - 30_000})
	}
	d := Load(t, "../testdata/tables/spend_tiers_having.yaml", Partitions(3))
	at := time.Unix(0, 0)
	sawTombstone := false
	pipeBatches(d, rng, events, 60, func(e purchase) {
		sign := ""
		if e.Cents < 0 {
			sign = "-"
		}
		d.Pipe("events", e.User, fmt.Sprintf(`{"amount": %s%d.%02d}`, sign, abs(e.Cents)/100, abs(e.Cents)%100), at)
	}, func() {
		for _, r := range d.Records("tiers") {
			sawTombstone = sawTombstone || r.Value == nil
		}
	})
	got := tierRows(t, d, func(r tierRow) string {
		return fmt.Sprintf("%s|%d|%s", r.Key, r.Users, r.Spend)
	})
	const script = `
import json, sqlite3, sys
db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE events (user TEXT, cents INTEGER)")
db.executemany("INSERT INTO events VALUES (?, ?)", [(e["user"], e["cents"]) for e in json.load(sys.stdin)])
q = """
WITH cons_user_spend AS (SELECT user, SUM(cents) AS cents FROM events GROUP BY user)
SELECT tier, COUNT(*), SUM(cents) FROM (
  SELECT *, CASE WHEN cents >= 100000 THEN 'gold' WHEN cents >= 10000 THEN 'silver' ELSE 'bronze' END AS tier
  FROM cons_user_spend) GROUP BY tier HAVING COUNT(*) >= 2
"""
for tier, users, cents in db.execute(q):
    sign = "-" if cents < 0 else ""
    print("%s|%d|%s%d.%02d" % (tier, users, sign, abs(cents) // 100, abs(cents) % 100))
`
	want := sqlitetest.Rows(t, script, events)
	if len(want) < 2 {
		t.Fatalf("SQLite found tiers %v: the generator should fill several", want)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tiers:\n%s\nSQLite:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !sawTombstone {
		t.Error("no tier ever stopped qualifying: the generator should move users across the threshold")
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// HAVING right after an aggregate of a stream, through a map of the rows:
// a refund that takes a user below the bar deletes the user's row.
func TestHavingAfterStreamAggregate(t *testing.T) {
	d := New(t, `name: p
sources: [{name: events, topic: events}]
steps:
  - name: per-user
    aggregate:
      group_by: key
      columns: {spend: {fn: sum, of: value.amount}}
  - name: shaped
    map: '{"user": value.key, "big": value.spend >= 100}'
  - name: having
    filter: value.big
sinks: [{name: out, topic: out}]
`)
	at := time.Unix(0, 0)
	d.Pipe("events", "u1", `{"amount": 150}`, at)
	d.Pipe("events", "u2", `{"amount": 50}`, at) // never big: nothing
	d.Pipe("events", "u1", `{"amount": 10}`, at) // still big: the row again
	d.Pipe("events", "u1", `{"amount": -100}`, at)
	d.Commit()
	want := `u1 {"big":true,"user":"u1"}
u1 {"big":true,"user":"u1"}
u1 `
	if got := values(d, "out"); got != want {
		t.Errorf("out =\n%s\nwant\n%s", got, want)
	}
}

// set_headers on a deleted row evaluates on the row it deletes, so a
// HAVING tombstone is not a bad record.
func TestSetHeadersOnDeletedRow(t *testing.T) {
	d := New(t, tierCountYAML("", "{name: tagged, set_headers: {tier: value.key}}"))
	at := time.Unix(0, 0)
	d.Pipe("spend", "u1", `{"tier": "a"}`, at)
	d.PipeTo("spend", 0, []byte("u1"), nil, at)
	d.Commit()
	var got []string
	for _, r := range d.Records("out") {
		got = append(got, fmt.Sprintf("%s=%s tier=%s", r.Key, r.Value, r.Headers[0].Value))
	}
	if want := `a={"key":"a","users":1} tier=a a= tier=a`; strings.Join(got, " ") != want {
		t.Errorf("out = %s, want %s", strings.Join(got, " "), want)
	}
}

// A table-table join's rows are a table too: an aggregate over them
// retracts as users change plans, lose their plan or are deleted, and as
// plans change tier.
func TestAggregateOverTableJoin(t *testing.T) {
	d := New(t, `name: p
sources:
  - {name: users, topic: users, table: true}
  - {name: plans, topic: plans, table: true}
steps:
  - name: user-plan
    from: users
    join:
      table: plans
      type: left
      output: '{"tier": table == null ? "none" : table.tier}'
  - name: per-tier
    aggregate:
      group_by: value.tier
      columns: {users: {fn: count}}
sinks: [{name: out, topic: out}]
`, Partitions(2))
	at := time.Unix(0, 0)
	for _, u := range []string{"u1", "u2", "u3"} {
		d.Pipe("users", u, `{}`, at)
	}
	d.Pipe("plans", "u1", `{"tier": "gold"}`, at)
	d.Pipe("plans", "u2", `{"tier": "gold"}`, at)
	d.Commit()
	if got, want := table(d, "out"), `gold	{"key":"gold","users":2}
none	{"key":"none","users":1}`; got != want {
		t.Fatalf("out =\n%s\nwant\n%s", got, want)
	}
	d.Pipe("plans", "u2", `{"tier": "basic"}`, at)
	d.PipeTo("plans", d.partition("plans", []byte("u1")), []byte("u1"), nil, at) // u1 loses its plan
	d.PipeTo("users", d.partition("users", []byte("u3")), []byte("u3"), nil, at) // u3 deleted
	d.Commit()
	d.Crash()
	d.Pipe("users", "u4", `{}`, at)
	d.Commit()
	if got, want := table(d, "out"), `basic	{"key":"basic","users":1}
none	{"key":"none","users":2}`; got != want {
		t.Errorf("out =\n%s\nwant\n%s", got, want)
	}
}
