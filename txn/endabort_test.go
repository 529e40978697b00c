package txn

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The produce failures of a transaction ended with abort belong to it, not
// to the next transaction. End used to read them before kgo's End, which
// aborting fails the records still buffered (kgo.ErrAborting) and waits
// for those in flight: their failures arrived after the read, stayed
// kept, and the next transaction, whose records all went through, was
// aborted for them (or, had one failed with an error that is not
// abortable, ended with the aborted one's *ProduceError, which stops the
// caller).
//
// A long linger holds the aborted transaction's record in the client, so
// kgo fails it inside End every time, with no timing involved.
func TestEndAbortKeepsItsProduceFailuresFromTheNextTransaction(t *testing.T) {
	c, ctx := kfakeCluster(t)

	s := kfakeSession(t, ctx, c, "t-abort", kgo.ProducerLinger(time.Minute))

	if err := s.Begin(ctx, nil); err != nil {
		t.Fatal(err)
	}
	s.Produce(ctx, &kgo.Record{Topic: "out", Value: []byte("aborted")})
	if committed, err := s.End(ctx, true); committed || err != nil {
		t.Fatalf("End(abort) = (committed %v, %v), want (false, nil)", committed, err)
	}

	if err := s.Begin(ctx, nil); err != nil {
		t.Fatal(err)
	}
	s.Produce(ctx, &kgo.Record{Topic: "out", Value: []byte("committed")})
	if committed, err := s.End(ctx, false); !committed || err != nil {
		t.Fatalf("End of the next transaction = (committed %v, %v), want (true, nil): its records all went through", committed, err)
	}
}
