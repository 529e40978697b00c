package txn

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// holdFailed holds the promise of every record that fails until release
// is closed (kgo calls the hook just before the promise, on the same
// goroutine).
type holdFailed struct{ release <-chan struct{} }

func (h holdFailed) OnProduceRecordUnbuffered(_ *kgo.Record, err error) {
	if err != nil {
		<-h.release
	}
}

// A record kgo refuses before buffering it (here: larger than
// MaxBufferedBytes; also a record without a topic, one produced outside a
// transaction, one over the buffer limits with manual flushing) never
// counts as buffered, so kgo's Flush does not wait for its promise, which
// runs on kgo's promise goroutine whenever that gets to it. End read the
// failures once Flush returned: a refusal whose promise had not run yet
// was not seen, and the transaction committed without the record (the
// same loss as a produce refused during the flush). End now waits for the
// promise of every record it was given.
//
// The hook holds the refusal's promise until the broker sees the
// transaction's EndTxn (or, once End waits for it as it should, for a
// while), so before the fix the commit always came first.
func TestEndWaitsForRecordsRefusedBeforeBuffering(t *testing.T) {
	c, ctx := kfakeCluster(t)

	release := make(chan struct{})
	var once sync.Once
	releaseHook := func() { once.Do(func() { close(release) }) }
	defer releaseHook()
	c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		releaseHook()
		return nil, nil, false
	})

	s := kfakeSession(t, ctx, c, "t-prebuf", kgo.MaxBufferedBytes(1000), kgo.WithHooks(holdFailed{release}))

	if err := s.Begin(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// One record the broker accepts, acknowledged before End, so the
	// transaction has something to commit.
	s.Produce(ctx, &kgo.Record{Topic: "out", Value: []byte("accepted")})
	if err := s.Client().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s.Produce(ctx, &kgo.Record{Topic: "out", Value: make([]byte, 2000)})
	// Once End waits for the held promise, nothing else releases it.
	time.AfterFunc(2*time.Second, releaseHook)
	committed, err := s.End(ctx, false)
	var perr *ProduceError
	if committed || !errors.As(err, &perr) || !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("End = (committed %v, %v), want an abort with the refused record's *ProduceError (MESSAGE_TOO_LARGE)", committed, err)
	}
}

// The same without transactions: a batch whose record kgo refused before
// buffering it must not count as written.
func TestPlainEndWaitsForRecordsRefusedBeforeBuffering(t *testing.T) {
	c, ctx := kfakeCluster(t)

	// Nothing at the broker marks the end of a batch that polled
	// nothing: the refusal's promise is held for a while, and End must
	// wait for it.
	release := make(chan struct{})
	time.AfterFunc(2*time.Second, func() { close(release) })
	p, err := NewPlain(Config{Brokers: c.ListenAddrs(), Group: "g", Topics: []string{"in"},
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
		Opts: []kgo.Opt{kgo.MaxBufferedBytes(1000), kgo.WithHooks(holdFailed{release})}}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)

	if err := p.Begin(ctx, kgo.Fetches{}); err != nil {
		t.Fatal(err)
	}
	// Sent and acknowledged first (as a large batch sends early): kgo
	// runs promises in order, and Flush would otherwise wait for this
	// record's, queued behind the refusal's.
	p.Produce(ctx, &kgo.Record{Topic: "out", Value: []byte("accepted")})
	if err := p.Client().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p.Produce(ctx, &kgo.Record{Topic: "out", Value: make([]byte, 2000)})
	committed, err := p.End(ctx, false)
	var perr *ProduceError
	if committed || !errors.As(err, &perr) || !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("End = (committed %v, %v), want the refused record's *ProduceError (MESSAGE_TOO_LARGE)", committed, err)
	}
}
