package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/exactly-dev/exactly/kafkatest"
)

// TestMain lets the test binary stand in for the bench binary when the
// tool re-executes itself as the broker or the copy loop.
func TestMain(m *testing.M) {
	if code, ok := dispatch(os.Args[1:]); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestBenchQuick runs the tool in-process on a tiny input, modes a and b,
// and checks the report is complete. It asserts no performance.
func TestBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and several processes; skipped with -short")
	}
	cfg := defaultConfig()
	cfg.Records = 20_000
	cfg.Runs = 1
	cfg.Modes = []string{"a", "b"}
	cfg.Seed = 1
	cfg.RunTimeout = 2 * time.Minute
	if kafkatest.Selected() {
		cfg.Broker = brokerKafka
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := run(ctx, cfg, t.Output())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	t.Logf("\n%s", table.String())
	if len(rep.Modes) != 2 {
		t.Fatalf("report has %d modes, want 2 (a, b)", len(rep.Modes))
	}
	for _, m := range rep.Modes {
		if len(m.Runs) != 1 {
			t.Errorf("mode %s: %d counted runs, want 1", m.Mode, len(m.Runs))
		}
		if m.Warmup == nil {
			t.Errorf("mode %s: no warm-up run", m.Mode)
		}
		for name, v := range map[string]float64{
			"records/s median": m.RecordsPerSecondMedian,
			"records/s best":   m.RecordsPerSecondBest,
			"CPU µs/record":    m.CPUMicrosPerRecord,
			"peak RSS":         float64(m.PeakRSSBytes),
			"ratio":            m.RatioToBaseline,
			"commit p50":       m.CommitP50Seconds,
			"commit p99":       m.CommitP99Seconds,
		} {
			if v <= 0 {
				t.Errorf("mode %s: %s = %g, want > 0", m.Mode, name, v)
			}
		}
		for _, r := range m.Runs {
			if r.Records != int64(cfg.Records) {
				t.Errorf("mode %s run %d: records = %d, want %d", m.Mode, r.Index, r.Records, cfg.Records)
			}
		}
	}
	if b := rep.mode("b"); b == nil || b.TransactionsPerRun < 1 || b.MinTransactions < 1 {
		t.Errorf("mode b (exactly-once) reports %+v, want at least 1 transaction per run", b)
	}
	if !strings.Contains(table.String(), "targets") {
		t.Errorf("table lacks the targets:\n%s", table.String())
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("json.Marshal(report): %v", err)
	}
}

// TestPipelinesValidate checks every generated pipeline with `exactly
// validate`, so a schema change shows here rather than mid-benchmark.
func TestPipelinesValidate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ./cmd/exactly; skipped with -short")
	}
	dir := t.TempDir()
	bin, err := buildExactly(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range modes {
		if m.baseline() {
			continue
		}
		t.Run(m.id, func(t *testing.T) {
			name := runName(m, 1)
			path := filepath.Join(dir, name+".yaml")
			if err := os.WriteFile(path, []byte(m.yaml(name, outTopic(name))), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "validate", "-c", path).CombinedOutput(); err != nil {
				t.Errorf("exactly validate %s: %v\n%s", m.yaml(name, outTopic(name)), err, out)
			}
		})
	}
}

func TestJSONValue(t *testing.T) {
	pad := randomText(1<<12, 1)
	for _, i := range []int{0, 7, 123, 99_999, 1_000_000} {
		v := jsonValue(i, 10_000, 100, pad)
		var m map[string]any
		if err := json.Unmarshal(v, &m); err != nil {
			t.Fatalf("jsonValue(%d) = %s: %v", i, v, err)
		}
		if len(v) != 100 && !(len(v) > 100 && m["pad"] == "") {
			t.Errorf("jsonValue(%d) is %d bytes, want 100: %s", i, len(v), v)
		}
		if a, ok := m["amount"].(float64); !ok || a < 0.1 || a > 999.9 || a == float64(int(a)) {
			t.Errorf("jsonValue(%d) amount = %v, want a non-whole number in [0.1, 999.9]", i, m["amount"])
		}
		if m["user"] != string(key(i, 10_000)) {
			t.Errorf("jsonValue(%d) user = %v, want the key %s", i, m["user"], key(i, 10_000))
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %g, want %g", tc.in, got, tc.want)
		}
	}
}

func TestClampInterval(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, time.Millisecond},
		{1500 * time.Microsecond, time.Millisecond},
		{25*time.Millisecond + 700*time.Microsecond, 25 * time.Millisecond},
		{time.Second, 100 * time.Millisecond},
	} {
		if got := clampInterval(tc.in); got != tc.want {
			t.Errorf("clampInterval(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestNextInterval(t *testing.T) {
	for _, tc := range []struct {
		window   float64
		commits  int64
		interval string
		want     time.Duration
	}{
		// 1.2s at 25ms in 24 transactions: 50ms each, 25ms of overhead;
		// 40 transactions want 30ms each, so 5ms of interval.
		{1.2, 24, "25ms", 5 * time.Millisecond},
		// No overhead to speak of: the window over 40.
		{4, 40, "100ms", 100 * time.Millisecond},
		{2, 40, "50ms", 50 * time.Millisecond},
		// The overhead alone exceeds the budget: the floor.
		{0.2, 2, "1ms", time.Millisecond},
		// Unknown interval: the window over 40.
		{0.8, 10, "", 20 * time.Millisecond},
	} {
		r := Run{WindowSeconds: tc.window, Commits: tc.commits, CommitInterval: tc.interval}
		if got := nextInterval(r); got != tc.want {
			t.Errorf("nextInterval(%gs, %d commits at %q) = %s, want %s", tc.window, tc.commits, tc.interval, got, tc.want)
		}
	}
}

func TestLogLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.log")
	log := strings.Join([]string{
		`{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"restored","partition":0,"records":10,"duration":1500000}`,
		`not json`,
		`{"time":"2026-01-01T00:00:01Z","level":"INFO","msg":"restored","partition":1,"records":5,"duration":"2ms"}`,
		`{"time":"2026-01-01T00:00:02Z","level":"INFO","msg":"stopped","records_in":20000,"records_out":20000,"commits":42,"aborts":0}`,
		``,
	}, "\n")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	lines, err := logLines(path)
	if err != nil {
		t.Fatal(err)
	}
	in, commits, err := stoppedLine(lines)
	if err != nil || in != 20000 || commits != 42 {
		t.Errorf("stoppedLine = %d, %d, %v, want 20000, 42, nil", in, commits, err)
	}
	records, took, parts := restoredLines(lines)
	if records != 15 || took != 3500*time.Microsecond || parts != 2 {
		t.Errorf("restoredLines = %d, %s, %d, want 15, 3.5ms, 2", records, took, parts)
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		records, runs int
		modes         string
		wantErr       string
	}{
		{args: nil, records: 1_000_000, runs: 5, modes: "a,b,c,d,e,f,g"},
		{args: []string{"--quick"}, records: 100_000, runs: 2, modes: "a,b,c,d,e,f,g"},
		{args: []string{"--quick", "--runs", "3", "--modes", "b,a,b"}, records: 100_000, runs: 3, modes: "b,a"},
		{args: []string{"--modes", "a,z"}, wantErr: `unknown mode "z"`},
		{args: []string{"--records", "5", "--runs", "0"}, wantErr: "--runs 0"},
	} {
		cfg, _, err := parseFlags(tc.args, &bytes.Buffer{})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseFlags(%q) error = %v, want one containing %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || cfg.Records != tc.records || cfg.Runs != tc.runs || strings.Join(cfg.Modes, ",") != tc.modes {
			t.Errorf("parseFlags(%q) = records %d, runs %d, modes %v, %v; want %d, %d, %s, nil", tc.args, cfg.Records, cfg.Runs, cfg.Modes, err, tc.records, tc.runs, tc.modes)
		}
	}
}

// TestBrokerGCKeepsPages checks the broker's gc command collects without
// handing the freed memory back to the OS: a run after it would fault
// every page in again, and on a virtual machine that cost more CPU than
// the broker's work. It reads the runtime's count of released heap bytes,
// with the collector off as in the broker, so the background scavenger
// (whose goal then is the memory limit) releases nothing by itself.
func TestBrokerGCKeepsPages(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(8 << 30))
	const size = 64 << 20
	garbage := make([][]byte, 0, 64)
	for range 64 {
		garbage = append(garbage, make([]byte, size/64))
	}
	for _, b := range garbage {
		b[0] = 1 // touch, so the pages are resident
	}
	garbage = nil
	s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	before := int64(s[0].Value.Uint64())
	if reply := newObserver().command("gc"); !strings.HasPrefix(reply, "ok ") {
		t.Fatalf("gc replied %q", reply)
	}
	metrics.Read(s)
	if released := int64(s[0].Value.Uint64()) - before; released > size/2 {
		t.Errorf("gc released %d MiB of the %d MiB freed to the OS, want them kept for the next run", released>>20, size>>20)
	}
}
