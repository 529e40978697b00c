package topology

import "testing"

func TestScratch(t *testing.T) {
	top, err := Load("../testdata/topology/valid/linear.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range append(append(append([]*Node{}, top.Sources...), top.Steps...), top.Sinks...) {
		t.Logf("%s %s in=%d out=%d %v", n.Name, n.Kind, len(n.Inputs), len(n.Outputs), n.Expr != nil)
	}
}
