package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Records of aborted upstream transactions are marked so any trace of them
// in the output is a phantom whatever the mode: ids from abortedIDBase up,
// seq 0 (committed seqs start at 1) and an amount no sum of committed
// amounts reaches.
const (
	abortedIDBase  = int64(1) << 40
	abortedAmount  = int64(1_000_000_000_000)
	minAmount      = -500
	maxAmount      = 1000
	generatorTick  = 100 * time.Millisecond
	upstreamTxnID  = "chaos-upstream-aborts"
	maxAbortedSize = 200
)

// inputValue is the JSON value of an input record.
type inputValue struct {
	ID     int64  `json:"id"`
	Key    string `json:"key"`
	Seq    int64  `json:"seq"`
	Amount int64  `json:"amount"`
}

// generated is what the generator wrote: the records it committed, in the
// order it wrote them, and the ids of the records it aborted.
type generated struct {
	committed    []inputValue
	aborted      map[int64]bool
	abortedTxns  int
	failedTxns   int // upstream transactions that failed before their abort (a broker kill); aborted all the same
	lastProduced time.Time
	// The table's committed writes in write order, and the rows written
	// in aborted upstream transactions.
	tableWrites  []tableWrite
	tableAborted int
	// snapshots are the group's committed offsets of the table, read
	// before each batch; snapOf[id] is the one read before input record
	// id was produced (-1: none could be read).
	snapshots []map[int32]int64
	snapOf    []int32
	// ssAborted are the ids of the stream-stream join's records written
	// in aborted upstream transactions (ssjoin.go).
	ssAborted map[int64]bool
}

// generator writes cfg.Records records over cfg.Duration, one batch per
// tick, with a seeded choice of keys and amounts. About AbortFraction of
// the ticks also write a batch in a transaction that it aborts.
type generator struct {
	cfg   Config
	addr  string
	table *tableGen
	ss    *ssGen
	rng   *rand.Rand
	seq   map[string]int64
	hot   int // keys k0..k<hot-1> are hot
	out   generated
	nextA int64
}

func newGenerator(cfg Config, addr string) *generator {
	hot := int(math.Ceil(cfg.HotKeys * float64(cfg.Keys)))
	return &generator{
		cfg:   cfg,
		addr:  addr,
		table: newTableGen(cfg),
		ss:    newSSGen(cfg),
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)),
		seq:   map[string]int64{},
		hot:   hot,
		out:   generated{aborted: map[int64]bool{}, snapOf: []int32{-1}},
		nextA: abortedIDBase,
	}
}

func (g *generator) key() string {
	k := g.rng.IntN(g.cfg.Keys)
	if g.hot > 0 && g.rng.IntN(2) == 0 {
		k = g.rng.IntN(g.hot)
	}
	return "k" + strconv.Itoa(k)
}

func record(v inputValue) *kgo.Record {
	b, _ := json.Marshal(v)
	return &kgo.Record{Topic: "in", Key: []byte(v.Key), Value: b}
}

// run writes the input and returns what it wrote. Committed records go
// through an idempotent producer, so each key's records land in their
// partition in seq order; aborted ones through a transactional producer
// of their own, flushed before the abort so they are in the log.
func (g *generator) run(ctx context.Context) (generated, error) {
	plain, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(g.addr, ",")...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return g.out, err
	}
	defer plain.Close()
	newTxn := func() (*kgo.Client, error) {
		return kgo.NewClient(kgo.SeedBrokers(strings.Split(g.addr, ",")...), kgo.TransactionalID(upstreamTxnID),
			kgo.TransactionTimeout(10*time.Second), kgo.ProducerLinger(5*time.Millisecond))
	}
	txn, err := newTxn()
	if err != nil {
		return g.out, err
	}
	defer func() { txn.Close() }()

	adm := kadm.NewClient(plain)
	ticks := max(1, int(g.cfg.Duration/generatorTick))
	per := (g.cfg.Records + ticks - 1) / ticks
	// The table changes at an eighth of the input's rate.
	perTable := max(1, per/8)
	start := time.Now()
	var id int64
	for t := 0; id < int64(g.cfg.Records); t++ {
		if d := time.Until(start.Add(time.Duration(t) * generatorTick)); d > 0 {
			select {
			case <-ctx.Done():
				return g.out, ctx.Err()
			case <-time.After(d):
			}
		}
		// Behind schedule (a produce waited for a new partition leader
		// after a broker died, or a busy machine made the round trips
		// slow): write the ticks missed in this one, so the input still
		// spans the fault phase and no long backlog is left after it.
		ticksDue := 1
		if behind := time.Since(start.Add(time.Duration(t) * generatorTick)); behind > generatorTick {
			ticksDue += int(behind / generatorTick)
			t += ticksDue - 1
		}
		n := min(per*ticksDue, g.cfg.Records-int(id))
		// The table's changes first, then what the group has
		// committed of the table, then the stream records: each of
		// them must join a row no older than that (see join.go).
		trs, tws := g.table.next(perTable * ticksDue)
		res := plain.ProduceSync(ctx, trs...)
		if err := res.FirstErr(); err != nil {
			return g.out, fmt.Errorf("producing table rows: %w", err)
		}
		// The records themselves, not res: ProduceSync lists results
		// as they complete, not in the order of trs.
		for i, r := range trs {
			tws[i].partition, tws[i].offset = r.Partition, r.Offset
		}
		g.out.tableWrites = append(g.out.tableWrites, tws...)
		snap := int32(-1)
		if m := committedTable(ctx, adm); m != nil {
			snap = int32(len(g.out.snapshots))
			g.out.snapshots = append(g.out.snapshots, m)
		}
		// The stream-stream join's two streams, stamped with this
		// tick's time (see ssjoin.go).
		tickNow := time.Now()
		if err := plain.ProduceSync(ctx, g.ss.next(tickNow, ticksDue)...).FirstErr(); err != nil {
			return g.out, fmt.Errorf("producing the stream-stream join's input: %w", err)
		}
		batch := make([]*kgo.Record, 0, n)
		vals := make([]inputValue, 0, n)
		for range n {
			id++
			k := g.key()
			g.seq[k]++
			v := inputValue{ID: id, Key: k, Seq: g.seq[k], Amount: int64(minAmount + g.rng.IntN(maxAmount-minAmount+1))}
			vals = append(vals, v)
			batch = append(batch, record(v))
			g.out.snapOf = append(g.out.snapOf, snap)
		}
		// The aborted batch goes between two committed ones, so the
		// processors read past its records and its abort marker.
		abort := g.rng.Float64() < g.cfg.AbortFraction
		var aborted []*kgo.Record
		if abort {
			for range min(max(per, 10), maxAbortedSize) {
				v := inputValue{ID: g.nextA, Key: g.key(), Seq: 0, Amount: abortedAmount}
				g.nextA++
				aborted = append(aborted, record(v))
				g.out.aborted[v.ID] = true
			}
			rows := g.table.aborted(2)
			aborted = append(aborted, rows...)
			g.out.tableAborted += len(rows)
			aborted = append(aborted, g.ss.abortedRecs(tickNow)...)
		}
		half := len(batch) / 2
		if err := plain.ProduceSync(ctx, batch[:half]...).FirstErr(); err != nil {
			return g.out, fmt.Errorf("producing input: %w", err)
		}
		if abort {
			if err := g.abortBatch(ctx, txn, aborted); err != nil {
				if ctx.Err() != nil {
					return g.out, err
				}
				// A broker kill can make the transaction fail
				// (INVALID_PRODUCER_EPOCH after the coordinator
				// moved). Its records are marked aborted already
				// and never commit: this client never commits. A
				// new client's producer id init fences the old one
				// and aborts what it left open.
				txn.Close()
				if txn, err = newTxn(); err != nil {
					return g.out, err
				}
				if _, _, err := txn.ProducerID(ctx); err != nil {
					return g.out, fmt.Errorf("initializing a new upstream transactional producer: %w", err)
				}
				g.out.failedTxns++
			}
		}
		if err := plain.ProduceSync(ctx, batch[half:]...).FirstErr(); err != nil {
			return g.out, fmt.Errorf("producing input: %w", err)
		}
		g.out.committed = append(g.out.committed, vals...)
	}
	g.out.ssAborted = g.ss.aborted
	if err := ssFlush(ctx, g.addr, time.Now()); err != nil {
		return g.out, err
	}
	g.out.lastProduced = time.Now()
	return g.out, nil
}

func (g *generator) abortBatch(ctx context.Context, cl *kgo.Client, rs []*kgo.Record) error {
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning an upstream transaction: %w", err)
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return fmt.Errorf("producing in an upstream transaction: %w", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		return fmt.Errorf("aborting an upstream transaction: %w", err)
	}
	g.out.abortedTxns++
	return nil
}
