package processor

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/exactly-dev/exactly/topology"
)

// TestFetchErrorSessionTimeout: where the broker's limits could not be
// read at start, a join refused for its session timeout stops the
// processor with the setting named (cmd/exactly's TestBrokerTimeoutLimits
// covers the start-up check against both brokers).
func TestFetchErrorSessionTimeout(t *testing.T) {
	p := &Processor{topo: &topology.Topology{Group: "g"}, cfg: Config{SessionTimeout: 3 * time.Second}}
	err := p.fetchError("", 0, fmt.Errorf("unable to join group session: %w", kerr.InvalidSessionTimeout))
	for _, w := range []string{"kafka.session_timeout 3s", "group.min.session.timeout.ms", "INVALID_SESSION_TIMEOUT"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("fetchError = %q, want it to name %q", err, w)
		}
	}
	if !errors.Is(err, kerr.InvalidSessionTimeout) {
		t.Errorf("fetchError = %v, want it to wrap INVALID_SESSION_TIMEOUT", err)
	}
}

func TestLimitErrors(t *testing.T) {
	limits := map[string]time.Duration{
		"group.min.session.timeout.ms": 6 * time.Second,
		"group.max.session.timeout.ms": 30 * time.Minute,
		"transaction.max.timeout.ms":   15 * time.Minute,
	}
	limit := func(k string) (time.Duration, bool) { d, ok := limits[k]; return d, ok }
	for _, tc := range []struct {
		session, txn time.Duration
		guarantee    topology.Guarantee
		want         []string
	}{
		{45 * time.Second, 10 * time.Second, topology.ExactlyOnce, nil},
		{3 * time.Second, time.Second, topology.ExactlyOnce, []string{"group.min.session.timeout.ms (6s)"}},
		{31 * time.Minute, 16 * time.Minute, topology.ExactlyOnce, []string{"group.max.session.timeout.ms (30m0s)", "transaction.max.timeout.ms (15m0s)"}},
		{20 * time.Minute, 16 * time.Minute, topology.AtLeastOnce, nil}, // no transactions
	} {
		err := limitErrors(tc.session, tc.txn, tc.guarantee, limit)
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("limitErrors(%s, %s, %s) = %v, want nil", tc.session, tc.txn, tc.guarantee, err)
			}
			continue
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("limitErrors(%s, %s, %s) = %v, want it to name %q", tc.session, tc.txn, tc.guarantee, err, w)
			}
		}
	}
}
