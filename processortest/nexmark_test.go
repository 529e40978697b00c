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

// nexEvent is one generated event of the q20 test, in processing order.
type nexEvent struct {
	Seq      int  `json:"seq"`
	Auction  bool `json:"is_auction"`
	ID       int  `json:"id"` // auction id (of the auction, or the one bid on)
	Deleted  bool `json:"deleted"`
	Category int  `json:"category"`
	Seller   int  `json:"seller"`
	Bidder   int  `json:"bidder"`
	Price    int  `json:"price"`
}

// Nexmark q20 over generated auctions (created, changed, deleted) and
// bids, with commits, an abort and a crash on the way, checked against
// SQLite's answer over the same events: each bid joins the latest
// version of its auction processed before it.
func TestNexmarkQ20AgainstSQLite(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 7))
	var events []nexEvent
	for i := range 3000 {
		id := rng.IntN(60)
		e := nexEvent{Seq: i, ID: id}
		if rng.IntN(4) == 0 {
			e.Auction = true
			e.Deleted = rng.IntN(10) == 0
			e.Category, e.Seller = 9+rng.IntN(3), rng.IntN(20)
		} else {
			e.Bidder, e.Price = rng.IntN(1000), 1+rng.IntN(10_000)
		}
		events = append(events, e)
	}

	d := Load(t, "../testdata/nexmark/q20.yaml", Partitions(3))
	at := time.Unix(0, 0)
	pipe := func(e nexEvent) {
		key := fmt.Sprint(e.ID)
		switch {
		case e.Auction && e.Deleted:
			d.PipeTo("auctions", d.partition("auctions", []byte(key)), []byte(key), nil, at)
		case e.Auction:
			d.Pipe("auctions", key, fmt.Sprintf(`{"id":%d,"category":%d,"seller":%d}`, e.ID, e.Category, e.Seller), at)
		default:
			d.Pipe("bids", key, fmt.Sprintf(`{"auction":%d,"bidder":%d,"price":%d}`, e.ID, e.Bidder, e.Price), at)
		}
	}
	pipeBatches(d, rng, events, 100, pipe, nil)

	var got []string
	for _, r := range d.Records("q20") {
		var m struct{ Auction, Bidder, Price, Category, Seller int }
		if err := json.Unmarshal(r.Value, &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d|%d|%d|%d|%d", m.Auction, m.Bidder, m.Price, m.Category, m.Seller))
	}
	slices.Sort(got)
	want := sqliteQ20(t, events)
	if len(want) < 100 {
		t.Fatalf("SQLite found %d rows: the generator makes too few matches to test anything", len(want))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("q20: %d rows, SQLite %d; first difference: %s", len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			return "missing " + want[i]
		case i >= len(want):
			return "extra " + got[i]
		case got[i] != want[i]:
			return fmt.Sprintf("got %s, want %s", got[i], want[i])
		}
	}
	return "none"
}

// sqliteQ20 is q20 as a temporal join in SQLite: a bid joins the auction
// version with the highest sequence number below its own, unless that
// version is a delete.
func sqliteQ20(t *testing.T, events []nexEvent) []string {
	t.Helper()
	const script = `
import json, sqlite3, sys
events = json.load(sys.stdin)
db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE auction (seq INTEGER, id INTEGER, deleted INTEGER, category INTEGER, seller INTEGER)")
db.execute("CREATE TABLE bid (seq INTEGER, auction INTEGER, bidder INTEGER, price INTEGER)")
for e in events:
    if e["is_auction"]:
        db.execute("INSERT INTO auction VALUES (?, ?, ?, ?, ?)", (e["seq"], e["id"], int(e["deleted"]), e["category"], e["seller"]))
    else:
        db.execute("INSERT INTO bid VALUES (?, ?, ?, ?)", (e["seq"], e["id"], e["bidder"], e["price"]))
q = """
SELECT b.auction, b.bidder, b.price, a.category, a.seller
FROM bid b JOIN auction a ON a.id = b.auction
 AND a.seq = (SELECT MAX(seq) FROM auction a2 WHERE a2.id = b.auction AND a2.seq < b.seq)
WHERE a.deleted = 0 AND a.category = 10
"""
for row in db.execute(q):
    print("|".join(str(c) for c in row))
`
	return sqlitetest.Rows(t, script, events)
}
