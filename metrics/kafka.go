package metrics

import (
	"net"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
)

// kafkaSubsystem names the franz-go client metrics: exactly_kafka_*.
const kafkaSubsystem = "kafka"

// KafkaHooks returns a kgo.Opt that counts what the franz-go clients of
// pipeline do, as exactly_kafka_* metrics registered on reg with the
// constant label pipeline. A nil reg registers them nowhere.
//
// Call it ONCE per pipeline and process, and pass the same opt to every
// kgo.NewClient of that pipeline, including each client rebuilt after an
// unknown transaction outcome or a fence, and clients that live side by
// side (a restore consumer next to the transactional client):
//
//	kafka := metrics.KafkaHooks(reg, name) // at start
//	cl, err := kgo.NewClient(kafka, kgo.SeedBrokers(...), ...) // every (re)build
//
// Counters then run on across rebuilds, summed over every client. A
// second KafkaHooks for the same pipeline on the same reg panics, as
// NewPipeline does: its metrics are already there.
//
// Why not hand kprom to each client directly: a kprom.Metrics creates its
// collectors in OnNewClient, for every client it is given. With a
// registerer it registers them there, so a second live client panics on
// duplicate registration and every rebuild restarts the counters at zero;
// as a collector (kprom.Registry(nil)) it keeps the collectors of every
// client it ever saw, so after one rebuild a scrape fails on duplicate
// series. So here one kprom.Metrics is built at once, its collectors
// created a single time, and every client's broker, produce and fetch
// hooks feed those. kprom's buffered_* gauges are the exception: they
// read one client (a closed one, after a rebuild) and two of them end in
// _total although they are gauges; they are replaced by
// exactly_kafka_buffered_{produce,fetch}_{records,bytes}, summed over the
// clients open at scrape time.
//
// Metrics (all with pipeline; node_id is the broker, seed_<n> for a seed):
//
//	exactly_kafka_connects_total, _connect_errors_total, _disconnects_total  node_id
//	exactly_kafka_write_bytes_total, _write_errors_total                     node_id
//	exactly_kafka_read_bytes_total, _read_errors_total                       node_id
//	exactly_kafka_request_duration_e2e_seconds                               node_id
//	exactly_kafka_request_throttled_seconds                                  node_id
//	exactly_kafka_produce_bytes_total, _produce_records_total                node_id, topic (uncompressed)
//	exactly_kafka_fetch_bytes_total, _fetch_records_total                    node_id, topic (uncompressed)
//	exactly_kafka_buffered_produce_records, _buffered_produce_bytes
//	exactly_kafka_buffered_fetch_records, _buffered_fetch_bytes
func KafkaHooks(reg prometheus.Registerer, pipeline string) kgo.Opt {
	labels := prometheus.Labels{"pipeline": pipeline}
	h := &kafkaHooks{
		prom: kprom.NewMetrics(Namespace,
			kprom.Registry(nil), // kafkaHooks is the collector; see above
			kprom.Subsystem(kafkaSubsystem),
			kprom.WithStaticLabel(labels),
			kprom.Histograms(kprom.RequestDurationE2E, kprom.RequestThrottled),
			kprom.FetchAndProduceDetail(kprom.ByNode, kprom.ByTopic, kprom.Records, kprom.UncompressedBytes),
		),
		drop: make(map[*prometheus.Desc]bool),
	}
	h.clients.set = make(map[*kgo.Client]struct{})

	// kprom creates its collectors in OnNewClient. Without
	// kprom.WithClientLabel it does not touch the client there; only its
	// buffered_* gauge funcs keep it, to read at collection, and those are
	// dropped below. So a nil client creates the collectors once, here,
	// before any client can call a hook: later hooks only read the fields
	// this call wrote, with no data race.
	h.prom.OnNewClient(nil)

	descs := make(chan *prometheus.Desc)
	go func() {
		h.prom.Describe(descs)
		close(descs)
	}()
	buffered := Namespace + "_" + kafkaSubsystem + "_buffered_"
	for d := range descs {
		if strings.HasPrefix(descName(d), buffered) {
			h.drop[d] = true
		} else {
			h.descs = append(h.descs, d)
		}
	}

	gauge := func(name, help string, f func(*kgo.Client) int64) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace:   Namespace,
			Subsystem:   kafkaSubsystem,
			Name:        name,
			Help:        help,
			ConstLabels: labels,
		}, func() float64 { return float64(h.sum(f)) })
	}
	h.buffered = []prometheus.GaugeFunc{
		gauge("buffered_produce_records",
			"Records given to the open Kafka clients to produce and not yet acknowledged by the broker.",
			(*kgo.Client).BufferedProduceRecords),
		gauge("buffered_produce_bytes",
			"Bytes of keys and values given to the open Kafka clients to produce and not yet acknowledged by the broker.",
			(*kgo.Client).BufferedProduceBytes),
		gauge("buffered_fetch_records",
			"Records fetched by the open Kafka clients and not yet polled.",
			(*kgo.Client).BufferedFetchRecords),
		gauge("buffered_fetch_bytes",
			"Bytes of keys and values fetched by the open Kafka clients and not yet polled.",
			(*kgo.Client).BufferedFetchBytes),
	}
	for _, g := range h.buffered {
		h.descs = append(h.descs, g.Desc())
	}

	if reg != nil {
		reg.MustRegister(h)
	}
	return kgo.WithHooks(h)
}

// kafkaHooks is the kgo hook and the Prometheus collector behind
// KafkaHooks: one per pipeline and process, shared by all its clients.
type kafkaHooks struct {
	prom     *kprom.Metrics            // collectors created once; fed by every client
	drop     map[*prometheus.Desc]bool // kprom's buffered_* gauges, never collected
	descs    []*prometheus.Desc        // what Collect sends: kprom's kept and buffered
	buffered []prometheus.GaugeFunc    // exactly_kafka_buffered_*, over clients.set

	clients struct {
		sync.Mutex
		set map[*kgo.Client]struct{} // open clients: between OnNewClient and OnClientClosed
	}
}

var (
	_ kgo.HookNewClient           = (*kafkaHooks)(nil)
	_ kgo.HookClientClosed        = (*kafkaHooks)(nil)
	_ kgo.HookBrokerConnect       = (*kafkaHooks)(nil)
	_ kgo.HookBrokerDisconnect    = (*kafkaHooks)(nil)
	_ kgo.HookBrokerThrottle      = (*kafkaHooks)(nil)
	_ kgo.HookBrokerE2E           = (*kafkaHooks)(nil)
	_ kgo.HookProduceBatchWritten = (*kafkaHooks)(nil)
	_ kgo.HookFetchBatchRead      = (*kafkaHooks)(nil)
	_ prometheus.Collector        = (*kafkaHooks)(nil)
)

// OnNewClient adds cl to the clients the buffered gauges sum over. It does
// not call kprom's OnNewClient, which would create its collectors again.
func (h *kafkaHooks) OnNewClient(cl *kgo.Client) {
	h.clients.Lock()
	defer h.clients.Unlock()
	h.clients.set[cl] = struct{}{}
}

// OnClientClosed removes cl from the buffered gauges. It does not call
// kprom's OnClientClosed: the counters outlive the client.
func (h *kafkaHooks) OnClientClosed(cl *kgo.Client) {
	h.clients.Lock()
	defer h.clients.Unlock()
	delete(h.clients.set, cl)
}

func (h *kafkaHooks) sum(f func(*kgo.Client) int64) int64 {
	h.clients.Lock()
	defer h.clients.Unlock()
	var n int64
	for cl := range h.clients.set {
		n += f(cl)
	}
	return n
}

func (h *kafkaHooks) OnBrokerConnect(meta kgo.BrokerMetadata, dial time.Duration, conn net.Conn, err error) {
	h.prom.OnBrokerConnect(meta, dial, conn, err)
}

func (h *kafkaHooks) OnBrokerDisconnect(meta kgo.BrokerMetadata, conn net.Conn) {
	h.prom.OnBrokerDisconnect(meta, conn)
}

func (h *kafkaHooks) OnBrokerThrottle(meta kgo.BrokerMetadata, interval time.Duration, afterResponse bool) {
	h.prom.OnBrokerThrottle(meta, interval, afterResponse)
}

func (h *kafkaHooks) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	h.prom.OnBrokerE2E(meta, key, e2e)
}

func (h *kafkaHooks) OnProduceBatchWritten(meta kgo.BrokerMetadata, topic string, partition int32, m kgo.ProduceBatchMetrics) {
	h.prom.OnProduceBatchWritten(meta, topic, partition, m)
}

func (h *kafkaHooks) OnFetchBatchRead(meta kgo.BrokerMetadata, topic string, partition int32, m kgo.FetchBatchMetrics) {
	h.prom.OnFetchBatchRead(meta, topic, partition, m)
}

// Describe sends every metric's description, so that the registry checks
// names at registration (a second KafkaHooks for one pipeline fails there,
// not at every scrape).
func (h *kafkaHooks) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range h.descs {
		ch <- d
	}
}

// Collect sends kprom's metrics but its buffered_* gauges, then ours.
func (h *kafkaHooks) Collect(ch chan<- prometheus.Metric) {
	in := make(chan prometheus.Metric, 64)
	go func() {
		h.prom.Collect(in)
		close(in)
	}()
	for m := range in {
		if !h.drop[m.Desc()] {
			ch <- m
		}
	}
	for _, g := range h.buffered {
		g.Collect(ch)
	}
}

// descName returns the fully-qualified name of d. A Desc keeps it private;
// its String is `Desc{fqName: "name", ...}`, and a valid metric name needs
// no quoting.
func descName(d *prometheus.Desc) string {
	_, rest, ok := strings.Cut(d.String(), `fqName: "`)
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, `"`)
	return name
}
