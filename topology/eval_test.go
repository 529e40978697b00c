package topology

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// activation builds the variables the runtime binds for one record.
func activation(value any) map[string]any {
	return map[string]any{
		VarKey:       "k1",
		VarValue:     value,
		VarHeaders:   map[string]string{"vip": "yes"},
		VarTimestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		VarTopic:     "orders",
		VarPartition: int64(3),
		VarOffset:    int64(42),
	}
}

// TestEval runs compiled programs on sample records, proving that what
// Parse stores is ready to evaluate.
func TestEval(t *testing.T) {
	load := func(name string) *Topology {
		t.Helper()
		top, err := Load(filepath.Join(testdata, "valid", name))
		if err != nil {
			t.Fatal(err)
		}
		return top
	}
	step := func(top *Topology, name string) *Node {
		t.Helper()
		for _, n := range top.Steps {
			if n.Name == name {
				return n
			}
		}
		t.Fatalf("%s has no step %q", top.File, name)
		return nil
	}
	header := func(n *Node, name string) *Expr {
		t.Helper()
		for _, h := range n.Headers {
			if h.Name == name {
				return h.Expr
			}
		}
		t.Fatalf("step %s sets no header %q", n.Name, name)
		return nil
	}
	linear, every, fanIn, route := load("linear.yaml"), load("every_kind.yaml"), load("fan_in.yaml"), load("route.yaml")
	order := map[string]any{"id": 7, "status": "paid", "price": 2.5, "qty": 4}
	click := map[string]any{"type": "click", "user": "ann", "pages": []any{"/home", "/admin/users"}}

	tests := []struct {
		name  string
		expr  *Expr
		value any
		want  any
	}{
		{"filter true", step(linear, "paid").Expr, order, true},
		{"filter false", step(linear, "paid").Expr, map[string]any{"status": "new"}, false},
		{"map builds a map", step(linear, "shape").Expr, order, map[string]any{"id": int64(7), "total": 10.0}},
		{"filter on int and double", step(fanIn, "all").Expr, map[string]any{"amount": 3}, true},
		{"map parses text", step(fanIn, "normalize-wire").Expr, "w-1,12.5", map[string]any{"id": "w-1", "amount": 12.5}},
		{"block filter", step(every, "only-clicks").Expr, click, true},
		{"block map", step(every, "reshape").Expr, click, map[string]any{"user": "ann", "pages": []any{"/home", "/admin/users"}, "at": int64(5)}},
		{"key", step(every, "by-user").Expr, click, "ann"},
		{"flat_map returns a list", step(every, "pages").Expr, click, []map[string]any{
			{"user": "ann", "page": "/home"},
			{"user": "ann", "page": "/admin/users"},
		}},
		{"header from a variable", header(step(fanIn, "audit"), "source-topic"), nil, "orders"},
		{"header from the timestamp", header(step(fanIn, "audit"), "seen-at"), nil, "2026-01-02T03:04:05Z"},
		{"header from an int", header(step(every, "stamp"), "z-offset"), nil, "42"},
		{"bytes header", header(step(every, "stamp"), "bin"), nil, []byte("raw")},
		{"route branch true", step(every, "fork").Routes[0].When, map[string]any{"page": "/admin/x"}, true},
		{"route branch false", step(every, "fork").Routes[0].When, map[string]any{"page": "/home"}, false},
		{"route on headers", step(route, "split").Routes[2].When, map[string]any{}, true},
		{"key from nested value", step(route, "after-flag").Expr, map[string]any{"order": map[string]any{"id": 9}}, "9"},
		{"map wraps the value", step(route, "flag").Expr, "v", map[string]any{"flagged": true, "order": "v"}},
		{"constant filter", step(route, "last").Expr, nil, true},
		{"double threshold on an int", step(route, "split").Routes[0].When, map[string]any{"total": 150}, true},
		{"negative total", step(route, "split").Routes[1].When, map[string]any{"total": 10.5}, false},
		{"header from the value", header(step(every, "stamp"), "a-user"), click, "ann"},
	}
	tested := map[*Expr]bool{}
	for _, tt := range tests {
		tested[tt.expr] = true
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := tt.expr.Program.Eval(activation(tt.value))
			if err != nil {
				t.Fatalf("eval %q: %v", tt.expr.Text, err)
			}
			got, err := out.ConvertToNative(reflect.TypeOf(tt.want))
			if err != nil {
				t.Fatalf("eval %q = %v, cannot convert to %T: %v", tt.expr.Text, out, tt.want, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("eval %q = %#v, want %#v", tt.expr.Text, got, tt.want)
			}
		})
	}

	// Every program of every valid topology must have run above.
	for _, top := range []*Topology{linear, every, fanIn, route} {
		for _, n := range top.Steps {
			exprs := []*Expr{n.Expr}
			for _, h := range n.Headers {
				exprs = append(exprs, h.Expr)
			}
			for _, r := range n.Routes {
				exprs = append(exprs, r.When)
			}
			for _, x := range exprs {
				if x != nil && !tested[x] {
					t.Errorf("%s: expression %q of step %s is not evaluated by any case", top.File, x.Text, n.Name)
				}
			}
		}
	}
}

// An expression the checker proves cheap runs without cost tracking; one
// whose cost grows with the record keeps it, and the limit still stops it.
func TestCostTracking(t *testing.T) {
	tests := []struct {
		expr    string
		tracked bool
	}{
		{"value.amount >= 100.0", false},
		{`{"id": value.id, "user": value.user, "cents": int(value.amount * 100.0)}`, false},
		{"key == 'a' && partition < 3", false},
		{"value.n == 10 || 3 != value.m || value.k in [1, 2]", false}, // rewritten for decimals (decimal.go)
		{"value.l.map(x, x * 2)", true},
		{"value.l.exists(x, x > 2)", true},
		{"value.s.contains('x')", true},
		{"value.s + value.t", true},
		{"headers.exists(k, k == 'x')", true},
	}
	for _, tt := range tests {
		topo, err := Parse("t.yaml", []byte("name: t\nlimits: {max_eval_cost: 1000}\nsources:\n  - {name: in, topic: in}\nsteps:\n  - name: m\n    map: '"+strings.ReplaceAll(tt.expr, "'", "''")+"'\nsinks:\n  - {name: out, topic: out}\n"))
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		if got := topo.Steps[0].Expr.CostTracked; got != tt.tracked {
			t.Errorf("%s: CostTracked = %v, want %v", tt.expr, got, tt.tracked)
		}
	}
}
