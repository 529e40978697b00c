package processor

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-dev/exactly/kafkatest"
)

// TestRebuildAfterFailedCommit makes the broker fail the offset commit of
// some transactions with an error that is neither retriable nor a plain
// abort. The processor must rebuild its client, resume from the committed
// offsets, and still write every record exactly once.
func TestRebuildAfterFailedCommit(t *testing.T) {
	kafkatest.SkipUnlessEmbedded(t, "it fails TxnOffsetCommit through kfake ControlKey")
	c := newCluster(t, "in", "out")
	b := c.b
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var failed atomic.Int32
	b.Cluster().ControlKey(int16(kmsg.TxnOffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		if failed.Load() >= 3 {
			return nil, nil, false
		}
		failed.Add(1)
		r := req.(*kmsg.TxnOffsetCommitRequest)
		resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.InvalidTxnState.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	topo := mustParse(t, "name: rebuild\nsources:\n  - {name: in, topic: in}\nsinks:\n  - {name: out, topic: out}\n")
	var vals []string
	for i := 0; i < 300; i++ {
		vals = append(vals, strconv.Itoa(i))
	}
	c.produce(t, "in", vals...)
	p, err := New(topo, c.config("r"))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	c.waitCaughtUp(t, ctx, "rebuild", "in")
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if n := p.Stats().Rebuilds.Load(); n < 3 {
		t.Errorf("Stats().Rebuilds = %d, want at least 3 (one per injected failure)", n)
	}
	got := values(t, ctx, c.addrs, "out")
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	for _, v := range vals {
		if n := seen["out "+v]; n != 1 {
			t.Errorf("record %s seen %d times, want once", v, n)
		}
	}
	if len(got) != len(vals) {
		t.Errorf("read_committed sees %d records, want %d", len(got), len(vals))
	}
}
