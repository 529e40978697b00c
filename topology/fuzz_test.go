package topology

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzParse checks that Parse never panics and returns exactly one of a
// topology and an error, and that what it returns is coherent.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(testdata, "*", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := Parse("fuzz.yaml", data)
		if (top == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v, want exactly one of a topology and an error", top, err)
		}
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Parse error is %T %q, want non-empty Errors", err, err)
			}
			for _, e := range errs {
				if e.Msg == "" || e.Pos.File != "fuzz.yaml" {
					t.Errorf("Parse error %#v lacks a message or a file", e)
				}
			}
			return
		}
		checkGraph(t, top)
	})
}

// checkGraph checks the invariants the runtime relies on.
func checkGraph(t *testing.T, top *Topology) {
	t.Helper()
	all := slices.Concat(top.Sources, top.Steps, top.Sinks)
	if len(top.Sources) == 0 || len(top.Sinks) == 0 {
		t.Errorf("topology has %d sources and %d sinks", len(top.Sources), len(top.Sinks))
	}
	placed := map[*Node]bool{}
	for _, n := range top.Sources {
		placed[n] = true
	}
	for _, n := range top.Steps {
		for _, in := range n.Inputs {
			if !placed[in] {
				t.Errorf("step %s comes before its input %s", n.Name, in.Name)
			}
		}
		placed[n] = true
	}
	for _, n := range all {
		if n.Name == "" {
			t.Errorf("node without a name: %+v", n)
		}
		for _, o := range n.Outputs {
			if !slices.Contains(all, o) || !slices.Contains(o.Inputs, n) {
				t.Errorf("%s -> %s is not mirrored in the inputs", n.Name, o.Name)
			}
		}
		for _, in := range n.Inputs {
			if !slices.Contains(in.Outputs, n) {
				t.Errorf("%s <- %s is not mirrored in the outputs", n.Name, in.Name)
			}
		}
		for _, r := range n.Routes {
			if r.To == nil {
				t.Errorf("route step %s has a branch without target", n.Name)
			}
		}
	}
}
