package topology

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/internal/suggest"
)

var (
	// The pipeline name prefixes the consumer group and transactional ids,
	// so it follows the rules that keep those readable and safe in tools.
	pipelineName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)
	nodeName     = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,100}$`)
	// Kafka's own rule for topic names.
	topicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
)

// Longest commit interval accepted. Commits end transactions, so a longer
// interval holds records invisible to read_committed consumers, and keeps
// transactions open, for longer than is ever useful.
const maxCommitInterval = time.Minute

var (
	opKeys   = operationKeys()
	stepKeys = append([]string{"name", "from"}, opKeys...)
)

// entry is a node being built, with what the graph pass needs to know
// about where its pieces came from.
type entry struct {
	node    *Node
	path    string // YAML path of the node, e.g. steps[2]
	index   int    // index in its YAML list
	seq     int    // position in parser.steps (steps only)
	ord     int    // rank among all nodes in file order
	named   bool   // has a name others can refer to: present, not a duplicate
	namePos Pos
	topic   Pos // position of the topic value (sources and sinks)

	hasFrom bool
	from    []ref // explicit inputs
	tos     []ref // route branch targets, parallel to node.Routes; name "" if unusable
	table   ref   // a join's table source; name "" if unusable
	stream  ref   // a stream-stream join's other stream; name "" if unusable

	in  []edge   // every incoming edge, explicit or default
	out []*entry // targets, deduplicated

	// bad marks a node with an input problem already reported; nodes it
	// feeds are exempt from reachability complaints.
	bad bool
}

// ref is a node name written somewhere in the file.
type ref struct {
	name string
	pos  Pos
	key  string
}

// edge is an incoming connection and the place in the file that made it,
// where a cycle through it is reported.
type edge struct {
	from *entry
	ref  ref
}

func (p *parser) topology(ctx context.Context, root *yaml.Node) *Topology {
	f := p.mapping(root, "", "topology", topKeys)
	if f == nil {
		return nil
	}
	t := &Topology{File: p.file}
	if v := f.require("name"); v != nil {
		if s, ok := p.str(v, "name"); ok {
			if !pipelineName.MatchString(s) {
				p.errorf(p.pos(v), "name", "invalid pipeline name %q: use 1 to 200 letters, digits, '.', '_' or '-'", s)
			}
			t.Name = s
		}
	}
	t.Group = t.Name
	if v := f.get("group"); v != nil {
		if s, ok := p.str(v, "group"); ok {
			if !pipelineName.MatchString(s) {
				p.errorf(p.pos(v), "group", "invalid consumer group %q: use 1 to 200 letters, digits, '.', '_' or '-'", s)
			}
			t.Group = s
		}
	}
	if v := f.get("commit_interval"); v != nil {
		t.CommitInterval = p.commitInterval(v)
	}
	p.errorPolicy(f, t)
	t.Guarantee = ExactlyOnce
	if v := f.get("guarantee"); v != nil {
		if s, ok := p.str(v, "guarantee"); ok {
			switch g := Guarantee(s); g {
			case ExactlyOnce, AtLeastOnce, AtMostOnce:
				t.Guarantee = g
			default:
				p.errorf(p.pos(v), "guarantee", "unknown guarantee %q (want exactly_once, at_least_once or at_most_once)", s)
			}
		}
	}

	if !p.checkNodeCount(f) {
		return nil
	}
	// Compiling a step's expressions is the slow part of a large file,
	// so an interrupt is checked for before each node.
	if v := f.require("sources"); v != nil {
		items, ok := p.list(v, "sources")
		if ok && len(items) == 0 {
			p.errorf(p.pos(v), "sources", "at least one source is required")
		}
		// Without sources every input is a guess.
		p.uncertain = p.uncertain || len(items) == 0
		p.nSources = len(items)
		for i, it := range items {
			if ctx.Err() != nil {
				return nil
			}
			if e := p.endpoint(it, index("sources", i), i, KindSource); e != nil {
				p.sources = append(p.sources, e)
			}
		}
	} else {
		p.uncertain = true
	}
	if v := f.get("steps"); v != nil {
		items, ok := p.list(v, "steps")
		p.uncertain = p.uncertain || !ok
		for i, it := range items {
			if ctx.Err() != nil {
				return nil
			}
			if e := p.step(it, index("steps", i), i); e != nil {
				e.seq = len(p.steps)
				p.steps = append(p.steps, e)
			}
		}
	}
	if v := f.require("sinks"); v != nil {
		items, ok := p.list(v, "sinks")
		if ok && len(items) == 0 {
			p.errorf(p.pos(v), "sinks", "at least one sink is required")
		}
		// Without sinks every step's output goes nowhere; saying so
		// step by step would only repeat this error.
		p.uncertain = p.uncertain || len(items) == 0
		for i, it := range items {
			if ctx.Err() != nil {
				return nil
			}
			if e := p.endpoint(it, index("sinks", i), i, KindSink); e != nil {
				p.sinks = append(p.sinks, e)
			}
		}
	} else {
		p.uncertain = true
	}

	p.checkTopics()
	p.checkInternalTopics(t.Name)
	p.checkDeadLetterTopic(t)
	p.checkLateDeadLetter(t)
	p.link()
	for _, e := range p.sources {
		t.Sources = append(t.Sources, e.node)
	}
	sorted := p.sortSteps()
	for _, e := range sorted {
		t.Steps = append(t.Steps, e.node)
	}
	p.resolveGroupByKey(t.Steps)
	p.resolveChanges(p.sources, sorted)
	for _, e := range p.sinks {
		t.Sinks = append(t.Sinks, e.node)
	}
	return t
}

// checkNodeCount reports a pipeline of more than MaxNodes nodes, at the
// first node past the limit, before any node is decoded: decoding them
// all is the work the limit avoids.
func (p *parser) checkNodeCount(f *fields) bool {
	total := 0
	var lists [][]*yaml.Node
	for _, key := range []string{"sources", "steps", "sinks"} {
		var items []*yaml.Node
		if v := f.get(key); v != nil && deref(v).Kind == yaml.SequenceNode {
			items = deref(v).Content
		}
		lists = append(lists, items)
		total += len(items)
	}
	if total <= MaxNodes {
		return true
	}
	// The node that passes the limit, counting sources, then steps,
	// then sinks.
	i := MaxNodes
	for k, key := range []string{"sources", "steps", "sinks"} {
		if i < len(lists[k]) {
			p.errorf(p.pos(lists[k][i]), index(key, i),
				"too many nodes: %d sources, steps and sinks, more than the limit of %d; split the pipeline into several pipelines connected by topics",
				total, MaxNodes)
			break
		}
		i -= len(lists[k])
	}
	return false
}

func (p *parser) commitInterval(v *yaml.Node) time.Duration {
	s, ok := p.str(v, "commit_interval")
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.errorf(p.pos(v), "commit_interval", "invalid duration %q: want a Go duration such as 100ms or 2s", s)
		return 0
	}
	if d < 0 || d > maxCommitInterval {
		p.errorf(p.pos(v), "commit_interval", "%s is out of range: want more than 0 and at most 1m, or 0 for the daemon default", s)
		return 0
	}
	return d
}

// newEntry starts a node from its mapping and decodes its name.
func (p *parser) newEntry(f *fields, path string, i int, kind Kind) *entry {
	e := &entry{node: &Node{Kind: kind, Pos: f.pos}, path: path, index: i}
	v := f.require("name")
	if v == nil {
		return e
	}
	s, ok := p.str(v, path+".name")
	if !ok {
		return e
	}
	if !nodeName.MatchString(s) {
		p.errorf(p.pos(v), path+".name", "invalid name %q: use 1 to 100 letters, digits, '.', '_' or '-'", s)
	}
	// Even an ill-formed name stays usable, so that references to it do
	// not produce a second, misleading "unknown node" error.
	e.node.Name, e.named, e.namePos = s, true, p.pos(v)
	return e
}

// endpoint decodes a source or a sink.
func (p *parser) endpoint(n *yaml.Node, path string, i int, kind Kind) *entry {
	known := sourceKeys
	if kind == KindSink {
		known = sinkKeys
	}
	f := p.mapping(n, path, string(kind), known)
	if f == nil {
		p.uncertain = true
		return nil
	}
	e := p.newEntry(f, path, i, kind)
	if v := f.require("topic"); v != nil {
		if s, ok := p.str(v, path+".topic"); ok {
			switch {
			case s == "." || s == "..":
				p.errorf(p.pos(v), path+".topic", "invalid topic %q: Kafka does not allow \".\" or \"..\"", s)
			case !topicName.MatchString(s):
				p.errorf(p.pos(v), path+".topic", "invalid topic %q: use 1 to 249 letters, digits, '.', '_' or '-'", s)
			}
			e.node.Topic, e.topic = s, p.pos(v)
		}
	}
	e.node.Format = p.format(f, "format", FormatJSON)
	e.node.KeyFormat = p.format(f, "key_format", FormatString)
	if v := f.get("table"); v != nil {
		e.node.Table = p.boolean(v, path+".table")
	}
	if v := f.get("global"); v != nil {
		if e.node.Global = p.boolean(v, path+".global"); e.node.Global && !e.node.Table {
			p.errorf(p.pos(v), path+".global", "global applies to table sources; add table: true")
		}
	}
	if v := f.get("from"); v != nil {
		p.decodeFrom(e, v)
	}
	return e
}

// format reads a format: its name (format: json), or a mapping with its
// name and options (format: {name: json}). Name and options are checked
// against the format registry, offline.
func (p *parser) format(f *fields, key string, def Format) Format {
	v := f.get(key)
	if v == nil {
		return def
	}
	path := sub(f.path, key)
	if deref(v).Kind == yaml.MappingNode {
		return p.formatLong(v, path, def)
	}
	s, ok := p.str(v, path)
	if !ok {
		return def
	}
	if err := p.formats.Check(s, nil); err != nil {
		p.errorf(p.pos(v), path, "%v", err)
		return def
	}
	return Format{Name: s}
}

// formatLong reads the long form of a format: name plus options.
func (p *parser) formatLong(v *yaml.Node, path string, def Format) Format {
	// The keys a mapping may have depend on its name, so read the name
	// first and check the keys once it is known.
	fm := p.mapping(v, path, "format", nil)
	nv := fm.require("name")
	if nv == nil {
		for _, k := range fm.order {
			if suggest.Closest(k, []string{"name"}) != "" {
				p.errorf(p.pos(fm.keys[k]), sub(path, k), "unknown key %q; did you mean \"name\"?", k)
			}
		}
		return def
	}
	name, ok := p.str(nv, sub(path, "name"))
	if !ok {
		return def
	}
	var opts format.Options
	for _, k := range fm.order {
		if k == "name" {
			continue
		}
		var x any
		if err := deref(fm.vals[k]).Decode(&x); err != nil {
			// yaml.v3 decodes any well-formed node into an any;
			// report it anyway rather than drop the option.
			p.errorf(p.pos(fm.vals[k]), sub(path, k), "cannot read option %q of format %s: %v", k, name, err)
			return def
		}
		if opts == nil {
			opts = format.Options{}
		}
		opts[k] = x
	}
	if err := p.formats.Check(name, opts); err != nil {
		if errors.Is(err, format.ErrUnknownFormat) {
			p.errorf(p.pos(nv), sub(path, "name"), "%v", err)
		} else {
			fac, _ := p.formats.Lookup(name)
			p.optionErrors(fm, path, fac, err)
		}
		return def
	}
	return Format{Name: name, Options: opts}
}

// optionErrors reports the errors of a format's options, each at the
// option it names: an unknown key at the key, a bad value at the value.
func (p *parser) optionErrors(fm *fields, path string, fac format.Factory, err error) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, err := range errs {
		var oe *format.OptionError
		switch {
		case errors.As(err, &oe) && errors.Is(err, format.ErrUnknownOption) && fm.keys[oe.Key] != nil:
			p.errorf(p.pos(fm.keys[oe.Key]), sub(path, oe.Key), "%v%s", oe.Err, suggest.DidYouMean(oe.Key, fac.Options))
		case errors.As(err, &oe) && fm.vals[oe.Key] != nil:
			p.errorf(p.pos(fm.vals[oe.Key]), sub(path, oe.Key), "format %s: %v", fac.Name, oe.Err)
		default:
			p.errorf(fm.pos, path, "format %s: %v", fac.Name, err)
		}
	}
}

// decodeFrom reads a from value: one name or a non-empty list of names.
func (p *parser) decodeFrom(e *entry, v *yaml.Node) {
	key := e.path + ".from"
	e.hasFrom = true
	d := deref(v)
	switch {
	case d.Kind == yaml.SequenceNode:
		if len(d.Content) == 0 {
			p.errorf(p.pos(v), key, "from needs at least one node name")
			e.bad, p.uncertain = true, true
		}
		seen := map[string]bool{}
		for i, it := range d.Content {
			s, ok := p.nodeRef(it, index(key, i))
			if !ok {
				e.bad, p.uncertain = true, true
				continue
			}
			if seen[s] {
				p.errorf(p.pos(it), index(key, i), "%q is listed twice", s)
				continue
			}
			seen[s] = true
			e.from = append(e.from, ref{s, p.pos(it), index(key, i)})
		}
	case d.Kind == yaml.ScalarNode && !isNull(d):
		if s, ok := p.nodeRef(v, key); ok {
			e.from = []ref{{s, p.pos(v), key}}
		} else {
			e.bad, p.uncertain = true, true
		}
	default:
		p.errorf(p.pos(v), key, "expected a node name or a list of names, got %s", describe(v))
		e.bad, p.uncertain = true, true
	}
}

// nodeRef reads a node name used as a reference.
func (p *parser) nodeRef(n *yaml.Node, key string) (string, bool) {
	s, ok := p.str(n, key)
	if ok && s == "" {
		p.errorf(p.pos(n), key, "expected a node name, got an empty string")
		return "", false
	}
	return s, ok
}

// step decodes one step and compiles its expressions.
func (p *parser) step(n *yaml.Node, path string, i int) *entry {
	f := p.mapping(n, path, "step", stepKeys)
	if f == nil {
		p.uncertain = true
		return nil
	}
	e := p.newEntry(f, path, i, "")
	if v := f.get("from"); v != nil {
		p.decodeFrom(e, v)
	}
	var ops []string
	for _, k := range f.order {
		if slices.Contains(opKeys, k) {
			ops = append(ops, k)
		}
	}
	switch len(ops) {
	case 0:
		// An unknown key that looks like an operation ("filtr") was
		// already reported with a suggestion; saying the operation is
		// missing too would be noise.
		if !slices.ContainsFunc(f.hints, func(h string) bool { return slices.Contains(opKeys, h) }) {
			p.errorf(f.pos, path, "step needs one of %s", strings.Join(opKeys, ", "))
		}
		p.uncertain = true
	case 1:
	default:
		p.errorf(p.pos(f.keys[ops[1]]), path, "step has several operations (%s); a step does exactly one, so split it into several steps", strings.Join(ops, ", "))
		p.uncertain = true
	}
	// Every operation is decoded so that its own errors are reported too,
	// but only the first one shapes the node.
	for j, op := range ops {
		p.operation(e, op, f.vals[op], sub(path, op), j == 0)
	}
	return e
}

// operation decodes a step's operation, as its spec says. When primary is
// false the results are only checked, not kept.
func (p *parser) operation(e *entry, op string, v *yaml.Node, key string, primary bool) {
	if primary {
		e.node.Kind = Kind(op)
	}
	if spec := specOf(Kind(op)); spec != nil {
		spec.decode(p, e, v, key, primary)
	}
}

// maxDedupeTTL bounds how long ids are remembered: state grows with the
// ids seen within the TTL.
const maxDedupeTTL = 30 * 24 * time.Hour

func (p *parser) dedupe(v *yaml.Node, key string) *Dedupe {
	f := p.mapping(v, key, "dedupe", dedupeKeys)
	if f == nil {
		return nil
	}
	d := &Dedupe{Keep: KeepFirst}
	if x := f.require("id"); x != nil {
		d.ID = p.expr(x, sub(key, "id"), wantAny, "id")
	}
	if x := f.get("time"); x != nil {
		d.Time = p.expr(x, sub(key, "time"), wantAny, "time")
	}
	if x := f.get("keep"); x != nil {
		kkey := sub(key, "keep")
		if s, ok := p.str(x, kkey); ok {
			switch s {
			case KeepFirst, KeepLast:
				d.Keep = s
			default:
				p.errorf(p.pos(x), kkey, "unknown keep %q (want first or last)", s)
			}
		}
	}
	if x := f.require("ttl"); x != nil {
		tkey := sub(key, "ttl")
		if s, ok := p.str(x, tkey); ok {
			ttl, err := time.ParseDuration(s)
			switch {
			case err != nil:
				p.errorf(p.pos(x), tkey, "invalid duration %q: want a Go duration such as 10m or 24h", s)
			case ttl < time.Second || ttl > maxDedupeTTL:
				p.errorf(p.pos(x), tkey, "%s is out of range: want at least 1s and at most 720h", s)
			default:
				d.TTL = ttl
			}
		}
	}
	return d
}

func (p *parser) headers(v *yaml.Node, key string) []HeaderExpr {
	f := p.mapping(v, key, "set_headers", nil)
	if f == nil {
		return nil
	}
	if len(f.order) == 0 {
		p.errorf(f.pos, key, "set_headers needs at least one header")
	}
	var hs []HeaderExpr
	for _, name := range f.order {
		hkey := sub(key, name)
		if name == "" {
			p.errorf(p.pos(f.keys[name]), hkey, "header name must not be empty")
			continue
		}
		hs = append(hs, HeaderExpr{Name: name, Expr: p.expr(f.vals[name], hkey, wantHeader, fmt.Sprintf("header %q", name))})
	}
	// Sorted so the runtime writes headers in a stable order, independent
	// of how the file happens to list them.
	slices.SortFunc(hs, func(a, b HeaderExpr) int { return strings.Compare(a.Name, b.Name) })
	return hs
}

func (p *parser) routes(v *yaml.Node, key string) ([]Route, []ref) {
	items, ok := p.list(v, key)
	if !ok {
		p.uncertain = true
		return nil, nil
	}
	if len(items) == 0 {
		p.errorf(p.pos(v), key, "route needs at least one branch")
		p.uncertain = true
	}
	var routes []Route
	var tos []ref
	for i, it := range items {
		path := index(key, i)
		f := p.mapping(it, path, "route branch", branchKeys)
		if f == nil {
			p.uncertain = true
			continue
		}
		var r Route
		if w := f.get("when"); w != nil {
			r.When = p.expr(w, path+".when", wantBool, "when")
		} else if i < len(items)-1 {
			// A default branch matches everything, so anything after
			// it could never receive a record.
			p.errorf(f.pos, path, "only the last branch may omit \"when\": a branch without it is the default and later branches would never match")
		}
		var to ref
		if t := f.require("to"); t != nil {
			if s, ok := p.nodeRef(t, path+".to"); ok {
				to = ref{s, p.pos(t), path + ".to"}
			}
		}
		if to.name == "" {
			p.uncertain = true
		}
		routes = append(routes, r)
		tos = append(tos, to)
	}
	return routes, tos
}

// checkTopics rejects a sink writing to a topic the pipeline reads, which
// would feed its own output back forever. Several sources may read one
// topic (say, to decode it in two formats); the runtime hands each record
// to all of them.
func (p *parser) checkTopics() {
	readers := map[string]*entry{}
	for _, e := range p.sources {
		if t := e.node.Topic; t != "" && readers[t] == nil {
			readers[t] = e
		}
	}
	for _, e := range p.sinks {
		if src := readers[e.node.Topic]; src != nil {
			p.errorf(e.topic, e.path+".topic", "topic %q is also read by source %q; writing to it would feed the pipeline its own output", e.node.Topic, src.node.Name)
		}
	}
}
