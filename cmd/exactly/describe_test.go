package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestDescribeMermaid runs `exactly describe` on the quickstart pipeline
// and compares its flowchart with the golden file the topology package's
// describe test keeps.
func TestDescribeMermaid(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"describe", "-c", "../../testdata/quickstart/pipeline.yaml", "--format", "mermaid"}, &out, &errb)
	if err != nil {
		t.Fatalf("describe quickstart: %v\nstderr:\n%s", err, errb.String())
	}
	want, err := os.ReadFile("../../testdata/describe/quickstart.mmd")
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("describe --format mermaid printed\n%s\nwant\n%s", out.String(), want)
	}
}

func TestDescribeText(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"describe", "-c", "../../testdata/aggregate/category_revenue.yaml"}, &out, &errb); err != nil {
		t.Fatalf("describe category_revenue: %v", err)
	}
	want, err := os.ReadFile("../../testdata/describe/category_revenue.txt")
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("describe printed\n%s\nwant\n%s", out.String(), want)
	}
}

func TestDescribeUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"describe"}, "missing -c pipeline.yaml"},
		{[]string{"describe", "-c", "../../testdata/quickstart/pipeline.yaml", "--format", "dot"}, `flag --format: unknown format "dot" (want text or mermaid)`},
		{[]string{"describe", "-c", "../../testdata/topology/invalid/formats.yaml"}, `sources[0].format: unknown format "xml"`},
		{[]string{"describe", "-c", "no-such-file.yaml"}, "no-such-file.yaml"},
		{[]string{"describe", "--bogus"}, "unknown flag: --bogus"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), tc.args, &out, &errb)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v (exit code %d), want exit code 2 and an error containing %q", tc.args, err, exitCode(err), tc.want)
		}
		if out.Len() > 0 {
			t.Errorf("run(%q) printed %q on a usage error", tc.args, out.String())
		}
	}
}

func TestDescribeHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"help", "describe"}, &out, &errb); err != nil {
		t.Fatalf("help describe: %v", err)
	}
	if !strings.Contains(errb.String(), "--format") {
		t.Errorf("help describe printed %q, want the --format flag", errb.String())
	}
}
