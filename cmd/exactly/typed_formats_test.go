package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/exactly-dev/exactly/registrytest"
)

// TestValidateRegistryProtobufJSONSchema: validate --registry checks the
// expressions of protobuf and json_schema sources against their subjects'
// schemas: a misspelt field (also inside a repeated message) is reported
// with the record's fields, a type error with its operands, at
// file:line:col; what the schema allows passes.
func TestValidateRegistryProtobufJSONSchema(t *testing.T) {
	reg := registrytest.NewFake(t)
	reg.SeedShop(t)
	for _, name := range []string{"typed_protobuf", "typed_json_schema"} {
		t.Run(name, func(t *testing.T) {
			file := "../../testdata/registry/" + name + ".yaml"
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"validate", "-c", file, "--instance-id", "x", "--registry", reg.URL}, &stdout, &stderr)
			if exitCode(err) != 2 {
				t.Fatalf("validate --registry exit code = %d (%v), want 2", exitCode(err), err)
			}
			checkGoldenText(t, "validate --registry reports", "../../testdata/registry/"+name+".golden", strings.TrimSpace(err.Error())+"\n", *updateTyped)
			// Without --registry the same file is valid: checked offline.
			if err := run(context.Background(), []string{"validate", "-c", file, "--instance-id", "x"}, &stdout, &stderr); err != nil {
				t.Errorf("validate without a registry = %v, want valid", err)
			}
		})
	}
}
