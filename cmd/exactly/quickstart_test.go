package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// readmeCommand returns the arguments of the README's first set-up
// command, so this test runs exactly what a new user runs.
func readmeCommand(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "go run ./cmd/exactly "); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatal("README.md has no `go run ./cmd/exactly ...` command")
	return nil
}

// TestQuickstart runs the README's quickstart command in-process and
// compares what it prints with testdata/quickstart/output.golden. Output
// offsets depend on how input partitions interleave, so lines are
// compared without them, sorted.
func TestQuickstart(t *testing.T) {
	args := readmeCommand(t)
	// Paths in the README are relative to the repository root.
	for i, a := range args {
		if strings.HasPrefix(a, "testdata/") || strings.Contains(a, "=testdata/") {
			args[i] = strings.Replace(a, "testdata/", "../../testdata/", 1)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, append(args, "--instance-id", "test", "--http-addr", "127.0.0.1:0"), &stdout, &stderr); err != nil {
		t.Fatalf("run(%q) error: %v\nstderr:\n%s", args, err, stderr.String())
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("output line %q: want topic, partition@offset, key and value separated by tabs", line)
		}
		got = append(got, f[0]+"\t"+f[2]+"\t"+f[3])
	}
	slices.Sort(got)
	golden := filepath.Join("..", "..", "testdata", "quickstart", "output.golden")
	if *update {
		os.WriteFile(golden, []byte(strings.Join(got, "\n")+"\n"), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if g := strings.Join(got, "\n") + "\n"; g != string(want) {
		t.Errorf("quickstart output (sorted, without offsets) =\n%s\nwant\n%s", g, want)
	}
}
