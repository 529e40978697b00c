package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/topology"
)

func ssInput(topic string, p int32, id int64, key string, ms int64) *kgo.Record {
	side := "l"
	if topic == ssRightTopic {
		side = "r"
	}
	r := ssRec(topic, ssRecord{ID: id, Side: side, Key: key}, time.UnixMilli(ms))
	r.Partition = p
	return r
}

// ssOut is a row of the join's sink: l and r are ids, 0 for none.
func ssOut(tt *ssTruth, l, r int64) *kgo.Record {
	row := map[string]*ssRecord{"l": nil, "r": nil}
	key := ""
	for side, id := range map[string]int64{"l": l, "r": r} {
		if id == 0 {
			continue
		}
		v, ok := tt.ids[id]
		if !ok {
			v = ssIn{ssRecord: ssRecord{ID: id, Side: side, Key: "a"}}
		}
		row[side], key = &v.ssRecord, v.Key
	}
	b, _ := json.Marshal(row)
	return &kgo.Record{Topic: ssJoinedTopic, Key: []byte(key), Value: b}
}

// TestSSJoinTruth: pairs within the bounds of one key and partition, and
// unmatched rows only for records with no partner whose close bucket
// ended before the task's final clock (the lower of its sides' highest
// times).
func TestSSJoinTruth(t *testing.T) {
	if ssBucket != 250 {
		t.Fatalf("ssBucket = %d, want 250 (within 1s + grace 1s, an eighth)", ssBucket)
	}
	left := []*kgo.Record{
		ssInput(ssLeftTopic, 0, 1, "a", 1000),
		ssInput(ssLeftTopic, 0, 3, "b", 1000), // no partner, closes at 3000 < 5000: unmatched
		ssInput(ssLeftTopic, 0, 5, "a", 5000), // no partner, window open at the end
		ssInput(ssLeftTopic, 0, 7, "d", 2900), // closes at 4900, its bucket at 5000: not swept yet
	}
	right := []*kgo.Record{
		ssInput(ssRightTopic, 0, 2, "a", 1800),  // pairs with 1 (1800 in [0, 2000])
		ssInput(ssRightTopic, 0, 4, "a", 3100),  // too late for 1, too early for 5; window open
		ssInput(ssRightTopic, 0, 6, "c", 20000), // the right side's highest
		ssInput(ssRightTopic, 1, 8, "b", 1000),  // another task: no partner of 3, no clock there
	}
	tt, err := buildSSTruth(left, right)
	if err != nil {
		t.Fatal(err)
	}
	want := map[ssPair]bool{{1, 2}: true, {3, 0}: true}
	if len(tt.want) != len(want) || tt.pairs != 1 || tt.unmatched != 1 {
		t.Fatalf("buildSSTruth = %v (%d pairs, %d unmatched), want %v", tt.want, tt.pairs, tt.unmatched, want)
	}
	for p := range want {
		if !tt.want[p] {
			t.Errorf("buildSSTruth lacks %v", p)
		}
	}
}

// TestCheckSSRows: each wanted row exactly once; a duplicate, a lost row,
// a row that is not wanted and a record of an aborted transaction are
// each counted.
func TestCheckSSRows(t *testing.T) {
	left := []*kgo.Record{ssInput(ssLeftTopic, 0, 1, "a", 1000), ssInput(ssLeftTopic, 0, 3, "b", 1000), ssInput(ssLeftTopic, 0, 5, "a", 9000)}
	right := []*kgo.Record{ssInput(ssRightTopic, 0, 2, "a", 1800), ssInput(ssRightTopic, 0, 4, "a", 3100), ssInput(ssRightTopic, 0, 6, "c", 9000)}
	tt, err := buildSSTruth(left, right)
	if err != nil {
		t.Fatal(err)
	}
	aborted := map[int64]bool{abortedIDBase: true}
	for _, c := range []struct {
		name                        string
		rows                        [][2]int64
		dups, lost, wrong, phantoms int
	}{
		{"exact", [][2]int64{{1, 2}, {3, 0}, {0, 4}}, 0, 0, 0, 0},
		{"duplicate pair", [][2]int64{{1, 2}, {3, 0}, {0, 4}, {1, 2}}, 1, 0, 0, 0},
		{"lost unmatched", [][2]int64{{1, 2}, {0, 4}}, 0, 1, 0, 0},
		{"null row before the match", [][2]int64{{1, 0}, {1, 2}, {3, 0}, {0, 4}}, 0, 0, 1, 0},
		{"out of bounds", [][2]int64{{1, 2}, {3, 0}, {0, 4}, {1, 4}}, 0, 0, 1, 0},
		{"unmatched before its window closed", [][2]int64{{1, 2}, {3, 0}, {0, 4}, {5, 0}}, 0, 0, 1, 0},
		{"aborted", [][2]int64{{1, 2}, {3, 0}, {0, 4}, {abortedIDBase, 0}}, 0, 0, 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out []*kgo.Record
			for i, r := range c.rows {
				rec := ssOut(tt, r[0], r[1])
				rec.Offset = int64(i)
				out = append(out, rec)
			}
			var rep Report
			checkSSRows(tt, aborted, out, &rep)
			got := []int{rep.SSJoinDuplicates, rep.SSJoinLost, rep.SSJoinWrong, rep.SSJoinPhantoms}
			want := []int{c.dups, c.lost, c.wrong, c.phantoms}
			for i, name := range []string{"duplicates", "lost", "wrong", "phantoms"} {
				if got[i] != want[i] {
					t.Errorf("checkSSRows %s = %d, want %d (examples %v)", name, got[i], want[i], rep.Examples)
				}
			}
		})
	}
}

// TestPipelineSSJoin: the chaos pipeline has the outer stream-stream join
// of the two streams, with the bounds the checker assumes and no
// idle_timeout (wall time would move its clock, and the truth would not
// be exact), to its sink.
func TestPipelineSSJoin(t *testing.T) {
	topo, err := topology.Parse("chaos.yaml", []byte(pipelineYAML(exactlyOnce)))
	if err != nil {
		t.Fatal(err)
	}
	var j *topology.Node
	for _, n := range topo.Steps {
		if n.Name == ssJoinStep {
			j = n
		}
	}
	if j == nil || j.Join == nil || j.Join.Stream == nil {
		t.Fatalf("the pipeline has no stream-stream join step %s", ssJoinStep)
	}
	sj := j.Join
	if sj.Type != topology.JoinOuter || sj.Stream.Name != ssRightTopic || sj.Before != ssWithin || sj.After != ssWithin || sj.Grace != ssGrace || sj.IdleTimeout != 0 {
		t.Errorf("join %s: %s with %s, within -%s/+%s, grace %s, idle_timeout %s; want outer with %s, within %s, grace %s, no idle_timeout",
			j.Name, sj.Type, sj.Stream.Name, sj.Before, sj.After, sj.Grace, sj.IdleTimeout, ssRightTopic, ssWithin, ssGrace)
	}
	if len(j.Outputs) != 1 || j.Outputs[0].Topic != ssJoinedTopic {
		t.Errorf("join %s feeds %v, want the sink of topic %s", j.Name, j.Outputs, ssJoinedTopic)
	}
	if ssJitter >= ssGrace {
		t.Errorf("jitter %s: want below the grace %s, or records may arrive late", ssJitter, ssGrace)
	}
}
