package topology

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// This file renders a Topology for people: [Describe] as indented text,
// [DescribeMermaid] as a Mermaid flowchart. Both need no network, so the
// partition counts of the internal topics, which the runtime takes from
// the source topics when it starts, are stated in words. Both outputs are
// deterministic: nodes in the Topology's order, nothing from a map.

// Describe writes t as text: the pipeline settings, then its sources,
// steps (in processing order) with their expressions, the state stores and
// repartition topics of its aggregate steps, its sinks and its edges.
func Describe(w io.Writer, t *Topology) error {
	p := &printer{w: w}
	pl := planOf(t)
	p.line(0, "pipeline: %s", t.Name)
	p.line(0, "consumer group: %s", t.Group)
	p.line(0, "guarantee: %s", guarantee(t))
	p.line(0, "commit interval: %s", commitInterval(t))
	p.line(0, "transactional id: %s", transactionalID(t))

	p.section("sources", len(t.Sources))
	for _, n := range t.Sources {
		p.line(1, "%s", n.Name)
		p.formats(n)
	}

	p.section("steps, in processing order", len(t.Steps))
	for _, n := range t.Steps {
		p.line(1, "%s (%s)", n.Name, n.Kind)
		p.from(n)
		p.step(n, pl.Step(n.Name))
	}

	// The runtime creates these topics when it starts: a changelog with
	// one partition per task of its step (the partitions of the source
	// topic it reads, or of its repartition topic), a repartition topic
	// with the most partitions of any source topic of the pipeline.
	p.section("stores", len(pl.Stateful))
	for _, s := range pl.Stateful {
		p.line(1, "%s", s.Node.Name)
		if s.Table {
			p.line(2, "table source: %s, latest value per key", s.Node.Name)
			p.line(2, "backed by its topic: %s (restored from it, no changelog)", s.Changelog.Name)
			if pl.ReadByTableJoin(s) {
				p.line(2, "restored up to the group's committed offset: a table-table join emits for the records after it")
			}
			continue
		}
		p.line(2, "step: %s", s.Node.Name)
		p.line(2, "changelog topic: %s", s.Changelog.Name)
		if s.Changelog.PartitionsOf != "" {
			p.line(2, "partitions: as the source topic %s", s.Changelog.PartitionsOf)
		} else {
			p.line(2, "partitions: as its repartition topic, max of source partitions")
		}
		p.line(2, "configs: %s", configs(s.Changelog.Configs))
	}

	reparts := pl.RepartitionTopics()
	p.section("repartition topics", len(reparts))
	all := strings.Join(pl.Sources, ", ")
	for _, s := range pl.Stateful {
		if s.Repartition == nil {
			continue
		}
		p.line(1, "%s", s.Repartition.Name)
		p.line(2, "step: %s", s.Node.Name)
		p.line(2, "partitions: max of source partitions (%s)", all)
		p.line(2, "configs: %s", configs(s.Repartition.Configs))
	}
	for _, j := range pl.Joins {
		if j.Repartition == nil {
			continue
		}
		p.line(1, "%s", j.Repartition.Name)
		p.line(2, "step: %s", j.Node.Name)
		if j.Repartition.PartitionsOf == "" {
			// An aggregate's rows: as its repartition topic.
			p.line(2, "partitions: max of source partitions (%s), as the repartition topic of %s", all, j.Node.Join.Table.Name)
		} else {
			p.line(2, "partitions: as the table topic %s", j.Repartition.PartitionsOf)
		}
		p.line(2, "configs: %s", configs(j.Repartition.Configs))
	}
	for _, j := range pl.Joins {
		if !j.Foreign() {
			continue
		}
		for _, it := range []*InternalTopic{j.Subscription, j.Response} {
			p.line(1, "%s", it.Name)
			p.line(2, "step: %s (foreign-key join %ss)", j.Node.Name, strings.TrimPrefix(it.Name, t.Name+"-"+j.Node.Name+"-"))
			p.line(2, "partitions: as the table topic %s", it.PartitionsOf)
			p.line(2, "configs: %s", configs(it.Configs))
		}
	}

	// Only shown when there are some, so describe output of pipelines
	// without joins stays as it was.
	if groups := pl.CoPartitionGroups(); len(groups) > 0 {
		p.section("co-partition groups (partition p of each topic goes to one member; equal partition counts required)", len(groups))
		for _, g := range groups {
			p.line(1, "%s", strings.Join(g, ", "))
		}
	}

	p.section("sinks", len(t.Sinks))
	for _, n := range t.Sinks {
		p.line(1, "%s", n.Name)
		p.formats(n)
		p.from(n)
	}

	var ls []link
	for _, n := range slices.Concat(t.Sources, t.Steps) {
		ls = append(ls, linksFrom(n)...)
	}
	p.section("edges", len(ls))
	for _, e := range ls {
		s := e.from.Name + " -> "
		if e.repartition {
			s += RepartitionTopic(t.Name, e.to.Name) + " -> "
		}
		s += e.to.Name
		switch {
		case e.branch == nil:
		case e.branch.When == nil:
			s += " (default branch)"
		default:
			s += " (when " + oneLine(e.branch.When.Text) + ")"
		}
		p.line(1, "%s", s)
	}
	return p.err
}

func guarantee(t *Topology) Guarantee {
	if t.Guarantee == "" {
		return ExactlyOnce
	}
	return t.Guarantee
}

// transactionalID is the pattern of the runtime's transactional ids. The
// other guarantees run without transactions.
func transactionalID(t *Topology) string {
	if g := guarantee(t); g != ExactlyOnce {
		return "none (" + string(g) + " runs without transactions)"
	}
	return t.Name + "-<instance id>"
}

func commitInterval(t *Topology) string {
	if t.CommitInterval == 0 {
		return "daemon default"
	}
	return t.CommitInterval.String()
}

// DescribeMermaid writes t as a Mermaid flowchart, left to right. Topics
// (sources, sinks and repartition topics) are parallelograms, the
// flowchart symbol for input and output; route steps are decisions; other
// steps are boxes labelled with their kind and name; each aggregate step's
// state store is a cylinder linked to it by a dotted line, and its
// repartition topic, when it has one, sits between it and its inputs.
// Internal topics and stores have dashed borders. The pipeline settings go
// in a %% comment.
func DescribeMermaid(w io.Writer, t *Topology) error {
	p := &printer{w: w}
	pl := planOf(t)
	p.line(0, "flowchart LR")
	p.line(1, "%%%% pipeline %s, consumer group %s, guarantee %s, commit interval %s, transactional id %s",
		t.Name, t.Group, guarantee(t), commitInterval(t), transactionalID(t))

	// Node ids are positional, so node names need no escaping there and
	// cannot clash with Mermaid keywords such as end. An aggregate step's
	// store and repartition topic share its number.
	ids := map[*Node]string{}
	for i, n := range t.Sources {
		ids[n] = fmt.Sprintf("source%d", i)
		p.line(1, "%s[/%s/]", ids[n], mermaidLabel("source: "+n.Name, "topic: "+n.Topic))
	}
	var internal []string
	for i, n := range t.Steps {
		ids[n] = fmt.Sprintf("step%d", i)
		label := mermaidLabel(string(n.Kind) + ": " + n.Name)
		if n.Kind == KindRoute {
			p.line(1, "%s{%s}", ids[n], label)
		} else {
			p.line(1, "%s[%s]", ids[n], label)
		}
		if n.Join != nil && n.Join.Repartition && !n.StreamJoin() {
			id := fmt.Sprintf("repartition%d", i)
			p.line(1, "%s[/%s/]", id, mermaidLabel("repartition topic", RepartitionTopic(t.Name, n.Name)))
			internal = append(internal, id)
		}
		s := pl.Step(n.Name)
		if s == nil {
			continue
		}
		if s.Repartition != nil {
			id := fmt.Sprintf("repartition%d", i)
			p.line(1, "%s[/%s/]", id, mermaidLabel("repartition topic", s.Repartition.Name))
			internal = append(internal, id)
		}
		id := fmt.Sprintf("store%d", i)
		p.line(1, "%s[(%s)]", id, mermaidLabel("store: "+n.Name, "changelog: "+s.Changelog.Name))
		internal = append(internal, id)
	}
	for i, n := range t.Sinks {
		ids[n] = fmt.Sprintf("sink%d", i)
		p.line(1, "%s[/%s/]", ids[n], mermaidLabel("sink: "+n.Name, "topic: "+n.Topic))
	}

	// Records flow node by node in processing order; a repartition topic
	// feeds its aggregate step after every input has fed it.
	for _, n := range slices.Concat(t.Sources, t.Steps) {
		if n.Repartitioned() {
			p.line(1, "%s --> %s", strings.Replace(ids[n], "step", "repartition", 1), ids[n])
		}
		for _, l := range linksFrom(n) {
			to := ids[l.to]
			if l.repartition {
				to = strings.Replace(to, "step", "repartition", 1)
			}
			switch {
			case l.branch == nil:
				p.line(1, "%s --> %s", ids[n], to)
			case l.branch.When == nil:
				p.line(1, "%s -->|%s| %s", ids[n], mermaidLabel("default"), to)
			default:
				p.line(1, "%s -->|%s| %s", ids[n], mermaidLabel("when "+oneLine(l.branch.When.Text)), to)
			}
		}
	}

	for _, s := range pl.Stateful {
		if s.Table {
			continue
		}
		p.line(1, "%s -.- %s", ids[s.Node], strings.Replace(ids[s.Node], "step", "store", 1))
	}
	for _, j := range pl.Joins {
		p.line(1, "%s -.->|%s| %s", ids[j.Node.Join.Table], mermaidLabel("table"), ids[j.Node])
	}
	if len(internal) > 0 {
		p.line(1, "classDef internal stroke-dasharray: 5 5")
		p.line(1, "class %s internal", strings.Join(internal, ","))
	}
	return p.err
}

// mermaidLabel quotes lines as one Mermaid label. Inside double quotes
// Mermaid takes any character but the quote itself, and turns #name; and
// #123; into HTML entities, which its HTML labels then show. So every
// character that is special in the label, in HTML or in that entity
// syntax becomes an entity: " # & < > | and `, which would start a
// Markdown string. White space collapses to single spaces and lines are
// joined with <br>.
func mermaidLabel(lines ...string) string {
	esc := make([]string, len(lines))
	for i, l := range lines {
		esc[i] = mermaidEscaper.Replace(oneLine(l))
	}
	return `"` + strings.Join(esc, "<br>") + `"`
}

var mermaidEscaper = strings.NewReplacer(
	`#`, `#35;`,
	`"`, `#quot;`,
	`&`, `#amp;`,
	`<`, `#lt;`,
	`>`, `#gt;`,
	`|`, `#124;`,
	"`", `#96;`,
)

// step writes what step n computes, as its operation's spec says.
func (p *printer) step(n *Node, s *StatefulStep) {
	if spec := specOf(n.Kind); spec != nil {
		spec.describe(p, n, s)
	}
}

func describeExpr(p *printer, n *Node, _ *StatefulStep) {
	p.expr(2, string(n.Kind)+": ", n.Expr)
}

func describeSetHeaders(p *printer, n *Node, _ *StatefulStep) {
	p.line(2, "set_headers:")
	for _, h := range n.Headers {
		p.expr(3, h.Name+": ", h.Expr)
	}
}

func describeRoute(p *printer, n *Node, _ *StatefulStep) {
	p.line(2, "route:")
	for _, r := range n.Routes {
		if r.When == nil {
			p.line(3, "- to: %s (default branch)", r.To.Name)
			continue
		}
		p.expr(3, "- when: ", r.When)
		p.line(4, "to: %s", r.To.Name)
	}
}

func describeDedupe(p *printer, n *Node, _ *StatefulStep) {
	p.expr(2, "id: ", n.Dedupe.ID)
	p.line(2, "ttl: %s", n.Dedupe.TTL)
	if n.Dedupe.Time != nil {
		p.expr(2, "time: ", n.Dedupe.Time)
	}
	if n.Dedupe.Keep != KeepFirst {
		p.line(2, "keep: %s", n.Dedupe.Keep)
	}
	p.line(2, "store: %s (ids seen within the ttl)", n.Name)
}

func describeAggregate(p *printer, n *Node, s *StatefulStep) {
	a := n.Aggregate
	if len(a.GroupBy) == 1 && a.GroupBy[0].Name == SingleGroupColumn {
		p.expr(2, "group_by: ", a.GroupBy[0].Expr)
	} else {
		p.line(2, "group_by:")
		for _, g := range a.GroupBy {
			p.expr(3, g.Name+": ", g.Expr)
		}
	}
	p.line(2, "columns:")
	for _, c := range a.Columns {
		p.line(3, "%s: %s", c.Name, c.Func)
		if c.Of != nil {
			p.expr(4, "of: ", c.Of)
		}
		if c.Where != nil {
			p.expr(4, "where: ", c.Where)
		}
		if c.Scale >= 0 {
			p.line(4, "scale: %d", c.Scale)
		}
	}
	if a.Retract {
		p.line(2, "retracts: reads a table's changes; a changed row leaves its old group and joins its new one, a deleted one leaves, a group left empty is deleted")
	}
	if w := a.Window; w != nil {
		switch w.Kind {
		case Tumbling:
			p.line(2, "window: tumbling %s", w.Size)
		case Hopping:
			p.line(2, "window: hopping, size %s, advance %s", w.Size, w.Advance)
		case Session:
			p.line(2, "window: session, gap %s", w.Gap)
		}
		p.line(3, "grace: %s", w.Grace)
		if w.Time != nil {
			p.expr(3, "event time: ", w.Time)
		} else {
			p.line(3, "event time: the record timestamp")
		}
		if w.IdleTimeout > 0 {
			p.line(3, "idle timeout: %s (stream time advances by wall clock when a partition is quiet)", w.IdleTimeout)
		} else {
			p.line(3, "idle timeout: off")
		}
		if w.Late == LateSink && w.LateTo != nil {
			p.line(3, "late records: to sink %s (counted)", w.LateTo.Name)
		} else {
			p.line(3, "late records: %s (counted)", w.Late)
		}
		if !a.GroupByKey {
			p.line(3, "event time behind the repartition: minimum over upstream partitions; quiet for %s: idle", w.UpstreamIdle)
		}
	}
	p.line(2, "emit: %s", a.Emit)
	p.line(2, "store: %s", n.Name)
	if a.GroupByKey {
		p.line(2, "input: partitioned by record key as read from %s, no repartition", s.Input)
	} else {
		p.line(2, "input: repartitioned by group through %s (%s)", s.Input, repartitionReason(s))
	}
}

// repartitionReason says why aggregate step n repartitions, mirroring
// the rules of resolveGroupByKey.
func repartitionReason(s *StatefulStep) string {
	a := s.Node.Aggregate
	if len(a.GroupBy) != 1 || a.GroupBy[0].Name != SingleGroupColumn || strings.TrimSpace(a.GroupBy[0].Expr.Text) != VarKey {
		return "group_by is not the record key"
	}
	if len(s.Feeds) > 1 {
		return "records come from topics " + strings.Join(s.Feeds, ", ")
	}
	return "the record key changes upstream"
}

// printer writes indented lines and keeps the first write error.
type printer struct {
	w       io.Writer
	err     error
	started bool
}

func (p *printer) line(depth int, format string, args ...any) {
	if p.err != nil {
		return
	}
	p.started = true
	_, p.err = fmt.Fprintf(p.w, strings.Repeat("  ", depth)+format+"\n", args...)
}

// section starts a titled list, saying "none" when it is empty.
func (p *printer) section(title string, n int) {
	if p.started {
		p.line(0, "")
	}
	if n == 0 {
		p.line(0, "%s: none", title)
		return
	}
	p.line(0, "%s:", title)
}

// expr writes label followed by x's text. A multi-line expression (a YAML
// block scalar) goes below the label, one level deeper, as written.
func (p *printer) expr(depth int, label string, x *Expr) {
	text := strings.TrimSpace(x.Text)
	if !strings.Contains(text, "\n") {
		p.line(depth, "%s%s", label, text)
		return
	}
	p.line(depth, "%s|", label)
	lines := strings.Split(strings.TrimRight(x.Text, " \t\r\n"), "\n")
	// Drop leading blank lines, then the indentation they all share.
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if in := len(l) - len(strings.TrimLeft(l, " \t")); common < 0 || in < common {
			common = in
		}
	}
	// A "- " prefix pushes the continuation lines one level further.
	cont := depth + 1
	if strings.HasPrefix(label, "- ") {
		cont++
	}
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			p.line(0, "")
			continue
		}
		p.line(cont, "%s", l[common:])
	}
}

func (p *printer) formats(n *Node) {
	p.line(2, "topic: %s", n.Topic)
	p.line(2, "format: %s", n.Format)
	p.line(2, "key format: %s", n.KeyFormat)
	switch {
	case n.Global:
		p.line(2, "read as: a global table (every partition, by every instance, before processing), by joins")
	case n.Table && slices.ContainsFunc(n.Outputs, func(o *Node) bool { return o.Join == nil || o.Join.Left != n }):
		p.line(2, "read as: a table (latest value per key), by joins and, as changes (old and new row), by steps; restored to the group's committed offset")
	case n.Table:
		p.line(2, "read as: a table (latest value per key), by joins")
	}
}

func (p *printer) from(n *Node) {
	names := make([]string, len(n.Inputs))
	for i, in := range n.Inputs {
		names[i] = in.Name
	}
	p.line(2, "from: %s", strings.Join(names, ", "))
}

// oneLine collapses the white space of an expression to single spaces, for
// places with no room for several lines.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// planOf returns t's plan, worked out if t was built by hand.
func planOf(t *Topology) *Plan {
	if t.Plan != nil {
		return t.Plan
	}
	return plan(t)
}

// configs formats topic configs as name=value, sorted by name.
func configs(m map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return strings.Join(out, ", ")
}

// sourceTopics returns the distinct topics of t's sources, in file order.
func sourceTopics(t *Topology) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range t.Sources {
		if !seen[n.Topic] {
			seen[n.Topic] = true
			out = append(out, n.Topic)
		}
	}
	return out
}

// link is one connection of the graph. A route step has one per branch,
// so two branches to the same node are two edges.
type link struct {
	from, to *Node
	branch   *Route // route steps only
	// repartition is true when records reach to, an aggregate step,
	// through its repartition topic.
	repartition bool
}

// linksFrom returns the connections from n to the nodes it feeds, in
// order (a route step's in branch order).
func linksFrom(n *Node) []link {
	var out []link
	add := func(to *Node, r *Route) {
		out = append(out, link{from: n, to: to, branch: r, repartition: to.Repartitioned()})
	}
	if n.Kind == KindRoute {
		for i := range n.Routes {
			add(n.Routes[i].To, &n.Routes[i])
		}
		return out
	}
	for _, o := range n.Outputs {
		add(o, nil)
	}
	return out
}
