package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Run is one measured run of a mode.
type Run struct {
	Mode     string `json:"mode"`
	Index    int    `json:"index"` // 0 is the warm-up
	Pipeline string `json:"pipeline"`
	// Records the run processed: input records, or restored changelog
	// entries.
	Records int64 `json:"records"`
	// WindowSeconds is the processing window (see the package doc);
	// WallSeconds runs from process start to exit (restore: to /readyz
	// 200).
	WindowSeconds    float64 `json:"window_seconds"`
	WallSeconds      float64 `json:"wall_seconds"`
	CPUSeconds       float64 `json:"cpu_seconds"`
	MaxRSSBytes      int64   `json:"max_rss_bytes"`
	BrokerCPUSeconds float64 `json:"broker_cpu_seconds"`
	// Transactions (exactly-once) or offset commits (the baseline, at
	// least once) the run made.
	Commits        int64  `json:"commits"`
	CommitInterval string `json:"commit_interval,omitempty"`
	// CommitP50Seconds and CommitP99Seconds are the median and 99th
	// percentile of the time one commit took (exactly: flushing the
	// transaction's outputs, committing its offsets and ending it; the
	// baseline: flushing and committing offsets), estimated from a
	// histogram of 1-2-5 buckets (1, 2, 5, 10 ms...) as Prometheus's
	// histogram_quantile does: exactly_txn_commit_duration_seconds, and
	// the same histogram in the copy loop.
	CommitP50Seconds float64 `json:"commit_p50_seconds,omitempty"`
	CommitP99Seconds float64 `json:"commit_p99_seconds,omitempty"`
	// OtherCPUSeconds is the CPU time processes other than the client,
	// the broker and the tool used during the run (from /proc/stat; 0
	// where there is none): anything much above 0 means the machine was
	// not quiet and the figures are disturbed.
	OtherCPUSeconds float64 `json:"other_cpu_seconds"`
}

// RecordsPerSecond is the run's throughput over its processing window.
func (r *Run) RecordsPerSecond() float64 {
	if r.WindowSeconds <= 0 {
		return 0
	}
	return float64(r.Records) / r.WindowSeconds
}

// CPUMicrosPerRecord is the client's CPU time per record.
func (r *Run) CPUMicrosPerRecord() float64 {
	if r.Records <= 0 {
		return 0
	}
	return r.CPUSeconds * 1e6 / float64(r.Records)
}

// BrokerMicrosPerRecord is the broker's CPU time per record during the run.
func (r *Run) BrokerMicrosPerRecord() float64 {
	if r.Records <= 0 {
		return 0
	}
	return r.BrokerCPUSeconds * 1e6 / float64(r.Records)
}

// child is a measured process: its output goes to a log file, and once it
// has exited its rusage tells its CPU time and peak RSS.
type child struct {
	cmd     *exec.Cmd
	log     string
	stdout  bytes.Buffer
	started time.Time
	done    chan struct{}
	ended   time.Time
	err     error
}

func startChild(logPath, bin string, args ...string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	c := &child{log: logPath, done: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, f
	c.started = time.Now()
	if err := c.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		c.ended = time.Now()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

// wait waits for the child to exit, killing it when ctx ends first.
func (c *child) wait(ctx context.Context) error {
	select {
	case <-c.done:
	case <-ctx.Done():
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%w; last lines of %s:\n%s", ctx.Err(), c.log, tail(c.log, 20))
	}
	if c.err != nil {
		return fmt.Errorf("%s exited with %v; last lines of %s:\n%s", filepath.Base(c.cmd.Path), c.err, c.log, tail(c.log, 20))
	}
	return nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// usage fills in the run's CPU time and peak RSS from the exited child.
func (c *child) usage(r *Run) {
	st := c.cmd.ProcessState
	r.CPUSeconds = (st.UserTime() + st.SystemTime()).Seconds()
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		r.MaxRSSBytes = ru.Maxrss * 1024 // kilobytes on Linux
		if runtime.GOOS == "darwin" {
			r.MaxRSSBytes = ru.Maxrss
		}
	}
	r.WallSeconds = c.ended.Sub(c.started).Seconds()
}

// logLines decodes the child's JSON log lines (`exactly run --log-format
// json`), skipping anything else.
func logLines(path string) ([]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(line))
		d.UseNumber()
		if d.Decode(&m) == nil {
			out = append(out, m)
		}
	}
	return out, sc.Err()
}

// logInt returns the integer field k of a log line.
func logInt(m map[string]any, k string) (int64, bool) {
	switch v := m[k].(type) {
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// logDuration returns the duration field k: slog's JSON handler writes
// nanoseconds, its text handler a Go duration.
func logDuration(m map[string]any, k string) (time.Duration, bool) {
	switch v := m[k].(type) {
	case json.Number:
		n, err := v.Int64()
		return time.Duration(n), err == nil
	case string:
		d, err := time.ParseDuration(v)
		return d, err == nil
	}
	return 0, false
}

// stoppedLine returns the records_in and commits of the `stopped` line
// exactly logs on exit.
func stoppedLine(lines []map[string]any) (recordsIn, commits int64, err error) {
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i]["msg"] != "stopped" {
			continue
		}
		in, ok1 := logInt(lines[i], "records_in")
		c, ok2 := logInt(lines[i], "commits")
		if !ok1 || !ok2 {
			return 0, 0, fmt.Errorf("the stopped line lacks records_in or commits: %v", lines[i])
		}
		return in, c, nil
	}
	return 0, 0, errors.New("no `stopped` line in the log")
}

// caughtUpLine returns the commit time quantiles of the `caught up` line
// `exactly run --until-caught-up` logs.
func caughtUpLine(lines []map[string]any) (p50, p99 time.Duration, err error) {
	for i := len(lines) - 1; i >= 0; i-- {
		msg, _ := lines[i]["msg"].(string)
		if !strings.HasPrefix(msg, "caught up") {
			continue
		}
		p50, ok1 := logDuration(lines[i], "commit_p50")
		p99, ok2 := logDuration(lines[i], "commit_p99")
		if !ok1 || !ok2 {
			return 0, 0, fmt.Errorf("the caught up line lacks commit_p50 or commit_p99: %v", lines[i])
		}
		return p50, p99, nil
	}
	return 0, 0, errors.New("no `caught up` line in the log")
}

// restoredLines sums the records and durations of the `restored` lines,
// and counts them.
func restoredLines(lines []map[string]any) (records int64, took time.Duration, partitions int) {
	for _, m := range lines {
		if m["msg"] != "restored" {
			continue
		}
		n, _ := logInt(m, "records")
		d, _ := logDuration(m, "duration")
		records += n
		took += d
		partitions++
	}
	return records, took, partitions
}

// cpuMeter tells how much CPU time the machine as a whole, and this
// process, have used; the rest of a run's machine time, less the client's
// and the broker's, went to other processes.
type cpuMeter struct {
	machine, self time.Duration
	ok            bool
}

func readCPU() cpuMeter {
	var m cpuMeter
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		m.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return m
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return m
	}
	// user nice system idle iowait irq softirq steal, in USER_HZ ticks
	// (100 a second on Linux): everything but idle and iowait.
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return m
		}
		ticks += n
	}
	m.machine, m.ok = time.Duration(ticks)*10*time.Millisecond, true
	return m
}

// other returns the CPU time used since m by processes other than this
// one, the client and the broker.
func (m cpuMeter) other(client, broker time.Duration) time.Duration {
	now := readCPU()
	if !m.ok || !now.ok {
		return 0
	}
	return max(now.machine-m.machine-(now.self-m.self)-client-broker, 0)
}

// freePort returns a loopback address with a port that was free a moment
// ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls http://addr/readyz until it answers 200.
func waitReady(ctx context.Context, c *child, addr string) error {
	hc := &http.Client{Timeout: time.Second}
	url := "http://" + addr + "/readyz"
	for {
		if c.exited() {
			return fmt.Errorf("exactly exited before /readyz answered 200; last lines of %s:\n%s", c.log, tail(c.log, 20))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", url, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
