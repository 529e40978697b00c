package metrics

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// touch gives every metric of p one series.
func touch(p *Pipeline) {
	p.RecordsIn.WithLabelValues("paid").Inc()
	p.RecordsOut.WithLabelValues("paid").Inc()
	p.Errors.WithLabelValues("priced", "eval").Inc()
	p.DeadLettered.WithLabelValues("priced", "eval").Inc()
	p.TxnCommits.Inc()
	p.TxnAborts.WithLabelValues("rebalance").Inc()
	p.CommitDuration.Observe(0.012)
	p.RecordsPerTxn.Observe(250)
	p.Rebuilds.Inc()
	p.Fenced.Inc()
	p.Rebalances.Inc()
	p.AssignedPartitions.Set(3)
	p.Lag.WithLabelValues("orders", "0").Set(42)
	p.EndToEnd.Observe(0.3)
	p.StoreEntries.WithLabelValues("per-user", "0").Set(10)
	p.StoreBytes.WithLabelValues("per-user", "0").Set(4096)
	p.RestoreRecords.WithLabelValues("per-user").Add(100)
	p.RestoreRemaining.WithLabelValues("per-user", "0").Set(0)
	p.RestoreDuration.WithLabelValues("per-user").Observe(1.5)
	p.LateRecords.WithLabelValues("per-window").Inc()
	p.JoinLookups.WithLabelValues("enrich", "match").Inc()
	p.JoinBuffered.WithLabelValues("pairs", "0").Set(3)
	p.JoinExpired.WithLabelValues("pairs", "window").Inc()
	p.GlobalTableLag.WithLabelValues("countries").Set(0)
}

// contract is the name, type and label names of every Pipeline metric, as
// the processor codes against them.
var contract = map[string]struct {
	typ    dto.MetricType
	labels []string // besides pipeline
}{
	"exactly_records_in_total":            {dto.MetricType_COUNTER, []string{"node"}},
	"exactly_records_out_total":           {dto.MetricType_COUNTER, []string{"node"}},
	"exactly_processing_errors_total":     {dto.MetricType_COUNTER, []string{"node", "phase"}},
	"exactly_dead_lettered_total":         {dto.MetricType_COUNTER, []string{"node", "phase"}},
	"exactly_txn_commits_total":           {dto.MetricType_COUNTER, nil},
	"exactly_txn_aborts_total":            {dto.MetricType_COUNTER, []string{"reason"}},
	"exactly_txn_commit_duration_seconds": {dto.MetricType_HISTOGRAM, nil},
	"exactly_txn_records":                 {dto.MetricType_HISTOGRAM, nil},
	"exactly_client_rebuilds_total":       {dto.MetricType_COUNTER, nil},
	"exactly_producer_fenced_total":       {dto.MetricType_COUNTER, nil},
	"exactly_rebalances_total":            {dto.MetricType_COUNTER, nil},
	"exactly_assigned_partitions":         {dto.MetricType_GAUGE, nil},
	"exactly_consumer_lag_records":        {dto.MetricType_GAUGE, []string{"topic", "partition"}},
	"exactly_end_to_end_latency_seconds":  {dto.MetricType_HISTOGRAM, nil},
	"exactly_state_entries":               {dto.MetricType_GAUGE, []string{"node", "partition"}},
	"exactly_state_size_bytes":            {dto.MetricType_GAUGE, []string{"node", "partition"}},
	"exactly_restore_records_total":       {dto.MetricType_COUNTER, []string{"node"}},
	"exactly_restore_remaining_records":   {dto.MetricType_GAUGE, []string{"node", "partition"}},
	"exactly_restore_duration_seconds":    {dto.MetricType_HISTOGRAM, []string{"node"}},
	"exactly_late_records_total":          {dto.MetricType_COUNTER, []string{"node"}},
	"exactly_join_lookups_total":          {dto.MetricType_COUNTER, []string{"node", "result"}},
	"exactly_global_table_lag_records":    {dto.MetricType_GAUGE, []string{"table"}},
	"exactly_join_buffered_entries":       {dto.MetricType_GAUGE, []string{"node", "partition"}},
	"exactly_join_expired_entries_total":  {dto.MetricType_COUNTER, []string{"node", "reason"}},
}

func TestPipelineContract(t *testing.T) {
	if n := reflect.TypeFor[Pipeline]().NumField(); n != len(contract) {
		t.Fatalf("Pipeline has %d fields, contract lists %d metrics: update both", n, len(contract))
	}
	reg := prometheus.NewPedanticRegistry()
	touch(NewPipeline(reg, "quickstart"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() error: %v", err)
	}

	var got, want []string
	for name := range contract {
		want = append(want, name)
	}
	for _, mf := range mfs {
		got = append(got, mf.GetName())
		c, ok := contract[mf.GetName()]
		if !ok {
			continue
		}
		if mf.GetType() != c.typ {
			t.Errorf("%s type = %v, want %v", mf.GetName(), mf.GetType(), c.typ)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help", mf.GetName())
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			var names []string
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
				names = append(names, l.GetName())
			}
			wantNames := append([]string{"pipeline"}, c.labels...)
			sort.Strings(names)
			sort.Strings(wantNames)
			if !slices.Equal(names, wantNames) {
				t.Errorf("%s labels = %v, want %v", mf.GetName(), names, wantNames)
			}
			if labels["pipeline"] != "quickstart" {
				t.Errorf("%s pipeline = %q, want %q", mf.GetName(), labels["pipeline"], "quickstart")
			}
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("gathered names = %v, want %v", got, want)
	}
}

func TestNewPipelineNilRegistry(t *testing.T) {
	p := NewPipeline(nil, "p")
	q := NewPipeline(nil, "p") // registers nowhere, so no duplicate
	p.TxnCommits.Inc()
	p.TxnCommits.Inc()
	q.TxnCommits.Inc()
	if got := testutil.ToFloat64(p.TxnCommits); got != 2 {
		t.Errorf("TxnCommits = %v, want 2", got)
	}
	touch(p) // every metric works unregistered
}

func TestNewPipelineSameRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	touch(NewPipeline(reg, "a"))
	touch(NewPipeline(reg, "b")) // another pipeline shares the registry
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("Gather() with two pipelines: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("NewPipeline(reg, %q) twice did not panic", "a")
		}
	}()
	NewPipeline(reg, "a")
}

func TestBuckets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		got    []float64
		lo, hi float64
		n      int
	}{
		{"commit", commitBuckets, 0.001, 10, 13},
		{"txn records", txnRecordBuckets, 1, 100_000, 16},
		{"end to end", endToEndBuckets, 0.001, 60, 16},
		{"restore", restoreBuckets, 0.01, 600, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.got) != tc.n || tc.got[0] != tc.lo || tc.got[len(tc.got)-1] != tc.hi {
				t.Errorf("buckets = %v, want %d from %v to %v", tc.got, tc.n, tc.lo, tc.hi)
			}
			if !slices.IsSorted(tc.got) || len(slices.Compact(slices.Clone(tc.got))) != len(tc.got) {
				t.Errorf("buckets = %v, want strictly increasing", tc.got)
			}
		})
	}
	if got, want := oneTwoFive(0.001, 0.01), []float64{0.001, 0.002, 0.005, 0.01}; !slices.Equal(got, want) {
		t.Errorf("oneTwoFive(0.001, 0.01) = %v, want %v", got, want)
	}
	if got, want := oneTwoFive(1, 60), []float64{1, 2, 5, 10, 20, 50, 60}; !slices.Equal(got, want) {
		t.Errorf("oneTwoFive(1, 60) = %v, want %v", got, want)
	}
}

// TestLint lints everything a process exposes: the Go and process
// collectors, a pipeline, the Kafka client metrics with series from a
// real client, and the promhttp handler's own.
func TestLint(t *testing.T) {
	reg := NewRegistry()
	touch(NewPipeline(reg, "quickstart"))
	hooks := KafkaHooks(reg, "quickstart")
	NewServer("127.0.0.1:0", reg, nil, nil) // registers promhttp_*

	c := newCluster(t)
	cl := newClient(t, c, hooks)
	produce(t, cl, 3)
	consume(t, cl, 3)

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("GatherAndLint() error: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	// The lint saw series of every kind, not empty families. franz-go
	// calls its produce hooks as it handles the broker's response, which
	// may be just after ProduceSync returns: wait for them.
	wants := []string{
		"go_goroutines",
		"process_cpu_seconds_total",
		"exactly_txn_commits_total",
		"exactly_kafka_produce_records_total",
		"exactly_kafka_fetch_records_total",
		"exactly_kafka_request_duration_e2e_seconds",
	}
	var names []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("Gather() error: %v", err)
		}
		names = names[:0]
		for _, mf := range mfs {
			names = append(names, mf.GetName())
		}
		if !slices.ContainsFunc(wants, func(w string) bool { return !slices.Contains(names, w) }) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range wants {
		if !slices.Contains(names, want) {
			t.Errorf("gathered names lack %s: %s", want, strings.Join(names, " "))
		}
	}
}
