package topology

import (
	"fmt"
	"io"
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
	up := upstreamOf(t)
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
		p.step(t, n, up)
	}

	// The runtime creates these topics when it starts: a changelog with
	// one partition per task of its step (the partitions of the source
	// topic it reads, or of its repartition topic), a repartition topic
	// with the most partitions of any source topic of the pipeline.
	aggs := aggregates(t)
	stateful := statefulSteps(t)
	p.section("stores", len(stateful))
	for _, n := range stateful {
		p.line(1, "%s", n.Name)
		p.line(2, "step: %s", n.Name)
		p.line(2, "changelog topic: %s", ChangelogTopic(t.Name, n.Name))
		if n.Aggregate == nil || n.Aggregate.GroupByKey {
			p.line(2, "partitions: as the source topic %s", up.first[n])
		} else {
			p.line(2, "partitions: as its repartition topic, max of source partitions")
		}
		p.line(2, "configs: cleanup.policy=compact")
	}

	reparts := repartitioned(aggs)
	p.section("repartition topics", len(reparts))
	all := strings.Join(up.names, ", ")
	for _, n := range reparts {
		p.line(1, "%s", RepartitionTopic(t.Name, n.Name))
		p.line(2, "step: %s", n.Name)
		p.line(2, "partitions: max of source partitions (%s)", all)
		p.line(2, "configs: cleanup.policy=delete")
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
		if n.Kind == KindDedupe && n.Dedupe != nil {
			id := fmt.Sprintf("store%d", i)
			p.line(1, "%s[(%s)]", id, mermaidLabel("store: "+n.Name, "changelog: "+ChangelogTopic(t.Name, n.Name)))
			internal = append(internal, id)
			continue
		}
		if n.Kind != KindAggregate || n.Aggregate == nil {
			continue
		}
		if !n.Aggregate.GroupByKey {
			id := fmt.Sprintf("repartition%d", i)
			p.line(1, "%s[/%s/]", id, mermaidLabel("repartition topic", RepartitionTopic(t.Name, n.Name)))
			internal = append(internal, id)
		}
		id := fmt.Sprintf("store%d", i)
		p.line(1, "%s[(%s)]", id, mermaidLabel("store: "+n.Name, "changelog: "+ChangelogTopic(t.Name, n.Name)))
		internal = append(internal, id)
	}
	for i, n := range t.Sinks {
		ids[n] = fmt.Sprintf("sink%d", i)
		p.line(1, "%s[/%s/]", ids[n], mermaidLabel("sink: "+n.Name, "topic: "+n.Topic))
	}

	// Records flow node by node in processing order; a repartition topic
	// feeds its aggregate step after every input has fed it.
	for _, n := range slices.Concat(t.Sources, t.Steps) {
		if n.Kind == KindAggregate && n.Aggregate != nil && !n.Aggregate.GroupByKey {
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

	for _, n := range statefulSteps(t) {
		p.line(1, "%s -.- %s", ids[n], strings.Replace(ids[n], "step", "store", 1))
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

// step writes what step n computes.
func (p *printer) step(t *Topology, n *Node, up *upstream) {
	switch n.Kind {
	case KindFilter, KindMap, KindFlatMap, KindKey:
		p.expr(2, string(n.Kind)+": ", n.Expr)
	case KindSetHeaders:
		p.line(2, "set_headers:")
		for _, h := range n.Headers {
			p.expr(3, h.Name+": ", h.Expr)
		}
	case KindRoute:
		p.line(2, "route:")
		for _, r := range n.Routes {
			if r.When == nil {
				p.line(3, "- to: %s (default branch)", r.To.Name)
				continue
			}
			p.expr(3, "- when: ", r.When)
			p.line(4, "to: %s", r.To.Name)
		}
	case KindDedupe:
		p.expr(2, "id: ", n.Dedupe.ID)
		p.line(2, "ttl: %s", n.Dedupe.TTL)
		if n.Dedupe.Time != nil {
			p.expr(2, "time: ", n.Dedupe.Time)
		}
		if n.Dedupe.Keep != KeepFirst {
			p.line(2, "keep: %s", n.Dedupe.Keep)
		}
		p.line(2, "store: %s (ids seen within the ttl)", n.Name)
	case KindAggregate:
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
			p.line(2, "input: partitioned by record key as read from %s, no repartition", up.first[n])
		} else {
			p.line(2, "input: repartitioned by group through %s (%s)", RepartitionTopic(t.Name, n.Name), repartitionReason(n, up))
		}
	}
}

// repartitionReason says why aggregate step n repartitions, mirroring
// the rules of resolveGroupByKey.
func repartitionReason(n *Node, up *upstream) string {
	a := n.Aggregate
	if len(a.GroupBy) != 1 || a.GroupBy[0].Name != SingleGroupColumn || strings.TrimSpace(a.GroupBy[0].Expr.Text) != VarKey {
		return "group_by is not the record key"
	}
	if ts := up.topics[n]; len(ts) > 1 {
		// In file order, as elsewhere, rather than in walk order.
		names := make([]string, len(ts))
		for i, t := range ts {
			names[i] = up.names[t]
		}
		return "records come from topics " + strings.Join(names, ", ")
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

// statefulSteps returns the steps of t that keep a store (aggregate and
// dedupe), in processing order.
func statefulSteps(t *Topology) []*Node {
	var out []*Node
	for _, n := range t.Steps {
		if n.Kind == KindAggregate && n.Aggregate != nil || n.Kind == KindDedupe && n.Dedupe != nil {
			out = append(out, n)
		}
	}
	return out
}

// aggregates returns the aggregate steps of t in processing order.
func aggregates(t *Topology) []*Node {
	var out []*Node
	for _, n := range t.Steps {
		if n.Kind == KindAggregate && n.Aggregate != nil {
			out = append(out, n)
		}
	}
	return out
}

// repartitioned returns the aggregate steps that read through a
// repartition topic.
func repartitioned(aggs []*Node) []*Node {
	var out []*Node
	for _, n := range aggs {
		if !n.Aggregate.GroupByKey {
			out = append(out, n)
		}
	}
	return out
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

// upstream tells, for each source and step, the source topics whose
// records reach it. It is worked out once, in processing order, so
// describing a pipeline of many stateful steps does not walk the graph
// above each of them.
type upstream struct {
	names []string // sourceTopics
	// first is the first source topic reached depth first along Inputs;
	// a step grouping by the record key has only that one.
	first map[*Node]string
	// topics are the indices into names of every upstream topic,
	// ascending (file order). A node with one input shares its input's
	// slice.
	topics map[*Node][]int
}

func upstreamOf(t *Topology) *upstream {
	u := &upstream{names: sourceTopics(t), first: map[*Node]string{}, topics: map[*Node][]int{}}
	index := map[string]int{}
	for i, name := range u.names {
		index[name] = i
	}
	for _, n := range t.Sources {
		u.first[n], u.topics[n] = n.Topic, []int{index[n.Topic]}
	}
	for _, n := range t.Steps {
		if len(n.Inputs) == 0 {
			continue
		}
		u.first[n] = u.first[n.Inputs[0]]
		ts := u.topics[n.Inputs[0]]
		for _, in := range n.Inputs[1:] {
			ts = unionSorted(ts, u.topics[in])
		}
		u.topics[n] = ts
	}
	return u
}

// unionSorted merges two ascending lists without duplicates; it returns a
// itself when b adds nothing.
func unionSorted(a, b []int) []int {
	out := make([]int, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	if len(out) == len(a) {
		return a
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
		rp := to.Kind == KindAggregate && to.Aggregate != nil && !to.Aggregate.GroupByKey
		out = append(out, link{from: n, to: to, branch: r, repartition: rp})
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
