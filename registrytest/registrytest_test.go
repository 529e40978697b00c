package registrytest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// TestRegistry registers a schema and reads it back by id and by
// version, on the registry URL gives (Apicurio Registry when
// EXACTLY_TEST_REGISTRY=apicurio).
func TestRegistry(t *testing.T) {
	url := URL(t) // builds and starts Apicurio first, if selected
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	const schema = `{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}`
	ss, err := cl.CreateSchema(ctx, "registrytest-value", sr.Schema{Schema: schema, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	byID, err := cl.SchemaByID(ctx, ss.ID)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := cl.SchemaByVersion(ctx, "registrytest-value", -1)
	if err != nil {
		t.Fatal(err)
	}
	if latest.ID != ss.ID || byID.Schema == "" || latest.Schema.Schema == "" {
		t.Errorf("schema %d registered, read back by id %+v and latest %+v", ss.ID, byID, latest)
	}
}
