package processor

import (
	"github.com/exactly-dev/exactly/format"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFormatLongForm checks that the long form of a format runs as its
// short form does, the input's own bytes passing through included.
func TestFormatLongForm(t *testing.T) {
	topo := mustParse(t, `name: t
sources:
  - {name: in, topic: in, format: {name: json}, key_format: {name: bytes}}
steps:
  - {name: f, filter: 'value.n > 1'}
sinks:
  - {name: out, topic: out, format: {name: json}, key_format: {name: string}}
`)
	got, err := runGraph(t, topo, rec("k", `{ "n" : 2.50e0 }`), rec("k", `{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{`out k { "n" : 2.50e0 }`}; !slices.Equal(got, want) {
		t.Errorf("outputs = %q, want %q", got, want)
	}
}

// TestKafkaHeaders checks what codecs see of a record's headers: the last
// header of a name, as the Java clients' lastHeader, and nothing
// allocated to show them.
func TestKafkaHeaders(t *testing.T) {
	r := &kgo.Record{Headers: []kgo.RecordHeader{{Key: "id", Value: []byte("1")}, {Key: "x", Value: nil}, {Key: "id", Value: []byte("2")}}}
	h := (*kafkaHeaders)(r)
	if v, ok := h.Get("id"); !ok || string(v) != "2" {
		t.Errorf("Get(id) = %q, %v, want the last one, 2", v, ok)
	}
	if v, ok := h.Get("x"); !ok || v != nil {
		t.Errorf("Get(x) = %q, %v, want a present null header", v, ok)
	}
	if v, ok := h.Get("y"); ok || v != nil {
		t.Errorf("Get(y) = %q, %v, want nothing", v, ok)
	}
	// Passing the record's headers to a codec allocates nothing (an
	// empty string decodes without allocating).
	c, err := newCodecs(mustParse(t, "name: t\nsources:\n  - {name: in, topic: in, format: string}\nsinks:\n  - {name: out, topic: out}\n").Sources[0], format.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	r.Value = []byte{}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := c.value.Decode(r.Topic, (*kafkaHeaders)(r), r.Value); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("string Decode allocates %v times, want 0", n)
	}
}
