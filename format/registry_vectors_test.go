package format

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// The fixtures of the protobuf and json_schema tests: the schemas under
// testdata/registry and records Confluent's Python serializers wrote with
// them (vectors.json, made by gen.py there).

// srVector is one record of testdata/registry/vectors.json.
type srVector struct {
	Name   string `json:"name"`
	Format string `json:"format"`
	Hex    string `json:"hex"`
}

func loadVectors(t testing.TB) map[string][]byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "registry", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []srVector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, v := range vs {
		b, err := hex.DecodeString(v.Hex)
		if err != nil {
			t.Fatalf("vector %s: %v", v.Name, err)
		}
		out[v.Name] = b
	}
	return out
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "registry", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The ids and subjects gen.py's mock registry gave the schemas.
const (
	shopProtoID   = 1
	orderJSONID   = 2
	shopSubject   = "orders-value"
	orderJSONSubj = "orders-json-value"
)

// newRegistryFixture returns a Schemas over an in-memory registry holding the
// test schemas under the ids gen.py's records carry.
func newRegistryFixture(t testing.TB) (*Schemas, *srfake.Registry) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	reg.SeedSchema(shopSubject, 1, shopProtoID, sr.Schema{Schema: readTestdata(t, "shop.proto"), Type: sr.TypeProtobuf})
	reg.SeedSchema(orderJSONSubj, 1, orderJSONID, sr.Schema{Schema: readTestdata(t, "order.schema.json"), Type: sr.TypeJSON})
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	s := NewSchemas(cl, nil)
	t.Cleanup(s.Close)
	return s, reg
}

// badInput is a record a codec must refuse, and how: the error's class
// (what on_error routes by), the sentinel it wraps and a text it says.
type badInput struct {
	name  string
	in    []byte
	class string
	is    error
	text  string
}

// checkBadInput decodes each input as a record of topic with c, one
// subtest each, and holds the error to what its case says.
func checkBadInput(t *testing.T, c Codec, topic string, tests []badInput) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := c.Decode(topic, NoHeaders, tt.in)
			if err == nil {
				t.Fatalf("Decode(%x) = %v, want an error", tt.in, v)
			}
			if got := Class(err); got != tt.class {
				t.Errorf("Class(%v) = %q, want %q", err, got, tt.class)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not say %q", err, tt.text)
			}
		})
	}
}

// newCodec is the standard codec name over the registry cache s, failing
// the test if it cannot be made.
func newCodec(t testing.TB, name string, s *Schemas, part Part, opts Options) Codec {
	t.Helper()
	c, err := Standard().New(name, part, opts, Deps{Schemas: s})
	if err != nil {
		t.Fatalf("New(%s, %v) error: %v", name, opts, err)
	}
	return c
}
