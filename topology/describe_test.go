package topology

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// describeGolden is where the golden descriptions live, one .txt and one
// .mmd per valid pipeline under testdata.
const describeGolden = "../testdata/describe"

// describePipelines returns every valid pipeline under testdata.
func describePipelines(t *testing.T) []string {
	t.Helper()
	valid, err := filepath.Glob(filepath.Join(testdata, "valid", "*.yaml"))
	if err != nil || len(valid) == 0 {
		t.Fatalf("no valid topologies found: %v", err)
	}
	return append([]string{
		"../testdata/quickstart/pipeline.yaml",
		"../testdata/aggregate/user_totals.yaml",
		"../testdata/aggregate/category_revenue.yaml",
	}, valid...)
}

// TestDescribe compares Describe and DescribeMermaid of every valid
// pipeline with the golden files under testdata/describe; go test
// -update rewrites them. The golden files double as examples of what
// exactly describe prints.
func TestDescribe(t *testing.T) {
	formats := []struct {
		ext      string
		describe func(io.Writer, *Topology) error
	}{
		{".txt", Describe},
		{".mmd", DescribeMermaid},
	}
	names := map[string]string{}
	for _, file := range describePipelines(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		if name == "pipeline" {
			name = filepath.Base(filepath.Dir(file))
		}
		if other, dup := names[name]; dup {
			t.Fatalf("%s and %s would share the golden name %s", other, file, name)
		}
		names[name] = file
		topo, err := Load(file)
		if err != nil {
			t.Fatalf("Load(%s): %v", file, err)
		}
		for _, f := range formats {
			t.Run(name+f.ext, func(t *testing.T) {
				var buf bytes.Buffer
				if err := f.describe(&buf, topo); err != nil {
					t.Fatalf("describe %s: %v", file, err)
				}
				var again bytes.Buffer
				if err := f.describe(&again, topo); err != nil || again.String() != buf.String() {
					t.Fatalf("describe %s twice gave different output (err %v)", file, err)
				}
				golden := filepath.Join(describeGolden, name+f.ext)
				if *update {
					if err := os.MkdirAll(describeGolden, 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if got := buf.String(); got != string(want) {
					t.Errorf("describe %s =\n%s\nwant\n%s", file, got, want)
				}
			})
		}
	}
}

func TestMermaidLabel(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"filter: paid"}, `"filter: paid"`},
		{[]string{"source: a", "topic: b"}, `"source: a<br>topic: b"`},
		{[]string{`when "vip" in headers`}, `"when #quot;vip#quot; in headers"`},
		{[]string{"when a >= 1 && b < 2"}, `"when a #gt;= 1 #amp;#amp; b #lt; 2"`},
		{[]string{"#quot; | `x`"}, `"#35;quot; #124; #96;x#96;"`},
		{[]string{"a\n  .b(\tc )"}, `"a .b( c )"`},
	} {
		if got := mermaidLabel(tc.in...); got != tc.want {
			t.Errorf("mermaidLabel(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestDescribeWriteError(t *testing.T) {
	topo, err := Load("../testdata/quickstart/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := Describe(failWriter{}, topo); err != os.ErrClosed {
		t.Errorf("Describe to a failing writer = %v, want %v", err, os.ErrClosed)
	}
	if err := DescribeMermaid(failWriter{}, topo); err != os.ErrClosed {
		t.Errorf("DescribeMermaid to a failing writer = %v, want %v", err, os.ErrClosed)
	}
}

// TestDescribeCorners covers what no pipeline under testdata has: a route
// into aggregate steps (through their repartition topics), each reason to
// repartition a group_by of key, a multi-line route condition, special
// characters in Mermaid labels and a node named like a Mermaid keyword.
func TestDescribeCorners(t *testing.T) {
	const yaml = `name: corner
sources:
  - {name: a, topic: topic-a}
  - {name: b, topic: topic-b}
steps:
  - name: end
    from: a
    route:
      - when: |
          value.s == "a|b" &&
            value.t != "#quot;" ||
          value.u < "<x>"
        to: rekey
      - when: 'value.c == "a\"b"'
        to: by-key
      - to: merged
  - name: rekey
    key: value.user
  - name: by-key
    from: rekey
    aggregate: {group_by: key, columns: {n: {fn: count}}}
  - name: merged
    from: b
    aggregate: {group_by: key, columns: {n: {fn: count}}}
sinks:
  - {name: out1, topic: out1, from: by-key}
  - {name: out2, topic: out2, from: merged}
`
	topo, err := Parse("corner.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	var text, mmd bytes.Buffer
	if err := Describe(&text, topo); err != nil {
		t.Fatal(err)
	}
	if err := DescribeMermaid(&mmd, topo); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\n      - when: |\n          value.s == \"a|b\" &&\n            value.t != \"#quot;\" ||\n          value.u < \"<x>\"\n        to: rekey\n",
		"input: repartitioned by group through corner-by-key-repartition (the record key changes upstream)",
		"input: repartitioned by group through corner-merged-repartition (records come from topics topic-a, topic-b)",
		"partitions: max of source partitions (topic-a, topic-b)",
		"  end -> rekey (when value.s == \"a|b\" && value.t != \"#quot;\" || value.u < \"<x>\")\n",
		"  end -> corner-by-key-repartition -> by-key (when value.c == \"a\\\"b\")\n",
		"  rekey -> corner-by-key-repartition -> by-key\n",
		"  b -> corner-merged-repartition -> merged\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("Describe(corner) =\n%s\nwant it to contain\n%s", text.String(), want)
		}
	}
	for _, want := range []string{
		"  step0{\"route: end\"}\n",
		"  step0 -->|\"when value.s == #quot;a#124;b#quot; #amp;#amp; value.t != #quot;#35;quot;#quot; #124;#124; value.u #lt; #quot;#lt;x#gt;#quot;\"| step1\n",
		"  step0 -->|\"when value.c == #quot;a\\#quot;b#quot;\"| repartition2\n",
		"  step0 -->|\"default\"| repartition3\n",
		"  step1 --> repartition2\n  repartition2 --> step2\n",
		"  step2 -.- store2\n",
		"  class repartition2,store2,repartition3,store3 internal\n",
	} {
		if !strings.Contains(mmd.String(), want) {
			t.Errorf("DescribeMermaid(corner) =\n%s\nwant it to contain\n%s", mmd.String(), want)
		}
	}
}

func TestDescribeGuarantee(t *testing.T) {
	for _, tc := range []struct {
		guarantee string
		want      string
	}{
		{"", "guarantee: exactly_once\ncommit interval: 2s\ntransactional id: g-<instance id>\n"},
		{"guarantee: at_least_once\n", "guarantee: at_least_once\ncommit interval: 2s\ntransactional id: none (at_least_once runs without transactions)\n"},
		{"guarantee: at_most_once\n", "guarantee: at_most_once\ncommit interval: 2s\ntransactional id: none (at_most_once runs without transactions)\n"},
	} {
		yaml := "name: g\n" + tc.guarantee + "commit_interval: 2s\nsources: [{name: in, topic: in}]\nsinks: [{name: out, topic: out}]\n"
		topo, err := Parse("g.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := Describe(&buf, topo); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("Describe(%q) =\n%s\nwant it to contain\n%s", yaml, buf.String(), tc.want)
		}
	}
}
