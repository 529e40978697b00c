package processor

import (
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
