package processor

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
)

// TestDedupe replays records the way a retrying upstream producer does:
// within the TTL a replay is dropped, also after a restart (the seen-set
// is restored from its changelog); after the TTL an id passes again; and
// expired ids leave the store, so state stays bounded.
func TestDedupe(t *testing.T) {
	c := newCluster(t, "in", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := mustParse(t, readFile(t, "../testdata/dedupe/dedupe.yaml"))
	base := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	send := func(at time.Duration, ids ...int) {
		t.Helper()
		var rs []*kgo.Record
		for _, id := range ids {
			// Same key for a given id, as a retrying producer sends it.
			rs = append(rs, &kgo.Record{Topic: "in", Key: []byte(strconv.Itoa(id)), Timestamp: base.Add(at),
				Value: []byte(fmt.Sprintf(`{"id":%d,"at":"%s"}`, id, at))})
		}
		if err := c.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Outputs are the inputs as they were written: dedupe does not
	// change a value, so it is not encoded again.
	outputs := func() map[string]int {
		recs, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, r := range recs {
			m[string(r.Value)]++
		}
		return m
	}

	send(0, 1, 2, 3)
	send(time.Second, 1, 2) // replays within the TTL
	runUntilCaughtUp(t, ctx, c, topo, "a")
	send(5*time.Second, 3) // a replay after a restart
	p := runUntilCaughtUp(t, ctx, c, topo, "a")
	if p.Stats().RestoreRecords.Load() == 0 {
		t.Errorf("the restart restored nothing: the seen-set did not come from the changelog")
	}
	got := outputs()
	if len(got) != 3 || got[`{"id":1,"at":"0s"}`] != 1 || got[`{"id":2,"at":"0s"}`] != 1 || got[`{"id":3,"at":"0s"}`] != 1 {
		t.Fatalf("outputs = %v, want ids 1, 2 and 3 once each, from their first sending", got)
	}

	// Far past the TTL: id 1 passes again, and the old ids expire.
	send(time.Minute, 1)
	for i := 0; i < 200; i++ {
		send(time.Minute+time.Duration(i)*time.Second, 1000+i)
	}
	p = runUntilCaughtUp(t, ctx, c, topo, "a")
	got = outputs()
	if got[`{"id":1,"at":"1m0s"}`] != 1 {
		t.Errorf("id 1 sent again after the TTL was dropped: outputs %v", got)
	}
	if len(got) != 3+1+200 {
		t.Errorf("%d distinct outputs, want %d", len(got), 3+1+200)
	}
	// Ids seen in the last TTL (~10-12 of them) plus a couple of buckets
	// and the bucket list: far fewer than the 204 ids ever seen.
	var entries float64
	for part := int32(0); part < 3; part++ {
		entries += gaugeValue(t, p.m.StoreEntries.WithLabelValues("once", strconv.Itoa(int(part))))
	}
	t.Logf("dedupe stores hold %v entries after 204 distinct ids", entries)
	if entries == 0 || entries > 60 {
		t.Errorf("the dedupe stores hold %v entries, want a bounded handful (ids within one TTL)", entries)
	}
}
