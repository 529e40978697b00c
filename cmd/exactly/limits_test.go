package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly-dev/exactly/kafkatest"
)

// TestBrokerTimeoutLimits starts `exactly run` with timeouts the broker
// refuses: a session timeout below group.min.session.timeout.ms (6s, both
// Kafka's and kfake's default), one above group.max.session.timeout.ms
// (set to 5m, kfake's default; Kafka's is 30m), and a transaction timeout
// above transaction.max.timeout.ms (set to 1m; 15m by default). Each must stop the run at start with an error that names the
// setting, the broker's limit and the broker's error code, not retry the
// join (or the producer id) forever with a warning per attempt.
//
// With EXACTLY_TEST_BROKER=kafka it runs against an Apache Kafka node of
// its own, with Kafka's default floor (the shared test cluster lowers it
// to 1s); otherwise against kfake with its defaults.
func TestBrokerTimeoutLimits(t *testing.T) {
	var addr string
	if kafkatest.Selected() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		c, err := kafkatest.Start(ctx, kafkatest.Options{Nodes: 1, Properties: []string{
			"group.min.session.timeout.ms=6000", "group.max.session.timeout.ms=300000", "transaction.max.timeout.ms=60000"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Stop()
		if err := c.CreateTopics(ctx, 1, nil, "limits-in", "limits-out"); err != nil {
			t.Fatal(err)
		}
		addr = c.Addrs()[0]
	} else {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "limits-in", "limits-out"),
			kfake.BrokerConfigs(map[string]string{"transaction.max.timeout.ms": "60000"}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		addr = c.ListenAddrs()[0]
	}
	p := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(p, []byte("name: limits\nsources:\n  - {name: in, topic: limits-in}\nsinks:\n  - {name: out, topic: limits-out}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []string
		want  []string
	}{
		{"session timeout below the broker's minimum", []string{"--session-timeout", "3s", "--transaction-timeout", "2s"},
			[]string{"kafka.session_timeout", "3s", "group.min.session.timeout.ms", "INVALID_SESSION_TIMEOUT"}},
		{"session timeout above the broker's maximum", []string{"--session-timeout", "6m"},
			[]string{"kafka.session_timeout", "6m", "group.max.session.timeout.ms", "INVALID_SESSION_TIMEOUT"}},
		{"transaction timeout above the broker's maximum", []string{"--session-timeout", "4m", "--transaction-timeout", "2m"},
			[]string{"kafka.transaction_timeout", "2m", "transaction.max.timeout.ms", "INVALID_TRANSACTION_TIMEOUT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Bounds a run that retries forever; a refusal comes at
			// the first join or producer id request.
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			args := append([]string{"run", "-c", p, "--brokers", addr, "--instance-id", "x", "--http-addr="}, tc.flags...)
			err := run(ctx, args, &stdout, &stderr)
			if ctx.Err() != nil {
				t.Fatalf("run %v still ran after 90s, want a start-up error naming %v; log:\n%s", tc.flags, tc.want, tail(stderr.String(), 3000))
			}
			if err == nil {
				t.Fatalf("run %v = nil, want an error naming %v", tc.flags, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("run %v = %q, want it to name %q", tc.flags, err, w)
				}
			}
			if code := exitCode(err); code == 0 {
				t.Errorf("run %v exit code 0, want non-zero", tc.flags)
			}
		})
	}
}
