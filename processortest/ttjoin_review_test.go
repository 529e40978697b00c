package processortest

import (
	"strings"
	"testing"
	"time"
)

// A left row whose on: fails (a bad record, skipped) is still the table's
// row: the table's topic is its store's changelog. The key's next row,
// a good one, must join: its old row never subscribed anywhere (on:
// failed for it then, as it does now), so there is nothing to
// unsubscribe, and failing the new row over the old one would make every
// later change of the key a bad record too.
func TestForeignKeyJoinAfterBadLeftRow(t *testing.T) {
	yaml := strings.Replace(foreignKeyJoinYAML("inner"),
		`on: 'has(value.seller) ? value.seller : null'`, `on: value.seller`, 1)
	d := New(t, yaml, Partitions(3))
	at := time.Unix(0, 0)
	d.Pipe("persons", "p1", `{"name":"Ada"}`, at)
	d.PipeError("auctions", "a1", `{"item":"lamp"}`, at) // no seller: on fails
	d.Pipe("auctions", "a1", `{"item":"lamp","seller":"p1"}`, at)
	d.Settle()
	if got, want := stream(d, "out"), "a1 {\"item\":\"lamp\",\"seller\":\"Ada\"}\n"; got != want {
		t.Errorf("output =\n%s\nwant\n%s", got, want)
	}
}

// The same for a table-table join's output: a row whose output failed
// was never emitted, so its delete has no row to tombstone and is not a
// bad record because the old row's output fails again.
func TestTableTableJoinDeleteAfterBadRow(t *testing.T) {
	d := New(t, tableJoinOutputYAML("inner", `{"user": value.name, "plan": table.tier}`))
	at := time.Unix(0, 0)
	d.Pipe("plans", "u1", `{"tier":"gold"}`, at)
	d.PipeError("users", "u1", `{"nom":"Ada"}`, at) // output fails: skipped
	d.PipeTo("users", d.partition("users", []byte("u1")), []byte("u1"), nil, at)
	d.Commit()
	if got := stream(d, "out"); got != "" {
		t.Errorf("output =\n%s\nwant nothing", got)
	}
}
