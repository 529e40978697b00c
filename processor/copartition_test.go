package processor

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/exactly-dev/exactly/topology"
)

// Topics one task reads together must have one partition count; the
// start-up check says which and what to do.
func TestCoPartitionCountsChecked(t *testing.T) {
	pl := &topology.Plan{Stateful: []*topology.StatefulStep{
		{Node: &topology.Node{Name: "enrich"}, CoPartition: []string{"orders", "customers"}},
	}}
	if err := checkCoPartitioned(pl, map[string]int32{"orders": 4, "customers": 4}); err != nil {
		t.Errorf("equal counts: %v", err)
	}
	err := checkCoPartitioned(pl, map[string]int32{"orders": 3, "customers": 4})
	if err == nil {
		t.Fatal("3 and 4 partitions accepted")
	}
	for _, want := range []string{"enrich", "orders has 3 partitions", "customers 4", "same partition count"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// Start-up requests are tried again while they fail (a broker restarting
// as an instance starts), until the start's context ends.
func TestStartRequestsRetried(t *testing.T) {
	calls := 0
	err := retried(context.Background(), func() error {
		if calls++; calls < 3 {
			return errors.New("unable to dial")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("retried = %v after %d calls, want nil after 3", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := retried(ctx, func() error { return errors.New("down") }); err == nil {
		t.Error("retried with its context done = nil, want the request's error")
	}
}
