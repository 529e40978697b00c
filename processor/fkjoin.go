package processor

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/topology"
)

// Foreign-key joins (Kafka Streams' KIP-213): a row of the left table
// joins the right table's row whose key its on: expression gives. The
// two tables need not be co-partitioned, so the join talks to itself
// through two topics (topology.foreignKeyJoin plans them):
//
//   - A change of a left row (task of its partition) sends a subscription,
//     keyed by the foreign key, to the right table's task: "sub" with a
//     hash of the new left row, and "unsub" to the old foreign key when it
//     changed. A deleted row, or one whose foreign key is null, needs no
//     right row: the left task emits its tombstone (or, left join, its row
//     with table null) itself.
//   - The right table's task keeps, in the join's store (changelog-backed
//     like an aggregate's), the left keys subscribed to each right key with
//     their hash. A "sub" answers at once with the right row; a change of
//     the right row answers every subscriber. Answers go through the
//     response topic, keyed by the left key, to the left table's task.
//   - The left task makes the joined row from an answer only if its left
//     row is still the one that asked (same hash): an answer overtaken by
//     a later change of the left row (one to another foreign key, whose
//     answer comes from another partition, in any order) is dropped, and
//     the later change's own answer makes the row. So the last row emitted
//     for a key is the join of its last left row with the right row as
//     last seen, whatever the two topics' interleaving.
//
// An inner join emits a tombstone when the answer has no right row, also
// for a key that had no joined row before (a spurious delete, as in Kafka
// Streams); a left join emits the row with table null.

// foreignKeyJoin is the runtime of a foreign-key join.
type foreignKeyJoin struct {
	tableJoinStep
	sub                 *aggregator // the join's store: right key -> subscribers
	subTopic, respTopic string
}

// subscription is a subscription record's value.
type subscription struct {
	Key  []byte `json:"k"`
	Hash uint64 `json:"h"`
	Op   string `json:"op"` // "sub" or "unsub"
}

// response is a response record's value (keyed by the left key).
type response struct {
	Hash uint64 `json:"h"`
	Row  []byte `json:"row"` // the right row's bytes; null: none
}

func newForeignKeyJoin(g *graph, n *node, s tableJoinStep) step {
	fk := foreignKeyJoin{tableJoinStep: s, sub: n.agg,
		subTopic: topology.SubscriptionTopic(g.pipeline, n.t.Name), respTopic: topology.ResponseTopic(g.pipeline, n.t.Name)}
	g.joinRepartition[fk.subTopic] = n
	g.joinRepartition[fk.respTopic] = n
	// The responses wait, paused, until the left table's partition is
	// restored (co-partitioned: assigned together).
	g.joins = append(g.joins, fk.respTopic)
	return fk
}

func rowHash(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

func (s foreignKeyJoin) changed(g *graph, n *node, a *aggregator, rec *record, old side, emit emitFunc) error {
	if a == s.right {
		return s.rightChanged(g, n, rec, emit)
	}
	var fkOld, fkNew []byte
	var err error
	if old.ok {
		// on: failing over the old row means it failed when that row
		// came too (a bad record): it subscribed nowhere. Failing this
		// record over it would make every later change of the key a
		// bad record.
		fkOld, _ = s.key(g, rec, old.row)
	}
	now := rec.src.Value != nil
	if now {
		if fkNew, err = s.foreignKey(g, n, rec, rec.value); err != nil {
			return err
		}
	}
	if fkOld != nil && !bytes.Equal(fkOld, fkNew) {
		s.send(g, rec, fkOld, subscription{Key: rec.src.Key, Op: "unsub"}, emit)
	}
	if fkNew != nil {
		s.send(g, rec, fkNew, subscription{Key: rec.src.Key, Hash: rowHash(rec.src.Value), Op: "sub"}, emit)
		return nil
	}
	// No right row to ask for: the row is decided here.
	out := *rec
	out.from &^= fromValueMask
	out.value = nil
	if now && s.j.Type == topology.JoinLeft {
		v, ok, err := s.row(g, n, rec, side{row: rec.value, ok: true}, side{})
		if err != nil {
			return err
		}
		if ok {
			out.value = v
			return g.forward(n, &out, emit)
		}
	}
	if !old.ok {
		return nil // had no row, has none
	}
	return g.forward(n, &out, emit) // a tombstone
}

// foreignKey evaluates on: over a left row: the right table's key as its
// topic holds it, or nil for null.
func (s foreignKeyJoin) foreignKey(g *graph, n *node, rec *record, row any) ([]byte, error) {
	b, err := s.key(g, rec, row)
	if err != nil {
		return nil, g.fail(n, rec, PhaseEval, err)
	}
	return b, nil
}

// key is foreignKey without counting or naming an error.
func (s foreignKeyJoin) key(g *graph, rec *record, row any) ([]byte, error) {
	ev := *rec
	ev.value = row
	res, _, err := s.j.On.Program.Eval(g.activation(&ev))
	if err != nil {
		return nil, fmt.Errorf("on: %w", err)
	}
	v, err := native(res)
	if err != nil {
		return nil, fmt.Errorf("on: %w", err)
	}
	if v == nil {
		return nil, nil
	}
	t := s.j.Table
	b, err := s.rcodec.key.Encode(t.Topic, format.NoHeaders, v)
	if err != nil {
		return nil, fmt.Errorf("on: %v as a key of table %s (format %s): %w", v, t.Name, t.KeyFormat, err)
	}
	return b, nil
}

// send writes a subscription for the right key fk.
func (s foreignKeyJoin) send(g *graph, rec *record, fk []byte, m subscription, emit emitFunc) {
	b, _ := json.Marshal(m)
	var hs []kgo.RecordHeader
	if g.deadLetterTopic != "" && rec.src != nil && rec.src.Partition >= 0 {
		hs = []kgo.RecordHeader{originHeader(rec.src)}
	}
	emit(&kgo.Record{Topic: s.subTopic, Key: fk, Value: b, Headers: hs, Timestamp: rec.ts})
}

// respond writes the answer for left key k.
func (s foreignKeyJoin) respond(g *graph, in *kgo.Record, ts record, k []byte, m response, emit emitFunc) {
	b, _ := json.Marshal(m)
	var hs []kgo.RecordHeader
	if g.deadLetterTopic != "" && in.Partition >= 0 {
		hs = []kgo.RecordHeader{originHeader(in)}
	}
	emit(&kgo.Record{Topic: s.respTopic, Key: k, Value: b, Headers: hs, Timestamp: ts.ts})
}

// subscribers reads the left keys (base64) subscribed to right key k,
// with their hashes.
func (s foreignKeyJoin) subscribers(g *graph, n *node, rec *record, k []byte) (map[string]uint64, error) {
	st, err := s.sub.store(rec.src.Partition)
	if err != nil {
		return nil, g.fail(n, rec, PhaseEval, err)
	}
	subs := map[string]uint64{}
	if err := getJSON(st, k, &subs); err != nil {
		return nil, g.fail(n, rec, PhaseEval, err)
	}
	return subs, nil
}

// rightChanged answers every subscriber of the changed right row.
func (s foreignKeyJoin) rightChanged(g *graph, n *node, rec *record, emit emitFunc) error {
	subs, err := s.subscribers(g, n, rec, rec.src.Key)
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(mapKeys(subs)) {
		lk, _ := base64.StdEncoding.DecodeString(k)
		s.respond(g, rec.src, *rec, lk, response{Hash: subs[k], Row: rec.src.Value}, emit)
	}
	return nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// fromTopic handles a record of the join's subscription or response topic.
func (s foreignKeyJoin) fromTopic(g *graph, n *node, in *kgo.Record, emit emitFunc) error {
	rec := record{headers: withoutInternal(in.Headers), ts: in.Timestamp, src: in}
	if in.Topic == s.subTopic {
		return s.subscribe(g, n, &rec, emit)
	}
	return s.answer(g, n, &rec, emit)
}

// subscribe records a subscription in the right table's task and answers
// a "sub" with the right row.
func (s foreignKeyJoin) subscribe(g *graph, n *node, rec *record, emit emitFunc) error {
	in := rec.src
	var m subscription
	if err := json.Unmarshal(in.Value, &m); err != nil {
		return g.fail(n, rec, PhaseDecode, fmt.Errorf("subscription: %w", err))
	}
	subs, err := s.subscribers(g, n, rec, in.Key)
	if err != nil {
		return err
	}
	k := base64.StdEncoding.EncodeToString(m.Key)
	if m.Op == "sub" {
		subs[k] = m.Hash
	} else {
		delete(subs, k)
	}
	st, _ := s.sub.store(in.Partition)
	if len(subs) == 0 {
		s.sub.put(in.Partition, st, in.Key, nil, dirtyRow{})
	} else {
		s.sub.putJSON(in.Partition, st, in.Key, subs)
	}
	if m.Op != "sub" {
		return nil
	}
	rst, err := s.right.store(in.Partition)
	if err != nil {
		return g.fail(n, rec, PhaseEval, err)
	}
	row, ok, err := rst.Get(in.Key)
	if err != nil {
		return g.fail(n, rec, PhaseEval, fmt.Errorf("reading table %s: %w", s.j.Table.Name, err))
	}
	if !ok {
		row = nil
	}
	s.respond(g, in, *rec, m.Key, response{Hash: m.Hash, Row: row}, emit)
	return nil
}

// answer makes the joined row from an answer, in the left table's task,
// if the left row is still the one that asked.
func (s foreignKeyJoin) answer(g *graph, n *node, rec *record, emit emitFunc) error {
	in := rec.src
	var m response
	if err := json.Unmarshal(in.Value, &m); err != nil {
		return g.fail(n, rec, PhaseDecode, fmt.Errorf("response: %w", err))
	}
	lst, err := s.left.store(in.Partition)
	if err != nil {
		return g.fail(n, rec, PhaseEval, err)
	}
	cur, ok, err := lst.Get(in.Key)
	if err != nil {
		return g.fail(n, rec, PhaseEval, fmt.Errorf("reading table %s: %w", s.j.Left.Name, err))
	}
	if !ok || rowHash(cur) != m.Hash {
		return nil // overtaken by a later change of the left row
	}
	l, r := s.j.Left, s.j.Table
	if rec.key, err = s.lcodec.key.Decode(l.Topic, format.NoHeaders, in.Key); err != nil {
		return g.fail(n, rec, PhaseDecode, fmt.Errorf("table %s key (format %s): %w", l.Name, l.KeyFormat, err))
	}
	rec.decodedFrom(l.KeyFormat, l.Format)
	rec.from &^= fromValueMask // the key only: the value is the answer
	var left, right side
	if left.row, err = s.lcodec.value.Decode(l.Topic, format.NoHeaders, cur); err != nil {
		return g.fail(n, rec, PhaseDecode, fmt.Errorf("table %s row (format %s): %w", l.Name, l.Format, err))
	}
	left.ok = true
	if m.Row != nil {
		if right.row, err = s.rcodec.value.Decode(r.Topic, format.NoHeaders, m.Row); err != nil {
			return g.fail(n, rec, PhaseDecode, fmt.Errorf("table %s row (format %s): %w", r.Name, r.Format, err))
		}
		right.ok = true
	}
	result := "miss"
	if right.ok {
		result = "match"
	}
	g.m.JoinLookups.WithLabelValues(n.t.Name, result).Inc()
	v, _, err := s.row(g, n, rec, left, right)
	if err != nil {
		return err
	}
	out := *rec
	out.from &^= fromValueMask
	out.value = v // nil: a tombstone
	return g.forward(n, &out, emit)
}
