package topology

import (
	"strings"
	"testing"
)

// drop_headers: a non-empty list of distinct, non-empty names; errors name
// the item.
func TestDropHeadersDecode(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"[a, b]", ""},
		{"[]", "steps[0].drop_headers: drop_headers needs at least one header name"},
		{"[a, a]", `steps[0].drop_headers[1]: header "a" is listed twice`},
		{`[""]`, "steps[0].drop_headers[0]: header name must not be empty"},
		{"a", "steps[0].drop_headers: expected a list"},
	} {
		yaml := "name: p\nsources: [{name: in, topic: in}]\nsteps:\n  - name: s\n    drop_headers: " + tc.value + "\nsinks: [{name: out, topic: out}]\n"
		topo, err := Parse("p.yaml", []byte(yaml))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.value, err)
		case tc.want == "" && strings.Join(topo.Steps[0].DropHeaders, ",") != "a,b":
			t.Errorf("%s: DropHeaders = %q", tc.value, topo.Steps[0].DropHeaders)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want it to contain %q", tc.value, err, tc.want)
		}
	}
}

// A join names a table source; its input is keyed as read from one topic;
// a global table is read by joins only, a table by a join or a step.
func TestJoinValidation(t *testing.T) {
	base := `name: p
sources:
  - {name: orders, topic: orders}
  - {name: customers, topic: customers, table: TABLE}
steps:
STEPS
sinks: [{name: out, topic: out}]
`
	join := "  - name: j\n    FROM\n    join: {table: customers, output: 'table'}\n"
	for _, tc := range []struct{ table, steps, want string }{
		{"true", strings.Replace(join, "FROM", "from: orders", 1), ""},
		{"false", strings.Replace(join, "FROM", "from: orders", 1), `join table "customers" is not a table source`},
		{"true, global: true", "  - {name: f, from: customers, filter: 'true'}\n" + strings.Replace(join, "FROM", "from: orders", 1), `source "customers" is a global table: only a join reads it`},
		{"true", "  - {name: f, from: orders, filter: 'true'}", `table source "customers" is read by no join and no step`},
		{"true", strings.Replace(strings.Replace(join, "FROM", "from: orders", 1), "'table'", "'tabel'", 1), "undeclared reference to 'tabel'"},
		{"true", strings.Replace(strings.Replace(join, "FROM", "from: orders", 1), "output: 'table'", "output: 'table', type: full", 1), `unknown join type "full"`},
	} {
		yaml := strings.NewReplacer("TABLE", tc.table, "STEPS", tc.steps).Replace(base)
		topo, err := Parse("p.yaml", []byte(yaml))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.steps, err)
		case tc.want == "" && (len(topo.Plan.Joins) != 1 || topo.Plan.Joins[0].Input != "orders" || topo.Plan.Joins[0].Table.Input != "customers"):
			t.Errorf("plan joins = %+v", topo.Plan.Joins)
		case tc.want == "" && len(topo.Plan.CoPartitionGroups()) != 1:
			t.Errorf("co-partition groups = %v, want orders with customers", topo.Plan.CoPartitionGroups())
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s:\nerror %v\nwant it to contain %q", tc.steps, err, tc.want)
		}
	}
}

// A join whose input is rekeyed goes through its repartition topic, with
// the table topic's partition count, co-partitioned with the table.
func TestJoinAfterRekeyRepartitions(t *testing.T) {
	topo, err := Parse("p.yaml", []byte(`name: p
sources:
  - {name: orders, topic: orders}
  - {name: customers, topic: customers, table: true}
steps:
  - {name: k, from: orders, key: value.customer}
  - name: j
    join: {table: customers, output: 'table'}
sinks: [{name: out, topic: out}]
`))
	if err != nil {
		t.Fatal(err)
	}
	j := topo.Plan.Joins[0]
	if j.Repartition == nil || j.Repartition.Name != "p-j-repartition" || j.Repartition.PartitionsOf != "customers" || j.Input != "p-j-repartition" {
		t.Fatalf("join plan = %+v (repartition %+v), want input p-j-repartition with the partitions of customers", j, j.Repartition)
	}
	if g := topo.Plan.CoPartitionGroups(); len(g) != 1 || strings.Join(g[0], ",") != "p-j-repartition,customers" {
		t.Errorf("co-partition groups = %v", g)
	}
	if got := topo.Plan.RepartitionTopics(); strings.Join(got, ",") != "p-j-repartition" {
		t.Errorf("repartition topics = %v", got)
	}
}
