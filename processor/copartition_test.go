package processor

import (
	"context"
	"errors"
	"testing"
)

// Start-up requests are tried again while they fail (a broker restarting
// as an instance starts), until the start's context ends.
func TestStartRequestsRetried(t *testing.T) {
	calls := 0
	err := retried(context.Background(), func() error {
		if calls++; calls < 3 {
			return errors.New("unable to dial")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("retried = %v after %d calls, want nil after 3", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := retried(ctx, func() error { return errors.New("down") }); err == nil {
		t.Error("retried with its context done = nil, want the request's error")
	}
}
