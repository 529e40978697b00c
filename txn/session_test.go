package txn

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
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

func TestErrorClasses(t *testing.T) {
	tests := []struct {
		err       error
		fenced    bool
		abortable bool
	}{
		{kerr.ProducerFenced, true, false},
		{fmt.Errorf("wrapped: %w", kerr.InvalidProducerEpoch), true, false},
		{kerr.TransactionAbortable, false, true},
		{kgo.ErrAborting, false, true},
		{context.Canceled, false, true},
		{kerr.NotLeaderForPartition, false, true},
		{kerr.MessageTooLarge, false, false},
		{kerr.TopicAuthorizationFailed, false, false},
		{errors.New("other"), false, false},
	}
	for _, tt := range tests {
		if got := fenced(tt.err); got != tt.fenced {
			t.Errorf("fenced(%v) = %v, want %v", tt.err, got, tt.fenced)
		}
		if got := abortable(tt.err); got != tt.abortable {
			t.Errorf("abortable(%v) = %v, want %v", tt.err, got, tt.abortable)
		}
	}
}
