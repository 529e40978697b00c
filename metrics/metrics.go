// Package metrics holds the Prometheus metrics of a pipeline, on a
// registry the caller creates (never the global one), and serves them.
//
// A process builds one registry and puts everything on it:
//
//	reg := metrics.NewRegistry()                 // go_* and process_* collectors
//	m := metrics.NewPipeline(reg, topo.Name)     // exactly_* pipeline metrics
//	kafka := metrics.KafkaHooks(reg, topo.Name)  // exactly_kafka_* client metrics, once
//	cl, err := kgo.NewClient(kafka, ...)         // the same opt for every client
//	srv := metrics.NewServer(addr, reg, ready, log)
//	err = srv.Run(ctx)                           // /metrics, /livez, /readyz
//
// Names follow <namespace>_<subsystem>_<name>_<unit> in base units
// (seconds, bytes), with _total only on counters. Every series carries the
// constant label pipeline; the other labels are bounded (node, phase,
// reason, topic, partition, and the broker node_id on exactly_kafka_*),
// never a key or an id.
package metrics

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every metric name.
const Namespace = "exactly"

// Pipeline holds the metrics of one running pipeline. Every metric carries
// the constant label pipeline; other labels are bounded: node (a step
// name), phase, reason, topic and partition.
type Pipeline struct {
	RecordsIn          *prometheus.CounterVec   // node: exactly_records_in_total
	RecordsOut         *prometheus.CounterVec   // node: exactly_records_out_total
	Errors             *prometheus.CounterVec   // node, phase: exactly_processing_errors_total
	DeadLettered       *prometheus.CounterVec   // node, phase: exactly_dead_lettered_total
	TxnCommits         prometheus.Counter       // exactly_txn_commits_total
	TxnAborts          *prometheus.CounterVec   // reason: exactly_txn_aborts_total
	CommitDuration     prometheus.Histogram     // exactly_txn_commit_duration_seconds
	RecordsPerTxn      prometheus.Histogram     // exactly_txn_records
	Rebuilds           prometheus.Counter       // exactly_client_rebuilds_total
	Fenced             prometheus.Counter       // exactly_producer_fenced_total
	Rebalances         prometheus.Counter       // exactly_rebalances_total
	AssignedPartitions prometheus.Gauge         // exactly_assigned_partitions
	Lag                *prometheus.GaugeVec     // topic, partition: exactly_consumer_lag_records
	EndToEnd           prometheus.Histogram     // exactly_end_to_end_latency_seconds
	StoreEntries       *prometheus.GaugeVec     // node, partition: exactly_state_entries
	StoreBytes         *prometheus.GaugeVec     // node, partition: exactly_state_size_bytes
	RestoreRecords     *prometheus.CounterVec   // node: exactly_restore_records_total
	RestoreRemaining   *prometheus.GaugeVec     // node, partition: exactly_restore_remaining_records
	GlobalTableLag     *prometheus.GaugeVec     // table: exactly_global_table_lag_records
	JoinLookups        *prometheus.CounterVec   // node, result: exactly_join_lookups_total
	JoinBuffered       *prometheus.GaugeVec     // node, partition: exactly_join_buffered_entries
	JoinExpired        *prometheus.CounterVec   // node, reason: exactly_join_expired_entries_total
	RestoreDuration    *prometheus.HistogramVec // node: exactly_restore_duration_seconds
	LateRecords        *prometheus.CounterVec   // node: exactly_late_records_total
}

// Histogram buckets. Each is a 1-2-5 series (1, 2, 5, 10, 20, ...): round
// bounds a person can read off a dashboard, about three per decade, so
// quantiles stay within a factor of 2.5 over the whole range.
var (
	// commitBuckets spans 1ms (a local broker) to 10s (the default
	// kafka.transaction_timeout: a commit slower than that has been
	// aborted by the broker).
	commitBuckets = oneTwoFive(0.001, 10)
	// txnRecordBuckets spans 1 to 100k records: one record per commit
	// interval up to a saturated interval at high throughput.
	txnRecordBuckets = oneTwoFive(1, 100_000)
	// endToEndBuckets spans 1ms to 60s, from record timestamp to commit;
	// beyond a minute the lag gauge says more than a latency bucket.
	endToEndBuckets = oneTwoFive(0.001, 60)
	// restoreBuckets spans 10ms (an empty changelog) to 10 minutes (a full
	// replay of a large in-memory store).
	restoreBuckets = oneTwoFive(0.01, 600)
)

// NewPipeline creates the metrics of pipeline and registers them on reg.
// A nil reg registers them nowhere (they still count), which is what
// tests and tools that serve no metrics pass.
//
// It panics if reg already holds the metrics of a pipeline with the same
// name (a second NewPipeline for one pipeline on one registry is a
// programming error); pipelines with different names can share a
// registry.
func NewPipeline(reg prometheus.Registerer, pipeline string) *Pipeline {
	f := factory{reg: reg, labels: prometheus.Labels{"pipeline": pipeline}}
	return &Pipeline{
		RecordsIn: f.counterVec("records_in_total",
			"Records that entered a step, by step (node).",
			"node"),
		RecordsOut: f.counterVec("records_out_total",
			"Records that left a step, by step (node); a filter emits fewer than it receives, a flat_map more.",
			"node"),
		Errors: f.counterVec("processing_errors_total",
			"Records a step failed on, by step (node) and phase (decode, eval or encode).",
			"node", "phase"),
		DeadLettered: f.counterVec("dead_lettered_total",
			"Records written to the dead-letter topic after failing, by step (node) and phase.",
			"node", "phase"),
		TxnCommits: f.counter("txn_commits_total",
			"Kafka transactions committed (outputs and input offsets together)."),
		TxnAborts: f.counterVec("txn_aborts_total",
			"Kafka transactions aborted or of unknown outcome, by reason (e.g. rebalance, requested, error, unknown_outcome).",
			"reason"),
		CommitDuration: f.histogram("txn_commit_duration_seconds",
			"Time to commit one transaction: flushing its outputs, sending its offsets and ending it.",
			commitBuckets),
		RecordsPerTxn: f.histogram("txn_records",
			"Input records per committed transaction.",
			txnRecordBuckets),
		Rebuilds: f.counter("client_rebuilds_total",
			"Kafka clients closed and recreated to resume from the committed offsets (after an unknown transaction outcome or a fence)."),
		Fenced: f.counter("producer_fenced_total",
			"Times the transactional producer was fenced by another producer with the same transactional id."),
		Rebalances: f.counter("rebalances_total",
			"Consumer group partition assignments received."),
		AssignedPartitions: f.gauge("assigned_partitions",
			"Source partitions currently assigned to this instance."),
		Lag: f.gaugeVec("consumer_lag_records",
			"Records between the last consumed offset and the high watermark, by topic and partition.",
			"topic", "partition"),
		EndToEnd: f.histogram("end_to_end_latency_seconds",
			"Time from the oldest input record's timestamp in a transaction to the commit of that transaction.",
			endToEndBuckets),
		StoreEntries: f.gaugeVec("state_entries",
			"Entries (keys) in an aggregate's state store, by step (node) and partition.",
			"node", "partition"),
		StoreBytes: f.gaugeVec("state_size_bytes",
			"Approximate size of an aggregate's state store, by step (node) and partition.",
			"node", "partition"),
		RestoreRecords: f.counterVec("restore_records_total",
			"Changelog records replayed into state stores while restoring, by step (node).",
			"node"),
		RestoreRemaining: f.gaugeVec("restore_remaining_records",
			"Changelog records left to replay before a partition's store is restored, by step (node) and partition; 0 when done.",
			"node", "partition"),
		JoinLookups: f.counterVec("join_lookups_total",
			"Lookups of join steps, by step (node) and result: match or miss (a stream-stream join: whether a record found a buffered record of the other side), or unmatched (a stream-stream join emitted a record without a match when its window closed); counted as they happen (transactions that abort included).",
			"node", "result"),
		JoinBuffered: f.gaugeVec("join_buffered_entries",
			"Records a stream-stream join step holds in its buffers (both sides), by step (node) and partition, as last committed.",
			"node", "partition"),
		JoinExpired: f.counterVec("join_expired_entries_total",
			"Records that left a stream-stream join's buffers, by step (node) and reason: window (event time passed their window plus grace) or ttl (buffered longer than ttl, wall clock); committed transactions only.",
			"node", "reason"),
		GlobalTableLag: f.gaugeVec("global_table_lag_records",
			"Records of a global table's topic this instance has not read yet, by table (source name); the instance is not ready until it first reaches 0.",
			"table"),
		RestoreDuration: f.histogramVec("restore_duration_seconds",
			"Time to restore one partition's state store from its changelog, by step (node).",
			restoreBuckets, "node"),
		LateRecords: f.counterVec("late_records_total",
			"Records that arrived after their window closed and were dropped, by step (node).",
			"node"),
	}
}

// NewRegistry returns a new registry holding the Go runtime collector
// (go_*) and the process collector (process_*), for NewPipeline,
// KafkaHooks and NewServer to share. The global registry is never used.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// factory creates metrics under Namespace with constant labels and
// registers each on reg, unless reg is nil.
type factory struct {
	reg    prometheus.Registerer
	labels prometheus.Labels
}

func (f factory) register(c prometheus.Collector) {
	if f.reg != nil {
		f.reg.MustRegister(c)
	}
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: f.labels})
	f.register(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: f.labels}, labels)
	f.register(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: f.labels})
	f.register(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: f.labels}, labels)
	f.register(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: f.labels, Buckets: buckets})
	f.register(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, ConstLabels: f.labels, Buckets: buckets}, labels)
	f.register(h)
	return h
}

// oneTwoFive returns the bounds 1, 2 and 5 times a power of ten from lo
// (itself such a bound) up to hi, with hi appended when the series steps
// over it (oneTwoFive(1, 60) is 1 2 5 10 20 50 60).
func oneTwoFive(lo, hi float64) []float64 {
	var bs []float64
	for e := int(math.Floor(math.Log10(lo))); ; e++ {
		for _, m := range []float64{1, 2, 5} {
			// m*10^e rather than repeated multiplication, so that bounds
			// print as 0.002, not 0.0020000000000000005.
			b := m * math.Pow10(e)
			if e < 0 {
				b = m / math.Pow10(-e)
			}
			if b < lo {
				continue
			}
			if b >= hi {
				return append(bs, hi)
			}
			bs = append(bs, b)
		}
	}
}
