package processor

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
)

// A dedupe step's store, per task, holds three kinds of keys:
//
//	i<id>      -> event time (ms) of the record of id that passed: the
//	              first (keep: first) or the latest (keep: last)
//	b<start>   -> the ids first seen in the time bucket starting at start
//	m          -> the start of every bucket that holds ids, ascending
//	t          -> the task's stream time
//
// The buckets make expiry cheap without iterating the store: when stream
// time (the highest event time seen by the task) passes a bucket's end
// plus the TTL, every id of the bucket is deleted, store and changelog
// (tombstones), so state stays bounded by the ids seen within one TTL.
// Buckets are an eighth of the TTL, so an id is forgotten between TTL and
// 9/8 TTL after it was first seen.

const (
	dedupeID     = 'i'
	dedupeBucket = 'b'
)

var dedupeMeta = []byte("m")

func bucketKey(start int64) []byte {
	return append([]byte{dedupeBucket}, strconv.FormatInt(start, 10)...)
}

func bucketSize(ttl time.Duration) int64 {
	return max(ttl.Milliseconds()/8, 1000)
}

// dedupe passes r on unless its id was seen within the TTL (keep: first),
// or a record of its id at the same or a later event time was (keep: last).
func (g *graph) dedupe(a *aggregator, r *record, emit emitFunc) error {
	n := a.node
	part := r.taskOf()
	st, err := a.store(part)
	if err != nil {
		return err
	}
	id, err := g.eval(n, n.t.Dedupe.ID, r)
	if err != nil {
		return err
	}
	idb, err := format.EncodeJSON(id)
	if err != nil {
		return g.fail(n, r, PhaseEval, fmt.Errorf("id: %w", err))
	}
	ts, err := g.timeOf(n, n.t.Dedupe.Time, r)
	if err != nil {
		return err
	}
	ttl := n.t.Dedupe.TTL.Milliseconds()
	now, err := a.taskTime(st)
	if err != nil {
		return g.fail(n, r, PhaseEval, err)
	}
	if ts > now {
		a.setTaskTime(part, st, ts)
		now = ts
	}
	if err := a.expire(part, st, now-ttl); err != nil {
		return g.fail(n, r, PhaseEval, err)
	}

	key := append([]byte{dedupeID}, idb...)
	if b, ok, err := st.Get(key); err != nil {
		return g.fail(n, r, PhaseEval, fmt.Errorf("reading state: %w", err))
	} else if ok {
		seen, _ := strconv.ParseInt(string(b), 10, 64)
		if n.t.Dedupe.Keep == topology.KeepLast {
			if ts <= seen {
				return nil // stale: a copy of this version or an older one
			}
		} else if ts-seen <= ttl {
			return nil // a duplicate: dropped, counted as in but not out
		}
	}
	a.put(part, st, key, []byte(strconv.FormatInt(ts, 10)), dirtyRow{})
	size := bucketSize(n.t.Dedupe.TTL)
	start := ts - ((ts%size)+size)%size
	bk := bucketKey(start)
	var ids []string
	if err := getJSON(st, bk, &ids); err != nil {
		return g.fail(n, r, PhaseEval, err)
	}
	if len(ids) == 0 {
		var starts []int64
		if err := getJSON(st, dedupeMeta, &starts); err != nil {
			return g.fail(n, r, PhaseEval, err)
		}
		if i, found := slices.BinarySearch(starts, start); !found {
			starts = slices.Insert(starts, i, start)
			a.putJSON(part, st, dedupeMeta, starts)
		}
	}
	a.putJSON(part, st, bk, append(ids, string(idb)))
	return g.forward(n, r, emit)
}

// expire deletes the ids of every bucket that ended before cutoff, unless
// the id was seen again since (then a later bucket holds it too).
func (a *aggregator) expire(part int32, st statestore.Store, cutoff int64) error {
	var starts []int64
	if err := getJSON(st, dedupeMeta, &starts); err != nil {
		return err
	}
	size := bucketSize(a.node.t.Dedupe.TTL)
	n := 0
	for _, start := range starts {
		if start+size > cutoff {
			break
		}
		n++
		bk := bucketKey(start)
		var ids []string
		if err := getJSON(st, bk, &ids); err != nil {
			return err
		}
		for _, id := range ids {
			key := append([]byte{dedupeID}, id...)
			b, ok, err := st.Get(key)
			if err != nil {
				return err
			}
			if first, _ := strconv.ParseInt(string(b), 10, 64); ok && first < start+size {
				a.put(part, st, key, nil, dirtyRow{})
			}
		}
		a.put(part, st, bk, nil, dirtyRow{})
	}
	if n > 0 {
		a.putJSON(part, st, dedupeMeta, starts[n:])
	}
	return nil
}

func (a *aggregator) putJSON(part int32, st statestore.Store, key []byte, v any) {
	b, _ := json.Marshal(v)
	a.put(part, st, key, b, dirtyRow{})
}

func getJSON(st statestore.Store, key []byte, v any) error {
	b, ok, err := st.Get(key)
	if err != nil || !ok {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("corrupt state at %q: %w", key, err)
	}
	return nil
}
