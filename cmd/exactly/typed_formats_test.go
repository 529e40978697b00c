package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// TestValidateRegistryProtobufJSONSchema: validate --registry checks the
// expressions of protobuf and json_schema sources against their subjects'
// schemas: a misspelt field (also inside a repeated message) is reported
// with the record's fields, a type error with its operands, at
// file:line:col; what the schema allows passes.
func TestValidateRegistryProtobufJSONSchema(t *testing.T) {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	reg := srfake.New()
	defer reg.Close()
	reg.SeedSchema("orders-value", 1, 1, sr.Schema{Type: sr.TypeProtobuf, Schema: read("../../format/testdata/registry/shop.proto")})
	reg.SeedSchema("orders-json-value", 1, 2, sr.Schema{Type: sr.TypeJSON, Schema: read("../../format/testdata/registry/order.schema.json")})
	for _, name := range []string{"typed_protobuf", "typed_json_schema"} {
		t.Run(name, func(t *testing.T) {
			file := "../../testdata/registry/" + name + ".yaml"
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"validate", "-c", file, "--instance-id", "x", "--registry", reg.URL()}, &stdout, &stderr)
			if exitCode(err) != 2 {
				t.Fatalf("validate --registry exit code = %d (%v), want 2", exitCode(err), err)
			}
			got := strings.TrimSpace(err.Error()) + "\n"
			golden := "../../testdata/registry/" + name + ".golden"
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
			if err := run(context.Background(), []string{"validate", "-c", file, "--instance-id", "x"}, &stdout, &stderr); err != nil {
				t.Errorf("validate without a registry = %v, want valid", err)
			}
		})
	}
}
