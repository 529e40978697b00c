package processor

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestRowCodecMatchesGeneral holds the fast row codec to the general one
// (maps through package format): the same bytes out, the same
// accumulators back, and malformed or unusual rows decoded (or refused)
// alike.
func TestRowCodecMatchesGeneral(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sums := []string{"", "0", "-0.5", "468.48", "0.00000015", "123456789012345678901234567890.5"}
	values := []any{nil, nil, nil, "text \"quoted\"", map[string]any{"dec": "1.5"}, int64(7)}
	for range 2000 {
		accs := make([]acc, 1+rng.IntN(4))
		for i := range accs {
			accs[i] = acc{N: rng.Int64N(1e12) - 5, Sum: sums[rng.IntN(len(sums))], V: values[rng.IntN(len(values))]}
		}
		got, err := encodeRow(accs)
		if err != nil {
			t.Fatal(err)
		}
		want, err := encodeRowGeneral(accs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encodeRow(%+v) = %s; general path writes %s", accs, got, want)
		}
		back, err := decodeRow(got, len(accs))
		if err != nil {
			t.Fatal(err)
		}
		general, err := decodeRowGeneral(got, len(accs))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, general) {
			t.Fatalf("decodeRow(%s) = %+v; general path reads %+v", got, back, general)
		}
	}
	odd := []string{
		`[{"n":1}]`, `[{"n":1},{"n":2,"s":"3.5"}]`, `[{"n":01}]`, `[{"n":1.0}]`, `[{"n":-0}]`, `[{"n":99999999999999999999}]`,
		`[{"s":"1","n":1}]`, `[ {"n":1} ]`, `[{"n":1,"s":"1\u0030"}]`, `[{"n":1,"s":"x"}]`, `[{"n":1}`, `[{"n":1}]x`,
		`[{"n":1},{"n":2}]`, `[]`, `{}`, `[{"n":1,"v":2}]`, `[{"n":1,"s":"2"}]`,
	}
	for _, s := range odd {
		got, err := decodeRow([]byte(s), 1)
		want, werr := decodeRowGeneral([]byte(s), 1)
		if (err == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("decodeRow(%s) = %+v, %v; general path: %+v, %v", s, got, err, want, werr)
		}
	}
}

func BenchmarkRowCodec(b *testing.B) {
	accs := []acc{{N: 123}, {N: 123, Sum: "45678.9"}}
	enc, _ := encodeRow(accs)
	for _, c := range []struct {
		name string
		enc  func([]acc) ([]byte, error)
		dec  func([]byte, int) ([]acc, error)
	}{{"fast", encodeRow, decodeRow}, {"general", encodeRowGeneral, decodeRowGeneral}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				accs[0].N = int64(i)
				if _, err := c.enc(accs); err != nil {
					b.Fatal(err)
				}
				if _, err := c.dec(enc, 2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
