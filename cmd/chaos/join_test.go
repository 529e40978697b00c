package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/topology"
)

// The join checker finds each kind of wrong joined row, and nothing in a
// right run. Key k0's table (partition 0): version 1 at offset 10, 2 (a
// deletion) at 11, 3 at 12. Input records 1 to 4 are k0's, seq 1 to 4;
// record 1 was produced before the group committed any of the table,
// records 2 and 3 after it had committed offset 11 (version 1 applied),
// record 4 after offset 13 (all three).
func TestCheckJoined(t *testing.T) {
	gen := generated{
		aborted: map[int64]bool{99: true},
		tableWrites: []tableWrite{
			{key: "k0", ver: 1, partition: 0, offset: 10},
			{key: "k0", ver: 2, del: true, partition: 0, offset: 11},
			{key: "k0", ver: 3, partition: 0, offset: 12},
		},
		snapshots: []map[int32]int64{{0: 11}, {0: 13}},
		snapOf:    []int32{-1, -1, 0, 0, 1},
	}
	var in []inputValue
	for i := int64(1); i <= 4; i++ {
		in = append(in, inputValue{ID: i, Key: "k0", Seq: i})
	}
	tr := &truth{byID: map[int64]inputValue{}, byKey: map[string][]inputValue{"k0": in}}
	for _, v := range in {
		tr.byID[v.ID] = v
	}
	row := func(id int64, ver int64) *kgo.Record {
		r := "null"
		if ver != 0 {
			r = fmt.Sprintf(`{"key":"k0","ver":%d}`, ver)
		}
		v := tr.byID[id]
		if v.ID == 0 {
			v = inputValue{ID: id, Key: "k0", Seq: 1}
		}
		b, _ := json.Marshal(map[string]any{"id": v.ID, "key": v.Key, "seq": v.Seq, "row": json.RawMessage(r)})
		return &kgo.Record{Key: []byte("k0"), Value: b}
	}
	run := func(recs ...*kgo.Record) Report {
		var rep Report
		checkJoined("joined", recs, tr, buildTableTruth(gen.tableWrites), gen, &rep)
		return rep
	}

	// Right: no row, version 1, no row (the deletion), version 3.
	if rep := run(row(1, 0), row(2, 1), row(3, 0), row(4, 3)); rep.JoinRows != 4 || rep.JoinMatched != 2 || len(rep.joinViolations()) > 0 {
		t.Errorf("a right run: %d rows, %d matched, violations %v; want 4, 2, none", rep.JoinRows, rep.JoinMatched, rep.joinViolations())
	}
	for _, c := range []struct {
		name string
		recs []*kgo.Record
		want func(Report) int
	}{
		// Record 4 was produced after version 3 committed to the
		// group (no row fits record 2, though: version 2 deleted it).
		{"stale: no row after version 3 committed", []*kgo.Record{row(1, 0), row(2, 0), row(3, 0), row(4, 0)}, func(r Report) int { return r.JoinStale }},
		{"stale: version 1 after version 3 committed", []*kgo.Record{row(1, 0), row(2, 1), row(3, 1), row(4, 1)}, func(r Report) int { return r.JoinStale }},
		{"backwards: version 1 after version 3", []*kgo.Record{row(1, 0), row(2, 3), row(3, 1), row(4, 3)}, func(r Report) int { return r.JoinBackwards }},
		{"backwards: no row after version 3 (no later deletion)", []*kgo.Record{row(1, 0), row(2, 1), row(3, 3), row(4, 0)}, func(r Report) int { return r.JoinBackwards }},
		{"wrong: version 2 is a deletion", []*kgo.Record{row(1, 0), row(2, 2), row(3, 3), row(4, 3)}, func(r Report) int { return r.JoinWrongRows }},
		{"wrong: version 4 never written", []*kgo.Record{row(1, 0), row(2, 1), row(3, 3), row(4, 4)}, func(r Report) int { return r.JoinWrongRows }},
		{"phantom: a row of an aborted transaction", []*kgo.Record{row(1, 0), row(2, 1), row(3, 0), row(4, abortedVer)}, func(r Report) int { return r.JoinPhantoms }},
		{"phantom: an aborted input record", []*kgo.Record{row(1, 0), row(2, 1), row(3, 0), row(4, 3), row(99, 0)}, func(r Report) int { return r.JoinPhantoms }},
		{"duplicate", []*kgo.Record{row(1, 0), row(2, 1), row(2, 1), row(3, 0), row(4, 3)}, func(r Report) int { return r.JoinDuplicates }},
		{"lost", []*kgo.Record{row(1, 0), row(2, 1), row(4, 3)}, func(r Report) int { return r.JoinLost }},
	} {
		rep := run(c.recs...)
		if got := c.want(rep); got != 1 {
			t.Errorf("%s: counted %d, want 1 (violations %v)", c.name, got, rep.joinViolations())
		}
	}
}

// joinViolations are the join figures that are not 0.
func (r *Report) joinViolations() []string {
	var out []string
	for _, c := range r.joinChecks() {
		if c.value != 0 {
			out = append(out, fmt.Sprintf("%s: %d", c.name, c.value))
		}
	}
	return out
}

// A kill counts as during a table restore when the victim has its
// partitions and has not logged a restored table partition (the daemon's
// log lines, as slog's text handler writes them).
func TestTableRestoring(t *testing.T) {
	for _, c := range []struct {
		log  string
		want bool
	}{
		{"time=x level=INFO msg=started pipeline=chaos\n", false},
		{"time=x level=INFO msg=\"partitions assigned\" pipeline=chaos\n" +
			"time=x level=INFO msg=restored pipeline=chaos node=per-key topic=chaos-per-key-changelog partition=0 records=5\n", true},
		{"time=x level=INFO msg=\"partitions assigned\" pipeline=chaos\n" +
			"time=x level=INFO msg=restored pipeline=chaos node=rows topic=rows partition=0 records=5000\n", false},
	} {
		path := filepath.Join(t.TempDir(), "i1.1.log")
		if err := os.WriteFile(path, []byte(c.log), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := tableRestoring(path); got != c.want {
			t.Errorf("tableRestoring(%q) = %v, want %v", c.log, got, c.want)
		}
	}
}

// TestPipelineJoins: the chaos pipeline has both joins, left joins with the
// table source, the first reading partition p of `in` and of the table
// together, the second through the repartition topic the catch-up waits
// for, each to the sink the checker reads.
func TestPipelineJoins(t *testing.T) {
	topo, err := topology.Parse("chaos.yaml", []byte(pipelineYAML(exactlyOnce)))
	if err != nil {
		t.Fatal(err)
	}
	pl := topo.Plan
	if len(pl.Joins) != len(joins) {
		t.Fatalf("%d joins, want %d", len(pl.Joins), len(joins))
	}
	for i, j := range pl.Joins {
		n := j.Node
		if n.Name != joins[i].step || n.Join.Type != topology.JoinLeft || n.Join.Table.Topic != tableTopic || j.Table == nil {
			t.Errorf("join %d: %s, %s with %s; want %s, a left join with the table %s", i, n.Name, n.Join.Type, n.Join.Table.Topic, joins[i].step, tableTopic)
		}
		if got := j.Repartition != nil; got != (joins[i].rekey != "") {
			t.Errorf("join %s repartitions: %v, want %v", n.Name, got, !got)
		}
		if len(n.Outputs) != 1 || n.Outputs[0].Topic != joins[i].topic {
			t.Errorf("join %s feeds %v, want the sink of topic %s", n.Name, n.Outputs, joins[i].topic)
		}
	}
	if r := pl.Joins[1].Repartition; r == nil || r.Name != joinRepartitionTopic() {
		t.Errorf("the rekeyed join's repartition topic is %v, want %s", r, joinRepartitionTopic())
	}
	if groups := pl.CoPartitionGroups(); !slices.ContainsFunc(groups, func(g []string) bool {
		return slices.Contains(g, "in") && slices.Contains(g, tableTopic) && slices.Contains(g, joinRepartitionTopic())
	}) {
		t.Errorf("co-partition groups %v: want in, %s and %s together", groups, tableTopic, joinRepartitionTopic())
	}
}
