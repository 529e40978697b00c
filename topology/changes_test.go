package topology

import (
	"strings"
	"testing"
)

// Which nodes output a table's changes, which aggregates retract, and
// what an aggregate of changes refuses.
func TestChanges(t *testing.T) {
	const base = `name: p
sources:
  - {name: spend, topic: spend, table: true}
  - {name: events, topic: events}
steps:
STEPS
sinks: [{name: out, topic: out}]
`
	for _, tc := range []struct{ name, steps, want string }{
		{"table source to aggregate", `  - name: tiers
    from: spend
    aggregate: {group_by: value.tier, columns: {n: {fn: count}, s: {fn: sum, of: value.x}, a: {fn: avg, of: value.x}, d: {fn: count_distinct, of: value.c}}}`, ""},
		{"min on a table", `  - name: tiers
    from: spend
    aggregate: {group_by: value.tier, columns: {m: {fn: min, of: value.x}}}`,
			`p.yaml:7:57: steps[0].aggregate.columns.m.fn: fn min cannot be used here: step "tiers" reads a table's changes (from "spend"), so a changed or deleted row must be subtracted from its group, and min has no inverse`},
		{"last after a filter of an aggregate", `  - name: per-user
    from: events
    aggregate: {group_by: key, columns: {s: {fn: sum, of: value.x}}}
  - name: having
    filter: value.s > 10
  - name: tiers
    aggregate: {group_by: value.s, columns: {l: {fn: last, of: value.s}}}`,
			`steps[2].aggregate.columns.l.fn: fn last cannot be used here: step "tiers" reads a table's changes (from "having")`},
		{"windowed aggregate of a table reads a stream", `  - name: w
    from: spend
    aggregate: {group_by: key, window: {tumbling: 1m}, columns: {m: {fn: max, of: value.x}}}`, ""},
		{"a windowed aggregate's rows are not a table", `  - name: w
    from: events
    aggregate: {group_by: key, window: {tumbling: 1m}, columns: {n: {fn: count}}}
  - name: again
    aggregate: {group_by: value.n, columns: {m: {fn: max, of: value.n}}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(base, "STEPS", tc.steps, 1)
			if !strings.Contains(tc.steps, "events") {
				src = strings.Replace(src, "  - {name: events, topic: events}\n", "", 1)
			}
			if !strings.Contains(tc.steps, "spend") {
				src = strings.Replace(src, "  - {name: spend, topic: spend, table: true}\n", "", 1)
			}
			_, err := Parse("p.yaml", []byte(src))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Parse() = %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Parse() = %v, want an error containing %q", err, tc.want)
			}
		})
	}

	topo, err := Parse("p.yaml", []byte(`name: p
sources:
  - {name: events, topic: events}
  - {name: orders, topic: orders}
steps:
  - name: per-user
    from: events
    aggregate: {group_by: key, columns: {s: {fn: sum, of: value.x}}}
  - name: having
    filter: value.s > 10
  - name: tiers
    aggregate: {group_by: value.s, columns: {n: {fn: count}}}
  - name: with-spend
    from: orders
    join: {table: per-user, output: '{"o": value, "s": table.s}'}
sinks:
  - {name: out, topic: out, from: tiers}
  - {name: joined, topic: joined, from: with-spend}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range topo.Steps {
		want := map[string]bool{"per-user": true, "having": true, "tiers": true}[n.Name]
		if n.Changes != want {
			t.Errorf("%s: Changes = %v, want %v", n.Name, n.Changes, want)
		}
		if a := n.Aggregate; a != nil && a.Retract != (n.Name == "tiers") {
			t.Errorf("%s: Retract = %v", n.Name, a.Retract)
		}
	}
	// The aggregate a join reads is keyed by group in its repartition
	// topic, with which the join's is co-partitioned.
	if a := topo.Plan.Step("per-user"); a.Repartition == nil {
		t.Errorf("per-user reads %s directly, want its repartition topic", a.Input)
	}
	groups := topo.Plan.CoPartitionGroups()
	if len(groups) != 1 || strings.Join(groups[0], ",") != "p-with-spend-repartition,p-per-user-repartition" {
		t.Errorf("co-partition groups = %v, want the join's and per-user's repartition topics", groups)
	}
}
