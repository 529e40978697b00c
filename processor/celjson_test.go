package processor

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/topology"
)

// TestAppendCELMatchesNative holds the direct encoder to the general path:
// for every result it accepts, the bytes are those of
// format.EncodeJSON(native(result)).
func TestAppendCELMatchesNative(t *testing.T) {
	env, err := topology.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	value, err := format.DecodeJSON([]byte(`{"id":123,"amount":45.67,"user":"u<1>&\u2028","tags":["a",null,true,1.5],"nested":{"z":1,"a":[{}]},"big":1e300}`))
	if err != nil {
		t.Fatal(err)
	}
	r := &record{key: "k", value: value, src: &kgo.Record{Topic: "in"}}
	exprs := []struct {
		expr     string
		fallback bool // appendCEL must decline
	}{
		{`{"id": value.id, "user": value.user, "cents": int(value.amount * 100.0)}`, false},
		{`value`, false},
		{`value.tags`, false},
		{`value.nested`, false},
		{`[value.nested, value.tags, {"x": value.tags}]`, false},
		{`{"b": b"\x00\xff", "t": timestamp("2026-04-01T09:00:00.5Z"), "d": duration("90s"), "u": 3u, "n": null, "f": false}`, false},
		{`{"small": 0.0000001, "large": 1e21, "neg": -0.0, "big": value.big * 10.0}`, false},
		{`{"é": "😀", "q": "\"quoted\"\n", "html": "<&>"}`, false},
		{`{1: "int key", true: "bool key"}`, true}, // non-string keys: declined
		{`{1: "a", "1": "b"}`, true},
		{`{"nan": 0.0 / 0.0}`, true},
		{`[1.0 / 0.0]`, true},
		{`"just a string"`, false},
		{`42`, false},
		{`value.amount`, false},
		{`value.tags + [1]`, true},        // value.tags holds a null: declined
		{`[{"a": 1}] + [{"b": 2}]`, true}, // a concatenation of CEL maps: native walks it
		{`[1, null] + [2]`, true},
		{`{"exact": decimal("120.50") * 3, "neg": -decimal("0.10"), "l": [decimal("1.5")]}`, false},
		{`decimal("0.30")`, false},
	}
	for _, tt := range exprs {
		ast, iss := env.Compile(tt.expr)
		if iss.Err() != nil {
			t.Fatalf("%s: %v", tt.expr, iss.Err())
		}
		prg, err := env.Program(ast)
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := prg.Eval(&activation{r: r})
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		got, ok := appendCEL(nil, out)
		if ok == tt.fallback {
			t.Errorf("%s: appendCEL ok = %v, want %v", tt.expr, ok, !tt.fallback)
			continue
		}
		if !ok {
			continue
		}
		nv, err := native(out)
		if err != nil {
			t.Fatalf("%s: native: %v", tt.expr, err)
		}
		want, err := format.EncodeJSON(nv)
		if err != nil {
			t.Fatalf("%s: Encode: %v", tt.expr, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\nappendCEL writes %s\ngeneral path     %s", tt.expr, got, want)
		}
	}
}

// A map step whose result is null still writes a Kafka null (a
// tombstone), and one whose result cannot be encoded still fails in the
// map step, with the direct path in place.
func TestMapToJSONSinkEdgeCases(t *testing.T) {
	pipe := src + "steps:\n  - {name: m, map: 'value.a == 1 ? dyn(null) : dyn({\"v\": value.a})'}\nsinks:\n  - {name: out, topic: out}\n"
	got, err := runGraph(t, mustParse(t, pipe), rec("k", `{"a":1}`), rec("k", `{"a":2}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"out k ", `out k {"v":2}`}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("outputs = %q, want %q", got, want)
	}
	pipe = src + "steps:\n  - {name: m, map: '{\"nan\": value.a / 0.0}'}\nsinks:\n  - {name: out, topic: out}\n"
	_, err = runGraph(t, mustParse(t, pipe), rec("k", `{"a":1.5}`))
	var re *RecordError
	if !errors.As(err, &re) || re.Node != "out" || re.Phase != PhaseEncode {
		t.Errorf("NaN result: error %v; want the general path's encode error at the sink", err)
	}
}
