package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exactly-dev/exactly/broker"
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

// Co-partitioning: offline, validate names the topics that need one
// partition count; with --brokers it compares their counts and fails
// naming both topics, both counts and the fix; run refuses to start the
// same pipeline, before it creates anything.
func TestValidateCoPartitioning(t *testing.T) {
	const pipeline = "../../testdata/join/enrich.yaml"
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"validate", "-c", pipeline, "--instance-id", "x"}, &stdout, &stderr); err != nil {
		t.Fatalf("validate offline: %v", err)
	}
	if want := "co-partitioned (one partition count): orders, customers (checked at run; pass --brokers to check now)"; !strings.Contains(stdout.String(), want) {
		t.Errorf("validate offline printed %q, want %q", stdout.String(), want)
	}

	b, err := broker.Start(broker.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addrs := strings.Join(b.Addrs(), ",")
	if err := broker.CreateTopics(ctx, b.Addrs(), 3, "orders", "out"); err != nil {
		t.Fatal(err)
	}
	if err := broker.CreateTopics(ctx, b.Addrs(), 4, "customers"); err != nil {
		t.Fatal(err)
	}
	want := "join step with-customer looks up records of partition p of orders in partition p of table customers (topic customers), " +
		"but orders has 3 partitions and customers has 4: insert a step `key: key` just before with-customer"
	stdout.Reset()
	err = run(ctx, []string{"validate", "-c", pipeline, "--brokers", addrs, "--instance-id", "x"}, &stdout, &stderr)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), want) {
		t.Errorf("validate --brokers with 3 and 4 partitions = %v (exit %d), want exit 2 and %q", err, exitCode(err), want)
	}
	err = run(ctx, []string{"run", "-c", pipeline, "--brokers", addrs, "--instance-id", "x", "--http-addr", ""}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("run with 3 and 4 partitions = %v, want %q", err, want)
	}

	// The suggested fix passes.
	fixed, err := os.ReadFile(pipeline)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "fixed.yaml")
	if err := os.WriteFile(p, []byte(strings.Replace(string(fixed), "  - name: with-customer\n", "  - {name: rekey, key: key}\n  - name: with-customer\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if err := run(ctx, []string{"validate", "-c", p, "--brokers", addrs, "--instance-id", "x"}, &stdout, &stderr); err != nil {
		t.Errorf("validate --brokers with the key step: %v", err)
	}
	if want := "enrich-with-customer-repartition, customers (checked on the brokers: equal)"; !strings.Contains(stdout.String(), want) {
		t.Errorf("validate --brokers printed %q, want %q", stdout.String(), want)
	}

	// A missing source topic is reported too.
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(fixed), "topic: orders", "topic: no-orders")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"validate", "-c", p, "--brokers", addrs, "--instance-id", "x"}, &stdout, &stderr); exitCode(err) != 2 || !strings.Contains(err.Error(), "source topic no-orders does not exist") {
		t.Errorf("validate --brokers without the source topic = %v, want exit 2 naming the missing topic", err)
	}
}
