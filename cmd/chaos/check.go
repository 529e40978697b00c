package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
)

// truth is the committed input: each key's records in partition order,
// which is the order the pipeline sees them in.
type truth struct {
	byKey map[string][]inputValue
	byID  map[int64]inputValue
	// prefix[k][n] is the sum of the amounts of k's first n records.
	prefix map[string][]int64
	// ts is each record's timestamp in epoch milliseconds (its event
	// time in the windows), and partMaxTS the highest of each partition
	// of `in`.
	ts        map[int64]int64
	partMaxTS map[int32]int64
}

// maxExamples caps the examples kept per kind of violation.
const maxExamples = 5

func (r *Report) example(kind, format string, args ...any) {
	if r.Examples == nil {
		r.Examples = map[string][]string{}
	}
	if len(r.Examples[kind]) < maxExamples {
		r.Examples[kind] = append(r.Examples[kind], fmt.Sprintf(format, args...))
	}
}

// readTruth reads `in` as a read_committed reader sees it: that is what
// really committed upstream. It checks it against what the generator
// believes it committed.
func readTruth(ctx context.Context, addr string, gen generated, rep *Report) (*truth, error) {
	recs, err := broker.ReadCommitted(ctx, strings.Split(addr, ","), []string{"in"})
	if err != nil {
		return nil, fmt.Errorf("reading in: %w", err)
	}
	return buildTruth(recs, gen, rep), nil
}

// buildTruth makes the truth of the records read_committed sees on `in`,
// in partition and offset order.
func buildTruth(recs []*kgo.Record, gen generated, rep *Report) *truth {
	t := &truth{byKey: map[string][]inputValue{}, byID: map[int64]inputValue{}, prefix: map[string][]int64{},
		ts: map[int64]int64{}, partMaxTS: map[int32]int64{}}
	for _, r := range recs {
		var v inputValue
		if err := json.Unmarshal(r.Value, &v); err != nil || v.Key != string(r.Key) {
			rep.InputMismatches++
			rep.example("input", "in/%d@%d: not a generator record: %s", r.Partition, r.Offset, r.Value)
			continue
		}
		if gen.aborted[v.ID] {
			rep.InputMismatches++
			rep.example("input", "in/%d@%d: record %d of an aborted upstream transaction is visible to read_committed", r.Partition, r.Offset, v.ID)
			continue
		}
		if _, dup := t.byID[v.ID]; dup {
			rep.InputMismatches++
			rep.example("input", "in/%d@%d: id %d twice", r.Partition, r.Offset, v.ID)
			continue
		}
		if want := int64(len(t.byKey[v.Key]) + 1); v.Seq != want {
			rep.InputMismatches++
			rep.example("input", "in/%d@%d: key %s has seq %d at position %d", r.Partition, r.Offset, v.Key, v.Seq, want)
		}
		t.byID[v.ID] = v
		t.byKey[v.Key] = append(t.byKey[v.Key], v)
		ts := r.Timestamp.UnixMilli()
		t.ts[v.ID] = ts
		if m, ok := t.partMaxTS[r.Partition]; !ok || ts > m {
			t.partMaxTS[r.Partition] = ts
		}
	}
	for _, v := range gen.committed {
		if _, ok := t.byID[v.ID]; !ok {
			rep.InputMismatches++
			rep.example("input", "record %d (key %s seq %d) was produced but read_committed does not see it in `in`", v.ID, v.Key, v.Seq)
		}
	}
	if len(t.byID) != len(gen.committed) {
		rep.example("input", "read_committed sees %d input records, the generator committed %d", len(t.byID), len(gen.committed))
	}
	for k, vs := range t.byKey {
		p := make([]int64, len(vs)+1)
		for i, v := range vs {
			p[i+1] = p[i] + v.Amount
		}
		t.prefix[k] = p
	}
	rep.InputRecords = len(t.byID)
	rep.InputKeys = len(t.byKey)
	return t
}

// update is one output record: the row of its key after one more input
// record.
type update struct {
	Key     string      `json:"key"`
	N       json.Number `json:"n"`
	Total   json.Number `json:"total"`
	LastID  json.Number `json:"last_id"`
	LastSeq json.Number `json:"last_seq"`
}

type parsedUpdate struct {
	key                string
	n, lastID, lastSeq int64
	total              *big.Rat
}

func parseInt(n json.Number) (int64, bool) {
	v, err := strconv.ParseInt(string(n), 10, 64)
	return v, err == nil
}

func parseUpdate(key, value []byte) (parsedUpdate, error) {
	var u update
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&u); err != nil {
		return parsedUpdate{}, err
	}
	p := parsedUpdate{key: u.Key}
	var ok1, ok2, ok3 bool
	p.n, ok1 = parseInt(u.N)
	p.lastID, ok2 = parseInt(u.LastID)
	p.lastSeq, ok3 = parseInt(u.LastSeq)
	if !ok1 || !ok2 || !ok3 {
		return p, fmt.Errorf("n, last_id and last_seq must be JSON integers")
	}
	// Sums are exact decimals, printed without an exponent.
	if bytes.ContainsAny([]byte(u.Total), "eE") {
		return p, fmt.Errorf("total %s is printed with an exponent", u.Total)
	}
	t, ok := new(big.Rat).SetString(string(u.Total))
	if !ok {
		return p, fmt.Errorf("total %q is not a number", u.Total)
	}
	p.total = t
	if u.Key != string(key) {
		return p, fmt.Errorf("row key %q differs from the record key %q", u.Key, key)
	}
	return p, nil
}

// checkOutput reads `out` with read_committed and checks every update
// against the truth, then compares it with what a read_uncommitted reader
// sees, transaction by transaction.
func checkOutput(ctx context.Context, addr string, t *truth, gen generated, rep *Report) error {
	recs, err := broker.ReadCommitted(ctx, strings.Split(addr, ","), []string{"out"})
	if err != nil {
		return fmt.Errorf("reading out: %w", err)
	}
	checkUpdates(recs, t, gen, rep)
	raw, err := readUncommitted(ctx, addr, "out")
	if err != nil {
		return err
	}
	checkFates(raw, recs, rep)
	return nil
}

// checkUpdates checks the updates read_committed sees on `out`, in
// partition and offset order, against the truth.
func checkUpdates(recs []*kgo.Record, t *truth, gen generated, rep *Report) {
	rep.Updates = len(recs)

	seenN := map[string]map[int64]int{}
	seenID := map[int64]int{}
	lastN := map[string]int64{}
	final := map[string]parsedUpdate{}
	phantomTotal := new(big.Rat).SetInt64(abortedAmount)
	for _, r := range recs {
		u, err := parseUpdate(r.Key, r.Value)
		if err != nil {
			rep.Malformed++
			rep.example("malformed", "out/%d@%d %s: %v", r.Partition, r.Offset, r.Value, err)
			continue
		}
		k := u.key
		where := fmt.Sprintf("out/%d@%d key %s %s", r.Partition, r.Offset, k, r.Value)

		// Order: within a key's partition, N never goes back.
		if prev, ok := lastN[k]; ok && u.n < prev {
			rep.OrderViolations++
			rep.example("order", "%s: n %d after n %d", where, u.n, prev)
		}
		lastN[k] = u.n
		final[k] = u

		// Phantoms: an update caused by a record that never committed
		// upstream, or by another key's record.
		v, known := t.byID[u.lastID]
		switch {
		case gen.aborted[u.lastID]:
			rep.Phantoms++
			rep.example("phantom", "%s: last_id %d is a record of an aborted upstream transaction", where, u.lastID)
			continue
		case !known:
			rep.Phantoms++
			rep.example("phantom", "%s: last_id %d was never produced", where, u.lastID)
			continue
		case v.Key != k:
			rep.Phantoms++
			rep.example("phantom", "%s: last_id %d is a record of key %s", where, u.lastID, v.Key)
			continue
		case u.total.Cmp(phantomTotal) >= 0 || u.lastSeq == 0:
			rep.Phantoms++
			rep.example("phantom", "%s: includes the amount of an aborted upstream record", where)
			continue
		}
		seenID[u.lastID]++
		if seenN[k] == nil {
			seenN[k] = map[int64]int{}
		}
		seenN[k][u.n]++

		// The update after N records must be the aggregate of the key's
		// first N committed records.
		vs := t.byKey[k]
		if u.n < 1 || u.n > int64(len(vs)) {
			rep.WrongAggregates++
			rep.example("aggregate", "%s: n %d, but the key has %d committed records", where, u.n, len(vs))
			continue
		}
		want := vs[u.n-1]
		if u.total.Cmp(new(big.Rat).SetInt64(t.prefix[k][u.n])) != 0 || u.lastSeq != want.Seq || u.lastID != want.ID {
			rep.WrongAggregates++
			rep.example("aggregate", "%s: want total %d, last_seq %d, last_id %d after %d records", where, t.prefix[k][u.n], want.Seq, want.ID, u.n)
		}
	}

	for k, vs := range t.byKey {
		for n := int64(1); n <= int64(len(vs)); n++ {
			switch c := seenN[k][n]; {
			case c == 0:
				rep.LostUpdates++
				rep.example("lost update", "key %s: no update with n %d (of %d)", k, n, len(vs))
			case c > 1:
				rep.DuplicateUpdates += c - 1
				rep.example("duplicate update", "key %s: %d updates with n %d", k, c, n)
			}
		}
		f, ok := final[k]
		wantTotal := new(big.Rat).SetInt64(t.prefix[k][len(vs)])
		switch {
		case !ok:
			rep.FinalMismatches++
			rep.FinalBelow++
			rep.example("final", "key %s: no update at all, want n %d", k, len(vs))
		case f.n != int64(len(vs)) || f.total.Cmp(wantTotal) != 0:
			rep.FinalMismatches++
			if f.n < int64(len(vs)) {
				rep.FinalBelow++
			} else if f.n > int64(len(vs)) {
				rep.FinalAbove++
			}
			rep.example("final", "key %s: last update n %d total %s, want n %d total %s", k, f.n, f.total.RatString(), len(vs), wantTotal.RatString())
		}
	}
	tally(t, seenID, &rep.LostRecords, &rep.DuplicateRecords, rep, "record", "updates have it as last_id")
}

// tally counts the committed input records that seen (outputs per input
// id) has no output of as lost, and every output past the first as a
// duplicate, with examples of the given kind ("record": "lost record",
// "duplicate record") saying how many outputs ("2 <outputs>").
func tally(t *truth, seen map[int64]int, lost, dups *int, rep *Report, kind, outputs string) {
	for id, v := range t.byID {
		switch c := seen[id]; {
		case c == 0:
			*lost++
			rep.example("lost "+kind, "record %d (key %s seq %d): 0 %s", id, v.Key, v.Seq, outputs)
		case c > 1:
			*dups += c - 1
			rep.example("duplicate "+kind, "record %d (key %s seq %d): %d %s", id, v.Key, v.Seq, c, outputs)
		}
	}
}

// checkFates compares what read_committed returned (recs) with the fate of
// every record read_uncommitted saw (raw).
func checkFates(raw []rawRecord, recs []*kgo.Record, rep *Report) {
	visible := make(map[partOffset]bool, len(recs))
	for _, r := range recs {
		visible[partOffset{r.Partition, r.Offset}] = true
	}
	rep.UncommittedRecords = len(raw)
	for _, r := range raw {
		po := partOffset{r.partition, r.offset}
		switch r.outcome {
		case outcomeAborted:
			rep.AbortedOutputRecords++
			if visible[po] {
				rep.AbortedVisible++
				rep.example("aborted visible", "out/%d@%d: in an aborted transaction, yet read_committed returns it", r.partition, r.offset)
			}
		case outcomeOpen:
			rep.OpenTxnRecords++
			if visible[po] {
				rep.AbortedVisible++
				rep.example("aborted visible", "out/%d@%d: in a transaction still open, yet read_committed returns it", r.partition, r.offset)
			}
		case outcomeCommitted:
			if !visible[po] {
				rep.CommittedHidden++
				rep.example("committed hidden", "out/%d@%d: committed, yet read_committed does not return it", r.partition, r.offset)
			}
		}
		delete(visible, po)
	}
	for po := range visible {
		rep.AbortedVisible++
		rep.example("aborted visible", "out/%d@%d: read_committed returns it, read_uncommitted does not", po.partition, po.offset)
	}
}
