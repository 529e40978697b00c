package txn

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A new session fences the previous incarnation of its transactional id
// as it starts: the transaction a crashed predecessor left open is
// aborted then, so the last stable offset of what it wrote moves on at
// once, not after the transaction timeout (a minute here).
func TestNewSessionFencesThePredecessorAtOnce(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The predecessor: a transaction left open, as by a crash.
	old, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("p-a"), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.ProduceSync(ctx, &kgo.Record{Topic: "out", Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(old)
	lso := func() int64 {
		l, err := adm.ListCommittedOffsets(ctx, "out")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := l.Lookup("out", 0)
		return o.Offset
	}
	if got := lso(); got != 0 {
		t.Fatalf("last stable offset with the transaction open = %d, want 0", got)
	}

	s, err := New(Config{Brokers: c.ListenAddrs(), Group: "g", TransactionalID: "p-a", Topics: []string{"in"},
		TransactionTimeout: time.Minute, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	// No transaction of the new session yet: the start alone fenced.
	for lso() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the predecessor's transaction is still open: the new session did not fence it at start")
		case <-time.After(50 * time.Millisecond):
		}
	}
}
