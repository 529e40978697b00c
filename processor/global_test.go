package processor

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/topology"
)

// A global table whose topic an exactly-once writer fills (another
// pipeline, a Kafka Streams application) ends in a commit marker, which
// takes an offset and is never a record. The reader counted its position
// from the records it got, one short of the topic's end, so the table
// never counted as loaded and the processor never started. The loaded
// check holds the reader to the offsets past every record and marker.
func TestGlobalTableLoadsATopicWrittenInTransactions(t *testing.T) {
	c := newCluster(t, "countries")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	w, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.TransactionalID("countries-writer"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(3) {
		r := &kgo.Record{Topic: "countries", Partition: p, Key: []byte(fmt.Sprint("k", p)), Value: []byte(`{"name":"x"}`)}
		if err := w.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}

	// Kafka writes the markers after answering EndTxn: wait until the
	// transaction is stable (the last stable offset at the end), so the
	// reader's target takes it in.
	for {
		stable, err := c.adm.ListCommittedOffsets(ctx, "countries")
		if err == nil {
			err = stable.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		stable.Each(func(o kadm.ListedOffset) {
			if o.Offset == 2 { // the record and the commit marker
				n++
			}
		})
		if n == 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the transaction never became stable: %v", stable)
		case <-time.After(50 * time.Millisecond):
		}
	}

	gt := newGlobalTable(&topology.Node{Name: "countries", Topic: "countries"})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- gt.read(rctx, c.addrs, nil, slog.New(slog.DiscardHandler), func(float64) {})
	}()
	defer func() { stop(); <-done }()
	select {
	case <-gt.loaded:
	case <-ctx.Done():
		t.Fatalf("the global table never loaded (lag %d): its topic ends in a commit marker", gt.lag.Load())
	}
	if n := gt.size(); n != 3 {
		t.Errorf("global table holds %d rows once loaded, want 3", n)
	}
}
