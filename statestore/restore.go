package statestore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-dev/exactly/internal/kafkaerr"
)

// RestoreStats counts a restore, for metrics and logs.
type RestoreStats struct {
	// Records is how many changelog records were applied (deletes
	// included; aborted records and transaction markers are not records).
	Records int64
	// StartOffset is the offset reading began at: the store's checkpoint,
	// or the log start offset when the store was rebuilt.
	StartOffset int64
	// EndOffset is the high watermark taken when the restore began; the
	// store's checkpoint afterwards.
	EndOffset int64
	Duration  time.Duration
	// Rebuilt is true when the store was wiped and read from the start.
	Rebuilt bool
}

// Progress, when non-nil, is called every 4096 records, and once
// at the end, with the records applied so far and the offsets remaining up
// to the end offset (offsets, not records: markers, aborted and compacted
// records take offsets too, so it is an upper bound on records left).
type Progress func(done, remaining int64)

const (
	progressEvery = 4096

	// fetchMaxWait is how long the broker holds a fetch that has nothing
	// to return, e.g. while a zombie transaction holds the last stable
	// offset back.
	fetchMaxWait = 500 * time.Millisecond
	// fetchMaxBytes bounds one fetch response. The broker still returns a
	// first batch larger than this whole, so a huge record cannot stall us.
	fetchMaxBytes = 8 << 20

	// maxRetries bounds consecutive retriable fetch failures (leader moves,
	// broker restarts); with the backoff below, about 25 seconds of them.
	maxRetries = 30
	maxBackoff = time.Second
	// unknownTopicRetries bounds the retries of a changelog topic the
	// brokers do not know: with the backoff above, about 5 seconds.
	unknownTopicRetries = 10
)

// RestorePartition brings st up to date with changelog topic/partition,
// over a short-lived client to the seed brokers. Use RestoreWith to reuse a
// client that carries TLS or SASL options.
func RestorePartition(ctx context.Context, brokers []string, topic string, partition int32, st Store, progress Progress) (RestoreStats, error) {
	if len(brokers) == 0 {
		return RestoreStats{}, errors.New("statestore: restore has no seed brokers; pass the brokers of the cluster holding the changelog")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return RestoreStats{}, fmt.Errorf("statestore: creating restore client: %w", err)
	}
	defer cl.Close()
	return RestoreWith(ctx, cl, topic, partition, st, progress)
}

// RestoreWith brings st up to date with changelog topic/partition, issuing
// its own Metadata, ListOffsets and Fetch requests through cl, which leaves
// cl's own state untouched. cl should not be consuming: kgo sends every
// fetch to a broker over one connection, so the restore's long-polling
// fetches would queue behind cl's own.
//
// Steps: take the partition's log start offset and high watermark (hwm).
// If st.Checkpoint() is -1, below the log start (the records it needs were
// deleted), or above the hwm (the store is ahead of the changelog: it may
// hold writes that never committed, or the topic was recreated), wipe st and
// read from the log start. Then read with read_committed from the checkpoint
// until the read position passes the hwm taken at the start, and finish
// with st.FinishRestore(hwm).
func RestoreWith(ctx context.Context, cl *kgo.Client, topic string, partition int32, st Store, progress Progress) (RestoreStats, error) {
	begin := time.Now()
	f := newFetcher(cl, topic, partition)
	logStart, hwm, err := f.offsets(ctx)
	if err != nil {
		return RestoreStats{}, err
	}
	stats := RestoreStats{EndOffset: hwm}
	from := st.Checkpoint()
	if from < 0 || from < logStart || from > hwm {
		if err := st.Wipe(); err != nil {
			return stats, err
		}
		from = logStart
		stats.Rebuilt = true
	}
	stats.StartOffset = from
	if err := f.read(ctx, from, hwm, st, progress, &stats); err != nil {
		stats.Duration = time.Since(begin)
		return stats, err
	}
	if err := st.FinishRestore(hwm); err != nil {
		return stats, err
	}
	if progress != nil {
		progress(stats.Records, 0)
	}
	stats.Duration = time.Since(begin)
	return stats, nil
}

// fetcher reads one partition with its own requests to the partition's
// leader. Metadata comes from uncached Metadata requests: kadm's cached
// metadata can hold a stale leader, or a "topic unknown" from before the
// changelog was created, for up to kgo's MetadataMinAge.
type fetcher struct {
	cl        *kgo.Client
	topic     string
	partition int32
	maxBytes  int32 // of one response: fetchMaxBytes, smaller in tests

	// From the last metadata refresh; stale until the first.
	stale   bool
	leader  int32
	epoch   int32
	topicID [16]byte
	// unknown counts metadata answers in a row that did not know the
	// topic: after unknownTopicRetries of them it does not exist.
	unknown int
}

func newFetcher(cl *kgo.Client, topic string, partition int32) *fetcher {
	return &fetcher{cl: cl, topic: topic, partition: partition, maxBytes: fetchMaxBytes, stale: true}
}

func (f *fetcher) errorf(format string, args ...any) error {
	return fmt.Errorf("statestore: restoring changelog %s partition %d: "+format, append([]any{f.topic, f.partition}, args...)...)
}

// refresh loads the partition's leader, leader epoch and topic ID.
func (f *fetcher) refresh(ctx context.Context) error {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(f.topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, f.cl)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != f.topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			if kafkaerr.UnknownTopic(err) {
				// Kafka's brokers learn of a topic a moment after the
				// controller created it (seconds on a busy machine), so a
				// changelog another instance has just created may be
				// unknown to the broker asked: retry a few times first.
				if f.unknown++; f.unknown > unknownTopicRetries {
					return kafkaerr.Permanent(fmt.Errorf("the topic does not exist; EnsureChangelog creates it: %w", err))
				}
				return fmt.Errorf("the topic is not known to the broker yet: %w", err)
			}
			return err
		}
		for _, p := range t.Partitions {
			if p.Partition != f.partition {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return err
			}
			if p.Leader < 0 {
				return kerr.LeaderNotAvailable
			}
			f.leader, f.epoch, f.topicID, f.stale, f.unknown = p.Leader, p.LeaderEpoch, t.TopicID, false, 0
			return nil
		}
		return kafkaerr.Permanent(fmt.Errorf("the topic has %d partitions, no partition %d; it needs one partition per partition of its source", len(t.Partitions), f.partition))
	}
	return errors.New("metadata response does not hold the topic")
}

// withLeader runs fn, which sends a request to the leader, first loading
// the leader if it is not known. When fn or the refresh fails with a
// retriable error (leader moved, epoch changed, connection dropped, broker
// restarting) it backs off, reloads the leader and tries again, at most
// maxRetries times in a row.
func (f *fetcher) withLeader(ctx context.Context, fn func() error) error {
	var lastErr error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if attempt > maxRetries {
				return fmt.Errorf("giving up after %d retries: %w", maxRetries, lastErr)
			}
			backoff := min(time.Duration(attempt)*100*time.Millisecond, maxBackoff)
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
			case <-time.After(backoff):
			}
		}
		err := func() error {
			if f.stale {
				if err := f.refresh(ctx); err != nil {
					return err
				}
			}
			return fn()
		}()
		if err == nil || !kafkaerr.Retriable(err) {
			return err
		}
		lastErr, f.stale = err, true
	}
}

// listOffset returns the offset ListOffsets gives for timestamp: -2 for
// the log start offset, -1 for the high watermark (read_uncommitted, so
// open transactions count: the restore must wait past them).
func (f *fetcher) listOffset(ctx context.Context, timestamp int64) (int64, error) {
	var offset int64
	err := f.withLeader(ctx, func() error {
		req := kmsg.NewPtrListOffsetsRequest()
		req.IsolationLevel = 0
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = f.topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = f.partition
		rp.CurrentLeaderEpoch = f.epoch
		rp.Timestamp = timestamp
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, f.cl.Broker(int(f.leader)))
		if err != nil {
			return err
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if t.Topic == f.topic && p.Partition == f.partition {
					offset = p.Offset
					return kerr.ErrorForCode(p.ErrorCode)
				}
			}
		}
		return errors.New("list offsets response does not hold the partition")
	})
	return offset, err
}

// offsets returns the partition's log start offset and high watermark.
func (f *fetcher) offsets(ctx context.Context) (logStart, hwm int64, err error) {
	if logStart, err = f.listOffset(ctx, -2); err != nil {
		return 0, 0, f.errorf("listing the log start offset: %w", err)
	}
	if hwm, err = f.listOffset(ctx, -1); err != nil {
		return 0, 0, f.errorf("listing the high watermark: %w", err)
	}
	return logStart, hwm, nil
}

// fetch issues one read_committed fetch at offset to the leader and
// returns the partition's part of the response, its error code unchecked.
func (f *fetcher) fetch(ctx context.Context, offset int64) (*kmsg.FetchResponseTopicPartition, error) {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = int32(fetchMaxWait / time.Millisecond)
	req.MinBytes = 1
	// The partition's limit bounds the response (one partition per
	// fetch); the request's is left open. kfake, stopping a response at
	// the request's limit, leaves out the aborted transactions of the
	// partition it stopped in, and a read_committed reader then takes
	// their records for committed (TestRestoreLargeAbortedTransaction).
	req.MaxBytes = math.MaxInt32
	req.IsolationLevel = 1 // read_committed
	// SessionID 0 with the default epoch -1: a full fetch, no session.
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = f.topic     // up to v12
	rt.TopicID = f.topicID // v13+
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = f.partition
	rp.CurrentLeaderEpoch = f.epoch
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = f.maxBytes
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	resp, err := req.RequestWith(ctx, f.cl.Broker(int(f.leader)))
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if p := &resp.Topics[i].Partitions[j]; p.Partition == f.partition {
				return p, nil
			}
		}
	}
	return nil, errors.New("fetch response does not hold the partition")
}

// read applies every committed record in [from, hwm) to st.
func (f *fetcher) read(ctx context.Context, from, hwm int64, st Store, progress Progress, stats *RestoreStats) error {
	return f.scan(ctx, from, hwm, func(r *kgo.Record) error {
		if err := st.Restore(r.Key, r.Value, r.Offset); err != nil {
			return err
		}
		stats.Records++
		if progress != nil && stats.Records%progressEvery == 0 {
			progress(stats.Records, hwm-r.Offset-1)
		}
		return nil
	})
}

// ReadCommitted calls fn, in offset order, for every committed record of
// topic/partition in [from, to), waiting out transactions open below to.
// See fetcher.scan for why it fetches by hand.
func ReadCommitted(ctx context.Context, cl *kgo.Client, topic string, partition int32, from, to int64, fn func(*kgo.Record) error) error {
	return newFetcher(cl, topic, partition).scan(ctx, from, to, fn)
}

// scan calls fn for every committed record in [from, hwm).
//
// Why raw fetches and not a kgo consumer: "the read position reached hwm"
// is not visible in the records a consumer returns. Under read_committed,
// transaction markers take an offset each and are never returned, aborted
// records are dropped, and compaction leaves holes, so the last returned
// record can sit well below hwm while nothing more will ever be returned:
// a consumer would wait forever, and stopping at the last stable offset
// instead would miss committed records behind an open zombie transaction.
// kgo.ProcessFetchPartition, which is kgo's own fetch decoding, returns the
// next offset to fetch after everything the response covered, markers,
// aborted batches and compacted batch ends (KAFKA-5443) included. That next
// offset is the read position, exactly, and once it reaches hwm every
// committed record below hwm has been seen.
//
// While a transaction is open below hwm, the broker returns nothing at or
// past the last stable offset, and holds each fetch for fetchMaxWait. We
// keep fetching: the transaction ends (its producer commits or aborts it,
// or the broker aborts it at its transaction timeout) and the position
// moves on.
func (f *fetcher) scan(ctx context.Context, from, hwm int64, fn func(*kgo.Record) error) error {
	var (
		pos          = from
		decompressor = kgo.DefaultDecompressor()
	)
	for pos < hwm {
		var rp *kmsg.FetchResponseTopicPartition
		err := f.withLeader(ctx, func() error {
			var err error
			if rp, err = f.fetch(ctx, pos); err != nil {
				return err
			}
			return kerr.ErrorForCode(rp.ErrorCode)
		})
		switch {
		case kafkaerr.OffsetOutOfRange(err):
			return f.errorf("offset %d is out of range (records were deleted during the restore); restore again to rebuild: %w", pos, err)
		case err != nil:
			return f.errorf("fetching offset %d of %d: %w", pos, hwm, err)
		case rp.HighWatermark < hwm:
			return f.errorf("high watermark went back from %d to %d (topic recreated, or truncated by an unclean leader election); restore again to rebuild", hwm, rp.HighWatermark)
		}

		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			Offset:         pos,
			IsolationLevel: kgo.ReadCommitted(),
			Topic:          f.topic,
			Partition:      f.partition,
		}, rp, decompressor, nil)
		if fp.Err != nil && len(fp.Records) == 0 {
			return f.errorf("decoding records at offset %d: %w", pos, fp.Err)
		}
		for _, r := range fp.Records {
			if r.Offset < pos {
				continue
			}
			if r.Offset >= hwm {
				// Written after the restore began: not ours to apply,
				// the checkpoint will be hwm.
				break
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		pos = max(pos, next)
	}
	return nil
}
