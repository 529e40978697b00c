package topology

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// nodeWant is the expected shape of one node.
type nodeWant struct {
	name, kind string
	in, out    []string
	// sources and sinks
	topic             string
	format, keyFormat Format
}

func names(ns []*Node) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}

func TestValid(t *testing.T) {
	tests := []struct {
		file         string
		name, group  string
		commit       time.Duration
		sources      []nodeWant
		steps        []nodeWant // topological order
		sinks        []nodeWant
		routeTargets map[string][]string // route step -> branch targets
	}{{
		file: "linear.yaml",
		name: "orders-paid", group: "orders-paid",
		sources: []nodeWant{{name: "orders", kind: "source", in: []string{}, out: []string{"paid"}, topic: "orders", format: FormatJSON, keyFormat: FormatString}},
		steps: []nodeWant{
			{name: "paid", kind: "filter", in: []string{"orders"}, out: []string{"shape"}},
			{name: "shape", kind: "map", in: []string{"paid"}, out: []string{"out"}},
		},
		sinks: []nodeWant{{name: "out", kind: "sink", in: []string{"shape"}, out: []string{}, topic: "paid-orders", format: FormatJSON, keyFormat: FormatString}},
	}, {
		file: "fan_in.yaml",
		name: "payments.join", group: "payments-v2", commit: 250 * time.Millisecond,
		sources: []nodeWant{
			{name: "card", kind: "source", in: []string{}, out: []string{"all"}, topic: "card-payments", format: FormatJSON, keyFormat: FormatBytes},
			{name: "wire", kind: "source", in: []string{}, out: []string{"normalize-wire", "raw-wire"}, topic: "wire-payments", format: FormatString, keyFormat: FormatString},
		},
		steps: []nodeWant{
			{name: "normalize-wire", kind: "map", in: []string{"wire"}, out: []string{"all"}},
			{name: "all", kind: "filter", in: []string{"card", "normalize-wire"}, out: []string{"audit", "payments"}},
			{name: "audit", kind: "set_headers", in: []string{"all"}, out: []string{"audit-log"}},
		},
		sinks: []nodeWant{
			{name: "payments", kind: "sink", in: []string{"all"}, out: []string{}, topic: "payments", format: FormatJSON, keyFormat: FormatString},
			{name: "audit-log", kind: "sink", in: []string{"audit"}, out: []string{}, topic: "audit", format: FormatString, keyFormat: FormatJSON},
			{name: "raw-wire", kind: "sink", in: []string{"wire"}, out: []string{}, topic: "wire-raw", format: FormatBytes, keyFormat: FormatString},
		},
	}, {
		file: "route.yaml",
		name: "orders-split", group: "orders-split",
		sources: []nodeWant{
			{name: "orders", kind: "source", in: []string{}, out: []string{"split"}, topic: "orders", format: FormatJSON, keyFormat: FormatString},
			{name: "returns", kind: "source", in: []string{}, out: []string{"small"}, topic: "returns", format: FormatJSON, keyFormat: FormatString},
		},
		// flag is listed before split but reads from it.
		steps: []nodeWant{
			{name: "split", kind: "route", in: []string{"orders"}, out: []string{"big", "flag", "small"}},
			{name: "flag", kind: "map", in: []string{"split"}, out: []string{"after-flag"}},
			{name: "after-flag", kind: "key", in: []string{"flag"}, out: []string{"last"}},
			{name: "last", kind: "filter", in: []string{"after-flag"}, out: []string{"flagged-out"}},
		},
		sinks: []nodeWant{
			{name: "big", kind: "sink", in: []string{"split"}, out: []string{}, topic: "big-orders", format: FormatJSON, keyFormat: FormatString},
			// small is a route target with a from of its own; returns
			// comes first in the file.
			{name: "small", kind: "sink", in: []string{"returns", "split"}, out: []string{}, topic: "small-orders", format: FormatJSON, keyFormat: FormatString},
			{name: "flagged-out", kind: "sink", in: []string{"last"}, out: []string{}, topic: "flagged", format: FormatJSON, keyFormat: FormatString},
		},
		routeTargets: map[string][]string{"split": {"big", "flag", "big", "small"}},
	}, {
		file: "every_kind.yaml",
		name: "every-kind", group: "every-kind",
		sources: []nodeWant{{name: "in", kind: "source", in: []string{}, out: []string{"only-clicks"}, topic: "events", format: FormatJSON, keyFormat: FormatString}},
		steps: []nodeWant{
			{name: "only-clicks", kind: "filter", in: []string{"in"}, out: []string{"reshape"}},
			{name: "reshape", kind: "map", in: []string{"only-clicks"}, out: []string{"by-user"}},
			{name: "by-user", kind: "key", in: []string{"reshape"}, out: []string{"pages"}},
			{name: "pages", kind: "flat_map", in: []string{"by-user"}, out: []string{"stamp"}},
			{name: "stamp", kind: "set_headers", in: []string{"pages"}, out: []string{"fork"}},
			{name: "fork", kind: "route", in: []string{"stamp"}, out: []string{"admin", "rest"}},
		},
		sinks: []nodeWant{
			{name: "admin", kind: "sink", in: []string{"fork"}, out: []string{}, topic: "admin-pages", format: FormatJSON, keyFormat: FormatString},
			{name: "rest", kind: "sink", in: []string{"fork"}, out: []string{}, topic: "pages", format: FormatJSON, keyFormat: FormatString},
		},
		routeTargets: map[string][]string{"fork": {"admin", "rest"}},
	}, {
		file: "aggregate.yaml",
		name: "user-totals", group: "user-totals",
		sources: []nodeWant{{name: "events", kind: "source", in: []string{}, out: []string{"per-user", "per-key"}, topic: "events", format: FormatJSON, keyFormat: FormatString}},
		steps: []nodeWant{
			{name: "per-user", kind: "aggregate", in: []string{"events"}, out: []string{"totals"}},
			{name: "per-key", kind: "aggregate", in: []string{"events"}, out: []string{"key-totals"}},
		},
		sinks: []nodeWant{
			{name: "totals", kind: "sink", in: []string{"per-user"}, out: []string{}, topic: "user-totals", format: FormatJSON, keyFormat: FormatString},
			{name: "key-totals", kind: "sink", in: []string{"per-key"}, out: []string{}, topic: "key-totals", format: FormatJSON, keyFormat: FormatString},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			file := filepath.Join(testdata, "valid", tt.file)
			got, err := Load(file)
			if err != nil {
				t.Fatalf("Load(%s) = _, %v, want no error", file, err)
			}
			if got.File != file || got.Name != tt.name || got.Group != tt.group || got.CommitInterval != tt.commit {
				t.Errorf("Load(%s) = {File: %q, Name: %q, Group: %q, CommitInterval: %v}, want {%q, %q, %q, %v}",
					file, got.File, got.Name, got.Group, got.CommitInterval, file, tt.name, tt.group, tt.commit)
			}
			checkNodes(t, "Sources", got.Sources, tt.sources)
			checkNodes(t, "Steps", got.Steps, tt.steps)
			checkNodes(t, "Sinks", got.Sinks, tt.sinks)
			for _, n := range got.Steps {
				checkStep(t, n)
				if want, ok := tt.routeTargets[n.Name]; ok {
					var to []string
					for _, r := range n.Routes {
						to = append(to, r.To.Name)
					}
					if !slices.Equal(to, want) {
						t.Errorf("step %s route targets = %v, want %v", n.Name, to, want)
					}
				}
			}
		})
	}
}

func checkNodes(t *testing.T, list string, got []*Node, want []nodeWant) {
	t.Helper()
	var wantNames []string
	for _, w := range want {
		wantNames = append(wantNames, w.name)
	}
	if !slices.Equal(names(got), wantNames) {
		t.Fatalf("%s = %v, want %v", list, names(got), wantNames)
	}
	for i, n := range got {
		w := want[i]
		if string(n.Kind) != w.kind {
			t.Errorf("node %s kind = %s, want %s", n.Name, n.Kind, w.kind)
		}
		if !slices.Equal(names(n.Inputs), w.in) {
			t.Errorf("node %s inputs = %v, want %v", n.Name, names(n.Inputs), w.in)
		}
		if !slices.Equal(names(n.Outputs), w.out) {
			t.Errorf("node %s outputs = %v, want %v", n.Name, names(n.Outputs), w.out)
		}
		if n.Topic != w.topic || !n.Format.Equal(w.format) || !n.KeyFormat.Equal(w.keyFormat) {
			t.Errorf("node %s topic, format, key format = %q, %q, %q, want %q, %q, %q",
				n.Name, n.Topic, n.Format, n.KeyFormat, w.topic, w.format, w.keyFormat)
		}
		if n.Pos.Line < 1 || n.Pos.Col < 1 {
			t.Errorf("node %s has no position: %+v", n.Name, n.Pos)
		}
	}
}

// checkStep checks that a step carries what its kind needs, and only that.
func checkStep(t *testing.T, n *Node) {
	t.Helper()
	hasExpr := n.Kind == KindFilter || n.Kind == KindMap || n.Kind == KindFlatMap || n.Kind == KindKey
	if (n.Expr != nil) != hasExpr {
		t.Errorf("step %s (%s) Expr = %v", n.Name, n.Kind, n.Expr)
	}
	if n.Expr != nil && (n.Expr.Program == nil || n.Expr.Type == nil || n.Expr.Text == "" || n.Expr.Pos.Line < 1) {
		t.Errorf("step %s Expr is incomplete: %+v", n.Name, n.Expr)
	}
	if (len(n.Headers) > 0) != (n.Kind == KindSetHeaders) {
		t.Errorf("step %s (%s) Headers = %v", n.Name, n.Kind, n.Headers)
	}
	if !slices.IsSortedFunc(n.Headers, func(a, b HeaderExpr) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("step %s headers are not sorted by name", n.Name)
	}
	if (n.Aggregate != nil) != (n.Kind == KindAggregate) {
		t.Errorf("step %s (%s) Aggregate = %v", n.Name, n.Kind, n.Aggregate)
	}
	if a := n.Aggregate; a != nil && (len(a.GroupBy) == 0 || len(a.Columns) == 0 || a.Emit == "") {
		t.Errorf("step %s Aggregate is incomplete: %+v", n.Name, a)
	}
	if (len(n.Routes) > 0) != (n.Kind == KindRoute) {
		t.Errorf("step %s (%s) Routes = %v", n.Name, n.Kind, n.Routes)
	}
	for i, r := range n.Routes {
		if r.To == nil {
			t.Errorf("step %s branch %d has no target", n.Name, i)
		}
		if r.When == nil && i != len(n.Routes)-1 {
			t.Errorf("step %s branch %d is a default branch but not the last", n.Name, i)
		}
	}
}
