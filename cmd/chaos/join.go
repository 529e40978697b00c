package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/topology"
)

// The join half of the chaos pipeline: a left stream-table join of every
// record of `in` (after tag) with its key's row in the table source `rows`,
// to `joined`. While the stream flows the generator keeps changing the
// table: each tick it writes new versions of some keys' rows and deletes
// others (a null value), and some table writes go into the upstream
// transactions that abort. Before the instances start, the table is
// loaded with tableFiller rows of other keys, so restoring a table
// partition takes a moment and kills land in it (see killAfterRestart).
//
// What the checker can know. The table row a stream record joins is the
// row as the task had it when it processed the record; the pipeline does
// not order the two topics by time (a task may read ahead on either), so
// no single version is "the" answer. Three things are certain, and
// checked for every output row:
//
//   - it is a real version: the key's own row, committed upstream (never
//     one of an aborted transaction), or no row when the key had none at
//     some version (before its first write, or deleted);
//   - it is no older than what the group had committed of the table when
//     the stream record was produced: before producing each batch the
//     generator reads the group's committed offsets of `rows`. A task's
//     table holds every record below its committed offset (the table
//     writes apply in the transaction that commits the offsets past
//     them, and a task that takes a partition over restores it to the
//     high watermark), so a record produced after a version's offset was
//     committed must see that version or a later one: a stale row means
//     a restore that stopped short, an update lost in a rewind, or a
//     table read past instead of applied;
//   - a key's rows never go back: along the key's stream records in
//     input order, the versions joined do not decrease (no row counts as
//     the earliest version with no row at or after the previous one).
//
// And, as for every output, each committed input record yields exactly
// one joined row (a left join: with no row as well), nothing of an
// aborted input record, and nothing aborted is visible.
const (
	tableTopic = "rows"
	// tableFiller rows of keys no input record has are written before the
	// instances start, so a table partition's restore is not instant.
	tableFiller = 30_000
	// abortedVer marks a table row written in an aborted upstream
	// transaction: any output with it is a phantom.
	abortedVer = int64(-1)
	// deleteShare of table writes delete the key's row (when it has one).
	deleteShare = 0.2
)

// The two joins: one reads the records keyed as read from `in` (partition
// p of `in` with partition p of the table); the other comes after a key
// step that keeps the key, so its records go through the join's
// repartition topic first (the path `exactly validate` suggests when the
// partition counts differ).
var joins = []struct{ step, topic, rekey string }{
	{"with-row", "joined", ""},
	{"with-row-rekeyed", "joined-rekeyed", "rekey"},
}

// joinRepartitionTopic is the rekeyed join's repartition topic, which the
// catch-up waits for the group to consume.
func joinRepartitionTopic() string { return topology.RepartitionTopic(pipelineName, joins[1].step) }

func joinTopics() []string {
	out := make([]string, len(joins))
	for i, j := range joins {
		out[i] = j.topic
	}
	return out
}

// tableRow is the JSON value of a table record.
type tableRow struct {
	Key string `json:"key"`
	Ver int64  `json:"ver"`
	Pad string `json:"pad,omitempty"`
}

// tableWrite is one committed write of the table: version ver of key's
// row (1, 2, ... per key, deletes included), or its deletion.
type tableWrite struct {
	key       string
	ver       int64
	del       bool
	partition int32
	offset    int64
}

// tableGen writes the table's changes, with its own random source so the
// input stays what the seed made it before the join existed.
type tableGen struct {
	rng  *rand.Rand
	keys int
	ver  map[string]int64
	live map[string]bool
}

func newTableGen(cfg Config) *tableGen {
	return &tableGen{rng: rand.New(rand.NewPCG(cfg.Seed, 4)), keys: cfg.Keys, ver: map[string]int64{}, live: map[string]bool{}}
}

func tableRecord(v tableRow, del bool) *kgo.Record {
	r := &kgo.Record{Topic: tableTopic, Key: []byte(v.Key)}
	if !del {
		r.Value, _ = json.Marshal(v)
	}
	return r
}

// next returns n changes of the table: new versions of random keys, some
// of them deletions of a key that has a row.
func (tg *tableGen) next(n int) ([]*kgo.Record, []tableWrite) {
	rs := make([]*kgo.Record, 0, n)
	ws := make([]tableWrite, 0, n)
	for range n {
		k := "k" + strconv.Itoa(tg.rng.IntN(tg.keys))
		tg.ver[k]++
		del := tg.live[k] && tg.rng.Float64() < deleteShare
		tg.live[k] = !del
		rs = append(rs, tableRecord(tableRow{Key: k, Ver: tg.ver[k]}, del))
		ws = append(ws, tableWrite{key: k, ver: tg.ver[k], del: del})
	}
	return rs, ws
}

// aborted returns n table rows for the upstream transaction that aborts.
func (tg *tableGen) aborted(n int) []*kgo.Record {
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = tableRecord(tableRow{Key: "k" + strconv.Itoa(tg.rng.IntN(tg.keys)), Ver: abortedVer}, false)
	}
	return rs
}

// committedTable returns the group's committed offsets of the table's
// partitions: what every task has applied. nil when they cannot be read
// (no bound is then checked for the batch), as when the group coordinator
// is down: the generator does not wait long for it.
func committedTable(ctx context.Context, adm *kadm.Client) map[int32]int64 {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, pipelineName)
	if err != nil || offs.Error() != nil {
		return nil
	}
	m := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == tableTopic && o.Err == nil && o.At >= 0 {
			m[o.Partition] = o.At
		}
	})
	return m
}

// preloadTable writes the filler rows, before the instances start.
func preloadTable(ctx context.Context, addr string) error {
	// Apache Kafka may not know the topic just created yet on every
	// node: keep trying (ctx bounds it).
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.UnknownTopicRetries(-1))
	if err != nil {
		return err
	}
	defer cl.Close()
	pad := strings.Repeat("x", 100)
	for i := 0; i < tableFiller; i += 1000 {
		var rs []*kgo.Record
		for j := i; j < min(i+1000, tableFiller); j++ {
			rs = append(rs, tableRecord(tableRow{Key: "f" + strconv.Itoa(j), Ver: 1, Pad: pad}, false))
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			return fmt.Errorf("loading the table %s: %w", tableTopic, err)
		}
	}
	return nil
}

// createJoinTopics creates the table topic (compacted, as a table's topic
// should be) and the join's sink, with as many partitions as `in`: the
// join reads partition p of `in` and of the table together.
func createJoinTopics(ctx context.Context, adm *kadm.Client) error {
	for _, t := range []struct {
		name    string
		configs map[string]*string
	}{
		{tableTopic, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}},
		{joins[0].topic, nil},
		{joins[1].topic, nil},
	} {
		if err := ensureTopics(ctx, adm, t.configs, t.name); err != nil {
			return err
		}
	}
	return nil
}

// snapshot returns the group's committed offsets of the table read before
// input record id was produced, or nil.
func (g generated) snapshot(id int64) map[int32]int64 {
	if id < 0 || id >= int64(len(g.snapOf)) || g.snapOf[id] < 0 {
		return nil
	}
	return g.snapshots[g.snapOf[id]]
}

// joinedRow is the JSON value of a joined output record.
type joinedRow struct {
	ID  int64           `json:"id"`
	Key string          `json:"key"`
	Seq int64           `json:"seq"`
	Row json.RawMessage `json:"row"`
}

// tableTruth is the committed history of the table: each key's writes in
// version order.
type tableTruth struct {
	writes map[string][]tableWrite // index i is version i+1
}

func buildTableTruth(ws []tableWrite) *tableTruth {
	tt := &tableTruth{writes: map[string][]tableWrite{}}
	for _, w := range ws {
		tt.writes[w.key] = append(tt.writes[w.key], w)
	}
	return tt
}

// floor returns the latest version of key whose record is below the
// committed offset of its partition in snap: the oldest state a task may
// join a record produced after snap was read with. 0: none.
func (tt *tableTruth) floor(key string, snap map[int32]int64) int64 {
	ws := tt.writes[key]
	if len(ws) == 0 || snap == nil {
		return 0
	}
	at, ok := snap[ws[0].partition]
	if !ok {
		return 0
	}
	// A key's writes are in one partition, in version order.
	i, _ := slices.BinarySearchFunc(ws, at, func(w tableWrite, at int64) int {
		if w.offset < at {
			return -1
		}
		return 1
	})
	return int64(i)
}

// absentFrom returns the earliest version at or after ver at which key
// has no row (0 before its first write, or a deletion), or -1.
func (tt *tableTruth) absentFrom(key string, ver int64) int64 {
	if ver == 0 {
		return 0
	}
	for _, w := range tt.writes[key][ver-1:] {
		if w.del {
			return w.ver
		}
	}
	return -1
}

// checkJoin checks every joined row of both joins against the truth.
func checkJoin(ctx context.Context, addr string, t *truth, gen generated, rep *Report) error {
	tt := buildTableTruth(gen.tableWrites)
	rep.TableWrites = len(gen.tableWrites)
	for _, w := range gen.tableWrites {
		if w.del {
			rep.TableDeletes++
		}
	}
	for _, topic := range joinTopics() {
		recs, err := readTopic(ctx, addr, topic)
		if err != nil {
			return err
		}
		checkJoined(topic, recs, t, tt, gen, rep)
		raw, err := readUncommitted(ctx, addr, topic)
		if err != nil {
			return err
		}
		var fates Report
		checkFates(raw, recs, &fates)
		rep.JoinAbortedRecords += fates.AbortedOutputRecords
		rep.JoinAbortedVisible += fates.AbortedVisible + fates.CommittedHidden + fates.OpenTxnRecords
		for _, e := range slices.Concat(fates.Examples["aborted visible"], fates.Examples["committed hidden"]) {
			rep.example("join aborted visible", "%s: %s", topic, e)
		}
	}
	return nil
}

// checkJoined checks the rows read_committed sees on the join sink topic,
// in partition and offset order.
func checkJoined(topic string, recs []*kgo.Record, t *truth, tt *tableTruth, gen generated, rep *Report) {
	rep.JoinRows += len(recs)
	seen := map[int64]int{}
	// joined[id] is the version the first row of input id joined, with
	// absent set when it had no row.
	type joinedVer struct {
		ver    int64
		absent bool
	}
	joined := map[int64]joinedVer{}
	for _, r := range recs {
		where := fmt.Sprintf("%s/%d@%d key %s %s", topic, r.Partition, r.Offset, r.Key, r.Value)
		var j joinedRow
		if err := json.Unmarshal(r.Value, &j); err != nil || j.Key != string(r.Key) {
			rep.JoinWrongRows++
			rep.example("join wrong row", "%s: malformed, or its key differs from the record key", where)
			continue
		}
		v, known := t.byID[j.ID]
		switch {
		case gen.aborted[j.ID]:
			rep.JoinPhantoms++
			rep.example("join phantom", "%s: id %d is a record of an aborted upstream transaction", where, j.ID)
			continue
		case !known || v.Key != j.Key || v.Seq != j.Seq:
			rep.JoinPhantoms++
			rep.example("join phantom", "%s: id %d was never produced with this key and seq", where, j.ID)
			continue
		}
		if seen[j.ID]++; seen[j.ID] > 1 {
			continue // counted below
		}
		jv := joinedVer{absent: true}
		if row := bytes.TrimSpace(j.Row); len(row) > 0 && !bytes.Equal(row, []byte("null")) {
			var tr tableRow
			if err := json.Unmarshal(row, &tr); err != nil || tr.Key != j.Key {
				rep.JoinWrongRows++
				rep.example("join wrong row", "%s: the row is not the key's own", where)
				continue
			}
			ws := tt.writes[j.Key]
			switch {
			case tr.Ver == abortedVer:
				rep.JoinPhantoms++
				rep.example("join phantom", "%s: the row was written in an aborted upstream transaction", where)
				continue
			case tr.Ver < 1 || tr.Ver > int64(len(ws)) || ws[tr.Ver-1].del:
				rep.JoinWrongRows++
				rep.example("join wrong row", "%s: version %d of the row never committed (the key has %d writes)", where, tr.Ver, len(ws))
				continue
			}
			jv = joinedVer{ver: tr.Ver}
			rep.JoinMatched++
		}
		// Stale: older than what the group had committed of the table
		// when the record was produced.
		if floor := tt.floor(j.Key, gen.snapshot(j.ID)); floor > 0 {
			stale := jv.ver < floor
			if jv.absent {
				stale = tt.absentFrom(j.Key, floor) < 0
			}
			if stale {
				rep.JoinStale++
				rep.example("join stale row", "%s: joined %s, but version %d of the row was committed to the group before the record was produced", where, verString(jv.ver, jv.absent), floor)
			}
		}
		joined[j.ID] = jv
	}
	tally(t, seen, &rep.JoinLost, &rep.JoinDuplicates, rep, "joined row", "joined rows")
	// Backwards: along each key's records in input order.
	for k, vs := range t.byKey {
		var last int64
		for _, v := range vs {
			jv, ok := joined[v.ID]
			if !ok {
				continue
			}
			now := jv.ver
			if jv.absent {
				now = tt.absentFrom(k, last)
			}
			if now < last {
				rep.JoinBackwards++
				rep.example("join backwards", "%s: key %s seq %d (id %d) joined %s after version %d", topic, k, v.Seq, v.ID, verString(jv.ver, jv.absent), last)
				continue
			}
			last = now
		}
	}
}

func verString(ver int64, absent bool) string {
	if absent {
		return "no row"
	}
	return "version " + strconv.FormatInt(ver, 10)
}
