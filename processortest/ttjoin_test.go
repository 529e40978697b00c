package processortest

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateTableJoin = flag.Bool("update-ttjoin", false, "rewrite the table-table join golden files")

// tableJoinYAML is the shared table-table join pipeline with join type
// typ.
func tableJoinYAML(typ string) string {
	return pipelineYAML("join/table_join.yaml", "TYPE", typ)
}

// tableJoinOutputYAML is tableJoinYAML(typ) with the join's output
// expression output.
func tableJoinOutputYAML(typ, output string) string {
	const shared = `output: '{"user": value == null ? null : value.name, "plan": table == null ? null : table.tier}'`
	yaml := tableJoinYAML(typ)
	if !strings.Contains(yaml, shared) {
		panic("testdata/join/table_join.yaml no longer has the output line tableJoinOutputYAML replaces")
	}
	return strings.Replace(yaml, shared, "output: '"+output+"'", 1)
}

// stream is every record of topic, tombstones included, one per line.
func stream(d *Driver, topic string) string {
	var b strings.Builder
	for _, r := range d.Records(topic) {
		v := string(r.Value)
		if r.Value == nil {
			v = "<tombstone>"
		}
		b.WriteString(string(r.Key) + " " + v + "\n")
	}
	return b.String()
}

func goldenText(t *testing.T, got, path string) {
	t.Helper()
	if *updateTableJoin {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("output =\n%s\nwant (%s)\n%s", got, path, want)
	}
}

// A table-table join emits the joined row of a key whenever either table
// changes it, and a tombstone when the row stops existing: inner needs
// both sides, left the users side, outer either. Deletes on both sides,
// a delete of a key that never existed, an aborted transaction (its
// changes never happened) and a crash (uncommitted changes lost, the
// tables restored to what was committed) are in the script; the golden
// files hold every output record in order.
func TestTableTableJoin(t *testing.T) {
	for _, typ := range []string{"inner", "left", "outer"} {
		t.Run(typ, func(t *testing.T) {
			d := New(t, tableJoinYAML(typ))
			at := time.Unix(0, 0)
			del := func(topic, key string) { d.PipeTo(topic, 0, []byte(key), nil, at) }
			d.Pipe("users", "u1", `{"name":"Ada"}`, at)
			d.Pipe("plans", "u1", `{"tier":"gold"}`, at)
			d.Pipe("plans", "u2", `{"tier":"silver"}`, at)
			d.Commit()
			d.Pipe("users", "u1", `{"name":"Ada L."}`, at)
			del("plans", "u2")
			del("plans", "u1")
			d.Commit()
			d.Pipe("users", "u3", `{"name":"Bob"}`, at)
			d.Pipe("plans", "u3", `{"tier":"bronze"}`, at)
			d.Abort()
			del("users", "u1")
			del("users", "u9") // never existed
			d.Commit()
			d.Pipe("users", "u4", `{"name":"Cy"}`, at)
			d.Pipe("plans", "u4", `{"tier":"basic"}`, at)
			d.Crash()
			d.Pipe("plans", "u4", `{"tier":"premium"}`, at)
			d.Pipe("users", "u3", `{"name":"Bob"}`, at)
			d.Commit()
			d.Pipe("users", "u4", `{"name":"Cy"}`, at)
			del("plans", "u4")
			del("users", "u4")
			d.Commit()
			goldenText(t, stream(d, "out"), filepath.Join("..", "testdata", "join", "table_"+typ+".golden"))
		})
	}
}

// foreignKeyJoinYAML is the shared foreign-key join pipeline with join
// type typ.
func foreignKeyJoinYAML(typ string) string {
	return pipelineYAML("join/foreign_key.yaml", "TYPE", typ)
}

// A foreign-key join on 3 partitions: each auction joins the person its
// seller field names. Changes of a person re-emit every auction naming it;
// an auction moving to another seller joins the new one; deletes on
// either side tombstone (inner) or null the seller (left, person
// deleted); an aborted transaction and a crash leave no trace. Settle
// delivers the join's internal topics between steps.
func TestForeignKeyJoin(t *testing.T) {
	for _, typ := range []string{"inner", "left"} {
		t.Run(typ, func(t *testing.T) {
			d := New(t, foreignKeyJoinYAML(typ), Partitions(3))
			at := time.Unix(0, 0)
			del := func(topic, key string) { d.PipeTo(topic, d.partition(topic, []byte(key)), []byte(key), nil, at) }
			d.Pipe("persons", "p1", `{"name":"Ada"}`, at)
			d.Pipe("auctions", "a1", `{"item":"lamp","seller":"p1"}`, at)
			d.Pipe("auctions", "a2", `{"item":"desk","seller":"p2"}`, at) // no such person yet
			d.Pipe("auctions", "a3", `{"item":"rug"}`, at)                // no seller
			d.Settle()
			d.Pipe("persons", "p2", `{"name":"Bob"}`, at)
			d.Pipe("persons", "p1", `{"name":"Ada L."}`, at)
			d.Settle()
			d.Pipe("auctions", "a1", `{"item":"lamp","seller":"p2"}`, at)
			d.Pipe("auctions", "a2", `{"item":"desk","seller":"p1"}`, at)
			d.Settle()
			d.Pipe("persons", "p2", `{"name":"aborted"}`, at)
			d.Abort()
			d.Pipe("persons", "p1", `{"name":"lost in the crash"}`, at)
			d.Crash()
			del("persons", "p2")
			d.Settle()
			del("auctions", "a2")
			del("auctions", "a9") // never existed
			d.Settle()
			goldenText(t, stream(d, "out"), filepath.Join("..", "testdata", "join", "foreign_key_"+typ+".golden"))
		})
	}
}

// An output of null means the join has no row for the key: a row that
// stops qualifying is deleted (a tombstone), as a filter after the join
// would in SQL, and one that never qualified emits nothing.
func TestTableTableJoinNullOutput(t *testing.T) {
	d := New(t, tableJoinOutputYAML("inner", `table.tier == "gold" ? dyn({"user": value.name}) : null`))
	at := time.Unix(0, 0)
	d.Pipe("users", "u1", `{"name":"Ada"}`, at)
	d.Pipe("plans", "u1", `{"tier":"silver"}`, at) // never qualified: nothing
	d.Pipe("plans", "u1", `{"tier":"gold"}`, at)   // qualifies
	d.Pipe("users", "u1", `{"name":"Ada L."}`, at) // still does: an update
	d.Pipe("plans", "u1", `{"tier":"bronze"}`, at) // stops: a tombstone
	d.Pipe("users", "u1", `{"name":"Ada M."}`, at) // still not: nothing
	d.Commit()
	want := "u1 {\"user\":\"Ada\"}\nu1 {\"user\":\"Ada L.\"}\nu1 <tombstone>\n"
	if got := stream(d, "out"); got != want {
		t.Errorf("output =\n%s\nwant\n%s", got, want)
	}
}
