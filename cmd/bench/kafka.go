package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-dev/exactly/kafkatest"
)

// benchBroker is the broker the runs go through: kfake in a process of
// its own (brokerProc, --broker embedded) or a 1-node Apache Kafka
// cluster started by kafkatest (kafkaBroker, --broker kafka).
type benchBroker interface {
	// address is the bootstrap address, host:port.
	address() string
	// cpu is the broker's CPU time so far.
	cpu() (time.Duration, error)
	// gc collects the broker's garbage and returns its heap in use (0
	// where there is no such thing).
	gc() (int64, error)
	// begin is called before each run.
	begin(ctx context.Context) error
	// window is the processing window of the run's group since begin:
	// its first assignment and its last offset commit, as the broker saw
	// them.
	window(ctx context.Context, group string) (synced, committed time.Time, err error)
	close()
}

func (b *brokerProc) address() string             { return b.addr }
func (b *brokerProc) begin(context.Context) error { return nil }
func (b *brokerProc) window(_ context.Context, group string) (time.Time, time.Time, error) {
	synced, committed, _, err := b.windowCommits(group)
	return synced, committed, err
}

// kafkaBroker is a 1-node Apache Kafka cluster (combined broker and
// controller) on loopback, from kafkatest: the same jars, settings and
// small heap the real-Kafka tests run.
//
// No request of it can be intercepted, so the processing window comes from
// what the group coordinator wrote to __consumer_offsets during the run:
// the first group metadata record of the group that holds members (the
// leader's SyncGroup, when the assignment is stored) and the last offset
// commit record of the group (an OffsetCommit, or a TxnOffsetCommit inside
// the last transaction). Those are the two requests the embedded broker's
// observer times; the coordinator stamps each record with the time it
// appends it, to the millisecond.
type kafkaBroker struct {
	c     *kafkatest.Cluster
	start map[int32]int64 // __consumer_offsets end offsets at begin
}

const offsetsTopic = "__consumer_offsets"

func startKafka(ctx context.Context) (*kafkaBroker, error) {
	c, err := kafkatest.Start(ctx, kafkatest.Options{Nodes: 1})
	if err != nil {
		return nil, err
	}
	return &kafkaBroker{c: c}, nil
}

func (k *kafkaBroker) address() string             { return k.c.Addrs()[0] }
func (k *kafkaBroker) cpu() (time.Duration, error) { return k.c.CPUTime(1) }
func (k *kafkaBroker) gc() (int64, error)          { return 0, nil }

func (k *kafkaBroker) close() { k.c.Stop() }

// ends returns the end offsets of __consumer_offsets' partitions; before
// the first group commits the topic does not exist, and every partition
// counts as empty.
func (k *kafkaBroker) ends(ctx context.Context) (map[int32]int64, error) {
	// A client of its own each time: a client caches metadata for a few
	// seconds, and the topic that did not exist before the first run
	// would still not exist after it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.address()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		out := map[int32]int64{}
		listed, err := adm.ListEndOffsets(ctx, offsetsTopic)
		if err != nil {
			return nil, fmt.Errorf("listing the end offsets of %s: %w", offsetsTopic, err)
		}
		var perr error
		listed.Each(func(o kadm.ListedOffset) {
			switch {
			case o.Err == nil:
				out[o.Partition] = o.Offset
			case errors.Is(o.Err, kerr.UnknownTopicOrPartition):
			default:
				perr = fmt.Errorf("%s/%d: %w", offsetsTopic, o.Partition, o.Err)
			}
		})
		if perr == nil {
			return out, nil
		}
		// A partition whose leader is loading or moving: ask again.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("listing the end offsets of %s: %w (%w)", offsetsTopic, perr, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (k *kafkaBroker) begin(ctx context.Context) (err error) {
	k.start, err = k.ends(ctx)
	return err
}

func (k *kafkaBroker) window(ctx context.Context, group string) (synced, committed time.Time, err error) {
	ends, err := k.ends(ctx)
	if err != nil {
		return synced, committed, err
	}
	from := map[int32]kgo.Offset{}
	left := 0
	for p, end := range ends {
		if start := k.start[p]; end > start {
			from[p] = kgo.NewOffset().At(start)
			left++
		}
	}
	if left == 0 {
		return synced, committed, fmt.Errorf("group %s: nothing was written to %s during the run (end offsets %v before, %v after)", group, offsetsTopic, k.start, ends)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.address()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{offsetsTopic: from}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())
	if err != nil {
		return synced, committed, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	done := map[int32]bool{}
	for len(done) < left {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return synced, committed, fmt.Errorf("reading %s: %w", offsetsTopic, err)
		}
		fs.EachError(func(_ string, _ int32, e error) {
			if err == nil {
				err = e
			}
		})
		if err != nil {
			return synced, committed, fmt.Errorf("reading %s: %w", offsetsTopic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= ends[r.Partition] {
				done[r.Partition] = true
			}
			if r.Offset >= ends[r.Partition] || r.Attrs.IsControl() || len(r.Key) < 2 {
				return
			}
			switch version := int16(r.Key[0])<<8 | int16(r.Key[1]); version {
			case 0, 1: // an offset commit
				var key kmsg.OffsetCommitKey
				if key.ReadFrom(r.Key) == nil && key.Group == group && r.Value != nil && r.Timestamp.After(committed) {
					committed = r.Timestamp
				}
			case 2: // group metadata
				var key kmsg.GroupMetadataKey
				if key.ReadFrom(r.Key) != nil || key.Group != group || r.Value == nil || !synced.IsZero() {
					return
				}
				var v kmsg.GroupMetadataValue
				if v.ReadFrom(r.Value) == nil && len(v.Members) > 0 {
					synced = r.Timestamp
				}
			}
		})
	}
	if synced.IsZero() || committed.IsZero() {
		return synced, committed, fmt.Errorf("%s holds no group assignment or no offset commit of group %s from the run", offsetsTopic, group)
	}
	return synced, committed, nil
}
