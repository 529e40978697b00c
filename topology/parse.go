package topology

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"gopkg.in/yaml.v3"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/internal/suggest"
	"github.com/exactly-dev/exactly/internal/yamlerr"
)

// Limits on a pipeline file. Validating is linear in the file's size, but
// the YAML tree of a file takes about 25 times its size in memory, and
// each step's expressions take a tenth of a millisecond or more to
// compile. Real pipelines are far below both limits; a file above them is
// almost always a generator gone wrong, and failing at once says so where
// working on it for minutes and gigabytes would not.
const (
	// MaxFileBytes is the largest pipeline file accepted: 4 MiB.
	MaxFileBytes = 4 << 20
	// MaxNodes is the most sources, steps and sinks a pipeline may have,
	// together.
	MaxNodes = 50_000
)

// Load reads the topology file at path and parses it. A file that cannot be
// read is a plain error naming the path; problems in its content are Errors.
func Load(path string) (*Topology, error) {
	return LoadContext(context.Background(), path)
}

// LoadContext is [Load], stopping with ctx's error once ctx is done.
func LoadContext(ctx context.Context, path string) (*Topology, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	defer f.Close()
	// Read no more than a byte past the limit, which is enough to say
	// where the file passes it; the size itself comes from the file
	// system.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	size := int64(len(data))
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > size {
		size = fi.Size()
	}
	return parse(ctx, path, data, size)
}

// Parse parses and validates a topology. file is used only in positions.
// It returns either a valid topology or a non-empty Errors holding every
// problem found, sorted by position.
func Parse(file string, data []byte) (*Topology, error) {
	return ParseContext(context.Background(), file, data)
}

// ParseContext is [Parse], stopping with ctx's error once ctx is done.
func ParseContext(ctx context.Context, file string, data []byte) (*Topology, error) {
	return parse(ctx, file, data, int64(len(data)))
}

// parse parses data, the first bytes of a file of size bytes.
func parse(ctx context.Context, file string, data []byte, size int64) (*Topology, error) {
	return parseWith(ctx, file, data, size, format.Standard())
}

// parseWith is parse with the formats of reg.
func parseWith(ctx context.Context, file string, data []byte, size int64, reg *format.Registry) (*Topology, error) {
	p := &parser{file: file, formats: reg}
	env, err := sharedEnv()
	if err != nil {
		// Not the user's fault, but still reported as Errors so callers
		// handle one error type.
		p.errorf(Pos{File: file}, "", "cannot create expression environment: %v", err)
		return nil, p.errs
	}
	p.env = env
	if size > MaxFileBytes {
		p.errorf(p.offsetPos(data, min(len(data), MaxFileBytes)), "",
			"the file passes the size limit of %s here (it is %s); split the pipeline into several pipelines connected by topics",
			mib(MaxFileBytes), mib(size))
		return nil, p.errs
	}
	t := p.parse(ctx, data)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(p.errs) > 0 {
		return nil, p.errs.sort()
	}
	t.Plan = plan(t)
	return t, nil
}

// mib formats a size in MiB.
func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// parser holds the state of one Parse call.
type parser struct {
	costLimit uint64     // CEL cost limit of every program, 0: none
	dlq       *yaml.Node // the dead_letter_topic value, when set
	lateDLQ   []keyed    // windows with late: dead_letter
	lateTo    []lateRef  // windows with late: {to: SINK}
	file      string
	lines     []string // the file's lines, to map CEL error columns onto the file
	env       *cel.Env
	errs      Errors
	formats   *format.Registry // format names and options are checked here

	sources, steps, sinks []*entry // decoded nodes, file order within each list
	nSources              int      // list length, including items that failed to decode

	// uncertain is set when part of the graph could not be decoded or
	// resolved (an unknown node name, a step that is not a mapping...).
	// Completeness checks such as "output goes nowhere" are then skipped:
	// the missing piece is most likely what would have consumed it, and
	// complaining would only bury the real problem.
	uncertain bool

	// tablesUsed are the table sources and aggregate steps some join
	// reads.
	tablesUsed map[*entry]bool

	// linked holds every edge from -> to once, for constant-time checks.
	linked map[[2]*entry]bool
	// graphOps counts the node and edge visits of the graph pass, for a
	// test that checks the pass is linear in the size of the graph.
	graphOps int
}

func (p *parser) parse(ctx context.Context, data []byte) *Topology {
	p.lines = strings.Split(string(data), "\n")
	// yaml.v3 reports bad encoding without a position; find it ourselves.
	if !utf8.Valid(data) {
		p.errorf(p.offsetPos(data, yamlerr.InvalidUTF8(data)), "", "invalid UTF-8")
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(Pos{File: p.file, Line: 1, Col: 1}, "", "empty topology file")
		} else {
			p.yamlError(data, err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil && len(extra.Content) > 0 && !isNull(extra.Content[0]):
		// A trailing "---" with nothing after it is harmless.
		p.errorf(p.pos(&extra), "", "a topology file holds one YAML document, found another")
	case err != nil && !errors.Is(err, io.EOF):
		p.yamlError(data, err)
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		p.errorf(p.pos(&doc), "", "empty topology file")
		return nil
	}
	return p.topology(ctx, doc.Content[0])
}

// yamlError turns a yaml.v3 syntax error into an Error.
func (p *parser) yamlError(data []byte, err error) {
	e := yamlerr.Locate(data, err)
	p.errorf(Pos{File: p.file, Line: e.Line, Col: e.Col}, "", "%s", e.Msg)
}

// offsetPos converts a byte offset in data into a position; a negative
// offset gives line 1, column 1.
func (p *parser) offsetPos(data []byte, off int) Pos {
	line, col := yamlerr.Offset(data, off)
	return Pos{File: p.file, Line: line, Col: col}
}

// pos is the position of a YAML node. For an alias it is the alias itself,
// the place the user looks at, not its anchor.
func (p *parser) pos(n *yaml.Node) Pos {
	return Pos{File: p.file, Line: n.Line, Col: n.Column}
}

// deref follows aliases to the node they stand for. yaml.v3 rejects
// anchors that contain themselves, but bound the walk anyway.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; i < 100 && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the kind of a YAML value for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		}
		return "a string"
	}
	return "nothing"
}

// sub is the YAML path of key inside the mapping at path. Keys that would
// make the path ambiguous (header names are free-form) are quoted.
func sub(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

var plainKey = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// fields is a decoded YAML mapping whose keys were checked.
type fields struct {
	p     *parser
	path  string
	pos   Pos
	order []string              // known keys in file order
	keys  map[string]*yaml.Node // key nodes, for positions
	vals  map[string]*yaml.Node
	hints []string // keys suggested for unknown keys
}

// mapping checks that n is a mapping and that every key is a string that
// appears once and, when known is not nil, is one of known. what names the
// mapping in "must be a mapping" messages. It returns nil, having reported
// why, when n is not a mapping.
func (p *parser) mapping(n *yaml.Node, path, what string, known []string) *fields {
	return p.mappingDepth(n, path, what, known, 0)
}

// Deepest chain of merge keys (<<: *base whose base merges another...)
// followed. yaml.v3 lets an anchor contain an alias to itself, so the
// chain must be cut somewhere.
const maxMergeDepth = 8

func (p *parser) mappingDepth(n *yaml.Node, path, what string, known []string, depth int) *fields {
	m := deref(n)
	if m.Kind != yaml.MappingNode {
		p.errorf(p.pos(n), path, "%s must be a mapping, got %s", what, describe(n))
		return nil
	}
	f := &fields{p: p, path: path, pos: p.pos(n), keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		dk := deref(k)
		if dk.Kind != yaml.ScalarNode {
			p.errorf(p.pos(k), path, "keys must be strings, got %s", describe(k))
			continue
		}
		if dk.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		name := dk.Value
		if first, dup := f.keys[name]; dup {
			p.errorf(p.pos(k), sub(path, name), "duplicate key %q, first defined at line %d", name, first.Line)
			continue
		}
		// Unknown keys are recorded too, so that repeating one is
		// reported as a duplicate rather than as unknown twice.
		f.keys[name] = k
		if known != nil && !slices.Contains(known, name) {
			hint := suggest.Closest(name, known)
			msg := fmt.Sprintf("unknown key %q", name)
			if hint != "" {
				msg += fmt.Sprintf("; did you mean %q?", hint)
				f.hints = append(f.hints, hint)
			}
			p.errorf(p.pos(k), sub(path, name), "%s", msg)
			continue
		}
		f.vals[name] = v
		f.order = append(f.order, name)
	}
	for _, v := range merges {
		p.merge(f, v, what, known, depth)
	}
	return f
}

// merge applies a YAML merge key (<<: *defaults): the keys of the merged
// mappings that f does not set itself, earlier mappings first, as the YAML
// merge key specification says.
func (p *parser) merge(f *fields, v *yaml.Node, what string, known []string, depth int) {
	if depth >= maxMergeDepth {
		p.errorf(p.pos(v), f.path, "merge keys nested too deeply")
		return
	}
	items := []*yaml.Node{v}
	if d := deref(v); d.Kind == yaml.SequenceNode {
		items = d.Content
	}
	for _, it := range items {
		if deref(it).Kind != yaml.MappingNode {
			p.errorf(p.pos(it), f.path, "a merge key (<<) takes a mapping or a list of mappings, got %s", describe(it))
			continue
		}
		mf := p.mappingDepth(it, f.path, what, known, depth+1)
		f.hints = append(f.hints, mf.hints...)
		for _, name := range mf.order {
			if _, set := f.keys[name]; set {
				continue
			}
			f.keys[name] = mf.keys[name]
			f.vals[name] = mf.vals[name]
			f.order = append(f.order, name)
		}
	}
}

// get returns the value of key, or nil when absent.
func (f *fields) get(key string) *yaml.Node { return f.vals[key] }

// require returns the value of key, reporting it at the mapping when absent.
func (f *fields) require(key string) *yaml.Node {
	v := f.vals[key]
	if v == nil {
		f.p.errorf(f.pos, sub(f.path, key), "missing required key %q", key)
	}
	return v
}

// str returns a scalar's text. Numbers and booleans are accepted as their
// text: a topic named 2024 or the expression true are legitimate.
func (p *parser) str(n *yaml.Node, key string) (string, bool) {
	d := deref(n)
	if d.Kind != yaml.ScalarNode || d.ShortTag() == "!!null" {
		p.errorf(p.pos(n), key, "expected a string, got %s", describe(n))
		return "", false
	}
	return d.Value, true
}

// boolean returns a YAML bool (true or false).
func (p *parser) boolean(n *yaml.Node, key string) bool {
	d := deref(n)
	if d.Kind == yaml.ScalarNode && d.ShortTag() == "!!bool" {
		var b bool
		if d.Decode(&b) == nil {
			return b
		}
	}
	p.errorf(p.pos(n), key, "expected true or false, got %s", describe(n))
	return false
}

// list returns a sequence's items; null counts as an empty list.
func (p *parser) list(n *yaml.Node, key string) ([]*yaml.Node, bool) {
	d := deref(n)
	switch {
	case d.Kind == yaml.SequenceNode:
		return d.Content, true
	case isNull(d):
		return nil, true
	}
	p.errorf(p.pos(n), key, "expected a list, got %s", describe(n))
	return nil, false
}
