package processor

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Steps that do not replace the value (filter, key, set_headers, route)
// leave it as the input's own bytes: a number no expression touched is
// written back as it came, however encoding it again would write it.
func TestUntouchedNumbersKeepTheirBytes(t *testing.T) {
	topo := mustParse(t, src+`steps:
  - {name: f, filter: 'value.n > 0'}
  - {name: k, key: 'string(value.n)'}
  - {name: h, set_headers: {seen: '"yes"'}}
  - name: r
    route:
      - {when: 'value.n > 100', to: big}
      - {to: small}
sinks:
  - {name: big, topic: big}
  - {name: small, topic: small}
`)
	docs := []string{
		`{"n": 1, "u": 18446744073709551615}`,
		`{"n":2,"i":9223372036854775808}`,
		`{"z":1, "n":3, "d": 10.0}`,
		`{"n":4,"e":1.7e12 ,"x":[1.50, 2E1]}`,
	}
	var in []*kgo.Record
	for _, d := range docs {
		in = append(in, rec("k", d))
	}
	got, err := runGraph(t, topo, in...)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i, d := range docs {
		want = append(want, "small "+string(rune('1'+i))+" "+d+" seen=yes")
	}
	if !slices.Equal(got, want) {
		t.Errorf("filter, key, set_headers, route outputs =\n%s\nwant the input values byte for byte:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A map writes the numbers it passes on as what they are: an integer
// beyond int64 exactly (as a CEL uint), a double with a fraction even
// when it is whole, so another reader (exactly included) sees a double.
func TestMappedNumbersKeepTheirType(t *testing.T) {
	for _, tc := range []struct {
		name, sinks string
	}{
		{"json sink only", "sinks:\n  - {name: out, topic: out}\n"},
		{"general path", "sinks:\n  - {name: out, topic: out}\n  - {name: out2, topic: out2}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo := mustParse(t, src+`steps:
  - name: m
    map: '{"u": value.u, "i": value.i, "d": value.d, "e": value.e, "twice": value.amount * 2.0, "l": [value.d]}'
`+tc.sinks)
			got, err := runGraph(t, topo, rec("k", `{"u":18446744073709551615,"i":9223372036854775808,"d":10.0,"e":1.7e12,"amount":1.5}`))
			if err != nil {
				t.Fatal(err)
			}
			want := `out k {"d":10.0,"e":1700000000000.0,"i":9223372036854775808,"l":[10.0],"twice":3.0,"u":18446744073709551615}`
			if len(got) == 0 || got[0] != want {
				t.Errorf("map output = %q, want %q", got, want)
			}
		})
	}
}

// A pipeline reads its own output: a whole double written by one map is a
// double for the next pipeline's arithmetic.
func TestReadsItsOwnDoubles(t *testing.T) {
	first := mustParse(t, src+"steps:\n  - {name: m, map: '{\"amt\": value.amount * 2.0}'}\nsinks:\n  - {name: out, topic: out}\n")
	got, err := runGraph(t, first, rec("k", `{"amount":1.5}`))
	if err != nil || len(got) != 1 {
		t.Fatalf("first pipeline = %q, %v", got, err)
	}
	written := strings.TrimPrefix(got[0], "out k ")
	second := mustParse(t, src+"steps:\n  - {name: m, map: '{\"amt\": value.amt + 0.5}'}\nsinks:\n  - {name: out, topic: out}\n")
	got, err = runGraph(t, second, rec("k", written))
	if err != nil {
		t.Fatalf("second pipeline on %s: %v", written, err)
	}
	if want := []string{`out k {"amt":3.5}`}; !slices.Equal(got, want) {
		t.Errorf("second pipeline on %s = %q, want %q", written, got, want)
	}
}
