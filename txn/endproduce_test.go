package txn

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-dev/exactly/kafkatest"
)

// A produce that fails while End flushes it (its answer arrives after End
// was called) must make End abort and report it. End used to read the
// failures before flushing: a refused record whose answer was still on
// its way let the transaction commit without it, and a dead letter the
// broker refused was lost (TestFailedDeadLetterWriteFails caught it on
// a busy machine).
func TestEndAbortsOnAProduceThatFailsDuringTheFlush(t *testing.T) {
	c, ctx := kfakeCluster(t)

	s := kfakeSession(t, ctx, c, "t-a")

	// Every produce to out is refused, and its answer held until the
	// test has called End.
	ending := make(chan struct{})
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.ProduceRequest)
		c.SleepControl(func() {
			select {
			case <-ending:
			case <-ctx.Done():
			}
			time.Sleep(200 * time.Millisecond)
		})
		return kafkatest.RefusedProduce(r, kerr.TopicAuthorizationFailed.Code), nil, true
	})

	if err := s.Begin(ctx, nil); err != nil {
		t.Fatal(err)
	}
	s.Produce(ctx, &kgo.Record{Topic: "out", Value: []byte("refused")})
	close(ending)
	committed, err := s.End(ctx, false)
	var perr *ProduceError
	if committed || !errors.As(err, &perr) || !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("End = (committed %v, %v), want an abort with the refused produce's *ProduceError", committed, err)
	}
	if perr.Topic != "out" {
		t.Errorf("ProduceError names topic %q, want out", perr.Topic)
	}
}
