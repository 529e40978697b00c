package processor

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/metrics"
	"github.com/exactly-dev/exactly/topology"
)

func mustParse(t *testing.T, yaml string) *topology.Topology {
	t.Helper()
	topo, err := topology.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("Parse() error:\n%v", err)
	}
	return topo
}

// runGraph runs inputs through the topology and returns the outputs as
// "topic key value [h=v...]" lines.
func runGraph(t *testing.T, topo *topology.Topology, in ...*kgo.Record) ([]string, error) {
	t.Helper()
	g, err := newGraph(topo, metrics.NewPipeline(nil, topo.Name), format.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, r := range in {
		if r.Topic == "" {
			r.Topic = "in"
		}
		r.Offset = int64(i)
		if r.Timestamp.IsZero() {
			r.Timestamp = time.Date(2026, 4, 1, 9, 0, i, 0, time.UTC)
		}
		err := g.process(r, func(o *kgo.Record) {
			line := fmt.Sprintf("%s %s %s", o.Topic, o.Key, o.Value)
			if o.Key == nil {
				line = fmt.Sprintf("%s <nil> %s", o.Topic, o.Value)
			}
			for _, h := range o.Headers {
				line += fmt.Sprintf(" %s=%s", h.Key, h.Value)
			}
			if !o.Timestamp.Equal(r.Timestamp) {
				t.Errorf("output timestamp %v, want the input's %v", o.Timestamp, r.Timestamp)
			}
			out = append(out, line)
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func rec(key, value string) *kgo.Record {
	r := &kgo.Record{Value: []byte(value)}
	if key != "" {
		r.Key = []byte(key)
	}
	return r
}

const src = "name: t\nsources:\n  - {name: in, topic: in}\n"

func TestSteps(t *testing.T) {
	tests := []struct {
		name  string
		steps string
		sinks string
		in    []*kgo.Record
		want  []string
	}{
		{
			name:  "filter",
			steps: "steps:\n  - {name: f, filter: 'value.n > 1'}\n",
			in:    []*kgo.Record{rec("a", `{"n":1}`), rec("b", `{"n":2}`), rec("c", `{"n":3.5}`)},
			want:  []string{`out b {"n":2}`, `out c {"n":3.5}`},
		},
		{
			name:  "map builds a value from every variable",
			steps: "steps:\n  - name: m\n    map: '{\"k\": key, \"n\": value.n + 1, \"t\": topic, \"p\": partition, \"o\": offset, \"h\": headers.h, \"s\": int(timestamp.getSeconds())}'\n",
			in:    []*kgo.Record{{Key: []byte("a"), Value: []byte(`{"n":41}`), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("hv")}}}},
			want:  []string{`out a {"h":"hv","k":"a","n":42,"o":0,"p":0,"s":0,"t":"in"} h=hv`},
		},
		{
			name:  "flat_map emits one record per element",
			steps: "steps:\n  - {name: fm, flat_map: 'value.items.map(i, {\"item\": i, \"order\": value.id})'}\n",
			in:    []*kgo.Record{rec("o1", `{"id":1,"items":["x","y"]}`), rec("o2", `{"id":2,"items":[]}`)},
			want:  []string{`out o1 {"item":"x","order":1}`, `out o1 {"item":"y","order":1}`},
		},
		{
			name:  "key sets the output key",
			steps: "steps:\n  - {name: k, key: 'value.user'}\n",
			in:    []*kgo.Record{rec("", `{"user":"u42"}`)},
			want:  []string{`out u42 {"user":"u42"}`},
		},
		{
			name:  "key to null drops the key",
			steps: "steps:\n  - {name: k, key: 'null'}\n",
			in:    []*kgo.Record{rec("a", `1`)},
			want:  []string{`out <nil> 1`},
		},
		{
			name:  "set_headers replaces and adds headers",
			steps: "steps:\n  - name: h\n    set_headers:\n      a: '\"new\"'\n      b: 'string(value)'\n",
			in:    []*kgo.Record{{Value: []byte(`7`), Headers: []kgo.RecordHeader{{Key: "a", Value: []byte("old")}, {Key: "c", Value: []byte("keep")}}}},
			want:  []string{`out <nil> 7 c=keep a=new b=7`},
		},
		{
			name:  "route sends each record to the first matching branch",
			steps: "steps:\n  - name: r\n    route:\n      - {when: 'value > 10', to: big}\n      - {when: 'value > 5', to: mid}\n      - {to: small}\n",
			sinks: "sinks:\n  - {name: big, topic: big}\n  - {name: mid, topic: mid}\n  - {name: small, topic: small}\n",
			in:    []*kgo.Record{rec("a", `20`), rec("b", `7`), rec("c", `1`)},
			want:  []string{`big a 20`, `mid b 7`, `small c 1`},
		},
		{
			name:  "route without a default drops what matches nothing",
			steps: "steps:\n  - name: r\n    route:\n      - {when: 'value > 10', to: out}\n",
			in:    []*kgo.Record{rec("a", `20`), rec("b", `1`)},
			want:  []string{`out a 20`},
		},
		{
			name:  "string and bytes formats",
			steps: "steps:\n  - {name: m, map: 'value + \"!\"'}\n",
			sinks: "sinks:\n  - {name: out, topic: out, format: string, key_format: bytes}\n",
			in:    []*kgo.Record{rec("k", `"hi"`)},
			want:  []string{`out k hi!`},
		},
		{
			name:  "tombstones pass through",
			steps: "steps:\n  - {name: f, filter: 'value == null'}\n",
			in:    []*kgo.Record{{Key: []byte("gone")}},
			want:  []string{`out gone `},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sinks := tt.sinks
			if sinks == "" {
				sinks = "sinks:\n  - {name: out, topic: out}\n"
			}
			got, err := runGraph(t, mustParse(t, src+tt.steps+sinks), tt.in...)
			if err != nil {
				t.Fatalf("process() error: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("outputs =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestSourceFormats(t *testing.T) {
	topo := mustParse(t, `name: t
sources:
  - {name: s, topic: s, format: string}
  - {name: b, topic: b, format: bytes, key_format: json}
steps:
  - {name: fromS, from: s, map: '{"len": size(value), "upper": value.upperAscii()}'}
  - {name: fromB, from: b, map: '{"len": size(value), "k": key.id}'}
sinks:
  - {name: out, topic: out, key_format: json, from: [fromS, fromB]}
`)
	got, err := runGraph(t, topo, &kgo.Record{Topic: "s", Value: []byte("héllo")}, &kgo.Record{Topic: "b", Key: []byte(`{"id":3}`), Value: []byte{0, 1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`out <nil> {"len":5,"upper":"HéLLO"}`, `out {"id":3} {"k":3,"len":3}`}
	if !slices.Equal(got, want) {
		t.Errorf("outputs = %q, want %q", got, want)
	}
}

// TestRecordErrors checks that a record that cannot be decoded, evaluated
// or encoded stops processing with an error naming the record, the node and
// the cause.
func TestRecordErrors(t *testing.T) {
	tests := []struct {
		name  string
		pipe  string
		in    *kgo.Record
		phase Phase
		node  string
		cause string
	}{
		{"invalid JSON", src + "sinks:\n  - {name: out, topic: out}\n", rec("k", `{"a":`), PhaseDecode, "in", "invalid JSON"},
		{"invalid UTF-8 string", "name: t\nsources:\n  - {name: in, topic: in, format: string}\nsinks:\n  - {name: out, topic: out}\n", rec("k", "\xff"), PhaseDecode, "in", "invalid UTF-8"},
		{"invalid key", "name: t\nsources:\n  - {name: in, topic: in, key_format: json}\nsinks:\n  - {name: out, topic: out}\n", rec("nope", `1`), PhaseDecode, "in", "key (format json)"},
		{"missing field", src + "steps:\n  - {name: f, filter: 'value.missing > 1'}\nsinks:\n  - {name: out, topic: out}\n", rec("k", `{}`), PhaseEval, "f", "no such key: missing"},
		{"division by zero", src + "steps:\n  - {name: m, map: 'value.a / value.b'}\nsinks:\n  - {name: out, topic: out}\n", rec("k", `{"a":1,"b":0}`), PhaseEval, "m", "division by zero"},
		{"filter not bool", src + "steps:\n  - {name: f, filter: 'value.a'}\nsinks:\n  - {name: out, topic: out}\n", rec("k", `{"a":1}`), PhaseEval, "f", "want bool"},
		{"flat_map not a list", src + "steps:\n  - {name: fm, flat_map: 'value'}\nsinks:\n  - {name: out, topic: out}\n", rec("k", `3`), PhaseEval, "fm", "want a list"},
		{"string sink with a map", src + "sinks:\n  - {name: out, topic: out, format: string}\n", rec("k", `{"a":1}`), PhaseEncode, "out", "string format needs a scalar"},
		{"over limits.max_eval_cost", "name: t\nlimits: {max_eval_cost: 100}\nsources:\n  - {name: in, topic: in}\nsteps:\n  - {name: m, map: 'value.l.map(x, x * 2)'}\nsinks:\n  - {name: out, topic: out}\n",
			rec("k", `{"l":[`+strings.Repeat("1,", 200)+`1]}`), PhaseEval, "m", "cost limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runGraph(t, mustParse(t, tt.pipe), tt.in)
			var re *RecordError
			if !errors.As(err, &re) {
				t.Fatalf("process() = %v, %v; want a *RecordError", out, err)
			}
			if re.Phase != tt.phase || re.Node != tt.node || re.Topic != "in" || re.Offset != 0 || !strings.Contains(err.Error(), tt.cause) {
				t.Errorf("process() error = %v (phase %s, node %s); want phase %s, node %s, cause containing %q", err, re.Phase, re.Node, tt.phase, tt.node, tt.cause)
			}
			if !strings.HasPrefix(err.Error(), "record in/0@0: node \""+tt.node+"\": "+string(tt.phase)+": ") {
				t.Errorf("error %q does not start by naming topic, partition, offset, node and phase", err)
			}
		})
	}
}

// Concatenated lists come out as written: their maps encoded, their nulls
// null (a concatenation's Value() turns null into a protobuf enum, 0).
func TestConcatenatedLists(t *testing.T) {
	pipe := src + "steps:\n  - {name: m, map: '{\"l\": [{\"a\": 1}, null] + [value.x, [null]]}'}\nsinks:\n  - {name: out, topic: out}\n"
	got, err := runGraph(t, mustParse(t, pipe), rec("k", `{"x":{"b":[2,null]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`out k {"l":[{"a":1},null,{"b":[2,null]},[null]]}`}
	if !slices.Equal(got, want) {
		t.Errorf("outputs = %q, want %q", got, want)
	}
}

// Every operation topology knows has a runtime step, as do sources and
// sinks: a new operation is a spec entry there and a step here.
func TestEveryOperationHasAStep(t *testing.T) {
	kinds := []topology.Kind{topology.KindSource, topology.KindSink}
	for _, op := range topology.Operations() {
		kinds = append(kinds, op.Kind)
	}
	for _, k := range kinds {
		if _, ok := steps[k]; !ok {
			t.Errorf("no runtime step registered for %q", k)
		}
	}
}
