package topology

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/exactly-dev/exactly/format"
)

// TestFormatLongForm checks that format: {name: NAME} is format: NAME.
func TestFormatLongForm(t *testing.T) {
	short, err := Parse("t.yaml", []byte("name: t\nsources:\n  - {name: in, topic: in, format: bytes, key_format: json}\nsinks:\n  - {name: out, topic: out, format: string}\n"))
	if err != nil {
		t.Fatal(err)
	}
	long, err := Parse("t.yaml", []byte("name: t\nsources:\n  - {name: in, topic: in, format: {name: bytes}, key_format: {name: json}}\nsinks:\n  - name: out\n    topic: out\n    format:\n      name: string\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []*Node{short.Sources[0], short.Sinks[0]} {
		m := []*Node{long.Sources[0], long.Sinks[0]}[i]
		if !n.Format.Equal(m.Format) || !n.KeyFormat.Equal(m.KeyFormat) || m.Format.Options != nil {
			t.Errorf("node %s: long form gives format %v, key format %v; short form %v, %v", n.Name, m.Format, m.KeyFormat, n.Format, n.KeyFormat)
		}
	}
	if f := long.Sources[0].Format; f.Name != format.Bytes || f.Options != nil {
		t.Errorf("format = %#v, want bytes without options", f)
	}
}

// TestFormatOptions checks a format with options, as the schema registry
// formats will have: options reach the format's Check offline, are kept
// on the node, and a bad one is reported at its key or value.
func TestFormatOptions(t *testing.T) {
	reg, err := format.NewRegistry(format.Factory{
		Name:    "avro",
		Options: []string{"subject", "strict"},
		Check: func(o format.Options) error {
			var errs []error
			if s, ok := o["subject"].(string); ok && s == "" {
				errs = append(errs, &format.OptionError{Key: "subject", Err: errors.New("empty subject: name one, or leave the key out for <topic>-value")})
			}
			if v, ok := o["strict"]; ok {
				if _, ok := v.(bool); !ok {
					errs = append(errs, &format.OptionError{Key: "strict", Err: fmt.Errorf("want true or false, got %v", v)})
				}
			}
			return errors.Join(errs...)
		},
		New: func(format.Part, format.Options, format.Deps) (format.Codec, error) {
			return nil, errors.New("not used")
		},
	}, format.Factory{Name: format.String, New: func(format.Part, format.Options, format.Deps) (format.Codec, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	parse := func(src string) (*Topology, error) {
		data := []byte("name: t\nsources:\n  - name: in\n    topic: in\n    format: " + src + "\nsinks:\n  - {name: out, topic: out, format: string}\n")
		return parseWith(context.Background(), "t.yaml", data, int64(len(data)), reg)
	}
	topo, err := parse("{name: avro, subject: orders-v2, strict: true}")
	if err != nil {
		t.Fatal(err)
	}
	f := topo.Sources[0].Format
	if want := (format.Options{"subject": "orders-v2", "strict": true}); f.Name != "avro" || !f.Options.Equal(want) {
		t.Errorf("format = %#v, want avro with %v", f, want)
	}
	if got, want := f.String(), "avro (strict: true, subject: orders-v2)"; got != want {
		t.Errorf("Format.String() = %q, want %q", got, want)
	}
	var b strings.Builder
	if err := Describe(&b, topo); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "format: avro (strict: true, subject: orders-v2)\n") {
		t.Errorf("Describe does not show the options:\n%s", b.String())
	}

	tests := []struct{ src, want string }{
		{"{name: avro, subject: '', strict: 1}",
			"t.yaml:5:35: sources[0].format.subject: format avro: empty subject: name one, or leave the key out for <topic>-value\n" +
				"t.yaml:5:47: sources[0].format.strict: format avro: want true or false, got 1"},
		{"{name: avro, subjet: x}", `t.yaml:5:26: sources[0].format.subjet: unknown option "subjet" of format avro (it takes subject or strict); did you mean "subject"?`},
		{"{name: json}", `t.yaml:5:20: sources[0].format.name: unknown format "json" (want avro or string)`},
		{"json", `t.yaml:5:13: sources[0].format: unknown format "json" (want avro or string)`},
	}
	for _, tt := range tests {
		_, err := parse(tt.src)
		if err == nil || err.Error() != tt.want {
			t.Errorf("format: %s: error =\n%v\nwant\n%s", tt.src, err, tt.want)
		}
	}
}
