package topology

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/cel-go/cel"
)

// JSON numbers decode to int or double by how they are written, so
// arithmetic mixes them as JSON users expect; the standard operators keep
// working, and a mix that cannot work names the operator and the types.
func TestMixedArithmetic(t *testing.T) {
	env, err := NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	value := map[string]any{"price": int64(10), "qty": int64(2), "half": 1.5, "amt": 3.0, "big": uint64(1) << 63, "s": "x"}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		expr    string
		want    any
		wantErr string
	}{
		{expr: `value.price * double(value.qty)`, want: 20.0},
		{expr: `value.amt + 0.5`, want: 3.5},
		{expr: `value.price + 0.5`, want: 10.5},
		{expr: `0.5 + value.price`, want: 10.5},
		{expr: `value.price - value.half`, want: 8.5},
		{expr: `value.half * value.qty`, want: 3.0},
		{expr: `value.price / 4.0`, want: 2.5},
		{expr: `value.big * 0.5`, want: float64(uint64(1) << 62)},
		{expr: `2 * 1.5`, want: 3.0},
		{expr: `string(value.price * 1.5)`, want: "15"},
		// The standard overloads, unchanged.
		{expr: `7 / 2`, want: int64(3)},
		{expr: `value.price * value.qty`, want: int64(20)},
		{expr: `2u * 3u`, want: uint64(6)},
		{expr: `"a" + "b"`, want: "ab"},
		{expr: `[1] + [2]`, want: []any{int64(1), int64(2)}},
		{expr: `b"a" + b"b"`, want: []byte("ab")},
		{expr: `timestamp - duration("1h") < timestamp`, want: true},
		{expr: `timestamp - timestamp == duration("0s")`, want: true},
		{expr: `duration("1h") + timestamp > timestamp`, want: true},
		{expr: `9223372036854775807 + value.qty`, wantErr: "overflow"},
		{expr: `value.price / 0`, wantErr: "division by zero"},
		// What cannot mix says what it was given.
		{expr: `value.s * 2`, wantErr: "no such overload: string * int"},
		{expr: `value.price + value.big`, wantErr: "no such overload: int + uint; convert one side"},
		{expr: `value.s - value.half`, wantErr: "no such overload: string - double"},
	}
	for _, tt := range tests {
		ast, iss := env.Compile(tt.expr)
		if iss.Err() != nil {
			t.Errorf("Compile(%q): %v", tt.expr, iss.Err())
			continue
		}
		prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			t.Errorf("Program(%q): %v", tt.expr, err)
			continue
		}
		out, _, err := prg.Eval(map[string]any{VarValue: value, VarTimestamp: ts})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Eval(%q) = %v, %v, want an error containing %q", tt.expr, out, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Eval(%q) error: %v", tt.expr, err)
			continue
		}
		if got := out.Value(); !reflect.DeepEqual(got, tt.want) {
			if l, ok := out.ConvertToNative(reflect.TypeOf(tt.want)); ok == nil && reflect.DeepEqual(l, tt.want) {
				continue
			}
			t.Errorf("Eval(%q) = %#v, want %#v", tt.expr, got, tt.want)
		}
	}
	// Type checking still rejects what no overload accepts.
	for _, expr := range []string{`1 + "a"`, `"a" * 2`, `1 + 2u`, `[1] - [1]`} {
		if _, iss := env.Compile(expr); iss.Err() == nil {
			t.Errorf("Compile(%q) succeeded, want a type error", expr)
		}
	}
}
