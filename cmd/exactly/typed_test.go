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

// TestValidateRegistry: with --registry, validate checks expressions
// against the source's registered Avro schema: a misspelt field is
// reported with the record's fields, a type error with its operands, at
// file:line:col; after a map the value is the map's and stays unchecked.
func TestValidateRegistry(t *testing.T) {
	schema, err := os.ReadFile("../../testdata/registry/orders.avsc")
	if err != nil {
		t.Fatal(err)
	}
	url := registrytest.URL(t) // Apicurio Registry with EXACTLY_TEST_REGISTRY=apicurio
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateSchema(context.Background(), "orders-value", sr.Schema{Schema: string(schema), Type: sr.TypeAvro}); err != nil {
		t.Fatal(err)
	}
	const file = "../../testdata/registry/typed_errors.yaml"
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"validate", "-c", file, "--instance-id", "x", "--registry", url}, &stdout, &stderr)
	if exitCode(err) != 2 {
		t.Fatalf("validate --registry exit code = %d (%v), want 2", exitCode(err), err)
	}
	got := strings.TrimSpace(err.Error()) + "\n"
	golden := "../../testdata/registry/typed_errors.golden"
	if *updateTyped {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("validate --registry reports\n%s\nwant\n%s", got, want)
	}

	// Without --registry the same file is valid: checked offline.
	stdout.Reset()
	if err := run(context.Background(), []string{"validate", "-c", file, "--instance-id", "x"}, &stdout, &stderr); err != nil {
		t.Errorf("validate without a registry = %v, want valid", err)
	}
}
