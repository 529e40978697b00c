package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnOutcome is what became of a data record's transaction.
type txnOutcome int

const (
	outcomeCommitted txnOutcome = iota // committed, or written outside a transaction
	outcomeAborted
	outcomeOpen // no marker yet: the transaction is still open
)

// rawRecord is a data record as a read_uncommitted reader sees it, with the
// outcome of its transaction worked out from the markers that follow it.
type rawRecord struct {
	partition int32
	offset    int64
	outcome   txnOutcome
}

type partOffset struct {
	partition int32
	offset    int64
}

// readUncommitted reads every record of topic up to its high watermark
// with read_uncommitted, control records included, and decides each data
// record's fate from the markers, independently of the broker's aborted
// transaction index and of read_committed: a transactional record belongs
// to the open transaction of its producer id on its partition, and that
// transaction ends at the next marker of the same producer id there (the
// marker key's second int16 is 0 for abort, 1 for commit).
func readUncommitted(ctx context.Context, addr, topic string) ([]rawRecord, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...))
	if err != nil {
		return nil, err
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	cl.Close()
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %s: %w", topic, err)
	}
	hwm := map[int32]int64{}
	start := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			hwm[o.Partition] = o.Offset
			start[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(hwm) == 0 {
		return nil, nil
	}
	cl, err = kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	type pending struct{ idx []int }
	open := map[int32]map[int64]*pending{} // partition → producer id → its records of the open transaction
	next := map[int32]int64{}
	var out []rawRecord
	deadline := time.Now().Add(10 * time.Minute)
	for done := 0; done < len(hwm); {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("reading %s with read_uncommitted: not at the high watermarks %v after 10 minutes (at %v)", topic, hwm, next)
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fs.EachError(func(t string, p int32, e error) {
			if err == nil && pctx.Err() == nil {
				err = fmt.Errorf("reading %s/%d: %w", t, p, e)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= hwm[r.Partition] {
				return
			}
			if next[r.Partition] < hwm[r.Partition] && r.Offset+1 >= hwm[r.Partition] {
				done++
			}
			next[r.Partition] = r.Offset + 1
			if open[r.Partition] == nil {
				open[r.Partition] = map[int64]*pending{}
			}
			if r.Attrs.IsControl() {
				pd := open[r.Partition][r.ProducerID]
				if pd == nil || len(r.Key) < 4 {
					return
				}
				outcome := outcomeCommitted
				if binary.BigEndian.Uint16(r.Key[2:4]) == 0 {
					outcome = outcomeAborted
				}
				for _, i := range pd.idx {
					out[i].outcome = outcome
				}
				delete(open[r.Partition], r.ProducerID)
				return
			}
			rr := rawRecord{partition: r.Partition, offset: r.Offset, outcome: outcomeCommitted}
			if r.Attrs.IsTransactional() {
				rr.outcome = outcomeOpen
				pd := open[r.Partition][r.ProducerID]
				if pd == nil {
					pd = &pending{}
					open[r.Partition][r.ProducerID] = pd
				}
				pd.idx = append(pd.idx, len(out))
			}
			out = append(out, rr)
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
