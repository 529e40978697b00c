package topology

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// exprText is an expression's text, or "-" for none.
func exprText(x *Expr) string {
	if x == nil {
		return "-"
	}
	return x.Text
}

// aggregateShape flattens an Aggregate into lines easy to compare.
func aggregateShape(a *Aggregate) []string {
	out := []string{fmt.Sprintf("emit=%s by_key=%v", a.Emit, a.GroupByKey)}
	for _, g := range a.GroupBy {
		out = append(out, fmt.Sprintf("group %s = %s", g.Name, exprText(g.Expr)))
	}
	for _, c := range a.Columns {
		out = append(out, fmt.Sprintf("%s = %s of %s where %s scale %d", c.Name, c.Func, exprText(c.Of), exprText(c.Where), c.Scale))
	}
	return out
}

func TestAggregate(t *testing.T) {
	top, err := Load(filepath.Join(testdata, "valid", "aggregate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]*Node{}
	for _, n := range top.Steps {
		steps[n.Name] = n
	}
	want := map[string][]string{
		"per-user": {
			"emit=on_update by_key=false",
			"group user_id = value.user_id",
			"purchase_count = count of - where value.amount > 0 scale -1",
			"refund_count = count of - where value.amount < 0 scale -1",
			"net_spend = sum of value.amount where - scale 2",
		},
		"per-key": {
			"emit=on_commit by_key=true",
			"group key =  key ",
			"records = count of - where - scale -1",
			"with_amount = count of value.amount where - scale -1",
			"total = sum of value.amount where - scale -1",
			"smallest = min of value.amount where - scale 0",
			`biggest = max of value.amount where value.kind == "purchase" scale -1`,
			"mean = avg of double(value.amount) where - scale 4",
			"first_seen = first of timestamp where - scale -1",
			"last_kind = last of value.kind where - scale -1",
		},
	}
	for name, w := range want {
		n := steps[name]
		if n == nil || n.Aggregate == nil {
			t.Fatalf("step %s = %+v, want an aggregate step", name, n)
		}
		if got := aggregateShape(n.Aggregate); !slices.Equal(got, w) {
			t.Errorf("step %s aggregate =\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(w, "\n"))
		}
	}

	// Every compiled program runs on a sample record.
	purchase := map[string]any{"user_id": "ann", "amount": 12.5, "kind": "purchase"}
	results := map[string]any{
		"per-user group user_id":        "ann",
		"per-user purchase_count.where": true,
		"per-user refund_count.where":   false,
		"per-user net_spend.of":         12.5,
		"per-key group key":             "k1",
		"per-key with_amount.of":        12.5,
		"per-key total.of":              12.5,
		"per-key smallest.of":           12.5,
		"per-key biggest.of":            12.5,
		"per-key biggest.where":         true,
		"per-key mean.of":               12.5,
		"per-key first_seen.of":         time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"per-key last_kind.of":          "purchase",
	}
	check := func(label string, x *Expr) {
		t.Helper()
		if x == nil {
			return
		}
		want, ok := results[label]
		if !ok {
			t.Errorf("%s: expression %q has no expected result", label, x.Text)
			return
		}
		delete(results, label)
		out, _, err := x.Program.Eval(activation(purchase))
		if err != nil {
			t.Errorf("%s: eval %q: %v", label, x.Text, err)
			return
		}
		got, err := out.ConvertToNative(reflect.TypeOf(want))
		if err != nil {
			t.Errorf("%s: eval %q = %v, cannot convert to %T: %v", label, x.Text, out, want, err)
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: eval %q = %#v, want %#v", label, x.Text, got, want)
		}
	}
	for _, n := range top.Steps {
		for _, g := range n.Aggregate.GroupBy {
			check(n.Name+" group "+g.Name, g.Expr)
		}
		for _, c := range n.Aggregate.Columns {
			check(n.Name+" "+c.Name+".of", c.Of)
			check(n.Name+" "+c.Name+".where", c.Where)
		}
	}
	for label := range results {
		t.Errorf("%s: no such expression", label)
	}
}

// TestGroupByKey checks when an aggregate on key may skip the repartition
// topic: only when its records are still partitioned by their key.
func TestGroupByKey(t *testing.T) {
	agg := func(name, from, groupBy string) string {
		return fmt.Sprintf("  - name: %s\n    from: %s\n    aggregate: {group_by: %s, columns: {n: {fn: count}}}\n", name, from, groupBy)
	}
	const (
		b  = "  - {name: b, topic: b}\n"
		a2 = "  - {name: a2, topic: a, format: bytes}\n"
	)
	tests := []struct {
		name    string
		sources string // besides a, reading topic a
		steps   string
		want    bool // of the step named "agg"
	}{
		{"on key", "", agg("agg", "a", "key"), true},
		{"spaces around key", "", agg("agg", "a", "'  key '"), true},
		{"expression of the key", "", agg("agg", "a", `'key + ""'`), false},
		{"key as a group column", "", agg("agg", "a", "{k: key}"), false},
		{"other expression", "", agg("agg", "a", "value.user"), false},
		{"after a filter and a map", "", "  - {name: f, from: a, filter: 'true'}\n  - {name: m, map: value}\n" + agg("agg", "m", "key"), true},
		{"after a key step", "", "  - {name: k, from: a, key: value.user}\n" + agg("agg", "k", "key"), false},
		{"after a key step further up", "", "  - {name: k, from: a, key: value.user}\n  - {name: m, map: value}\n" + agg("agg", "m", "key"), false},
		{"one topic read twice", a2, agg("agg", "[a, a2]", "key"), true},
		{"two topics", b, agg("agg", "[a, b]", "key"), false},
		{"two topics further up", b, "  - {name: m, from: [a, b], map: value}\n" + agg("agg", "m", "key"), false},
		{"after an aggregate on key", "", agg("first", "a", "key") + agg("agg", "first", "key"), true},
		{"after a repartitioning aggregate", "", agg("first", "a", "value.user") + agg("agg", "first", "key"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := "name: t\nsources:\n  - {name: a, topic: a}\n" + tt.sources + "steps:\n" + tt.steps + "sinks:\n  - {name: out, topic: out, from: agg}\n"
			top, err := Parse("t.yaml", []byte(yaml))
			if err != nil {
				t.Fatalf("Parse:\n%s\n%v", yaml, err)
			}
			checkGraph(t, top)
			for _, n := range top.Steps {
				if n.Name == "agg" {
					if n.Aggregate.GroupByKey != tt.want {
						t.Errorf("GroupByKey = %v, want %v", n.Aggregate.GroupByKey, tt.want)
					}
					return
				}
			}
			t.Fatal("no step agg")
		})
	}
}

func TestAggregateTopics(t *testing.T) {
	long := strings.Repeat("p", 140)
	tests := []struct {
		name, yaml, want string
	}{
		{"source reads the changelog",
			"name: t\nsources:\n  - {name: in, topic: in}\n  - {name: loop, topic: t-agg-changelog}\nsteps:\n  - {name: agg, from: [in, loop], aggregate: {group_by: key, columns: {n: {fn: count}}}}\nsinks:\n  - {name: out, topic: out}\n",
			`t.yaml:4:25: sources[1].topic: topic "t-agg-changelog" is the changelog topic of aggregate step "agg"; use another topic or rename the step`},
		{"reserved even without repartition",
			"name: t\nsources:\n  - {name: in, topic: in}\nsteps:\n  - {name: agg, aggregate: {group_by: key, columns: {n: {fn: count}}}}\nsinks:\n  - {name: out, topic: t-agg-repartition}\n",
			`t.yaml:7:24: sinks[0].topic: topic "t-agg-repartition" is the repartition topic of aggregate step "agg"; use another topic or rename the step`},
		{"the group is not the pipeline",
			"name: t\ngroup: g\nsources:\n  - {name: in, topic: g-agg-changelog}\nsteps:\n  - {name: agg, aggregate: {group_by: key, columns: {n: {fn: count}}}}\nsinks:\n  - {name: out, topic: out}\n",
			""},
		{"internal topic too long",
			"name: " + long + "\nsources:\n  - {name: in, topic: in}\nsteps:\n  - {name: " + strings.Repeat("s", 97) + ", aggregate: {group_by: key, columns: {n: {fn: count}}}}\n  - {name: short, aggregate: {group_by: key, columns: {n: {fn: count}}}}\nsinks:\n  - {name: out, topic: out}\n",
			`t.yaml:5:12: steps[0].name: aggregate step "` + strings.Repeat("s", 97) + `" needs topics named <pipeline>-<step>-repartition, which would be 250 characters long, more than Kafka's 249; shorten the pipeline or step name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top, err := Parse("t.yaml", []byte(tt.yaml))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse = %v, want a topology", err)
				}
				checkGraph(t, top)
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("Parse = %v, want\n%s", err, tt.want)
			}
		})
	}
	if n := len(RepartitionTopic(long, strings.Repeat("s", 96))); n != 249 {
		t.Errorf("the test's longest valid topic has %d characters, want 249", n)
	}
	if got := ChangelogTopic("p", "n"); got != "p-n-changelog" {
		t.Errorf("ChangelogTopic = %q", got)
	}
	if got := RepartitionTopic("p", "n"); got != "p-n-repartition" {
		t.Errorf("RepartitionTopic = %q", got)
	}
}

// TestDocExamples parses every complete topology shown in the package
// documentation.
func TestDocExamples(t *testing.T) {
	data, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur []string
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "//\t"); ok {
			cur = append(cur, rest)
			continue
		}
		if len(cur) > 0 {
			blocks = append(blocks, strings.Join(cur, ""))
			cur = nil
		}
	}
	n := 0
	for _, b := range blocks {
		if !strings.HasPrefix(b, "name: ") {
			continue
		}
		n++
		if _, err := Parse("doc.yaml", []byte(b)); err != nil {
			t.Errorf("example in doc.go:\n%s\ndoes not parse: %v", b, err)
		}
	}
	if n < 2 {
		t.Errorf("found %d complete examples in doc.go, want at least 2", n)
	}
}
