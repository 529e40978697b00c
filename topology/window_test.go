package topology

import (
	"strings"
	"testing"
)

func TestLateToSinkParse(t *testing.T) {
	base := `name: w
sources:
  - {name: in, topic: in}
steps:
  - name: agg
    aggregate:
      group_by: {user: value.user}
      window: {tumbling: 1m, late: LATE}
      columns:
        n: {fn: count}
sinks:
  - {name: out, topic: out, from: agg}
  - {name: late, topic: late-events}
`
	topo, err := Parse("p.yaml", []byte(strings.Replace(base, "LATE", "{to: late}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	agg := topo.Steps[0]
	if w := agg.Aggregate.Window; w.Late != LateSink || w.LateTo == nil || w.LateTo.Name != "late" {
		t.Errorf("late = %v to %v, want the sink late", w.Late, w.LateTo)
	}
	if len(agg.Outputs) != 1 || agg.Outputs[0].Name != "out" {
		t.Errorf("aggregate outputs = %v, want only out (the late sink gets late records only)", agg.Outputs)
	}
	for late, want := range map[string]string{
		"{to: nope}": `p.yaml:8:41: steps[0].aggregate.window.late.to: unknown node "nope"`,
		"{to: agg}":  `p.yaml:8:41: steps[0].aggregate.window.late.to: late records go to a sink, and "agg" is not one`,
	} {
		_, err := Parse("p.yaml", []byte(strings.Replace(base, "LATE", late, 1)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("late: %s: error %v, want %s", late, err, want)
		}
	}
}
