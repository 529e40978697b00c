package topology

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
)

// bigPipeline generates a pipeline of n steps in one of these shapes:
//   - chain: filter steps, each reading the one before it by default;
//   - fan: filter steps all reading the source, one sink reading them all;
//   - aggregate: a chain of aggregate steps grouped by the record key;
//   - cycle: a chain whose first step reads the last one;
//   - unknown: every step reads a node that does not exist (n errors).
func bigPipeline(n int, shape string) []byte {
	var b strings.Builder
	b.WriteString("name: big\nsources:\n  - name: in\n    topic: in\nsteps:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: s%d\n", i)
		switch {
		case shape == "fan":
			b.WriteString("    from: in\n")
		case shape == "cycle" && i == 0:
			fmt.Fprintf(&b, "    from: s%d\n", n-1)
		case shape == "unknown":
			fmt.Fprintf(&b, "    from: x%d\n", i)
		}
		if shape == "aggregate" {
			b.WriteString("    aggregate: {group_by: key, columns: {n: {fn: count}}}\n")
		} else {
			fmt.Fprintf(&b, "    filter: value.x > %d\n", i)
		}
	}
	b.WriteString("sinks:\n  - name: out\n    topic: out\n")
	if shape == "fan" {
		b.WriteString("    from: [")
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "s%d", i)
		}
		b.WriteString("]\n")
	}
	return []byte(b.String())
}

// TestGraphLinear checks that the graph pass (linking, ordering, cycle
// and reachability checks) does work linear in nodes plus edges, by
// counting its node and edge visits rather than timing it: four times the
// steps may cost at most a little over four times the visits, where a
// quadratic pass costs sixteen times. (The pass used to scan every step's
// inputs for each step placed: 32k steps took half a minute.)
func TestGraphLinear(t *testing.T) {
	for _, shape := range []string{"chain", "fan", "aggregate", "cycle", "unknown"} {
		t.Run(shape, func(t *testing.T) {
			ops := func(n int) int {
				p := &parser{file: "big.yaml"}
				env, err := sharedEnv()
				if err != nil {
					t.Fatal(err)
				}
				p.env = env
				p.parse(context.Background(), bigPipeline(n, shape))
				var want int
				switch shape {
				case "cycle":
					want = 3 // the cycle, and so the source feeds nothing and the sink is unreachable
				case "unknown":
					want = n
				}
				if len(p.errs) != want {
					t.Fatalf("parse(%d %s steps): %d errors, want %d: %v", n, shape, len(p.errs), want, p.errs)
				}
				return p.graphOps
			}
			small, large := ops(250), ops(1000)
			if small == 0 {
				t.Fatal("graph pass counted no work")
			}
			if ratio := float64(large) / float64(small); ratio > 4.5 {
				t.Errorf("graph visits: %d for 250 steps, %d for 1000 (%.1f times), want at most 4.5 times", small, large, ratio)
			}
		})
	}
}

// BenchmarkParseLarge validates and describes generated pipelines of 32k
// steps, the size that took 24 s when the graph pass was quadratic.
func BenchmarkParseLarge(b *testing.B) {
	for _, shape := range []string{"chain", "fan", "aggregate"} {
		data := bigPipeline(32000, shape)
		b.Run(shape, func(b *testing.B) {
			for b.Loop() {
				topo, err := Parse("big.yaml", data)
				if err != nil {
					b.Fatal(err)
				}
				if err := Describe(io.Discard, topo); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
