package main

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/registrytest"
)

const crashAvroOut = `{"type":"record","name":"Out","fields":[{"name":"id","type":"long"},{"name":"twice","type":"long"}]}`

const crashAvroPipeline = `name: crash
dead_letter_topic: crash-dlq
sources:
  - name: in
    topic: crash-in
    format: avro
steps:
  - name: drop-threes
    filter: value.id % 10 != 3
  - name: double
    map: '{"id": value.id, "twice": value.id * 2}'
sinks:
  - name: out
    topic: crash-out
    format: {name: avro, schema: '` + crashAvroOut + `'}
`

// TestCrashAvro is TestCrash on an Avro pipeline: input and output in the
// registry's wire format, the instances talking to an in-process
// registry (srfake) over loopback, poison records without the magic
// byte. Fewer records and kills than TestCrash: the exactly-once path
// is the same, the codec is what is new.
func TestCrashAvro(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs processes for about a minute")
	}
	reg := registrytest.NewFake(t)
	deps := reg.Deps()
	enc, err := format.Standard().New(format.Avro, format.PartValue,
		format.Options{"schema": `{"type":"record","name":"In","fields":[{"name":"id","type":"long"}]}`}, deps)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := format.Standard().New(format.Avro, format.PartValue, nil, deps)
	if err != nil {
		t.Fatal(err)
	}
	crashTest(t, crashCase{
		pipeline: crashAvroPipeline, records: 40_000, kills: 4,
		args: []string{"--registry", reg.URL},
		encode: func(id int) []byte {
			if poisoned(int64(id)) {
				return []byte(`{"id":` + strconv.Itoa(id) + `}`) // JSON: no magic byte
			}
			b, err := enc.Encode("crash-in", format.NoHeaders, map[string]any{"id": int64(id)})
			if err != nil {
				panic(err) // a broken test: the schema takes every id
			}
			return b
		},
		decode: func(b []byte) (id, twice int64, err error) {
			v, err := dec.Decode("crash-out", format.NoHeaders, b)
			if err != nil {
				return 0, 0, err
			}
			m, _ := v.(map[string]any)
			id, ok1 := m["id"].(int64)
			twice, ok2 := m["twice"].(int64)
			if !ok1 || !ok2 {
				return 0, 0, fmt.Errorf("output %v is not {id, twice}", v)
			}
			return id, twice, nil
		},
	})
}
