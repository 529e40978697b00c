package processortest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// pipelineYAML reads a pipeline shared by tests, path under testdata/,
// and fills in its placeholders: oldnew holds each placeholder and its
// text in turn.
func pipelineYAML(path string, oldnew ...string) string {
	b, err := os.ReadFile(filepath.Join("..", "testdata", path))
	if err != nil {
		panic(err) // the test data is part of the tree
	}
	return strings.NewReplacer(oldnew...).Replace(string(b))
}

// joinYAML is the shared enrich pipeline with join type typ.
func joinYAML(typ string) string {
	return pipelineYAML("join/enrich.yaml", "type: inner", "type: "+typ)
}

func values(d *Driver, topic string) string {
	var out []string
	for _, r := range d.Records(topic) {
		out = append(out, string(r.Key)+" "+string(r.Value))
	}
	return strings.Join(out, "\n")
}

// A stream-table join looks each order's key up in the customers table as
// the task has it when the order is processed: later changes of a row do
// not make earlier orders join again; a deleted row no longer matches;
// inner drops orders without a row, left outputs them with table null.
func TestStreamTableJoin(t *testing.T) {
	for _, tc := range []struct{ typ, want string }{
		{"inner", `c1 {"customer":"Ada","order":1}
c1 {"customer":"Ada L.","order":3}`},
		{"left", `c1 {"customer":"Ada","order":1}
c2 {"customer":null,"order":2}
c1 {"customer":"Ada L.","order":3}
c1 {"customer":null,"order":4}`},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			d := New(t, joinYAML(tc.typ))
			at := time.Unix(0, 0)
			d.Pipe("customers", "c1", `{"name":"Ada"}`, at)
			d.Pipe("orders", "c1", `{"id":1}`, at)
			d.Pipe("orders", "c2", `{"id":2}`, at) // no such customer
			d.Commit()
			d.Pipe("customers", "c1", `{"name":"Ada L."}`, at) // a change: order 1 stays as it was
			d.Pipe("orders", "c1", `{"id":3}`, at)
			d.PipeTo("customers", 0, []byte("c1"), nil, at) // a delete
			d.Pipe("orders", "c1", `{"id":4}`, at)
			d.Commit()
			if got := values(d, "out"); got != tc.want {
				t.Errorf("output =\n%s\nwant\n%s", got, tc.want)
			}
			if m, x := d.Counter("join_matches", "with-customer"), d.Counter("join_misses", "with-customer"); m != 2 || x != 2 {
				t.Errorf("join lookups: %v matches, %v misses; want 2 and 2", m, x)
			}
		})
	}
}

// The table is state like any other: an abort drops the table updates it
// read, a crash restores the table from its committed records.
func TestJoinTableAbortAndCrash(t *testing.T) {
	d := New(t, joinYAML("left"))
	at := time.Unix(0, 0)
	d.Pipe("customers", "c1", `{"name":"Ada"}`, at)
	d.Commit()
	d.Pipe("customers", "c1", `{"name":"aborted"}`, at)
	d.Abort()
	d.Pipe("orders", "c1", `{"id":1}`, at)
	d.Commit()
	d.Pipe("customers", "c1", `{"name":"lost in the crash"}`, at)
	d.Crash()
	d.Pipe("orders", "c1", `{"id":2}`, at)
	d.Commit()
	want := `c1 {"customer":"Ada","order":1}
c1 {"customer":"Ada","order":2}`
	if got := values(d, "out"); got != want {
		t.Errorf("output =\n%s\nwant\n%s", got, want)
	}
}

// A global table is read whole by every instance: a join with it needs no
// co-partitioning, so the records may be rekeyed first.
func TestGlobalTableJoin(t *testing.T) {
	d := Load(t, "../testdata/join/by_country.yaml", Partitions(3))
	at := time.Unix(0, 0)
	d.Pipe("countries", "fr", `{"name":"France"}`, at)
	d.Pipe("countries", "jp", `{"name":"Japan"}`, at)
	for i, c := range []string{"fr", "jp", "fr", "xx"} {
		d.Pipe("orders", fmt.Sprint(i), fmt.Sprintf(`{"id":%d,"country":"%s"}`, i, c), at)
	}
	d.Commit()
	want := []string{`fr {"country":"France","order":0}`, `fr {"country":"France","order":2}`, `jp {"country":"Japan","order":1}`}
	got := strings.Split(values(d, "out"), "\n")
	slices.Sort(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("output =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Orders keyed by order id, rekeyed by customer: the join regroups them
// through its repartition topic (keyed as the table's keys are), so each
// reaches the task holding its customer's row.
func TestJoinAfterRekey(t *testing.T) {
	rekeyed := strings.Replace(joinYAML("inner"), "  - name: with-customer\n", "  - {name: by-customer, from: orders, key: value.customer}\n  - name: with-customer\n", 1)
	d := New(t, rekeyed, Partitions(3))
	at := time.Unix(0, 0)
	for i := range 10 {
		d.Pipe("customers", fmt.Sprintf("c%d", i), fmt.Sprintf(`{"name":"n%d"}`, i), at)
	}
	d.Commit()
	for i := range 50 {
		d.Pipe("orders", fmt.Sprintf("o%d", i), fmt.Sprintf(`{"id":%d,"customer":"c%d"}`, i, i%10), at)
	}
	d.Commit()
	got := strings.Split(values(d, "out"), "\n")
	if len(got) != 50 {
		t.Fatalf("%d outputs, want 50:\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, line := range got {
		var key string
		var id int
		var name string
		if _, err := fmt.Sscanf(strings.NewReplacer(`{"customer":"`, " ", `","order":`, " ", "}", "").Replace(line), "%s %s %d", &key, &name, &id); err != nil {
			t.Fatalf("output %q: %v", line, err)
		}
		if key != fmt.Sprintf("c%d", id%10) || name != fmt.Sprintf("n%d", id%10) {
			t.Errorf("output %q: order %d joined with the wrong customer", line, id)
		}
	}
}
