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
