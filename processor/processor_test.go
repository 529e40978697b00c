package processor

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/kafkatest"
)

type cluster struct {
	b     *broker.Broker // for tests that inject broker errors; nil on real Kafka
	addrs []string
	cl    *kgo.Client
	adm   *kadm.Client
}

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

// newCluster starts an embedded broker with topics of 3 partitions, or,
// when EXACTLY_TEST_BROKER=kafka, empties the package's one Apache Kafka
// cluster (the tests run one after the other with fixed names) and creates
// the topics there.
func newCluster(t *testing.T, topics ...string) *cluster {
	t.Helper()
	if kafkatest.Selected() {
		k := kafkatest.Shared(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := k.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if err := k.CreateTopics(ctx, 3, nil, topics...); err != nil {
			t.Fatal(err)
		}
		cl := newTestClient(t, k.Addrs())
		return &cluster{addrs: k.Addrs(), cl: cl, adm: newAdm(cl)}
	}
	b, err := broker.Start(broker.Options{Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx := context.Background()
	if err := broker.CreateTopics(ctx, b.Addrs(), 3, topics...); err != nil {
		t.Fatal(err)
	}
	cl := newTestClient(t, b.Addrs())
	return &cluster{b: b, addrs: b.Addrs(), cl: cl, adm: newAdm(cl)}
}

func newTestClient(t *testing.T, addrs []string) *kgo.Client {
	t.Helper()
	return newTestClientOpts(t, addrs)
}

func newTestClientOpts(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newAdm(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }

func (c *cluster) produce(t *testing.T, topic string, values ...string) {
	t.Helper()
	var rs []*kgo.Record
	for i, v := range values {
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte(v)})
	}
	if err := c.cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) config(instance string) Config {
	return Config{
		Brokers:            c.addrs,
		ClientID:           "test",
		InstanceID:         instance,
		CommitInterval:     50 * time.Millisecond,
		TransactionTimeout: 5 * time.Second,
		SessionTimeout:     6 * time.Second,
		RebalanceTimeout:   6 * time.Second,
		ShutdownTimeout:    10 * time.Second,
		Logger:             testLogger(),
	}
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		lv := slog.LevelInfo
		if os.Getenv("EXACTLY_TEST_DEBUG") != "" {
			lv = slog.LevelDebug
		}
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	}
	return slog.New(slog.DiscardHandler)
}

func (c *cluster) waitCaughtUp(t *testing.T, ctx context.Context, group string, topics ...string) {
	t.Helper()
	for !broker.CaughtUp(ctx, c.cl, group, topics) {
		select {
		case <-ctx.Done():
			t.Fatalf("group %s did not commit every input record", group)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func values(t *testing.T, ctx context.Context, addrs []string, topics ...string) []string {
	t.Helper()
	recs, err := broker.ReadCommitted(ctx, addrs, topics)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Topic+" "+string(r.Value))
	}
	slices.Sort(out)
	return out
}

// TestRunSeveralSourcesAndSinks runs a pipeline with two sources and two
// sinks against the in-process broker, stops it by cancelling its context
// and checks what a read_committed reader sees.
func TestRunSeveralSourcesAndSinks(t *testing.T) {
	c := newCluster(t, "clicks", "views", "even", "odd")
	topo := mustParse(t, `name: multi
sources:
  - {name: clicks, topic: clicks}
  - {name: views, topic: views}
steps:
  - {name: tag, from: [clicks, views], map: '{"n": value.n, "src": topic}'}
  - name: parity
    route:
      - {when: 'value.n % 2 == 0', to: even}
      - {to: odd}
sinks:
  - {name: even, topic: even}
  - {name: odd, topic: odd}
`)
	c.produce(t, "clicks", `{"n":1}`, `{"n":2}`, `{"n":3}`)
	c.produce(t, "views", `{"n":10}`, `{"n":11}`)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := New(topo, c.config("one"))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	c.waitCaughtUp(t, ctx, "multi", "clicks", "views")
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run() after cancel = %v, want nil", err)
	}
	got := values(t, ctx, c.addrs, "even", "odd")
	want := []string{
		`even {"n":10,"src":"views"}`, `even {"n":2,"src":"clicks"}`,
		`odd {"n":1,"src":"clicks"}`, `odd {"n":11,"src":"views"}`, `odd {"n":3,"src":"clicks"}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("read_committed outputs = %q, want %q", got, want)
	}
	if n := p.Stats().RecordsIn.Load(); n != 5 {
		t.Errorf("Stats().RecordsIn = %d, want 5", n)
	}
	if n := p.Stats().RecordsOut.Load(); n != 5 {
		t.Errorf("Stats().RecordsOut = %d, want 5", n)
	}
}

// TestRunStopsOnBadRecord checks that a record that fails to decode stops
// the run with an error naming it, that the transaction holding it aborts,
// and that a restart resumes at the committed offset (and stops again).
func TestRunStopsOnBadRecord(t *testing.T) {
	c := newCluster(t, "in", "out")
	topo := mustParse(t, "name: poison\nsources:\n  - {name: in, topic: in}\nsinks:\n  - {name: out, topic: out}\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// One partition, so the order is known: two good, one bad, one good.
	rs := []*kgo.Record{
		{Topic: "in", Partition: 0, Value: []byte(`1`)},
		{Topic: "in", Partition: 0, Value: []byte(`2`)},
		{Topic: "in", Partition: 0, Value: []byte(`{bad`)},
		{Topic: "in", Partition: 0, Value: []byte(`4`)},
	}
	mc, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	if err := mc.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		p, err := New(topo, c.config("one"))
		if err != nil {
			t.Fatal(err)
		}
		err = p.Run(ctx)
		var re *RecordError
		if !errors.As(err, &re) || re.Topic != "in" || re.Partition != 0 || re.Offset != 2 || re.Phase != PhaseDecode {
			t.Fatalf("run %d: Run() = %v, want a decode *RecordError for in/0@2", attempt, err)
		}
	}
	// Nothing of the aborted transactions is visible, and the records
	// before the bad one were not committed either: they were in the same
	// transaction.
	if got := values(t, ctx, c.addrs, "out"); len(got) != 0 {
		t.Errorf("read_committed outputs = %q, want none", got)
	}
	off, err := c.adm.FetchOffsets(ctx, "poison")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := off.Lookup("in", 0); ok && o.At > 2 {
		t.Errorf("committed offset of in/0 = %d, want at most 2 (not past the bad record)", o.At)
	}
}

// TestSharedInstanceID starts a second processor with the same instance
// id (so the same transactional id) while the first runs, a
// misconfiguration that makes the two fence each other: the output must
// still hold every record exactly once.
func TestSharedInstanceID(t *testing.T) {
	c := newCluster(t, "in", "out")
	topo := mustParse(t, "name: fence\nsources:\n  - {name: in, topic: in}\nsinks:\n  - {name: out, topic: out}\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var vals []string
	for i := 0; i < 200; i++ {
		vals = append(vals, strconv.Itoa(i))
	}
	c.produce(t, "in", vals[:100]...)
	old, err := New(topo, c.config("same"))
	if err != nil {
		t.Fatal(err)
	}
	oldCtx, stopOld := context.WithCancel(ctx)
	oldDone := make(chan error, 1)
	go func() { oldDone <- old.Run(oldCtx) }()
	c.waitCaughtUp(t, ctx, "fence", "in")

	newer, err := New(topo, c.config("same"))
	if err != nil {
		t.Fatal(err)
	}
	newCtx, stopNew := context.WithCancel(ctx)
	newDone := make(chan error, 1)
	go func() { newDone <- newer.Run(newCtx) }()
	c.produce(t, "in", vals[100:]...)
	c.waitCaughtUp(t, ctx, "fence", "in")
	stopNew()
	stopOld()
	for _, done := range []chan error{newDone, oldDone} {
		if err := <-done; err != nil {
			t.Logf("Run() = %v", err)
		}
	}
	got := values(t, ctx, c.addrs, "out")
	if len(got) != 200 {
		t.Fatalf("read_committed sees %d records, want 200", len(got))
	}
	seen := map[string]bool{}
	for _, v := range got {
		if seen[v] {
			t.Errorf("duplicate output %s", v)
		}
		seen[v] = true
	}
	for _, v := range vals {
		if !seen["out "+v] {
			t.Errorf("lost input %s", v)
		}
	}
	t.Logf("older: %d commits, %d aborts, %d rebuilds; newer: %d commits, %d aborts, %d rebuilds",
		old.Stats().Commits.Load(), old.Stats().Aborts.Load(), old.Stats().Rebuilds.Load(),
		newer.Stats().Commits.Load(), newer.Stats().Aborts.Load(), newer.Stats().Rebuilds.Load())
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// TestStopMidStream stops a pipeline again and again while it works
// through a backlog (SIGTERM in production), each time exactly as a poll
// returns records, with the transaction holding earlier polls open, and
// restarts it; every input must come out exactly once. Records the last
// poll returned count as consumed: the stop must process them, since
// ending the transaction commits their offsets.
func TestStopMidStream(t *testing.T) {
	c := newCluster(t, "in", "out")
	const n = 100_000
	vals := make([]string, n)
	for i := range vals {
		vals[i] = `{"id":` + strconv.Itoa(i) + `}`
	}
	c.produce(t, "in", vals...)
	topo := mustParse(t, "name: stops\nsources:\n  - {name: in, topic: in}\nsteps:\n  - {name: m, map: '{\"id\": value.id, \"x\": 1}'}\nsinks:\n  - {name: out, topic: out}\n")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// run stops the pipeline as its stopAt-th poll with records returns,
	// or (0) once it has caught up, and returns the records it committed.
	stoppedWithRecords := 0
	run := func(stopAt int) int64 {
		t.Helper()
		cfg := c.config("one")
		cfg.CommitInterval = 4 * time.Second // one transaction, many polls
		// The final commit of a stop may take long on a loaded machine;
		// what this test checks is that it commits, not how fast.
		cfg.ShutdownTimeout = time.Minute
		// End's deadline is also the transaction timeout from the
		// transaction's start: 4s of polls must leave room to commit.
		cfg.TransactionTimeout = time.Minute
		p, err := New(topo, cfg)
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		polls := 0
		p.afterPoll = func(records int) {
			if records == 0 || stopAt == 0 {
				return
			}
			if polls++; polls == stopAt {
				stoppedWithRecords++
				stop()
			}
		}
		done := make(chan error, 1)
		go func() { done <- p.Run(runCtx) }()
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run() after a stop = %v, want nil", err)
				}
				return p.Stats().RecordsIn.Load()
			case <-time.After(100 * time.Millisecond):
				// Caught up (the last run, or a backlog too small
				// for the stops): stop it.
				if broker.CaughtUp(ctx, c.cl, "stops", []string{"in"}) {
					stop()
				}
			}
		}
	}
	var stopped int64
	for _, stopAt := range []int{2, 1, 3, 2} {
		stopped += run(stopAt)
	}
	if stoppedWithRecords != 4 || stopped == 0 || stopped >= n {
		t.Fatalf("%d of 4 runs stopped as a poll returned records, committing %d of %d records; want all 4, and part of the backlog", stoppedWithRecords, stopped, n)
	}
	run(0)

	recs, err := broker.ReadCommitted(ctx, c.addrs, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]int, n)
	for _, r := range recs {
		v, err := format.DecodeJSON(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		seen[v.(map[string]any)["id"].(int64)]++
	}
	bad := 0
	for id, k := range seen {
		if k != 1 && bad < 10 {
			t.Errorf("record %d came out %d times, want once", id, k)
			bad++
		}
	}
	t.Logf("4 runs stopped mid-stream committed %d records; the last run the rest", stopped)
}

// TestStaticMembership restarts a static member: it rejoins in the same
// generation (no rebalance), and the restarts lose and double nothing. A
// dynamic member, the control, leaves on stop and rejoins in a later
// generation.
func TestStaticMembership(t *testing.T) {
	for _, static := range []bool{true, false} {
		t.Run(map[bool]string{true: "static", false: "dynamic"}[static], func(t *testing.T) {
			c := newCluster(t, "in", "out")
			topo := mustParse(t, "name: members\nsources:\n  - {name: in, topic: in}\nsinks:\n  - {name: out, topic: out}\n")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var gens []int32
			for round := range 3 {
				c.produce(t, "in", `{"round":`+strconv.Itoa(round)+`,"i":0}`, `{"round":`+strconv.Itoa(round)+`,"i":1}`)
				cfg := c.config("one")
				cfg.StaticMembership = static
				cfg.SessionTimeout = 30 * time.Second // a restart comes back well within it
				p := runWith(t, ctx, c, topo, cfg, func(p *Processor) bool { return p.Stats().Commits.Load() > 0 })
				gens = append(gens, p.Stats().Generation.Load())
			}
			if got := values(t, ctx, c.addrs, "out"); len(got) != 6 {
				t.Errorf("outputs = %q, want the 6 inputs once each", got)
			}
			if static && (gens[1] != gens[0] || gens[2] != gens[0]) {
				t.Errorf("static member's generations across restarts = %v, want one generation (no rebalance)", gens)
			}
			if !static && (gens[1] <= gens[0] || gens[2] <= gens[1]) {
				t.Errorf("dynamic member's generations across restarts = %v, want a new one each time", gens)
			}
		})
	}
}

// Replicas starting together all try to create a missing topic; the ones
// that lose the race must accept the winner's topic, not stop.
func TestEnsureTopicRace(t *testing.T) {
	c := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 10 {
		topic := "race-" + strconv.Itoa(i)
		errs := make(chan error, 6)
		for range cap(errs) {
			go func() {
				adm := newAdm(newTestClient(t, c.addrs))
				errs <- ensureTopic(ctx, adm, topic, 3, true, nil)
			}()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Fatalf("ensureTopic(%s) from one of 6 replicas at once: %v", topic, err)
			}
		}
	}
}

// A missing sink topic is a start-up error naming it, not transactions
// that abort forever.
func TestMissingSinkTopic(t *testing.T) {
	c := newCluster(t, "in")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := New(mustParse(t, `name: nosink
sources:
  - {name: in, topic: in}
sinks:
  - {name: out, topic: no-such-topic}
`), c.config("a"))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "sink topic no-such-topic does not exist") {
		t.Errorf("Run() = %v, want an error naming the missing sink topic", err)
	}
}
