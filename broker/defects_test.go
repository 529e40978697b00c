package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-dev/exactly/kafkatest"
)

// The tests in this file pin down, on Apache Kafka, behaviours the
// embedded broker (kfake) gets wrong; the package doc and `exactly broker
// --help` list the same defects. They run with EXACTLY_TEST_BROKER=kafka;
// the ones whose defect kfake shows are skipped on it, naming the defect.

func TestMain(m *testing.M) {
	if v := os.Getenv(ghostEnv); v != "" {
		ghostMain(v) // never returns: it SIGKILLs itself
	}
	os.Exit(kafkatest.Main(m))
}

// ghostEnv makes the test binary a group member that SIGKILLs itself right
// after sending its JoinGroup with its member id, while the rebalance that
// join started waits for the other members: killed while joining.
const ghostEnv = "EXACTLY_TEST_GHOST" // addr,group,topic

type killOnJoin struct{ joins int }

func (k *killOnJoin) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	// The first JoinGroup is refused with MEMBER_ID_REQUIRED; the second
	// carries the member id and joins.
	if key == int16(kmsg.JoinGroup) && err == nil {
		if k.joins++; k.joins == 2 {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}

func ghostMain(v string) {
	f := strings.Split(v, ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(f[0]), kgo.ConsumerGroup(f[1]), kgo.ConsumeTopics(f[2]),
		kgo.SessionTimeout(6*time.Second), kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.WithHooks(&killOnJoin{}))
	if err != nil {
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		cl.PollFetches(ctx)
	}
	os.Exit(3) // never killed: the test sees the exit status
}

// skipOnKfake skips a test of a behaviour the embedded broker gets wrong.
func skipOnKfake(t *testing.T, defect string) {
	t.Helper()
	if !kafkatest.Selected() {
		t.Skipf("kfake defect, shown on real Kafka only (EXACTLY_TEST_BROKER=kafka): %s", defect)
	}
}

// readAll reads topic from the start with the given isolation until it
// has reached every partition's end offset (end offsets by that
// isolation: the last stable offset for read_committed), and returns the
// values seen, keyed by record key (the last value of a key wins) and in
// order.
func readAll(ctx context.Context, t *testing.T, addr, topic string, committed bool) (byKey map[string]string, values []string) {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var ends kadm.ListedOffsets
	if committed {
		ends, err = adm.ListCommittedOffsets(ctx, topic)
	} else {
		ends, err = adm.ListEndOffsets(ctx, topic)
	}
	if err != nil {
		t.Fatal(err)
	}
	byKey = map[string]string{}
	pos := map[int32]int64{}
	caughtUp := func() bool {
		ok := true
		ends.Each(func(o kadm.ListedOffset) { ok = ok && pos[o.Partition] >= o.Offset })
		return ok
	}
	for !caughtUp() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (at %v, want %v)", topic, ctx.Err(), pos, ends)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("reading %s: %v", topic, err) })
		fs.EachRecord(func(r *kgo.Record) {
			// Control records (kept) move the position too: the last
			// offset before the end may be a transaction marker.
			pos[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				byKey[string(r.Key)] = string(r.Value)
				values = append(values, string(r.Value))
			}
		})
	}
	return byKey, values
}

// TestKafkaCompactionKeepsOpenTransactions: Kafka's log cleaner compacts
// only below the first offset of an open transaction, and drops an
// aborted transaction's records without letting them stand for their
// keys, so a key's last committed value survives a newer value that was
// open or aborted. kfake compacts without regard for open transactions:
// the open value replaces the committed one, and after the abort the key
// is gone (which is why the embedded broker keeps its cleaner off).
func TestKafkaCompactionKeepsOpenTransactions(t *testing.T) {
	skipOnKfake(t, "kfake's log cleaner compacts past open transactions: a key's committed value is removed in favour of a newer value still in an open transaction, and is lost when that transaction aborts")
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	topic := kafkatest.Name("compact-open-txn")
	if err := c.CreateTopics(ctx, 1, map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"segment.ms":                kadm.StringPtr("100"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
		"delete.retention.ms":       kadm.StringPtr("0"),
	}, topic); err != nil {
		t.Fatal(err)
	}
	addr := c.Addrs()[0]
	plain, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	produce := func(k, v string) {
		t.Helper()
		if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// A segment rolls when a record arrives more than segment.ms after
	// the segment's first one.
	roll := func() {
		time.Sleep(300 * time.Millisecond)
		produce("filler", "x")
	}
	// probe waits until the cleaner has removed value v of key "probe":
	// it has cleaned the segment v is in.
	probe := func(gone string) {
		t.Helper()
		for {
			_, values := readAll(ctx, t, addr, topic, false)
			found := false
			for _, v := range values {
				found = found || v == gone
			}
			if !found {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the log cleaner did not remove probe value %s: %v", gone, ctx.Err())
			case <-time.After(time.Second):
				roll()
			}
		}
	}

	produce("k", "committed")
	produce("probe", "p1")
	produce("probe", "p2")
	roll()
	txn, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.TransactionalID(kafkatest.Name("compact-open-txn")))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	roll()
	// The cleaner ran while the transaction was open.
	probe("p1")
	if byKey, _ := readAll(ctx, t, addr, topic, false); byKey["k"] != "open" {
		t.Fatalf("read_uncommitted: k = %q, want the open transaction's value", byKey["k"])
	}
	if byKey, _ := readAll(ctx, t, addr, topic, true); byKey["k"] != "committed" {
		t.Fatalf("while a newer value of k is in an open transaction, read_committed k = %q, want %q: the cleaner compacted past the open transaction", byKey["k"], "committed")
	}
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	produce("probe", "p3")
	produce("probe", "p4")
	roll()
	// The cleaner ran again, over the aborted transaction.
	probe("p3")
	byKey, values := readAll(ctx, t, addr, topic, true)
	if byKey["k"] != "committed" {
		t.Fatalf("after the transaction aborted and the cleaner ran, k = %q, want %q (values: %v)", byKey["k"], "committed", values)
	}
}

// TestKafkaBrokerCrashKeepsLaterTransactions: a transaction open when
// the broker is SIGKILLed is still open after the restart (its state is
// in the transaction log), and once it is aborted, with an abort marker,
// every later committed transaction of the same transactional id is read
// by read_committed consumers. kfake, SIGKILLed and restarted with a data
// dir, takes the open transaction for aborted without writing a marker,
// and its readers then skip the producer's later transactions, committed
// ones included (50 of 50 records invisible).
func TestKafkaBrokerCrashKeepsLaterTransactions(t *testing.T) {
	skipOnKfake(t, "after kfake (exactly broker --data-dir) is SIGKILLed and restarted, a transaction open at the crash is treated as aborted without an abort marker, and read_committed readers skip that producer's later committed transactions")
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	topic := kafkatest.Name("crash-open-txn")
	txnID := kafkatest.Name("crash-open-txn")
	if err := c.CreateTopics(ctx, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	producer := func() *kgo.Client {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.DefaultProduceTopic(topic), kgo.TransactionalID(txnID),
			kgo.TransactionTimeout(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	p := producer()
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("open-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// SIGKILL the nodes that hold the open transaction: the partition's
	// leader and the transaction coordinator (one node on a 1-node
	// cluster), then restart them.
	var nodes []int32
	for _, f := range []func() (int32, error){
		func() (int32, error) { return c.Leader(ctx, topic, 0) },
		func() (int32, error) { return c.TxnCoordinator(ctx, txnID) },
	} {
		n, err := f()
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) == 0 || nodes[0] != n {
			nodes = append(nodes, n)
		}
	}
	for _, n := range nodes {
		c.Kill(n)
	}
	p.Close() // the producer's process is gone too
	for _, n := range nodes {
		if err := c.Restart(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	// The application restarts: the same transactional id aborts the
	// open transaction (InitProducerID), then commits 50 records in 5
	// transactions.
	p = producer()
	defer p.Close()
	for txn := 0; txn < 5; txn++ {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("after-%d", 10*txn+i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	_, values := readAll(ctx, t, c.Addrs()[0], topic, true)
	after := 0
	for _, v := range values {
		if strings.HasPrefix(v, "open-") {
			t.Errorf("read_committed returned %q of the transaction open at the crash", v)
		}
		if strings.HasPrefix(v, "after-") {
			after++
		}
	}
	if after != 50 {
		t.Errorf("read_committed returned %d of the 50 records committed after the restart, want 50", after)
	}
	_, raw := readAll(ctx, t, c.Addrs()[0], topic, false)
	if len(raw) != 60 {
		t.Errorf("read_uncommitted returned %d records, want 60 (10 aborted, 50 committed)", len(raw))
	}
}

// TestKafkaExpiresGhostMembers: members SIGKILLed while joining a group
// (their JoinGroup sent, the rebalance it started still waiting for the
// live member) are expired after their session timeout, and the live
// member then holds every partition of a stable group. A 3-instance chaos
// run on kfake had 7 members and no JoinGroup answered for 224 s; this
// minimal form of it (one live member, three ghosts one after the other)
// passes on kfake too, so it runs on both brokers: the stall needs more
// than it does (concurrent joins of several instances), and stays
// documented as a kfake defect from that run.
func TestKafkaExpiresGhostMembers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	topic := kafkatest.Name("ghosts")
	group := kafkatest.Name("ghosts")
	var addr string
	if kafkatest.Selected() {
		c := kafkatest.Shared(t)
		if err := c.CreateTopics(ctx, 2, nil, topic); err != nil {
			t.Fatal(err)
		}
		addr = c.Addrs()[0]
	} else {
		b, err := Start(Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := CreateTopics(ctx, b.Addrs(), 2, topic); err != nil {
			t.Fatal(err)
		}
		addr = b.Addrs()[0]
	}
	var mu sync.Mutex
	owned := map[int32]bool{}
	live, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(6*time.Second), kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range m[topic] {
				owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range m[topic] {
				delete(owned, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range m[topic] {
				delete(owned, p)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	polling := make(chan struct{})
	go func() {
		defer close(polling)
		for ctx.Err() == nil {
			live.PollFetches(ctx)
		}
	}()
	defer func() { cancel(); <-polling }()
	adm := kadm.NewClient(live)
	settled := func(what string) {
		t.Helper()
		for {
			mu.Lock()
			n := len(owned)
			mu.Unlock()
			gs, err := adm.DescribeGroups(ctx, group)
			if err == nil && n == 2 && gs[group].State == "Stable" && len(gs[group].Members) == 1 {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: the live member holds %d of 2 partitions, group %+v (%v): the group is stuck behind its ghosts", what, n, gs[group], err)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	settled("before the ghosts")
	// Three members join one after the other and are SIGKILLed while
	// their JoinGroup waits for the live member to rejoin.
	for i := 0; i < 3; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), ghostEnv+"="+strings.Join([]string{addr, group, topic}, ","))
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("ghost %d: %v, want it SIGKILLed while joining", i, err)
		}
	}
	settled("after three members were SIGKILLed while joining")
}
