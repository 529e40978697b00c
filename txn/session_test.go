package txn

import (
	"testing"
	"time"
)

func TestFencedTooOften(t *testing.T) {
	s := &Session{}
	t0 := time.Unix(0, 0)
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, false},
		{2 * time.Minute, false}, // the first fell out of the window
		{2*time.Minute + 10*time.Second, false},
		{2*time.Minute + 50*time.Second, true}, // three within a minute
	}
	for _, st := range steps {
		if got := s.fencedTooOften(t0.Add(st.at)); got != st.want {
			t.Errorf("fencedTooOften(+%s) = %v, want %v", st.at, got, st.want)
		}
	}
}
