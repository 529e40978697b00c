package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateGolden runs `exactly validate` on every broken topology under
// testdata/topology/invalid and compares what it reports with the golden
// error list beside it (written by the topology package's golden test,
// which runs from one directory deeper).
func TestValidateGolden(t *testing.T) {
	files, err := filepath.Glob("../../testdata/topology/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no broken topologies found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			golden, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".golden")
			if err != nil {
				t.Fatal(err)
			}
			want := strings.ReplaceAll(strings.TrimSpace(string(golden)), "../testdata/", "../../testdata/")
			var stdout, stderr bytes.Buffer
			err = run(context.Background(), []string{"validate", "-c", f, "--instance-id", "x"}, &stdout, &stderr)
			if exitCode(err) != 2 {
				t.Fatalf("validate exit code = %d (%v), want 2", exitCode(err), err)
			}
			if got := strings.TrimSpace(err.Error()); got != want {
				t.Errorf("validate -c %s reports\n%s\nwant\n%s", f, got, want)
			}
		})
	}
}

func TestValidateReportsSettingsToo(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"validate", "-c", "../../testdata/topology/invalid/formats.yaml", "--commit-interval", "-1s", "--instance-id", "x"}, &stdout, &stderr)
	for _, want := range []string{"sources[0].format: unknown format \"xml\"", "flag --commit-interval: commit_interval: must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate error = %v, want it to contain %q", err, want)
		}
	}
}

func TestValidateOK(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"validate", "-c", "../../testdata/quickstart/pipeline.yaml", "--instance-id", "x"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("validate quickstart: %v", err)
	}
	if want := `pipeline "quickstart" is valid: 1 sources, 5 steps, 2 sinks`; !strings.Contains(stdout.String(), want) {
		t.Errorf("validate printed %q, want %q", stdout.String(), want)
	}
}
