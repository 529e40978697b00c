package topology

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A stream-stream join: its keys, its errors (each naming file:line:col
// and the key), and its plan: one store, partition p of both topics in
// one task.
func TestStreamJoinValidation(t *testing.T) {
	base := `name: p
sources:
  - {name: views, topic: views}
  - {name: clicks, topic: clicks}
  - {name: users, topic: users, table: true}
steps:
  - {name: u, from: views, join: {table: users, output: value}}
STEPS
sinks: [{name: out, topic: out}]
`
	join := "  - {name: j, from: u, join: {JOIN}}"
	for _, tc := range []struct{ join, want string }{
		{"stream: clicks, within: 5s, output: 'other'", ""},
		{"stream: clicks, type: outer, before: 1s, after: 2s, grace: 3s, idle_timeout: 1m, ttl: 1h, output: '[value, other]'", ""},
		{"stream: clicks, table: users, within: 5s, output: 'other'", "steps[1].join.stream: a join has a table or a stream, not both"},
		{"output: 'other'", "steps[1].join: join needs table"},
		{"stream: clicks, output: 'other'", "steps[1].join.within: a stream-stream join needs a time bound"},
		{"stream: clicks, within: 5s, after: 1s, output: 'other'", "steps[1].join.within: within sets before and after both"},
		{"stream: clicks, within: 5s, ttl: 10ms, output: 'other'", "steps[1].join.ttl: ttl 10ms is below 1s"},
		{"stream: clicks, within: 5s, type: full, output: 'other'", `steps[1].join.type: unknown join type "full" (want inner or left or outer)`},
		{"stream: clicks, within: 5s, output: 'table'", "undeclared reference to 'table'"},
		{"table: users, within: 5s, output: 'table'", "steps[1].join.within: within applies to stream-stream joins"},
		{"stream: j, within: 5s, output: 'other'", "steps[1].join.stream: a join cannot read itself"},
		{"stream: users, within: 5s, output: 'other'", `steps[1].join.stream: source "users" is a table: join it with table: users`},
		{"stream: u, within: 5s, output: 'other'", `steps[1].join.stream: "u" is both this join's from and its stream`},
		{"stream: clickz, within: 5s, output: 'other'", `steps[1].join.stream: unknown node "clickz"`},
		{"stream: clicks, within: 5s, on: value.user, output: 'other'", "steps[1].join.on: on joins a table by a field of its rows"},
	} {
		yaml := strings.Replace(base, "STEPS", strings.Replace(join, "JOIN", tc.join, 1), 1)
		topo, err := Parse("p.yaml", []byte(yaml))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.join, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s:\nerror %v\nwant it to contain %q", tc.join, err, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), "p.yaml:8:"):
			t.Errorf("%s: error %v does not name the join's line", tc.join, err)
		case tc.want == "":
			s := topo.Plan.Step("j")
			if s == nil || s.Input != "views" || !slices.Equal(s.CoPartition, []string{"views", "clicks"}) || s.Changelog.Name != "p-j-changelog" {
				t.Errorf("%s: plan step = %+v", tc.join, s)
			}
			if g := topo.Plan.CoPartitionGroups(); len(g) != 1 || !slices.Contains(g[0], "clicks") || !slices.Contains(g[0], "users") {
				t.Errorf("co-partition groups = %v, want views, clicks and users in one", g)
			}
		}
	}
	topo, err := Parse("p.yaml", []byte(strings.Replace(base, "STEPS", strings.Replace(join, "JOIN", "stream: clicks, type: left, before: 1s, after: 2s, grace: 3s, idle_timeout: 1m, ttl: 1h, output: other", 1), 1)))
	if err != nil {
		t.Fatal(err)
	}
	j := topo.Steps[1].Join
	if j.Stream.Name != "clicks" || j.Type != JoinLeft || j.Before != time.Second || j.After != 2*time.Second || j.Grace != 3*time.Second || j.IdleTimeout != time.Minute || j.TTL != time.Hour {
		t.Errorf("join = %+v", j)
	}
}

// A key step on either side of a stream-stream join sends both sides
// through the step's repartition topic, which is then its tasks; the
// steps after it are no longer keyed as read.
func TestStreamJoinRekeyedSideRepartitions(t *testing.T) {
	for _, steps := range []string{
		"  - {name: k, from: clicks, key: value.user}\n  - {name: j, from: views, join: {stream: k, within: 1s, output: other}}\n",
		"  - {name: k, from: views, key: value.user}\n  - {name: f, filter: 'true'}\n  - {name: j, from: f, join: {stream: clicks, within: 1s, output: other}}\n",
	} {
		topo, err := Parse("p.yaml", []byte("name: p\nsources: [{name: views, topic: views}, {name: clicks, topic: clicks}]\nsteps:\n"+steps+
			"  - {name: a, aggregate: {group_by: key, columns: {n: {fn: count}}}}\nsinks: [{name: out, topic: out}]\n"))
		if err != nil {
			t.Fatal(err)
		}
		s := topo.Plan.Step("j")
		if s == nil || s.Repartition == nil || s.Input != "p-j-repartition" || !slices.Equal(s.CoPartition, []string{"p-j-repartition"}) || !slices.Equal(s.Feeds, []string{"views", "clicks"}) {
			t.Errorf("plan step = %+v", s)
		}
		if !slices.Contains(topo.Plan.RepartitionTopics(), "p-j-repartition") {
			t.Errorf("repartition topics = %v", topo.Plan.RepartitionTopics())
		}
		if a := topo.Plan.Step("a"); a.Repartition == nil {
			t.Errorf("the aggregate after the join reads as keyed: %+v", a)
		}
	}
}
