package statestore

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-dev/exactly/kafkatest"
)

const changelog = "cl"

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

// newCluster returns the brokers of an embedded cluster with the changelog
// topic (2 partitions), or, when EXACTLY_TEST_BROKER=kafka, of the
// package's one Apache Kafka cluster, emptied first (the tests run one
// after the other with fixed names) and given the same topic.
func newCluster(t *testing.T) []string {
	t.Helper()
	if kafkatest.Selected() {
		k := kafkatest.Shared(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := k.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if err := k.CreateTopics(ctx, 2, nil, changelog); err != nil {
			t.Fatal(err)
		}
		return k.Addrs()
	}
	return newFake(t).ListenAddrs()
}

func newFake(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, changelog))
	if err != nil {
		t.Fatalf("kfake.NewCluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func newClient(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// rec is a changelog record: partition, key, value (nil value: delete).
type rec struct {
	p     int32
	key   string
	value []byte
}

func val(s string) []byte { return []byte(s) }

// txn produces recs in one transaction and commits or aborts it.
func txn(ctx context.Context, t *testing.T, cl *kgo.Client, commit bool, recs ...rec) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatalf("BeginTransaction: %v", err)
	}
	var krs []*kgo.Record
	for _, r := range recs {
		krs = append(krs, &kgo.Record{Topic: changelog, Partition: r.p, Key: []byte(r.key), Value: r.value})
	}
	if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("EndTransaction(commit %t): %v", commit, err)
	}
}

func offsets(ctx context.Context, t *testing.T, adm *kadm.Client, list func(context.Context, ...string) (kadm.ListedOffsets, error)) int64 {
	t.Helper()
	l, err := list(ctx, changelog)
	if err != nil {
		t.Fatalf("listing offsets: %v", err)
	}
	o, ok := l.Lookup(changelog, 0)
	if !ok || o.Err != nil {
		t.Fatalf("listing offsets of %s/0: %v, %v", changelog, ok, o.Err)
	}
	return o.Offset
}

// restoreStep is one restore and what it must find.
type restoreStep struct {
	name   string
	before func(t *testing.T, st Store)         // runs before producing
	txns   []func(t *testing.T, cl *kgo.Client) // produced before the restore
	want   state
	len    int64
	size   int64
	// Stats; start and end are checked against offsets listed in the test.
	records   int64
	rebuilt   bool
	fromStart bool // StartOffset is 0, else the previous end
}

func TestRestorePartition(t *testing.T) {
	for _, bc := range backends() {
		t.Run(bc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			addrs := newCluster(t)
			prod := newClient(t, addrs, kgo.TransactionalID("writer"))
			adm := kadm.NewClient(newClient(t, addrs))
			commitTx := func(recs ...rec) func(*testing.T, *kgo.Client) {
				return func(t *testing.T, cl *kgo.Client) { txn(ctx, t, cl, true, recs...) }
			}
			abortTx := func(recs ...rec) func(*testing.T, *kgo.Client) {
				return func(t *testing.T, cl *kgo.Client) { txn(ctx, t, cl, false, recs...) }
			}
			final := state{"a": val("11"), "c": nil, "e": {}, "f": val("6"), "b": nil, "d": nil, "x": nil, "junk": nil}
			steps := []restoreStep{
				{
					name: "empty store rebuilds from the start",
					txns: []func(*testing.T, *kgo.Client){
						commitTx(rec{0, "a", val("1")}, rec{0, "b", val("2")}, rec{0, "c", val("3")}, rec{1, "x", val("9")}),
						abortTx(rec{0, "d", val("4")}, rec{0, "a", val("999")}),
						commitTx(rec{0, "b", nil}, rec{0, "e", val("")}, rec{0, "a", val("11")}),
					},
					// d and a=999 were aborted, x is another partition's.
					want:    state{"a": val("11"), "b": nil, "c": val("3"), "d": nil, "e": {}, "x": nil},
					len:     3,
					size:    3 + 2 + 1,
					records: 6, rebuilt: true, fromStart: true,
				},
				{
					name: "restore from the checkpoint reads only the tail",
					txns: []func(*testing.T, *kgo.Client){
						abortTx(rec{0, "g", val("7")}),
						commitTx(rec{0, "f", val("6")}, rec{0, "c", nil}),
					},
					want:    final,
					len:     3,
					size:    3 + 1 + 2,
					records: 2,
				},
				{
					name:    "up to date store reads nothing",
					want:    final,
					len:     3,
					size:    3 + 1 + 2,
					records: 0,
				},
				{
					name: "store ahead of the changelog is wiped and rebuilt",
					before: func(t *testing.T, st Store) {
						st.Put([]byte("junk"), []byte("uncommitted write"))
						if err := st.Commit(st.Checkpoint() + 100); err != nil {
							t.Fatalf("Commit: %v", err)
						}
					},
					want:    final,
					len:     3,
					size:    3 + 1 + 2,
					records: 8, rebuilt: true, fromStart: true,
				},
				{
					name:    "store without checkpoint is wiped and rebuilt",
					before:  func(t *testing.T, st Store) { apply(t, st, []op{wipe(), put("junk", "1"), commit(-1)}) },
					want:    final,
					len:     3,
					size:    3 + 1 + 2,
					records: 8, rebuilt: true, fromStart: true,
				},
			}

			st := openStore(t, bc.new(t), "counts", 0)
			var prevEnd int64
			for _, step := range steps {
				t.Run(step.name, func(t *testing.T) {
					if step.before != nil {
						step.before(t, st)
					}
					for _, tx := range step.txns {
						tx(t, prod)
					}
					// Kafka writes a transaction's markers after EndTransaction
					// returns: wait for them (last stable offset = high
					// watermark), so hwm counts the last marker too.
					hwm := offsets(ctx, t, adm, adm.ListEndOffsets)
					for lso := offsets(ctx, t, adm, adm.ListCommittedOffsets); lso != hwm; lso = offsets(ctx, t, adm, adm.ListCommittedOffsets) {
						time.Sleep(20 * time.Millisecond)
						hwm = offsets(ctx, t, adm, adm.ListEndOffsets)
					}
					var calls, lastDone, lastRemaining int64 = 0, -1, -1
					stats, err := RestorePartition(ctx, addrs, changelog, 0, st, func(done, remaining int64) {
						calls++
						lastDone, lastRemaining = done, remaining
					})
					if err != nil {
						t.Fatalf("RestorePartition: %v", err)
					}
					checkStore(t, st, step.want, 0, hwm, step.len, step.size)
					wantStart := prevEnd
					if step.fromStart {
						wantStart = 0
					}
					if stats.Records != step.records || stats.StartOffset != wantStart || stats.EndOffset != hwm || stats.Rebuilt != step.rebuilt {
						t.Errorf("RestorePartition stats = {Records %d, StartOffset %d, EndOffset %d, Rebuilt %t}, want {%d, %d, %d, %t}",
							stats.Records, stats.StartOffset, stats.EndOffset, stats.Rebuilt, step.records, wantStart, hwm, step.rebuilt)
					}
					if stats.Duration <= 0 {
						t.Errorf("RestorePartition stats.Duration = %v, want > 0", stats.Duration)
					}
					if calls < 1 || lastDone != stats.Records || lastRemaining != 0 {
						t.Errorf("last progress call = (%d, %d) after %d calls, want (%d, 0)", lastDone, lastRemaining, calls, stats.Records)
					}
					prevEnd = hwm
				})
			}
		})
	}
}

// TestRestoreWaitsForOpenTransaction: a zombie's transaction open on the
// changelog holds the last stable offset below the high watermark, with
// committed records behind it. Restore must wait until the broker aborts
// the zombie's transaction at its timeout, then read those records, and
// never the zombie's.
func TestRestoreWaitsForOpenTransaction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addrs := newCluster(t)
	prod := newClient(t, addrs, kgo.TransactionalID("writer"))
	zombie := newClient(t, addrs, kgo.TransactionalID("zombie"), kgo.TransactionTimeout(2*time.Second))
	adm := kadm.NewClient(newClient(t, addrs))

	txn(ctx, t, prod, true, rec{0, "a", val("1")})
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatalf("zombie BeginTransaction: %v", err)
	}
	if err := zombie.ProduceSync(ctx, &kgo.Record{Topic: changelog, Partition: 0, Key: []byte("z"), Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatalf("zombie ProduceSync: %v", err)
	}
	txn(ctx, t, prod, true, rec{0, "b", val("2")}, rec{0, "a", val("3")})

	hwm := offsets(ctx, t, adm, adm.ListEndOffsets)
	lso := offsets(ctx, t, adm, adm.ListCommittedOffsets)
	if lso >= hwm {
		t.Fatalf("last stable offset %d, high watermark %d: want the open transaction to hold the LSO below the HWM", lso, hwm)
	}

	st := openStore(t, NewMemory(), "counts", 0)
	stats, err := RestorePartition(ctx, addrs, changelog, 0, st, nil)
	if err != nil {
		t.Fatalf("RestorePartition: %v", err)
	}
	checkStore(t, st, state{"a": val("3"), "b": val("2"), "z": nil}, 0, hwm, 2, 4)
	if stats.Records != 3 || stats.EndOffset != hwm || !stats.Rebuilt {
		t.Errorf("RestorePartition stats = %+v, want 3 records up to %d, rebuilt", stats, hwm)
	}
	if lso := offsets(ctx, t, adm, adm.ListCommittedOffsets); lso < hwm {
		t.Errorf("last stable offset after restore = %d, want >= %d: the zombie's transaction should have been aborted", lso, hwm)
	}
}

func TestRestoreErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addrs := newCluster(t)
	cases := []struct {
		name      string
		brokers   []string
		topic     string
		partition int32
		want      string
	}{
		{"no brokers", nil, changelog, 0, "no seed brokers"},
		{"missing topic", addrs, "nope", 0, "does not exist"},
		{"missing partition", addrs, changelog, 7, "no partition 7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t, NewMemory(), "s", 0)
			_, err := RestorePartition(ctx, tc.brokers, tc.topic, tc.partition, st, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("RestorePartition(%v, %s, %d) = %v, want error containing %q", tc.brokers, tc.topic, tc.partition, err, tc.want)
			}
		})
	}
}

// TestRestoreAfterRestart: a Pebble store keeps its checkpoint across a
// restart of the backend, so the next restore reads only what was
// committed to the changelog meanwhile.
func TestRestoreAfterRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addrs := newCluster(t)
	prod := newClient(t, addrs, kgo.TransactionalID("writer"))
	dir := t.TempDir()

	txn(ctx, t, prod, true, rec{0, "a", val("1")}, rec{0, "b", val("2")})
	b := newPebble(t, dir)
	st := openStore(t, b, "counts", 0)
	first, err := RestorePartition(ctx, addrs, changelog, 0, st, nil)
	if err != nil {
		t.Fatalf("RestorePartition: %v", err)
	}
	closeBackend(t, b)

	txn(ctx, t, prod, true, rec{0, "a", nil})
	b = newPebble(t, dir)
	defer closeBackend(t, b)
	st = openStore(t, b, "counts", 0)
	if got := st.Checkpoint(); got != first.EndOffset {
		t.Fatalf("Checkpoint() after restart = %d, want %d", got, first.EndOffset)
	}
	stats, err := RestorePartition(ctx, addrs, changelog, 0, st, nil)
	if err != nil {
		t.Fatalf("RestorePartition: %v", err)
	}
	if stats.Records != 1 || stats.StartOffset != first.EndOffset || stats.Rebuilt {
		t.Errorf("RestorePartition after restart = {Records %d, StartOffset %d, Rebuilt %t}, want {1, %d, false}", stats.Records, stats.StartOffset, stats.Rebuilt, first.EndOffset)
	}
	checkStore(t, st, state{"a": nil, "b": val("2")}, 0, stats.EndOffset, 1, 2)
}

// TestRestoreRetries injects the failures of a leader move and a dropped
// connection into the restore's requests: it reloads the leader, retries
// and still restores everything.
func TestRestoreRetries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kafkatest.SkipUnlessEmbedded(t, "it fails ListOffsets and Fetch through kfake ControlKey")
	c := newFake(t)
	addrs := c.ListenAddrs()
	prod := newClient(t, addrs, kgo.TransactionalID("writer"))
	txn(ctx, t, prod, true, rec{0, "a", val("1")}, rec{0, "b", val("2")})

	var injected atomic.Int32
	c.ControlKey(int16(kmsg.ListOffsets), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.ListOffsetsRequest)
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		injected.Add(1)
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.FetchRequest)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.FencedLeaderEpoch.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		injected.Add(1)
		// The next fetch finds its connection closed.
		c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
			injected.Add(1)
			return nil, errors.New("injected connection failure"), true
		})
		return resp, nil, true
	})

	st := openStore(t, NewMemory(), "counts", 0)
	stats, err := RestorePartition(ctx, addrs, changelog, 0, st, nil)
	if err != nil {
		t.Fatalf("RestorePartition: %v", err)
	}
	if got := injected.Load(); got != 3 {
		t.Errorf("injected %d failures, want 3: the restore did not send the requests this test expects", got)
	}
	checkStore(t, st, state{"a": val("1"), "b": val("2")}, 0, stats.EndOffset, 2, 4)
	if stats.Records != 2 {
		t.Errorf("RestorePartition stats.Records = %d, want 2", stats.Records)
	}
}

// TestRestoreLargeAbortedTransaction: an aborted transaction larger than
// one fetch response restores to nothing, and the committed record after
// it restores. (Fetches of 64 KiB here, so 2 MB of aborted records span
// many.)
func TestRestoreLargeAbortedTransaction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addrs := newCluster(t)
	cl := newClient(t, addrs, kgo.TransactionalID("big"))
	var aborted []rec
	for i := range 20 {
		aborted = append(aborted, rec{0, "aborted-" + strconv.Itoa(i), make([]byte, 100<<10)})
	}
	txn(ctx, t, cl, false, aborted...)
	txn(ctx, t, cl, true, rec{0, "kept", val("1")})
	adm := kadm.NewClient(cl)
	end := offsets(ctx, t, adm, adm.ListEndOffsets)
	var keys []string
	f := newFetcher(cl, changelog, 0)
	f.maxBytes = 64 << 10
	err := f.scan(ctx, 0, end, func(r *kgo.Record) error {
		keys = append(keys, string(r.Key))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "kept" {
		n := len(keys)
		if n > 3 {
			keys = keys[:3]
		}
		t.Fatalf("read_committed read %d records (%q...), want only \"kept\"", n, keys)
	}
}
