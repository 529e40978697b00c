package topology

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata/topology/invalid from the current output")

const testdata = "../testdata/topology"

// TestInvalid checks the exact error output for each broken topology. The
// golden files double as documentation of what users see.
func TestInvalid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata, "invalid", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test files")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			got, err := Load(file)
			if err == nil {
				t.Fatalf("Load(%s) = %+v, want error", file, got)
			}
			if got != nil {
				t.Errorf("Load(%s) returned a topology along with its error", file)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Load(%s) error is %T, want non-empty Errors", file, err)
			}
			for _, e := range errs {
				if e.Pos.File != file || e.Pos.Line < 1 || e.Pos.Col < 1 {
					t.Errorf("Load(%s): error %q has position %+v, want a line and column in the file", file, e, e.Pos)
				}
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			out := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if out != string(want) {
				t.Errorf("Load(%s) errors:\n%s\nwant:\n%s", file, out, want)
			}
		})
	}
}
