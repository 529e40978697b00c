package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The stream-stream half of the chaos pipeline: an outer join, within
// ssWithin and with grace ssGrace on the record timestamps, of two streams
// the generator writes beside `in`: `ss-left` (the join's from) and
// `ss-right` (its stream), keyed alike, so partition p of both is one task.
// Each tick writes a few records to each, of a small key space so some
// records find partners and some do not, and some go into the upstream
// transactions that abort.
//
// What is deterministic. The join's clock for a task is the minimum over
// the two sides of the highest timestamp read from each, never going
// back; with no idle_timeout (the pipeline sets none) nothing else moves
// it. The generator stamps each record with the tick's wall time less a
// jitter below ssJitter, so within a partition a record is never more
// than ssJitter behind an earlier one; the clock, no higher than its own
// side's highest, is then never more than ssJitter < ssGrace ahead of a
// record when it arrives: no record is ever late. So whatever order the
// task reads the two topics in, and however often it is killed and
// restored:
//
//   - every pair of committed records, one of each side, of one key and
//     partition, with the right one's time in [left-within, left+within],
//     comes out exactly once (the later of the two finds the earlier still
//     buffered: the earlier leaves only once the clock passes its time +
//     within + grace, which a record on time never sees);
//   - a record with no such partner comes out alone exactly once when the
//     final clock of its task (from the committed input) is past the end
//     of its close bucket (its time + within + grace rounded up to the
//     step's bucket), and never otherwise; with a partner it never comes
//     out alone (no null row before the match).
//
// At the end the generator writes one flush record to every partition of
// both streams, ssFlushAhead after the last record, so the final clock
// of every task passes every real record's window: every unmatched real
// record must have come out. The flush records match each other and stay
// buffered; they are held to the same rule.
const (
	ssLeftTopic   = "ss-left"
	ssRightTopic  = "ss-right"
	ssJoinedTopic = "ss-joined"
	ssJoinStep    = "ss-join"
	ssWithin      = time.Second
	ssGrace       = time.Second
	ssJitter      = 300 * time.Millisecond
	ssFlushAhead  = 10 * time.Second
	// ssKeys keys, ssPerTick records a side per tick: about one record of
	// a key and side per 2s, so about a third of records find no partner.
	ssKeys    = 60
	ssPerTick = 2
)

// ssBucket is the join's close-index bucket (processor/streamjoin.go): an
// eighth of the longest stay, within + grace.
const ssBucket = int64((ssWithin + ssGrace) / time.Millisecond / 8)

// ssRecord is the JSON value of a record of either stream.
type ssRecord struct {
	ID   int64  `json:"id"`
	Side string `json:"side"`
	Key  string `json:"key"`
}

// ssGen writes the two streams, with its own random source so `in` stays
// what the seed made it.
type ssGen struct {
	rng     *rand.Rand
	id      int64
	abortID int64
	aborted map[int64]bool
}

func newSSGen(cfg Config) *ssGen {
	return &ssGen{rng: rand.New(rand.NewPCG(cfg.Seed, 5)), abortID: abortedIDBase, aborted: map[int64]bool{}}
}

func ssRec(topic string, v ssRecord, ts time.Time) *kgo.Record {
	b, _ := json.Marshal(v)
	return &kgo.Record{Topic: topic, Key: []byte(v.Key), Value: b, Timestamp: ts}
}

func (sg *ssGen) key() string { return "s" + strconv.Itoa(sg.rng.IntN(ssKeys)) }

// next returns a tick's records of both streams, stamped now less a
// jitter below ssJitter.
func (sg *ssGen) next(now time.Time, ticks int) []*kgo.Record {
	var rs []*kgo.Record
	for range ssPerTick * ticks {
		for _, side := range []struct{ topic, name string }{{ssLeftTopic, "l"}, {ssRightTopic, "r"}} {
			sg.id++
			ts := now.Add(-time.Duration(sg.rng.Int64N(int64(ssJitter))))
			rs = append(rs, ssRec(side.topic, ssRecord{ID: sg.id, Side: side.name, Key: sg.key()}, ts))
		}
	}
	return rs
}

// abortedRecs returns a record of each stream for the upstream
// transaction that aborts.
func (sg *ssGen) abortedRecs(now time.Time) []*kgo.Record {
	var rs []*kgo.Record
	for _, side := range []struct{ topic, name string }{{ssLeftTopic, "l"}, {ssRightTopic, "r"}} {
		sg.abortID++
		sg.aborted[sg.abortID] = true
		rs = append(rs, ssRec(side.topic, ssRecord{ID: sg.abortID, Side: side.name, Key: sg.key()}, now))
	}
	return rs
}

// ssFlush writes the flush records: one to every partition of both
// streams, key flush<p>, at last + ssFlushAhead.
func ssFlush(ctx context.Context, addr string, last time.Time) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	var rs []*kgo.Record
	ts := last.Add(ssFlushAhead)
	for p := range int32(partitions) {
		for i, side := range []struct{ topic, name string }{{ssLeftTopic, "l"}, {ssRightTopic, "r"}} {
			r := ssRec(side.topic, ssRecord{ID: -1 - 2*int64(p) - int64(i), Side: side.name, Key: "flush" + strconv.Itoa(int(p))}, ts)
			r.Partition = p
			rs = append(rs, r)
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return fmt.Errorf("producing the stream-stream join's flush records: %w", err)
	}
	return nil
}

func createSSJoinTopics(ctx context.Context, adm *kadm.Client) error {
	return ensureTopics(ctx, adm, nil, ssLeftTopic, ssRightTopic, ssJoinedTopic)
}

// ssJoinYAML is the join's step and sink.
func ssJoinYAML() (step, sink string) {
	step = fmt.Sprintf(`  - name: %s
    from: %s
    join:
      stream: %s
      type: outer
      within: %s
      grace: %s
      output: '{"l": value, "r": other}'
`, ssJoinStep, ssLeftTopic, ssRightTopic, ssWithin, ssGrace)
	sink = fmt.Sprintf("  - {name: %s-sink, topic: %s, from: %s}\n", ssJoinStep, ssJoinedTopic, ssJoinStep)
	return step, sink
}

// ssIn is one committed record of either stream as read back.
type ssIn struct {
	ssRecord
	partition int32
	ts        int64 // ms
}

// ssPair names an output row: the left and right ids, 0 for none.
type ssPair struct{ l, r int64 }

// ssTruth is what the join must output, from the committed input.
type ssTruth struct {
	want      map[ssPair]bool
	left      int
	right     int
	pairs     int
	unmatched int
	ids       map[int64]ssIn // by id, both sides (ids are unique across them)
}

// buildSSTruth computes every row the join must emit from the committed
// records of both streams (read_committed), by the rule above.
func buildSSTruth(left, right []*kgo.Record) (*ssTruth, error) {
	tt := &ssTruth{want: map[ssPair]bool{}, ids: map[int64]ssIn{}}
	type pk struct {
		p   int32
		key string
	}
	decode := func(recs []*kgo.Record) (map[pk][]ssIn, map[int32]int64, error) {
		by := map[pk][]ssIn{}
		hi := map[int32]int64{}
		for _, r := range recs {
			var v ssIn
			if err := json.Unmarshal(r.Value, &v.ssRecord); err != nil {
				return nil, nil, fmt.Errorf("%s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
			}
			v.partition, v.ts = r.Partition, r.Timestamp.UnixMilli()
			by[pk{r.Partition, v.Key}] = append(by[pk{r.Partition, v.Key}], v)
			tt.ids[v.ID] = v
			if h, ok := hi[r.Partition]; !ok || v.ts > h {
				hi[r.Partition] = v.ts
			}
		}
		return by, hi, nil
	}
	ls, lhi, err := decode(left)
	if err != nil {
		return nil, err
	}
	rs, rhi, err := decode(right)
	if err != nil {
		return nil, err
	}
	tt.left, tt.right = len(left), len(right)
	// The final clock of task p: the lower of the sides' highest times;
	// none while a side has no record.
	final := func(p int32) (int64, bool) {
		l, ok1 := lhi[p]
		r, ok2 := rhi[p]
		return min(l, r), ok1 && ok2
	}
	within := ssWithin.Milliseconds()
	closes := func(v ssIn) bool {
		c, ok := final(v.partition)
		end := v.ts + within + ssGrace.Milliseconds()
		end = (end + ssBucket - 1) / ssBucket * ssBucket
		return ok && end < c
	}
	matchedR := map[int64]bool{}
	for k, lv := range ls {
		for _, l := range lv {
			matched := false
			for _, r := range rs[k] {
				if r.ts >= l.ts-within && r.ts <= l.ts+within {
					tt.want[ssPair{l.ID, r.ID}] = true
					matched, matchedR[r.ID] = true, true
					tt.pairs++
				}
			}
			if !matched && closes(l) {
				tt.want[ssPair{l.ID, 0}] = true
				tt.unmatched++
			}
		}
	}
	for _, rv := range rs {
		for _, r := range rv {
			if !matchedR[r.ID] && closes(r) {
				tt.want[ssPair{0, r.ID}] = true
				tt.unmatched++
			}
		}
	}
	return tt, nil
}

// checkSSJoin checks the join's output against the truth: every wanted
// row exactly once, nothing else, nothing aborted visible.
func checkSSJoin(ctx context.Context, addr string, aborted map[int64]bool, rep *Report) error {
	left, err := readTopic(ctx, addr, ssLeftTopic)
	if err != nil {
		return err
	}
	right, err := readTopic(ctx, addr, ssRightTopic)
	if err != nil {
		return err
	}
	tt, err := buildSSTruth(left, right)
	if err != nil {
		return err
	}
	out, err := readTopic(ctx, addr, ssJoinedTopic)
	if err != nil {
		return err
	}
	checkSSRows(tt, aborted, out, rep)
	raw, err := readUncommitted(ctx, addr, ssJoinedTopic)
	if err != nil {
		return err
	}
	var fates Report
	checkFates(raw, out, &fates)
	rep.SSJoinAbortedRecords += fates.AbortedOutputRecords
	rep.SSJoinAbortedVisible += fates.AbortedVisible + fates.CommittedHidden + fates.OpenTxnRecords
	return nil
}

// checkSSRows holds the rows read_committed sees on the join's sink to
// the truth.
func checkSSRows(tt *ssTruth, aborted map[int64]bool, out []*kgo.Record, rep *Report) {
	rep.SSJoinLeft, rep.SSJoinRight = tt.left, tt.right
	rep.SSJoinPairsWanted, rep.SSJoinUnmatchedWanted = tt.pairs, tt.unmatched
	rep.SSJoinRows += len(out)
	seen := map[ssPair]int{}
	for _, r := range out {
		where := fmt.Sprintf("%s/%d@%d key %s %s", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
		var row struct{ L, R *ssRecord }
		if err := json.Unmarshal(r.Value, &row); err != nil || (row.L == nil && row.R == nil) {
			rep.SSJoinWrong++
			rep.example("stream-stream join wrong row", "%s: malformed", where)
			continue
		}
		var p ssPair
		bad := ""
		for _, s := range []struct {
			v    *ssRecord
			side string
			id   *int64
		}{{row.L, "l", &p.l}, {row.R, "r", &p.r}} {
			if s.v == nil {
				continue
			}
			*s.id = s.v.ID
			in, ok := tt.ids[s.v.ID]
			switch {
			case aborted[s.v.ID]:
				bad = fmt.Sprintf("id %d is a record of an aborted upstream transaction", s.v.ID)
			case !ok || in.Side != s.side || in.Key != s.v.Key || in.Key != string(r.Key):
				bad = fmt.Sprintf("id %d was never committed on this side with this key", s.v.ID)
			}
		}
		if bad != "" {
			rep.SSJoinPhantoms++
			rep.example("stream-stream join phantom", "%s: %s", where, bad)
			continue
		}
		if !tt.want[p] {
			rep.SSJoinWrong++
			why := "the two are not within the bounds"
			if p.l == 0 || p.r == 0 {
				why = "an unmatched row of a record that has a partner, or whose window had not closed by the final clock"
			}
			rep.example("stream-stream join wrong row", "%s: %s", where, why)
			continue
		}
		if seen[p]++; seen[p] > 1 {
			rep.SSJoinDuplicates++
			rep.example("stream-stream join duplicate", "%s: emitted twice", where)
		}
	}
	for p := range tt.want {
		if seen[p] == 0 {
			rep.SSJoinLost++
			rep.example("stream-stream join lost", "left id %d, right id %d (0: none): never emitted", p.l, p.r)
		}
	}
}
