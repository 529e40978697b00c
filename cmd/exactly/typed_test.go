package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/exactly-dev/exactly/registrytest"
)

var updateTyped = flag.Bool("update-typed", false, "rewrite testdata/registry/*.golden")

// checkGoldenText holds got to the golden file at path (rewriting the
// file first when update is set); what says what got is, in the failure.
func checkGoldenText(t *testing.T, what, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s\n%s\nwant (%s)\n%s", what, got, path, want)
	}
}

// TestValidateRegistry: with --registry, validate checks expressions
// against the source's registered Avro schema: a misspelt field is
// reported with the record's fields, a type error with its operands, at
// file:line:col; after a map the value is the map's and stays unchecked.
func TestValidateRegistry(t *testing.T) {
	schema, err := os.ReadFile("../../testdata/registry/orders.avsc")
	if err != nil {
		t.Fatal(err)
	}
	reg := registrytest.New(t) // Apicurio Registry with EXACTLY_TEST_REGISTRY=apicurio
	if _, err := reg.Client.CreateSchema(context.Background(), "orders-value", sr.Schema{Schema: string(schema), Type: sr.TypeAvro}); err != nil {
		t.Fatal(err)
	}
	const file = "../../testdata/registry/typed_errors.yaml"
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"validate", "-c", file, "--instance-id", "x", "--registry", reg.URL}, &stdout, &stderr)
	if exitCode(err) != 2 {
		t.Fatalf("validate --registry exit code = %d (%v), want 2", exitCode(err), err)
	}
	checkGoldenText(t, "validate --registry reports", "../../testdata/registry/typed_errors.golden", strings.TrimSpace(err.Error())+"\n", *updateTyped)

	// Without --registry the same file is valid: checked offline.
	stdout.Reset()
	if err := run(context.Background(), []string{"validate", "-c", file, "--instance-id", "x"}, &stdout, &stderr); err != nil {
		t.Errorf("validate without a registry = %v, want valid", err)
	}
}
