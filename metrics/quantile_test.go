package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCommitQuantiles(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := NewPipeline(reg, "q")
	if q, n := CommitQuantiles(reg, 0.5); n != 0 || q != nil {
		t.Fatalf("CommitQuantiles(empty) = %v, %d, want nil, 0", q, n)
	}
	// 100 commits: 50 of 1.5ms (bucket 1-2ms), 49 of 3ms (2-5ms), 1 of
	// 30s (beyond the last bound, 10s).
	for i := 0; i < 50; i++ {
		p.CommitDuration.Observe(0.0015)
	}
	for i := 0; i < 49; i++ {
		p.CommitDuration.Observe(0.003)
	}
	p.CommitDuration.Observe(30)
	q, n := CommitQuantiles(reg, 0.25, 0.5, 0.99, 1)
	if n != 100 {
		t.Fatalf("n = %d, want 100", n)
	}
	// histogram_quantile: rank 25 of the 50 in (1ms, 2ms] is 1.5ms; rank
	// 50 is the bucket's top, 2ms; rank 99 is the last of the 49 in
	// (2ms, 5ms], 5ms; rank 100 lies past the last bound, 10s.
	want := []time.Duration{1500 * time.Microsecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Second}
	for i := range want {
		if d := q[i] - want[i]; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("quantile %d = %s, want %s", i, q[i], want[i])
		}
	}
}
