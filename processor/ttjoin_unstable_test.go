package processor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-dev/exactly/statestore"
)

// A table a table-table join reads is restored to the group's committed
// offset of its partition: the member's consumer resumes there. While a
// transaction that committed offsets of the partition is not complete
// (its previous owner's last transaction, whose markers the broker writes
// after answering EndTxn; a zombie's until the broker aborts it), that
// offset is about to change, and the consumer (kgo's
// RequireStableFetchOffsets) waits for it. restoreTable did not:
//
//   - it asked for all of the group's offsets, and the broker lists only
//     partitions with a committed offset: a partition whose first offset
//     was still pending read as none committed, the table was restored
//     empty (to the log start), and the consumer then resumed past the
//     table's records, so they were in the store of no task (joins missed
//     their rows);
//   - a partition with a committed offset and a pending one came back
//     UNSTABLE_OFFSET_COMMIT, a retriable error, which stopped the
//     processor.
//
// It now asks for the partition itself, with require_stable, and asks
// again while the answer is retriable. The test holds the EndTxn of a
// group member's transaction (its offsets are then pending) until the
// restore has asked twice, then lets it commit; the restore must end at
// the offset it committed.
func TestRestoreTableWaitsForPendingOffsets(t *testing.T) {
	for _, committedBefore := range []bool{false, true} {
		t.Run(fmt.Sprintf("committed_before=%v", committedBefore), func(t *testing.T) {
			testRestoreTableWaitsForPendingOffsets(t, committedBefore)
		})
	}
}

func testRestoreTableWaitsForPendingOffsets(t *testing.T, committedBefore bool) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "table"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(keys ...string) {
		t.Helper()
		for _, k := range keys {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "table", Key: []byte(k), Value: []byte(k)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}

	s, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumerGroup("g"),
		kgo.ConsumeTopics("table"), kgo.TransactionalID("member"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	consume := func(n int) {
		t.Helper()
		for n > 0 {
			fs := s.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatal(ctx.Err())
			}
			n -= fs.NumRecords()
		}
		if err := s.Begin(); err != nil {
			t.Fatal(err)
		}
	}
	if committedBefore {
		produce("a")
		consume(1)
		if committed, err := s.End(ctx, kgo.TryCommit); !committed || err != nil {
			t.Fatalf("first transaction: committed %v, %v", committed, err)
		}
		produce("b", "c")
		consume(2)
	} else {
		produce("a", "b", "c")
		consume(3)
	}

	// The restore's offset requests (require_stable; the member's own
	// are done), and the member's EndTxn, held until released.
	fetched := make(chan struct{}, 16)
	c.ControlKey(int16(kmsg.OffsetFetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		select {
		case fetched <- struct{}{}:
		default:
		}
		return nil, nil, false
	})
	release, ending := make(chan struct{}), make(chan struct{})
	var releaseOnce, endingOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		// Its TxnOffsetCommit came before it: the offsets are pending.
		endingOnce.Do(func() { close(ending) })
		c.SleepControl(func() {
			select {
			case <-release:
			case <-ctx.Done():
			}
		})
		return nil, nil, false
	})
	ended := make(chan error, 1)
	go func() {
		committed, err := s.End(ctx, kgo.TryCommit)
		if err == nil && !committed {
			err = fmt.Errorf("aborted")
		}
		ended <- err
	}()
	select {
	case <-ending:
	case err := <-ended:
		t.Fatalf("the member's transaction ended (%v) before its EndTxn was held", err)
	}

	tk := &tasks{group: "g"}
	st, err := statestore.NewMemory().Open("table", 0)
	if err != nil {
		t.Fatal(err)
	}
	rcl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer rcl.Close()
	restored := make(chan error, 1)
	go func() {
		_, err := tk.restoreTable(ctx, rcl, "table", 0, st, nil)
		restored <- err
	}()
	for seen := 0; seen < 2; {
		select {
		case <-fetched:
			seen++
		case err := <-restored:
			t.Fatalf("restoreTable returned (%v, table restored to offset %d) while the group's offset was pending; want it to wait and restore to 3", err, st.Checkpoint())
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	releaseOnce.Do(func() { close(release) })
	if err := <-ended; err != nil {
		t.Fatalf("ending the member's transaction: %v", err)
	}
	if err := <-restored; err != nil {
		t.Fatalf("restoreTable = %v, want the table restored once the offset is stable", err)
	}
	if cp := st.Checkpoint(); cp != 3 {
		t.Errorf("table restored to offset %d, want 3 (the offset the group committed)", cp)
	}
}
