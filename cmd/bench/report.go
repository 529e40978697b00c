package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/exactly-dev/exactly/kafkatest"
)

// Report is what one invocation measured. Every figure of a mode is over
// its counted runs; the warm-up is kept for reference only.
type Report struct {
	Records                  int    `json:"records"`
	Partitions               int    `json:"partitions"`
	ValueBytes               int    `json:"value_bytes"`
	Keys                     int    `json:"keys"`
	Runs                     int    `json:"counted_runs_per_mode"`
	Broker                   string `json:"broker"`
	Latency                  string `json:"latency"`
	FixedCommitInterval      string `json:"fixed_commit_interval,omitempty"`
	Seed                     uint64 `json:"seed"`
	CPUs                     int    `json:"cpus"`
	GoVersion                string `json:"go_version"`
	BrokerMemLimit           string `json:"broker_memlimit"`
	BrokerHeapAfterLoadBytes int64  `json:"broker_heap_after_load_bytes"`
	LogDir                   string `json:"log_dir,omitempty"`

	Modes   []ModeResult `json:"modes"`
	Targets []Target     `json:"targets"`
	Notes   []string     `json:"notes,omitempty"`
}

// ModeResult summarizes a mode's counted runs.
type ModeResult struct {
	Mode           string `json:"mode"`
	Title          string `json:"title"`
	Guarantee      string `json:"guarantee,omitempty"`
	CommitInterval string `json:"commit_interval,omitempty"`

	RecordsPerSecondMedian   float64 `json:"records_per_second_median"`
	RecordsPerSecondBest     float64 `json:"records_per_second_best"`
	CPUMicrosPerRecord       float64 `json:"cpu_us_per_record_median"`
	BrokerCPUMicrosPerRecord float64 `json:"broker_cpu_us_per_record_median"`
	// RatioToBaseline is the median records/s over the baseline's median
	// records/s of the same invocation; 0 without a baseline.
	RatioToBaseline float64 `json:"ratio_to_baseline,omitempty"`
	// Commit time medians over the counted runs of each run's p50 and
	// p99 (see Run).
	CommitP50Seconds  float64 `json:"commit_p50_seconds_median,omitempty"`
	CommitP99Seconds  float64 `json:"commit_p99_seconds_median,omitempty"`
	PeakRSSBytes      int64   `json:"peak_rss_bytes"`
	WallSecondsMedian float64 `json:"wall_seconds_median"`
	// Transactions per run and input records per transaction (medians),
	// for exactly-once runs.
	TransactionsPerRun    float64 `json:"transactions_per_run,omitempty"`
	RecordsPerTransaction float64 `json:"records_per_transaction,omitempty"`
	MinTransactions       int64   `json:"min_transactions,omitempty"`

	Warmup *Run  `json:"warmup,omitempty"`
	Runs   []Run `json:"runs"`
}

// Target is one of the goals, judged on this invocation.
type Target struct {
	Goal   string `json:"goal"`
	Got    string `json:"got"`
	Result string `json:"result"` // PASS, MISS, or "n/a" with the reason in Got
}

func newReport(cfg Config) *Report {
	rep := &Report{
		Records:        cfg.Records,
		Partitions:     cfg.Partitions,
		ValueBytes:     cfg.ValueBytes,
		Keys:           cfg.Keys,
		Runs:           cfg.Runs,
		Broker:         cfg.Broker,
		Latency:        cfg.Latency.String(),
		Seed:           cfg.Seed,
		CPUs:           runtime.NumCPU(),
		GoVersion:      runtime.Version(),
		BrokerMemLimit: cfg.BrokerMemLimit,
	}
	if cfg.CommitInterval > 0 {
		rep.FixedCommitInterval = cfg.CommitInterval.String()
	}
	return rep
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func each(runs []Run, f func(*Run) float64) []float64 {
	out := make([]float64, len(runs))
	for i := range runs {
		out[i] = f(&runs[i])
	}
	return out
}

// summarize fills in the modes, targets and notes from the runs measured.
func (rep *Report) summarize(sel []*mode, warmups map[string]Run, runs map[string][]Run, intervals map[string]time.Duration) {
	rep.Modes, rep.Targets, rep.Notes = nil, nil, nil
	for _, m := range sel {
		rs := runs[m.id]
		if len(rs) == 0 {
			continue
		}
		mr := ModeResult{Mode: m.id, Title: m.title, Guarantee: m.guarantee, Runs: rs, CommitInterval: rs[0].CommitInterval}
		if w, ok := warmups[m.id]; ok {
			mr.Warmup = &w
		}
		rps := each(rs, (*Run).RecordsPerSecond)
		mr.RecordsPerSecondMedian = median(rps)
		mr.RecordsPerSecondBest = slices.Max(rps)
		mr.CPUMicrosPerRecord = median(each(rs, (*Run).CPUMicrosPerRecord))
		mr.BrokerCPUMicrosPerRecord = median(each(rs, (*Run).BrokerMicrosPerRecord))
		mr.CommitP50Seconds = median(each(rs, func(r *Run) float64 { return r.CommitP50Seconds }))
		mr.CommitP99Seconds = median(each(rs, func(r *Run) float64 { return r.CommitP99Seconds }))
		mr.WallSecondsMedian = median(each(rs, func(r *Run) float64 { return r.WallSeconds }))
		for _, r := range rs {
			mr.PeakRSSBytes = max(mr.PeakRSSBytes, r.MaxRSSBytes)
		}
		if m.exactlyOnce() && !m.restore() {
			mr.TransactionsPerRun = median(each(rs, func(r *Run) float64 { return float64(r.Commits) }))
			mr.RecordsPerTransaction = median(each(rs, func(r *Run) float64 { return float64(r.Records) / float64(max(r.Commits, 1)) }))
			mr.MinTransactions = rs[0].Commits
			for _, r := range rs {
				mr.MinTransactions = min(mr.MinTransactions, r.Commits)
			}
		}
		rep.Modes = append(rep.Modes, mr)
	}
	if base := rep.mode("a"); base != nil && base.RecordsPerSecondMedian > 0 {
		for i := range rep.Modes {
			if rep.Modes[i].Mode != "f" {
				rep.Modes[i].RatioToBaseline = rep.Modes[i].RecordsPerSecondMedian / base.RecordsPerSecondMedian
			}
		}
	}
	rep.judge()

	var lowered []string
	for _, m := range rep.Modes {
		if m.MinTransactions > 0 && m.MinTransactions < minTxns {
			fix := "lower --commit-interval or raise --records"
			if m.RecordsPerTransaction < 1.5*maxPoll {
				// exactly ends a transaction only after a poll, and
				// a poll takes up to maxPoll buffered records.
				fix = fmt.Sprintf("a transaction already holds about one poll (exactly polls up to %s records), so only more --records give more", thousands(maxPoll))
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("mode %s: a run spanned only %d transactions (< %d): %s", m.Mode, m.MinTransactions, minTxns, fix))
		}
		if d, ok := intervals[m.Mode]; ok && d < maxInterval {
			lowered = append(lowered, m.Mode+" "+d.String())
		}
	}
	var other, machine float64
	var disturbed []string
	for _, m := range rep.Modes {
		for _, r := range m.Runs {
			other += r.OtherCPUSeconds
			machine += r.WallSeconds * float64(rep.CPUs)
			if r.WallSeconds > 0 && r.OtherCPUSeconds/(r.WallSeconds*float64(rep.CPUs)) > 2*quietShare {
				disturbed = append(disturbed, r.Pipeline)
			}
		}
	}
	if machine > 0 && (other/machine > quietShare || len(disturbed) > 0) {
		worst := ""
		if len(disturbed) > 0 {
			worst = fmt.Sprintf("; more than %.0f%% in %s", 200*quietShare, strings.Join(disturbed, ", "))
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("the machine was not quiet: other processes used %.0f%% of its CPU during the counted runs (%.1f CPU-seconds%s); medians resist a few disturbed runs, but better run again on an idle machine",
			100*other/machine, other, worst))
	}
	if len(lowered) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("commit interval lowered from exactly's 100ms default so each exactly-once run spans about %d transactions (at least %d): %s", targetTxns, minTxns, strings.Join(lowered, ", ")))
	}
}

// quietShare is the share of the machine's CPU other processes may use
// during the counted runs before the report says the figures are
// disturbed. /proc/stat counts in 10ms ticks.
const quietShare = 0.05

func (rep *Report) mode(id string) *ModeResult {
	for i := range rep.Modes {
		if rep.Modes[i].Mode == id {
			return &rep.Modes[i]
		}
	}
	return nil
}

// judge sets the targets.
func (rep *Report) judge() {
	add := func(goal string, ok bool, got string) {
		res := "MISS"
		if ok {
			res = "PASS"
		}
		rep.Targets = append(rep.Targets, Target{Goal: goal, Got: got, Result: res})
	}
	na := func(goal, why string) { rep.Targets = append(rep.Targets, Target{Goal: goal, Got: why, Result: "n/a"}) }
	cpuTarget := func(id, what string, limit float64) {
		goal := fmt.Sprintf("%s ≤ %g µs/record", what, limit)
		if m := rep.mode(id); m != nil {
			add(goal, m.CPUMicrosPerRecord <= limit, fmt.Sprintf("%.2f µs/record", m.CPUMicrosPerRecord))
		} else {
			na(goal, "mode "+id+" not run")
		}
	}
	cpuTarget("b", "b pass-through exactly-once", 1.5)
	goal := "b pass-through exactly-once ≥ 0.9× baseline records/s"
	if b := rep.mode("b"); b != nil && b.RatioToBaseline > 0 {
		add(goal, b.RatioToBaseline >= 0.9, fmt.Sprintf("%.2f×", b.RatioToBaseline))
	} else {
		na(goal, "needs modes a and b")
	}
	cpuTarget("c", "c JSON filter+map exactly-once", 2.5)
	cpuTarget("d", "d keyed count+sum exactly-once", 3)
	goal = "f restore ≥ 1,000,000 changelog records/s"
	if f := rep.mode("f"); f != nil {
		add(goal, f.RecordsPerSecondMedian >= 1e6, thousands(f.RecordsPerSecondMedian)+" records/s")
	} else {
		na(goal, "mode f not run")
	}
	goal = "latency model: d exactly-once at 100ms keeps ≥ 0.9× of e at-least-once records/s"
	d, e := rep.mode("d"), rep.mode("e")
	switch {
	case rep.Latency == "0s" && rep.Broker != brokerKafka:
		na(goal, "run with --latency, e.g. 3ms")
	case d == nil || e == nil || e.RecordsPerSecondMedian == 0:
		na(goal, "needs modes d and e")
	default:
		got := fmt.Sprintf("%.2f×", d.RecordsPerSecondMedian/e.RecordsPerSecondMedian)
		if d.CommitInterval != "100ms" {
			got += " (at commit interval " + d.CommitInterval + ", not 100ms)"
		}
		add(goal, d.RecordsPerSecondMedian >= 0.9*e.RecordsPerSecondMedian, got)
	}
}

// WriteTable prints the report for people.
func (rep *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "exactly bench: %s records of %d-byte values (%s keys) over %d partitions; %d counted runs + 1 warm-up per mode, shuffled (seed %d)\n",
		thousands(float64(rep.Records)), rep.ValueBytes, thousands(float64(rep.Keys)), rep.Partitions, rep.Runs, rep.Seed)
	latency := "off"
	if rep.Latency != "0s" {
		latency = rep.Latency + " on Produce, OffsetCommit and transaction requests"
	}
	if rep.Broker == brokerKafka {
		fmt.Fprintf(w, "%d CPUs, %s; broker: Apache Kafka %s, 1 node (KRaft, combined broker and controller, 512 MiB heap) on loopback, from kafkatest\n\n",
			rep.CPUs, rep.GoVersion, kafkatest.Version)
	} else {
		fmt.Fprintf(w, "%d CPUs, %s; broker: kfake in its own process, GOGC=off GOMEMLIMIT=%s, run topics deleted and GC between runs; latency model: %s\n\n",
			rep.CPUs, rep.GoVersion, rep.BrokerMemLimit, latency)
	}

	// Numbers align right; the mode's title is padded to align left.
	width := len("mode")
	titles := make([]string, len(rep.Modes))
	for i, m := range rep.Modes {
		titles[i] = m.Mode + "  " + m.Title
		if m.Guarantee != "" && m.Mode != "f" {
			titles[i] += ", " + m.Guarantee
		}
		width = max(width, utf8.RuneCountInString(titles[i]))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\trec/s median\trec/s best\tCPU µs/rec\tratio\tbroker µs/rec\tpeak RSS\ttxns/run\trec/txn\tinterval\tcommit p50\tcommit p99\t\n", width, "mode")
	for i, m := range rep.Modes {
		ratio, txns, perTxn := "-", "-", "-"
		if m.RatioToBaseline > 0 {
			ratio = fmt.Sprintf("%.2f", m.RatioToBaseline)
		}
		if m.TransactionsPerRun > 0 {
			txns = fmt.Sprintf("%.0f", m.TransactionsPerRun)
			perTxn = thousands(m.RecordsPerTransaction)
		}
		interval := m.CommitInterval
		if interval == "" {
			interval = "-"
		}
		p50, p99 := "-", "-"
		if m.CommitP50Seconds > 0 {
			p50, p99 = millis(m.CommitP50Seconds), millis(m.CommitP99Seconds)
		}
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%.2f\t%s\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			width, titles[i], thousands(m.RecordsPerSecondMedian), thousands(m.RecordsPerSecondBest), m.CPUMicrosPerRecord,
			ratio, m.BrokerCPUMicrosPerRecord, mib(m.PeakRSSBytes), txns, perTxn, interval, p50, p99)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "rec/s: input records over the window from the group's assignment to its last offset commit, as the broker saw it")
	fmt.Fprintln(w, "  (f: changelog entries over the restore time exactly logged). CPU: the client process's user+sys, start to exit,")
	fmt.Fprintln(w, "  per record. ratio: rec/s over the baseline's. Medians over the counted runs; txns/run from exactly's `stopped` line.")
	fmt.Fprintln(w, "  commit p50/p99: one commit (a: flush + offset commit; exactly: flush, offsets, end the transaction), from a histogram")
	fmt.Fprintln(w, "  of 1-2-5 ms buckets interpolated as histogram_quantile does (exactly_txn_commit_duration_seconds); medians over runs.")
	if f := rep.mode("f"); f != nil {
		fmt.Fprintf(w, "  f: %s entries; %.2fs median from process start to /readyz 200 (%s entries/s including start-up and group join).\n",
			thousands(float64(rep.Records)), f.WallSecondsMedian, thousands(float64(rep.Records)/f.WallSecondsMedian))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "targets (informational):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range rep.Targets {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", t.Result, t.Goal, t.Got)
	}
	tw.Flush()
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// thousands formats x rounded, with thousands separators.
func thousands(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "-"
	}
	s := fmt.Sprintf("%.0f", x)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// millis formats seconds as milliseconds, with one decimal below 10.
func millis(s float64) string {
	if ms := s * 1000; ms < 10 {
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", s*1000)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
