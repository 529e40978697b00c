package main

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/exactly-dev/exactly/format"
)

// avroTopic holds the JSON input's records as Avro (Confluent wire
// format, schema benchAvroSchema), for mode g.
const avroTopic = "bench-avro"

const (
	benchAvroIn  = `{"type":"record","name":"In","fields":[{"name":"id","type":"long"},{"name":"amount","type":"double"},{"name":"user","type":"string"},{"name":"pad","type":"string"}]}`
	benchAvroOut = `{"type":"record","name":"Out","fields":[{"name":"id","type":"long"},{"name":"user","type":"string"},{"name":"cents","type":"long"}]}`
)

// filterMapAvro is mode c's pipeline over Avro in and out.
func filterMapAvro(name, out string) string {
	return strings.Join([]string{
		"name: " + name,
		"guarantee: exactly_once",
		"sources:",
		"  - {name: in, topic: " + avroTopic + ", format: avro}",
		"steps:",
		"  - name: big",
		"    filter: value.amount >= 100.0",
		"  - name: shape",
		`    map: '{"id": value.id, "user": value.user, "cents": int(value.amount * 100.0)}'`,
		"sinks:",
		"  - name: out",
		"    topic: " + out,
		"    format: {name: avro, schema: '" + benchAvroOut + "'}",
		"",
	}, "\n")
}

// benchRegistry is the schema registry of the Avro mode: franz-go's
// in-memory one, served on loopback, so the registry costs the pipeline
// one lookup per schema id and nothing per record, as a real one would
// once cached.
type benchRegistry struct {
	reg *srfake.Registry
	enc format.Codec // writes avroTopic's values
}

func newBenchRegistry() (*benchRegistry, error) {
	reg := srfake.New()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		reg.Close()
		return nil, err
	}
	enc, err := format.Standard().New(format.Avro, format.PartValue, format.Options{"schema": benchAvroIn}, format.Deps{Schemas: format.NewSchemas(cl, nil)})
	if err != nil {
		reg.Close()
		return nil, err
	}
	return &benchRegistry{reg: reg, enc: enc}, nil
}

func (r *benchRegistry) close() { r.reg.Close() }

// avroValue is jsonValue(i) as Avro.
func (r *benchRegistry) avroValue(jsonValue []byte) ([]byte, error) {
	v, err := format.DecodeJSON(jsonValue)
	if err != nil {
		return nil, err
	}
	b, err := r.enc.Encode(avroTopic, format.NoHeaders, v)
	if err != nil {
		return nil, fmt.Errorf("encoding the Avro input: %w", err)
	}
	return b, nil
}
