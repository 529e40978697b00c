package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeLargePipeline writes a valid pipeline of n filter steps, slow to
// validate because each step's expression is compiled.
func writeLargePipeline(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("name: big\nsources:\n  - name: in\n    topic: in\nsteps:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: s%d\n    filter: value.x > %d\n", i, i)
	}
	b.WriteString("sinks:\n  - name: out\n    topic: out\n")
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestValidateInterrupted checks that validate and describe stop when
// their context is canceled (a signal, in main) instead of finishing.
func TestValidateInterrupted(t *testing.T) {
	path := writeLargePipeline(t, 100)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, args := range [][]string{{"validate", "-c", path, "--instance-id", "x"}, {"describe", "-c", path}} {
		cmd := args[0]
		var stdout, stderr bytes.Buffer
		err := run(ctx, args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "interrupted while loading") || exitCode(err) != 1 {
			t.Errorf("%s with a canceled context = %v (exit %d), want an interruption error, exit 1", cmd, err, exitCode(err))
		}
		if stdout.Len() > 0 {
			t.Errorf("%s with a canceled context printed %q, want nothing", cmd, tail(stdout.String(), 200))
		}
	}
}

// TestValidateSignal runs validate and describe on a pipeline that takes
// seconds to check and stops them with SIGINT and SIGTERM: they used to
// ignore both and run to the end.
func TestValidateSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	path := writeLargePipeline(t, 40_000)
	for _, tc := range []struct {
		cmd string
		sig syscall.Signal
	}{{"validate", syscall.SIGINT}, {"describe", syscall.SIGTERM}} {
		t.Run(tc.cmd, func(t *testing.T) {
			// A signal that arrives before main has set up its
			// handler kills the process outright; then try again,
			// waiting longer.
			for _, wait := range []time.Duration{300 * time.Millisecond, 3 * time.Second} {
				var out bytes.Buffer
				cmd := exec.Command(binary(t), tc.cmd, "-c", path)
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(wait)
				cmd.Process.Signal(tc.sig)
				err := cmd.Wait()
				var exit *exec.ExitError
				if errors.As(err, &exit) && exit.ProcessState.Sys().(syscall.WaitStatus).Signaled() {
					continue
				}
				if exitCode := cmd.ProcessState.ExitCode(); exitCode != 1 || !strings.Contains(out.String(), "interrupted while loading") {
					t.Fatalf("%s after %s: exit code %d, output ending %q; want exit code 1 and an interruption error", tc.cmd, tc.sig, exitCode, tail(out.String(), 200))
				}
				return
			}
			t.Fatalf("%s was killed by %s each time, before it handled signals", tc.cmd, tc.sig)
		})
	}
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	return s[max(0, len(s)-n):]
}
