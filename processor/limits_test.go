package processor

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
)

// TestLargeRecordsToTopicsThatAcceptThem writes 1.5 MB and 2 MB records
// through a pipeline whose topics accept 5 MB (max.message.bytes): they
// must arrive whole, not be dead-lettered against the producer's default
// batch limit of 1,000,012 bytes.
func TestLargeRecordsToTopicsThatAcceptThem(t *testing.T) {
	c := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	limit := "5242880"
	for _, topic := range []string{"big-in", "big-out", "big-dlq"} {
		if _, err := c.adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": &limit}, topic); err != nil {
			t.Fatal(err)
		}
	}
	topo := mustParse(t, `name: big
dead_letter_topic: big-dlq
limits: {max_input_bytes: 5000000, max_output_bytes: 3000000}
sources:
  - {name: in, topic: big-in}
steps:
  - {name: some, filter: value.n > 0}
sinks:
  - {name: out, topic: big-out}
`)
	mk := func(n, size int) *kgo.Record {
		v := `{"n":` + string(rune('0'+n)) + `,"pad":"`
		return &kgo.Record{Topic: "big-in", Key: []byte{byte('a' + n)}, Value: []byte(v + strings.Repeat("x", size-len(v)-2) + `"}`)}
	}
	in := []*kgo.Record{mk(1, 1_500_000), mk(2, 2_000_000), mk(3, 100)}
	pc := newTestClientOpts(t, c.addrs, kgo.ProducerBatchMaxBytes(5242880))
	if err := pc.ProduceSync(ctx, in...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	runUntilCaughtUp(t, ctx, c, topo, "a")

	dlq, err := broker.ReadCommitted(ctx, c.addrs, []string{"big-dlq"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range dlq {
		t.Errorf("dead-lettered: %s", headers(r)[HeaderMessage])
	}
	out, err := broker.ReadCommitted(ctx, c.addrs, []string{"big-out"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range out {
		got[string(r.Key)] = len(r.Value)
	}
	for _, r := range in {
		if got[string(r.Key)] != len(r.Value) {
			t.Errorf("output of key %s holds %d bytes, want the %d-byte record whole", r.Key, got[string(r.Key)], len(r.Value))
		}
	}
}

// TestNullKeyToCompactedTopic routes a record that would reach a
// compacted sink without a key (Kafka refuses it with INVALID_RECORD, which
// would fail the transaction on every retry) to the dead-letter topic, from
// a key: step and from an aggregate grouping by a null value.
func TestNullKeyToCompactedTopic(t *testing.T) {
	for _, tc := range []struct {
		name, steps, node string
	}{
		{"key step", `  - {name: rekey, key: value.user}`, "out"},
		{"aggregate", `  - name: per-user
    aggregate:
      group_by: value.user
      columns:
        n: {fn: count}`, "out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, "in")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			compact := "compact"
			if _, err := c.adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &compact}, "table"); err != nil {
				t.Fatal(err)
			}
			topo := mustParse(t, `name: nullkey
dead_letter_topic: nullkey-dlq
sources:
  - {name: in, topic: in}
steps:
`+tc.steps+`
sinks:
  - {name: out, topic: table}
`)
			c.produce(t, "in", `{"user":"ann"}`, `{"user":null}`, `{"user":"bob"}`)
			runUntilCaughtUp(t, ctx, c, topo, "a")

			out, err := broker.ReadCommitted(ctx, c.addrs, []string{"table"})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out {
				if r.Key == nil {
					t.Errorf("the compacted topic holds a record without a key: %s", r.Value)
				}
			}
			if len(out) != 2 {
				t.Errorf("the compacted topic holds %d records, want the 2 keyed ones", len(out))
			}
			dlq, err := broker.ReadCommitted(ctx, c.addrs, []string{"nullkey-dlq"})
			if err != nil {
				t.Fatal(err)
			}
			if len(dlq) != 1 {
				t.Fatalf("dead-letter topic holds %d records, want the 1 with a null user", len(dlq))
			}
			h := headers(dlq[0])
			if h[HeaderClass] != "null_key" || h[HeaderNode] != tc.node || !strings.Contains(h[HeaderMessage], "compact") {
				t.Errorf("dead letter headers %s=%q %s=%q %s=%q, want class null_key at node %s naming the compacted topic", HeaderClass, h[HeaderClass], HeaderNode, h[HeaderNode], HeaderMessage, h[HeaderMessage], tc.node)
			}
		})
	}
}

// TestLagZeroOnTransactionalInput reads an input written in transactions
// (one of them aborted): once caught up, the committed offsets must be at
// the end of every partition, past the last transaction marker, and the lag
// gauge must read 0, as with the Java consumer. The output holds every
// committed record once and none of the aborted ones.
func TestLagZeroOnTransactionalInput(t *testing.T) {
	c := newCluster(t, "txin", "txout")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pc := newTestClientOpts(t, c.addrs, kgo.TransactionalID("upstream"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	want := 0
	for i, commit := range []bool{true, false, true, true} {
		if err := pc.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for part := range int32(3) {
			r := &kgo.Record{Topic: "txin", Partition: part, Key: []byte{byte('a' + i)}, Value: []byte(`{"n":1}`)}
			if err := pc.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if commit {
				want++
			}
		}
		if err := pc.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	topo := mustParse(t, `name: lagzero
sources:
  - {name: in, topic: txin}
steps:
  - {name: pass, filter: value.n > 0}
sinks:
  - {name: out, topic: txout}
`)
	p, err := New(topo, c.config("a"))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	lagZero := func() (bool, string) {
		ends, err := c.adm.ListEndOffsets(ctx, "txin")
		if err != nil {
			return false, err.Error()
		}
		committed, err := c.adm.FetchOffsets(ctx, topo.Group)
		if err != nil {
			return false, err.Error()
		}
		ok, why := true, ""
		ends.Each(func(o kadm.ListedOffset) {
			at := int64(-1)
			if cm, found := committed.Lookup(o.Topic, o.Partition); found {
				at = cm.At
			}
			if at != o.Offset {
				ok = false
				why += " partition " + strconv.Itoa(int(o.Partition)) + ": committed " + strconv.FormatInt(at, 10) + ", end " + strconv.FormatInt(o.Offset, 10)
			}
		})
		return ok, why
	}
	for {
		ok, why := lagZero()
		if ok {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run() = %v before catching up", err)
		case <-ctx.Done():
			t.Fatalf("committed offsets never reached the end of the input:%s", why)
		case <-time.After(100 * time.Millisecond):
		}
	}
	for part := range 3 {
		if lag := gaugeValue(t, p.m.Lag.WithLabelValues("txin", strconv.Itoa(part))); lag != 0 {
			t.Errorf("exactly_consumer_lag_records{partition=%d} = %v, want 0", part, lag)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if got := values(t, ctx, c.addrs, "txout"); len(got) != want {
		t.Errorf("output holds %d records, want the %d committed ones: %q", len(got), want, got)
	}
}
