package txn

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// plainOnKfake starts an embedded cluster with topics in and out and a
// Plain (at least once) on it whose pause watch runs on a fake clock.
func plainOnKfake(t *testing.T) (*kfake.Cluster, *Plain, *fakeClock) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	p, err := NewPlain(Config{Brokers: c.ListenAddrs(), Group: "g", Topics: []string{"in"}, SessionTimeout: time.Minute, RebalanceTimeout: time.Minute}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	clock := &fakeClock{}
	p.pauses.mu.Lock()
	p.pauses.now, p.pauses.last = clock.reading, reading{}
	p.pauses.mu.Unlock()
	p.epoch = p.pauses.epoch()
	return c, p, clock
}

// endOffset returns the end offset of topic's partition 0.
func endOffset(t *testing.T, ctx context.Context, c *kfake.Cluster, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := ends.Lookup(topic, 0)
	return o.Offset
}

// A batch's records reach the broker only in End, after its zombie check:
// records produced before the process stood still are not sent when it
// wakes (kgo's lingering sent them within milliseconds, so a woken
// zombie's changelog values landed after the new owner's, and a restore
// took them for the latest).
func TestPlainZombieBatchSendsNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, p, clock := plainOnKfake(t)
	produced := make(chan struct{}, 1)
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		select {
		case produced <- struct{}{}:
		default:
		}
		return nil, nil, false
	})

	if err := p.Begin(ctx, kgo.Fetches{}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a", "b", "c"} {
		p.Produce(ctx, &kgo.Record{Topic: "out", Value: []byte(v)})
	}
	// Give a client that sends as it goes the time to do so.
	select {
	case <-produced:
		t.Error("records of an open batch reached the broker before End")
	case <-time.After(2 * time.Second):
	}

	clock.advance(time.Hour) // SIGSTOP ... SIGCONT
	committed, err := p.End(ctx, false)
	var rebuild *RebuildError
	if committed || !errors.As(err, &rebuild) {
		t.Fatalf("End of a batch after a pause = %v, %v; want not committed and a *RebuildError", committed, err)
	}
	if n := endOffset(t, ctx, c, "out"); n != 0 {
		t.Errorf("out holds %d records of the zombie's batch, want 0", n)
	}
}

// A pause while End sends the batch (a SIGSTOP between End's check and
// the records reaching the broker) is seen once the flush returns: the
// batch's writes may have landed after those of a member that took its
// partitions over, so it does not count as committed and End rebuilds
// (state is then restored from the changelogs, not kept).
func TestPlainPauseDuringFlushRebuilds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, p, clock := plainOnKfake(t)
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		clock.advance(time.Hour) // stopped while the request was on its way
		return nil, nil, false
	})
	if err := p.Begin(ctx, kgo.Fetches{}); err != nil {
		t.Fatal(err)
	}
	p.Produce(ctx, &kgo.Record{Topic: "out", Value: []byte("a")})
	committed, err := p.End(ctx, false)
	var rebuild *RebuildError
	if committed || !errors.As(err, &rebuild) {
		t.Fatalf("End of a batch whose flush spanned a pause = %v, %v; want not committed and a *RebuildError", committed, err)
	}
}

// An offset commit that finds the group moved on without the member means
// its writes may have landed after a new owner's: End rebuilds rather than
// report the batch committed (its state changes would be kept on stores
// the changelog may contradict).
func TestPlainCommitLostMembershipRebuilds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, p, _ := plainOnKfake(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "in", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var fetches kgo.Fetches
	for fetches.NumRecords() == 0 {
		if ctx.Err() != nil {
			t.Fatal("the record never came")
		}
		fetches = p.Poll(ctx, 10)
	}
	var refused atomic.Bool
	c.ControlKey(kmsg.OffsetCommit.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.OffsetCommitRequest)
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.UnknownMemberID.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		refused.Store(true)
		return resp, nil, true
	})
	if err := p.Begin(ctx, fetches); err != nil {
		t.Fatal(err)
	}
	p.Produce(ctx, &kgo.Record{Topic: "out", Value: []byte("a")})
	committed, err := p.End(ctx, false)
	var rebuild *RebuildError
	if !refused.Load() || committed || !errors.As(err, &rebuild) {
		t.Fatalf("End whose offset commit met UNKNOWN_MEMBER_ID = %v, %v (commit refused: %v); want not committed and a *RebuildError", committed, err, refused.Load())
	}
}

// A batch larger than the client may hold sends part of itself early
// (after the zombie check) instead of failing: with manual flushing kgo
// refuses a record past MaxBufferedRecords rather than wait.
func TestPlainLargeBatchSendsEarly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := NewPlain(Config{Brokers: c.ListenAddrs(), Group: "g", Topics: []string{"in"}, SessionTimeout: time.Minute, RebalanceTimeout: time.Minute,
		Opts: []kgo.Opt{kgo.MaxBufferedRecords(10)}}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	if err := p.Begin(ctx, kgo.Fetches{}); err != nil {
		t.Fatal(err)
	}
	for range 25 {
		p.Produce(ctx, &kgo.Record{Topic: "out", Value: []byte("v")})
	}
	if committed, err := p.End(ctx, false); !committed || err != nil {
		t.Fatalf("End of a batch of 25 records with room for 10 = %v, %v; want committed", committed, err)
	}
	if n := endOffset(t, ctx, c, "out"); n != 25 {
		t.Errorf("out holds %d records, want 25", n)
	}
}
