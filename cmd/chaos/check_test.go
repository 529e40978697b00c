package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A small truth: key a gets records 1, 2, 3 (amounts 10, -5, 7), key b
// record 4 (amount 100); record 99 was aborted upstream.
var (
	checkInput = []inputValue{
		{ID: 1, Key: "a", Seq: 1, Amount: 10},
		{ID: 2, Key: "a", Seq: 2, Amount: -5},
		{ID: 4, Key: "b", Seq: 1, Amount: 100},
		{ID: 3, Key: "a", Seq: 3, Amount: 7},
	}
	checkGen = generated{committed: checkInput, aborted: map[int64]bool{99: true}}
)

func inRecords(vs []inputValue) []*kgo.Record {
	var rs []*kgo.Record
	for i, v := range vs {
		r := record(v)
		r.Offset = int64(i)
		rs = append(rs, r)
	}
	return rs
}

// upd is an output update: key, n, total, last_id, last_seq.
type upd struct {
	key             string
	n               int64
	total           string
	lastID, lastSeq int64
}

func outRecords(us []upd) []*kgo.Record {
	var rs []*kgo.Record
	for i, u := range us {
		v := fmt.Sprintf(`{"key":%q,"n":%d,"total":%s,"last_id":%d,"last_seq":%d}`, u.key, u.n, u.total, u.lastID, u.lastSeq)
		rs = append(rs, &kgo.Record{Topic: "out", Key: []byte(u.key), Value: []byte(v), Offset: int64(i)})
	}
	return rs
}

var exact = []upd{
	{"a", 1, "10", 1, 1},
	{"a", 2, "5", 2, 2},
	{"b", 1, "100", 4, 1},
	{"a", 3, "12", 3, 3},
}

func TestCheckUpdates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		updates []upd
		want    Report // only the figures checkUpdates sets
	}{
		{"exact", exact, Report{}},
		{"decimal total", []upd{{"a", 1, "10.00", 1, 1}, {"a", 2, "5.0", 2, 2}, {"b", 1, "100", 4, 1}, {"a", 3, "12", 3, 3}}, Report{}},
		{"update applied twice (replayed after a crash, state rolled back)",
			[]upd{exact[0], exact[1], exact[1], exact[2], exact[3]},
			Report{DuplicateUpdates: 1, DuplicateRecords: 1}},
		{"record applied twice (state kept, input replayed)",
			[]upd{exact[0], exact[1], {"a", 3, "0", 2, 2}, exact[2], {"a", 4, "7", 3, 3}},
			Report{DuplicateRecords: 1, WrongAggregates: 2, FinalMismatches: 1, FinalAbove: 1}},
		{"update lost",
			[]upd{exact[0], exact[2], {"a", 3, "12", 3, 3}},
			Report{LostUpdates: 1, LostRecords: 1}},
		{"record lost (state moved on without it)",
			[]upd{exact[0], exact[2], {"a", 2, "17", 3, 3}},
			Report{LostUpdates: 1, LostRecords: 1, WrongAggregates: 1, FinalMismatches: 1, FinalBelow: 1}},
		{"tail lost", exact[:3], Report{LostUpdates: 1, LostRecords: 1, FinalMismatches: 1, FinalBelow: 1}},
		{"phantom: aborted upstream record",
			append(append([]upd{}, exact...), upd{"a", 4, "1000000000012", 99, 0}),
			Report{Phantoms: 1, FinalMismatches: 1, FinalAbove: 1}},
		{"phantom: id never produced", append(append([]upd{}, exact...), upd{"a", 4, "12", 12345, 4}), Report{Phantoms: 1, FinalMismatches: 1, FinalAbove: 1}},
		{"phantom: another key's record", []upd{exact[0], exact[1], {"b", 1, "100", 3, 3}, exact[3]}, Report{Phantoms: 1, LostUpdates: 1, LostRecords: 1}},
		{"wrong sum", []upd{exact[0], {"a", 2, "6", 2, 2}, exact[2], exact[3]}, Report{WrongAggregates: 1}},
		{"wrong last_seq", []upd{exact[0], {"a", 2, "5", 2, 1}, exact[2], exact[3]}, Report{WrongAggregates: 1}},
		{"order", []upd{exact[1], exact[0], exact[2], exact[3]}, Report{OrderViolations: 1}},
		{"exponent", []upd{{"a", 1, "1e1", 1, 1}, exact[1], exact[2], exact[3]}, Report{Malformed: 1, LostUpdates: 1, LostRecords: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rep Report
			tr := buildTruth(inRecords(checkInput), checkGen, &rep)
			if rep.InputMismatches != 0 || rep.InputRecords != 4 || rep.InputKeys != 2 {
				t.Fatalf("buildTruth: mismatches %d, records %d, keys %d; want 0, 4, 2: %v", rep.InputMismatches, rep.InputRecords, rep.InputKeys, rep.Examples)
			}
			rep = Report{}
			checkUpdates(outRecords(tc.updates), tr, checkGen, &rep)
			got := figures(rep)
			if want := figures(tc.want); got != want {
				t.Errorf("checkUpdates = %s\nwant            %s\nexamples: %v", got, want, rep.Examples)
			}
		})
	}
}

func figures(r Report) string {
	return fmt.Sprintf("dupU %d lostU %d dupR %d lostR %d phantom %d wrong %d order %d final %d below %d above %d malformed %d",
		r.DuplicateUpdates, r.LostUpdates, r.DuplicateRecords, r.LostRecords, r.Phantoms, r.WrongAggregates,
		r.OrderViolations, r.FinalMismatches, r.FinalBelow, r.FinalAbove, r.Malformed)
}

func TestBuildTruthMismatches(t *testing.T) {
	var rep Report
	in := inRecords([]inputValue{checkInput[0], checkInput[3], {ID: 99, Key: "a", Seq: 0, Amount: abortedAmount}})
	buildTruth(in, checkGen, &rep)
	// record 3 out of seq order, record 99 aborted yet visible, records
	// 2 and 4 produced yet missing.
	if rep.InputMismatches != 4 {
		t.Errorf("input mismatches = %d, want 4: %v", rep.InputMismatches, rep.Examples)
	}
}

func TestCheckFates(t *testing.T) {
	raw := []rawRecord{
		{0, 0, outcomeCommitted}, {0, 1, outcomeAborted}, {0, 2, outcomeCommitted}, {0, 3, outcomeOpen},
	}
	recs := []*kgo.Record{{Offset: 0}, {Offset: 1}, {Offset: 5}}
	var rep Report
	checkFates(raw, recs, &rep)
	// 1 is aborted yet visible, 5 is visible but not in the log, 2 is
	// committed but hidden, 3 is in an open transaction.
	if rep.AbortedOutputRecords != 1 || rep.AbortedVisible != 2 || rep.CommittedHidden != 1 || rep.OpenTxnRecords != 1 || rep.UncommittedRecords != 4 {
		t.Errorf("checkFates: aborted %d, aborted visible %d, committed hidden %d, open %d, uncommitted %d; want 1, 2, 1, 1, 4",
			rep.AbortedOutputRecords, rep.AbortedVisible, rep.CommittedHidden, rep.OpenTxnRecords, rep.UncommittedRecords)
	}
}

func TestReportContract(t *testing.T) {
	for _, tc := range []struct {
		mode string
		rep  Report
		fail bool
	}{
		{exactlyOnce, Report{CaughtUp: true, WindowsSettled: true, Kills: 3, AbortedOutputRecords: 5}, false},
		{exactlyOnce, Report{CaughtUp: true, WindowsSettled: true, Kills: 3}, true}, // kills hit no transaction
		{exactlyOnce, Report{CaughtUp: true, WindowsSettled: true, DuplicateUpdates: 1}, true},
		{exactlyOnce, Report{CaughtUp: false, WindowsSettled: true}, true},
		{exactlyOnce, Report{CaughtUp: true, WindowsSettled: false}, true},
		{exactlyOnce, Report{CaughtUp: true, WindowsSettled: true, WindowDuplicates: 1}, true},
		{exactlyOnce, Report{CaughtUp: true, WindowsSettled: true, WindowWrong: 1}, true},
		{exactlyOnce, Report{CaughtUp: true, WindowsSettled: true, WindowMissing: 1}, true},
		{exactlyOnce, Report{CaughtUp: true, WindowsSettled: true, WindowEarly: 1}, true},
		{exactlyOnce, Report{CaughtUp: true, WindowsSettled: true, WindowCommitWrong: 1}, true},
		{exactlyOnce, Report{CaughtUp: true, WindowsSettled: true, WindowCommitMissing: 1}, true},
		{exactlyOnce, Report{CaughtUp: true, WindowsSettled: true, WindowCommitBackward: 1}, true},
		{exactlyOnce, Report{CaughtUp: true, WindowsSettled: true, WindowClockMismatches: 1}, true},
		{exactlyOnce, Report{CaughtUp: true, WindowsSettled: true, WindowLate: 1}, false}, // counted; the wrong windows fail it
		{atLeastOnce, Report{CaughtUp: true, WindowDuplicates: 2, WindowWrong: 3, WindowCommitWrong: 3, WindowClockMismatches: 1}, false},
		{atMostOnce, Report{CaughtUp: true, WindowMissing: 2, WindowCommitMissing: 2, WindowWrong: 1}, false},
		{atLeastOnce, Report{CaughtUp: true, DuplicateUpdates: 3, DuplicateRecords: 3, FinalAbove: 1, WrongAggregates: 2}, false},
		{atLeastOnce, Report{CaughtUp: true, LostRecords: 1}, true},
		{atLeastOnce, Report{CaughtUp: true, FinalBelow: 1}, true},
		{atMostOnce, Report{CaughtUp: true, LostRecords: 4, LostUpdates: 4, FinalBelow: 2, DuplicateUpdates: 1}, false},
		{atMostOnce, Report{CaughtUp: true, DuplicateRecords: 1}, true},
		{atMostOnce, Report{CaughtUp: true, Phantoms: 1}, true},
		{atMostOnce, Report{CaughtUp: true, UnexpectedExits: 1}, true},
	} {
		tc.rep.Mode = tc.mode
		tc.rep.evaluate()
		if tc.rep.Failed() != tc.fail {
			b, _ := json.Marshal(tc.rep)
			t.Errorf("%s: Failed() = %v, want %v; violations %q; report %s", tc.mode, tc.rep.Failed(), tc.fail, tc.rep.Violations, b)
		}
	}
}

func TestPipelineYAML(t *testing.T) {
	if y := pipelineYAML(exactlyOnce); strings.Contains(y, "guarantee") {
		t.Errorf("exactly_once pipeline names the guarantee key (older daemons reject it):\n%s", y)
	}
	if y := pipelineYAML(atLeastOnce); !strings.Contains(y, "guarantee: at_least_once\n") {
		t.Errorf("at_least_once pipeline lacks its guarantee:\n%s", y)
	}
}
