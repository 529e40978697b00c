package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exactly-dev/exactly/broker"
)

// TestRunStopBeforeJoin stops `exactly run` before it has joined its
// group (the context is cancelled from the start, as by a SIGTERM that
// arrives while it creates topics): a clean stop, exit code 0, against a
// cluster and with the embedded broker. It also checks the metrics
// server's address is logged once.
func TestRunStopBeforeJoin(t *testing.T) {
	b, err := broker.Start(broker.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(p, []byte("name: early\nsources:\n  - {name: in, topic: in}\nsinks:\n  - {name: out, topic: out}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, brokers := range []string{strings.Join(b.Addrs(), ","), "embedded"} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var stdout, stderr bytes.Buffer
		err := run(ctx, []string{"run", "-c", p, "--brokers", brokers, "--instance-id", "x", "--http-addr", "127.0.0.1:0"}, &stdout, &stderr)
		if code := exitCode(err); code != 0 {
			t.Errorf("run --brokers %s stopped before joining = %v (exit %d), want a clean stop (exit 0)\n%s", brokers, err, code, stderr.String())
		}
		// The stop may come before the server starts (while the
		// pipeline loads); it never logs its address twice.
		if n := strings.Count(stderr.String(), "serving"); n > 1 {
			t.Errorf("run --brokers %s logged %d lines about serving metrics, want at most 1:\n%s", brokers, n, stderr.String())
		}
	}
}
