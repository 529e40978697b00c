package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/processor"
	"github.com/exactly-dev/exactly/registrytest"
	"github.com/exactly-dev/exactly/topology"
)

// TestSinkSchemaIncompatible: a sink schema the registry refuses under
// the subject's compatibility level stops the start, naming the subject
// and the registry's reason, before any record is read. Only a real
// registry checks compatibility (srfake's check is a stub), so this runs
// with EXACTLY_TEST_REGISTRY=apicurio (CI does).
func TestSinkSchemaIncompatible(t *testing.T) {
	if !registrytest.Real() {
		t.Skip("srfake accepts every schema; set EXACTLY_TEST_REGISTRY=apicurio")
	}
	url := registrytest.URL(t) // the first call may build the registry: before any deadline starts
	const v1 = `{"type":"record","name":"Out","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}]}`
	for _, tc := range []struct {
		name   string
		level  sr.CompatibilityLevel
		schema string
	}{
		// New readers cannot read old records: they lack the field and
		// the reader schema gives it no default.
		{"backward-added-field", sr.CompatBackward, `{"type":"record","name":"Out","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"extra","type":"string"}]}`},
		// Old readers cannot read new records: a field they need has
		// no default and is gone.
		{"forward-removed-field", sr.CompatForward, `{"type":"record","name":"Out","fields":[{"name":"id","type":"long"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			in, out := "compat-in-"+tc.name, "compat-out-"+tc.name
			addr := testBroker(t, 1, in, out)
			cl, err := sr.NewClient(sr.URLs(url))
			if err != nil {
				t.Fatal(err)
			}
			subject := out + "-value"
			if _, err := cl.CreateSchema(ctx, subject, sr.Schema{Schema: v1, Type: sr.TypeAvro}); err != nil {
				t.Fatal(err)
			}
			for _, r := range cl.SetCompatibility(ctx, sr.SetCompatibility{Level: tc.level}, subject) {
				if r.Err != nil {
					t.Fatal(r.Err)
				}
			}
			yaml := "name: compat-" + tc.name + "\nsources:\n  - {name: in, topic: " + in + "}\nsinks:\n  - name: out\n    topic: " + out +
				"\n    format: {name: avro, schema: '" + tc.schema + "'}\n"
			topo, err := topology.Parse("compat.yaml", []byte(yaml))
			if err != nil {
				t.Fatal(err)
			}
			schemas := format.NewSchemas(cl, nil)
			defer schemas.Close()
			p, err := processor.New(topo, processor.Config{Brokers: []string{addr}, ClientID: "test", InstanceID: "a", Formats: format.Deps{Schemas: schemas},
				CommitInterval: 50 * time.Millisecond, TransactionTimeout: 5 * time.Second, SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = p.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), "registering the avro schema under subject "+subject) || ctx.Err() != nil {
				t.Fatalf("Run() = %v, want a start-up error naming subject %s", err, subject)
			}
			t.Logf("Run() = %v", err)
			// Nothing was registered: the subject still has v1 only.
			vs, err := cl.SubjectVersions(ctx, subject)
			if err != nil || len(vs) != 1 {
				t.Errorf("subject %s versions = %v (%v), want [1]", subject, vs, err)
			}
		})
	}
}
