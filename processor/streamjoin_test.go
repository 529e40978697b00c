package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
)

// streamJoinYAML is the shared stream-stream join pipeline as a left join
// within 5s, no grace, with the join setting extra (or none).
func streamJoinYAML(extra string) string {
	return pipelineYAML("join/stream_join.yaml", "TYPE", "left", "WITHIN", "5s", "GRACE", "0s", "EXTRA", extra)
}

// On a broker, with 3 partitions and two members one after the other: a
// left stream-stream join outputs each view once, with its click when it
// has one (also when the click comes after a restart: the second member
// restores the buffered views from the changelog) and unmatched only once
// its window closed, never a null before the match.
func TestStreamStreamJoinOnBroker(t *testing.T) {
	c := newCluster(t, "views", "clicks", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topo := mustParse(t, streamJoinYAML(""))
	base := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	rec := func(topic, key string, at time.Time, id int) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(fmt.Sprintf(`{"id":%d}`, id)), Timestamp: at}
	}
	// View i of key k<i%20> at base+i seconds: the views of a key are
	// 20s apart, so a click 2s after view i matches it alone. Even
	// views get a click; those below 40 before the first member runs,
	// the rest after it stopped.
	var first, second []*kgo.Record
	for i := range 60 {
		at := base.Add(time.Duration(i) * time.Second)
		first = append(first, rec("views", fmt.Sprintf("k%d", i%20), at, i))
		if i%2 == 0 {
			r := rec("clicks", fmt.Sprintf("k%d", i%20), at.Add(2*time.Second), 1000+i)
			if i < 40 {
				first = append(first, r)
			} else {
				second = append(second, r)
			}
		}
	}
	// Then both streams move far ahead on every partition, closing every
	// window: flush records, which join each other.
	for i := range 30 {
		at := base.Add(time.Hour)
		second = append(second, rec("views", fmt.Sprintf("flush%d", i), at, -1), rec("clicks", fmt.Sprintf("flush%d", i), at, -1))
	}
	if err := c.cl.ProduceSync(ctx, first...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	runUntilCaughtUp(t, ctx, c, topo, "a")
	if err := c.cl.ProduceSync(ctx, second...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p := runUntilCaughtUp(t, ctx, c, topo, "b")
	if p.Stats().RestoreRecords.Load() == 0 {
		t.Errorf("the second member restored nothing: the buffered views should come from the changelog")
	}
	recs, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]int{} // view id -> click id (-1: unmatched)
	for _, r := range recs {
		view, click := viewClick(t, r)
		if view < 0 {
			continue // a flush record
		}
		if prev, dup := got[view]; dup {
			t.Errorf("view %d output twice: click %d, then %d", view, prev, click)
		}
		got[view] = click
		if want := fmt.Sprintf("k%d", view%20); string(r.Key) != want {
			t.Errorf("view %d keyed %q, want %q", view, r.Key, want)
		}
	}
	checkClicks(t, got)
}

// viewClick decodes an output row of the views and clicks join: the view
// id (below 0 for a flush record) and the id of the click it joined, -1
// for none.
func viewClick(t *testing.T, r *kgo.Record) (view, click int) {
	t.Helper()
	var v struct {
		View  int  `json:"view"`
		Click *int `json:"click"`
	}
	if err := json.Unmarshal(r.Value, &v); err != nil {
		t.Fatalf("output %s: %v", r.Value, err)
	}
	if v.Click == nil {
		return v.View, -1
	}
	return v.View, *v.Click
}

// checkClicks holds the joined click of each of the 60 views (view id to
// click id, -1 for unmatched) to what the tests wrote: even views got
// click 1000 plus the view's id, odd ones none.
func checkClicks(t *testing.T, got map[int]int) {
	t.Helper()
	for i := range 60 {
		want := -1
		if i%2 == 0 {
			want = 1000 + i
		}
		if click, ok := got[i]; !ok {
			t.Errorf("view %d: no output", i)
		} else if click != want {
			t.Errorf("view %d joined click %d, want %d", i, click, want)
		}
	}
}

// Buffers expire with tombstones: after a long run of pairs the join's
// changelog, compacted (the latest value per key, as a restore would
// leave the store), holds only what the last window needs, not every
// record ever buffered; the buffered gauge says as much.
func TestStreamStreamJoinStateBounded(t *testing.T) {
	topo := mustParse(t, streamJoinYAML(""))
	h, err := NewHarness(topo, 1, time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	base := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	const n = 2000
	for i := range n {
		at := base.Add(time.Duration(i) * time.Second)
		key := []byte(fmt.Sprintf("k%d", i%50))
		if err := h.Input("views", 0, key, []byte(fmt.Sprintf(`{"id":%d}`, i)), at); err != nil {
			t.Fatal(err)
		}
		if err := h.Input("clicks", 0, key, []byte(fmt.Sprintf(`{"id":%d}`, i)), at.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			if err := h.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := len(h.Output("out")); got != n {
		t.Fatalf("%d outputs, want %d pairs", got, n)
	}
	live := map[string]bool{}
	written := 0
	for _, r := range h.changelog["pairs-joined-changelog"][0] {
		written++
		live[string(r.Key)] = r.Value != nil
	}
	buffers := 0
	for k, ok := range live {
		if ok && k[0] == 'b' {
			buffers++
		}
	}
	// Records stay 5s (within) past their time: the last few seconds'
	// keys on each side.
	if buffers > 20 {
		t.Errorf("the compacted changelog holds %d buffers after %d changelog records, want the last window's only", buffers, written)
	}
	if v := gaugeValue(t, h.g.m.JoinBuffered.WithLabelValues("joined", "0")); v > 20 || v == 0 {
		t.Errorf("buffered entries = %v, want the last window's (a few)", v)
	}
}

// On a broker, a key step before the join: views keyed by view id are
// rekeyed by user and, with the clicks (keyed by user), go through the
// join's repartition topic; event time behind it is the minimum over
// every upstream partition (watermarks), so every view is output once,
// with its click or, once every upstream passed its window, unmatched.
func TestStreamStreamJoinAfterKeyStepOnBroker(t *testing.T) {
	c := newCluster(t, "views", "clicks", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topo := mustParse(t, pipelineYAML("join/stream_join_rekeyed.yaml", "WITHIN", "5s", "EXTRA", ""))
	base := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	var rs []*kgo.Record
	for i := range 60 {
		at := base.Add(time.Duration(i) * time.Second)
		user := fmt.Sprintf("u%d", i%20)
		rs = append(rs, &kgo.Record{Topic: "views", Key: []byte(fmt.Sprintf("v%d", i)), Timestamp: at,
			Value: []byte(fmt.Sprintf(`{"id":%d,"user":%q}`, i, user))})
		if i%2 == 0 {
			rs = append(rs, &kgo.Record{Topic: "clicks", Key: []byte(user), Timestamp: at.Add(2 * time.Second), Value: []byte(fmt.Sprintf(`{"id":%d}`, 1000+i))})
		}
	}
	// Every upstream partition moves far ahead.
	for i := range 30 {
		at := base.Add(time.Hour)
		rs = append(rs, &kgo.Record{Topic: "views", Key: []byte(fmt.Sprintf("f%d", i)), Timestamp: at, Value: []byte(fmt.Sprintf(`{"id":-1,"user":"f%d"}`, i))},
			&kgo.Record{Topic: "clicks", Key: []byte(fmt.Sprintf("f%d", i)), Timestamp: at, Value: []byte(`{"id":-1}`)})
	}
	if err := c.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Caught up on the sources is not enough: the joined records come
	// back through the repartition topic; wait for every view's row.
	_, stop, done := startProcessor(t, ctx, topo, c.config("a"))
	got := map[int]int{} // view id -> click id (-1: unmatched)
	for len(got) < 60 {
		select {
		case err := <-done:
			t.Fatalf("Run() = %v", err)
		case <-ctx.Done():
			t.Fatalf("timed out with %d of 60 views output", len(got))
		case <-time.After(200 * time.Millisecond):
		}
		recs, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
		if err != nil {
			t.Fatal(err)
		}
		clear(got)
		for _, r := range recs {
			view, click := viewClick(t, r)
			if view < 0 {
				continue
			}
			if prev, dup := got[view]; dup {
				t.Fatalf("view %d output twice: click %d, then %d", view, prev, click)
			}
			got[view] = click
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	checkClicks(t, got)
}
