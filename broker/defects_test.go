package broker

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-dev/exactly/kafkatest"
)

// The tests in this file pin down, on Apache Kafka, behaviours the
// embedded broker (kfake) gets wrong; the package doc and `exactly broker
// --help` list the same defects. Each runs with EXACTLY_TEST_BROKER=kafka
// and is skipped on the embedded broker, naming the defect.

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

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

// TestKafkaExpiresGhostMembers: members that die while joining a group
// (one that got its member id and never joined again, one that joined and
// never synced or heartbeated) are expired by Kafka after their session
// timeout, and a live member then gets every partition. kfake keeps such
// ghosts forever: a dynamic group with them stops answering JoinGroup.
func TestKafkaExpiresGhostMembers(t *testing.T) {
	skipOnKfake(t, "kfake never expires members killed while joining a group: the ghosts stay, and a group with dynamic membership can stop answering JoinGroup")
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	topic := kafkatest.Name("ghosts")
	group := kafkatest.Name("ghosts")
	if err := c.CreateTopics(ctx, 2, nil, topic); err != nil {
		t.Fatal(err)
	}
	raw, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	meta := (&kmsg.ConsumerMemberMetadata{Version: 0, Topics: []string{topic}}).AppendTo(nil)
	join := func(member string) *kmsg.JoinGroupResponse {
		t.Helper()
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.MemberID, req.ProtocolType = group, member, "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 3000, 3000
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "cooperative-sticky", Metadata: meta}}
		resp, err := req.RequestWith(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// Ghost 1 asks for a member id and dies.
	join("")
	// Ghost 2 gets its member id, joins (it is alone: it leads
	// generation 1) and dies before SyncGroup.
	id := join("").MemberID
	if resp := join(id); resp.ErrorCode != 0 || resp.Generation < 1 {
		t.Fatalf("ghost JoinGroup: error %d generation %d, want a joined member", resp.ErrorCode, resp.Generation)
	}

	assigned := make(chan int, 16)
	live, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(6*time.Second), kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { assigned <- len(m[topic]) }))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	go func() {
		for ctx.Err() == nil {
			live.PollFetches(ctx)
		}
	}()
	got := 0
	for got < 2 {
		select {
		case n := <-assigned:
			got += n
		case <-ctx.Done():
			t.Fatalf("the live member got %d of 2 partitions: the group is stuck behind its ghosts", got)
		}
	}
	// The group is settled; it holds the live member only.
	for {
		gs, err := kadm.NewClient(raw).DescribeGroups(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		g := gs[group]
		if g.State == "Stable" && len(g.Members) == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s: state %s with %d members, want Stable with the live member only", group, g.State, len(g.Members))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
