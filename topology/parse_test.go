package topology

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// minimal is a valid topology that cases below extend or break.
const minimal = `name: t
sources:
  - name: in
    topic: in
sinks:
  - name: out
    topic: out
`

// window is the minimal topology with an aggregate step whose window
// is w, in flow style.
func window(w string) string {
	return minimal + "steps:\n  - name: a\n    aggregate:\n      group_by: key\n      columns: {n: {fn: count}}\n      window: {" + w + "}\n"
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // the error output; empty for a valid topology
	}{
		{"minimal", minimal, ""},
		{"zero commit interval", "commit_interval: 0s\n" + minimal, ""},
		{"largest commit interval", "commit_interval: 1m\n" + minimal, ""},
		{"negative commit interval", "commit_interval: -1s\n" + minimal,
			"t.yaml:1:18: commit_interval: -1s is out of range: want more than 0 and at most 1m, or 0 for the daemon default"},
		{"commit interval without unit", "commit_interval: 100\n" + minimal,
			`t.yaml:1:18: commit_interval: invalid duration "100": want a Go duration such as 100ms or 2s`},
		{"aliases", minimal + "steps:\n  - name: a\n    map: &e value\n  - name: b\n    map: *e\n", ""},
		{"merge keys", "name: t\nsources:\n  - &in {name: in, topic: in, format: bytes}\nsinks:\n  - <<: *in\n    name: out\n    topic: out\n  - <<: [{name: x, topic: x}, {from: in}]\n", ""},
		{"unknown key in a merged mapping", minimal + "  - <<: {nam: x}\n    topic: bad\n",
			"t.yaml:8:5: sinks[1].name: missing required key \"name\"\nt.yaml:8:10: sinks[1].nam: unknown key \"nam\"; did you mean \"name\"?"},
		{"merge of a scalar", minimal + "  - <<: x\n    name: x\n    topic: x\n",
			"t.yaml:8:9: sinks[1]: a merge key (<<) takes a mapping or a list of mappings, got a string"},
		{"self-referencing merge", "name: t\nsources:\n  - &a {name: in, topic: in, <<: *a}\nsinks:\n  - {name: out, topic: out}\n",
			"t.yaml:3:34: sources[0]: merge keys nested too deeply"},
		{"column after multibyte text", minimal + "steps:\n  - name: a\n    filter: 'size(\"日本\") == valu'\n",
			"t.yaml:10:28: steps[0].filter: invalid expression: undeclared reference to 'valu'"},
		{"escaped text keeps the scalar position", minimal + "steps:\n  - name: a\n    filter: \"\\\"x\\\" == valu\"\n",
			"t.yaml:10:13: steps[0].filter: invalid expression: undeclared reference to 'valu'"},
		{"folded text keeps the scalar position", minimal + "steps:\n  - name: a\n    filter: value\n      == valu\n",
			"t.yaml:10:13: steps[0].filter: invalid expression: undeclared reference to 'valu'"},
		{"unquoted map literal", minimal + "steps:\n  - name: a\n    map: {id: value.id}\n",
			"t.yaml:10:10: steps[0].map: expected an expression, got a mapping; quote expressions that start with { or ["},
		{"expression of another type", minimal + "steps:\n  - name: a\n    key: 42\n", ""},
		{"complex key", "? [a]\n: 1\n" + minimal,
			"t.yaml:1:3: keys must be strings, got a list"},
		{"invalid utf-8", "name: t\nsources: \xff\n",
			"t.yaml:2:10: invalid UTF-8"},
		{"control character", "name: t\nsources:\n  - name: \"a\x01\"\n",
			"t.yaml:3:13: control characters are not allowed"},
		{"tab indentation", "name: t\nsources:\n\t- name: a\n",
			"t.yaml:3:1: tabs are not allowed for indentation; indent with spaces"},
		{"tab after a dash", "name: t\nsources:\n  -\tname: a\n",
			"t.yaml:3:4: tabs are not allowed for indentation; indent with spaces"},
		{"tab inside an indented block", "name: t\nsources:\n  - name: a\n  \t topic: a\n",
			"t.yaml:4:3: tabs are not allowed for indentation; indent with spaces"},
		{"reserved character", "name: t\nsources: @x\n",
			"t.yaml:2:1: found character that cannot start any token"},
		{"top-level scalar", "just text\n",
			"t.yaml:1:1: topology must be a mapping, got a string"},
		{"empty from list", minimal + "steps:\n  - name: a\n    from: []\n    map: value\n",
			"t.yaml:10:11: steps[0].from: from needs at least one node name"},
		{"input listed twice", minimal + "steps:\n  - name: a\n    from: [in, in]\n    map: value\n",
			`t.yaml:10:16: steps[0].from[1]: "in" is listed twice`},
		{"sink reads the only source", "name: t\nsources:\n  - {name: a, topic: a}\nsinks:\n  - {name: b, topic: b}\n", ""},
		{"sink without from and several sources", "name: t\nsources:\n  - {name: a, topic: a}\n  - {name: b, topic: b}\nsinks:\n  - {name: c, topic: c}\n",
			"t.yaml:6:5: sinks[0].from: missing required key \"from\": there are several sources, so name the one(s) to read"},
		{"route to itself", minimal + "steps:\n  - name: r\n    route:\n      - {when: 'true', to: r}\n      - {to: out}\n",
			"t.yaml:11:28: steps[0].route[0].to: cycle: r -> r"},
		{"empty header name", minimal + "steps:\n  - name: h\n    set_headers: {'': topic}\n",
			`t.yaml:10:19: steps[0].set_headers[""]: header name must not be empty`},
		{"dotted header name", minimal + "steps:\n  - name: h\n    set_headers: {x.y: 1}\n",
			`t.yaml:10:24: steps[0].set_headers["x.y"]: header "x.y" must be a string or bytes expression, got int`},
		{"empty lists", "name: t\nsources: []\nsinks:\n",
			"t.yaml:2:10: sources: at least one source is required\nt.yaml:3:7: sinks: at least one sink is required"},
		{"negative window", window("tumbling: -1m"),
			"t.yaml:13:26: steps[0].aggregate.window.tumbling: -1m is out of range: want 1ms to 720h"},
		{"zero window", window("tumbling: 0s"),
			"t.yaml:13:26: steps[0].aggregate.window.tumbling: 0s is out of range: want 1ms to 720h"},
		{"window under a millisecond", window("hopping: {size: 1m, advance: 500us}"),
			"t.yaml:13:45: steps[0].aggregate.window.hopping.advance: 500us is out of range: want 1ms to 720h"},
		{"session gap over 30 days", window("session: {gap: 721h}"),
			"t.yaml:13:31: steps[0].aggregate.window.session.gap: 721h is out of range: want 1ms to 720h"},
		{"negative grace", window("tumbling: 1ms, grace: -1s"),
			"t.yaml:13:38: steps[0].aggregate.window.grace: -1s is out of range: want 0 to 720h"},
		{"shortest window, no grace", window("tumbling: 1ms, grace: 0s"), ""},
		{"trailing document marker", minimal + "---\n", ""},
		{"several documents", minimal + "---\n" + minimal,
			"t.yaml:8:1: a topology file holds one YAML document, found another"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("t.yaml", []byte(tt.yaml))
			if tt.want == "" {
				if err != nil || got == nil {
					t.Fatalf("Parse(%q) = %v, %v, want a topology", tt.yaml, got, err)
				}
				checkGraph(t, got)
				return
			}
			if err == nil || got != nil {
				t.Fatalf("Parse(%q) = %v, %v, want error %q", tt.yaml, got, err, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%q) = _, %q, want %q", tt.yaml, err, tt.want)
			}
		})
	}
}

func TestLoadUnreadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	got, err := Load(path)
	if err == nil || got != nil {
		t.Fatalf("Load(%s) = %v, %v, want an error", path, got, err)
	}
	if var_errs := (Errors{}); errors.As(err, &var_errs) {
		t.Errorf("Load(%s) error is Errors, want a plain error", path)
	}
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Load(%s) = _, %q, want a not-exist error naming the path", path, err)
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Pos{"f.yaml", 3, 4}, "steps[0].map", "bad"}, "f.yaml:3:4: steps[0].map: bad"},
		{&Error{Pos{"f.yaml", 3, 1}, "", "bad"}, "f.yaml:3:1: bad"},
		{&Error{Pos{"f.yaml", 0, 0}, "", "bad"}, "f.yaml: bad"},
		{&Error{Pos{"", 2, 5}, "name", "bad"}, "2:5: name: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
	es := Errors{
		{Pos{"f", 9, 1}, "b", "x"},
		{Pos{"f", 2, 7}, "b", "x"},
		{Pos{"f", 2, 7}, "a", "x"},
		{Pos{"f", 2, 3}, "z", "x"},
		{Pos{"f", 2, 3}, "z", "x"},
	}.sort()
	want := "f:2:3: z: x\nf:2:7: a: x\nf:2:7: b: x\nf:9:1: b: x"
	if got := es.Error(); got != want {
		t.Errorf("sorted Errors = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(es, &e) || e != es[0] {
		t.Errorf("errors.As(Errors, *Error) = %v, want the first error", e)
	}
}

func TestNewEnv(t *testing.T) {
	env, err := NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	// Every variable and library the documentation promises.
	for _, expr := range []string{
		`key == value && headers["a"] == topic && partition + offset > 0`,
		`timestamp > timestamp("2020-01-01T00:00:00Z") && timestamp.getHours() < 24`,
		`1 < 1.5 && 2u > 1`,
		`"a,b".split(",").size() == 2 && "x".upperAscii() == "X"`,
		`math.greatest(1, 2) == 2`,
		`base64.encode(b"x") == "eA=="`,
		`lists.range(3).reverse() == [2, 1, 0]`,
	} {
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			t.Errorf("Compile(%q): %v", expr, iss.Err())
			continue
		}
		if _, err := env.Program(ast); err != nil {
			t.Errorf("Program(%q): %v", expr, err)
		}
	}
}

// TestParseConcurrent shares the CEL environment between goroutines; the
// race detector checks that this is safe.
func TestParseConcurrent(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata, "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		for _, f := range files {
			wg.Go(func() { Load(f) })
		}
	}
	wg.Wait()
}
