package processor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/topology"
)

// TestTumblingWindowGolden is the seed example: the seven events in
// 1-minute tumbling windows by event type, with count and sum(amount).
// First the first five events, then later the last two (which close the
// 09:00 windows).
func TestTumblingWindowGolden(t *testing.T) {
	seedWindowTable(t, [][]string{{"events.jsonl"}, {"events-later.jsonl"}})
}

// TestTumblingWindowGoldenInOneGo: the same events loaded at once over
// the 3 partitions, as a replay of a backlog: the seed's table all the
// same (event time crosses the repartition as the minimum over the
// upstream partitions, so the partition that runs ahead does not make
// the others' records late).
func TestTumblingWindowGoldenInOneGo(t *testing.T) {
	seedWindowTable(t, [][]string{{"events.jsonl", "events-later.jsonl"}})
}

// seedWindowTable loads each group of seed files, runs the window
// example until caught up after each, and checks the seed's table.
func seedWindowTable(t *testing.T, loads [][]string) {
	c := newCluster(t, "events", "per-minute")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := topology.Load("../testdata/window/tumbling.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, files := range loads {
		for _, f := range files {
			if _, err := broker.ProduceFile(ctx, c.addrs, "events", "../testdata/aggregate/"+f); err != nil {
				t.Fatal(err)
			}
		}
		runUntilCaughtUp(t, ctx, c, topo, "a")
	}
	got, _ := table(t, ctx, c.addrs, "per-minute")
	checkGoldenAt(t, "../testdata/window/tumbling.golden", got)
}

func checkGoldenAt(t *testing.T, path string, got []string) {
	t.Helper()
	text := strings.Join(got, "\n") + "\n"
	if *update {
		writeFile(t, path, text)
	}
	want := readFile(t, path)
	if text != want {
		t.Errorf("table =\n%s\nwant (%s)\n%s", text, path, want)
	}
}

// windowCase runs a windowed pipeline over timed events, all with one key
// (so one partition and one task), and returns the output table.
type timed struct {
	at    time.Duration // after 09:00:00
	key   string
	value int
}

func runWindow(t *testing.T, yaml string, events []timed) (*Processor, []string, int) {
	t.Helper()
	c := newCluster(t, "in", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	var rs []*kgo.Record
	for _, e := range events {
		rs = append(rs, &kgo.Record{Topic: "in", Partition: 0, Key: []byte(e.key), Timestamp: base.Add(e.at),
			Value: []byte(fmt.Sprintf(`{"v":%d}`, e.value))})
	}
	mc := newTestClientOpts(t, c.addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := mc.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p := runUntilCaughtUp(t, ctx, c, mustParse(t, yaml), "a")
	got, n := table(t, ctx, c.addrs, "out")
	return p, got, n
}

// windowYAML is the shared window pipeline with window and emit in place.
func windowYAML(window, emit string) string {
	return pipelineYAML("window/window.yaml.tmpl", "WINDOW", window, "EMIT", emit)
}

// pipelineYAML reads a pipeline shared by tests, path under testdata/,
// and fills in its placeholders: oldnew holds each placeholder and its
// text in turn.
func pipelineYAML(path string, oldnew ...string) string {
	b, err := os.ReadFile(filepath.Join("..", "testdata", path))
	if err != nil {
		panic(err) // the test data is part of the tree
	}
	return strings.NewReplacer(oldnew...).Replace(string(b))
}

func TestHoppingWindow(t *testing.T) {
	// 2-minute windows every minute: a record at 09:01:30 is in
	// [09:00, 09:02) and [09:01, 09:03).
	_, got, _ := runWindow(t, windowYAML("hopping: {size: 2m, advance: 1m}", "emit: on_update"), []timed{
		{10 * time.Second, "k", 1}, {90 * time.Second, "k", 2}, {150 * time.Second, "k", 4},
	})
	want := []string{
		`{"key":"k","window_start":"2026-04-01T08:59:00Z"}	{"key":"k","n":1,"sum":1,"window_end":"2026-04-01T09:01:00Z","window_start":"2026-04-01T08:59:00Z"}`,
		`{"key":"k","window_start":"2026-04-01T09:00:00Z"}	{"key":"k","n":2,"sum":3,"window_end":"2026-04-01T09:02:00Z","window_start":"2026-04-01T09:00:00Z"}`,
		`{"key":"k","window_start":"2026-04-01T09:01:00Z"}	{"key":"k","n":2,"sum":6,"window_end":"2026-04-01T09:03:00Z","window_start":"2026-04-01T09:01:00Z"}`,
		`{"key":"k","window_start":"2026-04-01T09:02:00Z"}	{"key":"k","n":1,"sum":4,"window_end":"2026-04-01T09:04:00Z","window_start":"2026-04-01T09:02:00Z"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("hopping table =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSessionWindowMerge: two sessions 5 minutes apart, then a record
// between them within the gap of both merges them into one.
func TestSessionWindowMerge(t *testing.T) {
	_, got, _ := runWindow(t, windowYAML("session: {gap: 3m}\n        grace: 5m", "emit: on_update"), []timed{
		{0, "k", 1}, {time.Minute, "k", 2}, // session A: 09:00-09:01
		{6 * time.Minute, "k", 4},                // session B: 09:06
		{3*time.Minute + 30*time.Second, "k", 8}, // bridges A (gap to 09:01 is 2.5m) and B (2.5m)
	})
	// The merged-away session 09:06 got a tombstone: the table holds
	// the one merged session.
	if len(got) != 1 || !strings.Contains(got[0], `"n":4,"sum":15,"window_end":"2026-04-01T09:06:00Z","window_start":"2026-04-01T09:00:00Z"`) {
		t.Errorf("session table =\n%s\nwant one merged session 09:00-09:06 with n 4, sum 15", strings.Join(got, "\n"))
	}
}

// TestGraceAndLate: with 30s of grace, a record 20s late for its window
// still counts; one 2 minutes late is dropped (and dead-lettered with
// late: dead_letter), and counted.
func TestGraceAndLate(t *testing.T) {
	p, got, _ := runWindow(t, windowYAML("tumbling: 1m\n        grace: 30s\n        late: dead_letter", "emit: on_update"), []timed{
		{10 * time.Second, "k", 1},
		{80 * time.Second, "k", 2},  // window 09:01; stream time 09:01:20
		{50 * time.Second, "k", 4},  // window 09:00 ends 09:01 + 30s grace > 09:01:20: counts
		{200 * time.Second, "k", 8}, // stream time 09:03:20
		{40 * time.Second, "k", 16}, // window 09:00 closed at 09:01:30: late
	})
	joined := strings.Join(got, "\n")
	if !strings.Contains(joined, `"n":2,"sum":5,"window_end":"2026-04-01T09:01:00Z"`) {
		t.Errorf("table =\n%s\nwant window 09:00 with n 2, sum 5 (the record within grace counted, the late one not)", joined)
	}
	late := counterValue(t, p.m.LateRecords.WithLabelValues("agg"))
	if late != 1 {
		t.Errorf("late records = %v, want 1", late)
	}
}

// TestOnCloseBounded: emit on_close gives one final row per window once
// stream time passes its end, and closed windows leave the store, so state
// stays bounded.
func TestOnCloseBounded(t *testing.T) {
	var events []timed
	for i := 0; i < 60; i++ { // one record a minute for an hour
		events = append(events, timed{time.Duration(i) * time.Minute, "k", 1})
	}
	p, got, n := runWindow(t, windowYAML("tumbling: 5m", "emit: on_close"), events)
	// The last window, 09:55-10:00, is still open: no record reached 10:00.
	if len(got) != 11 || n != 11 {
		t.Errorf("on_close output holds %d records for %d windows, want 11 final rows:\n%s", n, len(got), strings.Join(got, "\n"))
	}
	for _, row := range got {
		if !strings.Contains(row, `"n":5,"sum":5`) {
			t.Errorf("final row %s, want n 5, sum 5", row)
		}
	}
	entries := gaugeValue(t, p.m.StoreEntries.WithLabelValues("agg", "0"))
	t.Logf("store entries with 1 window open after 11 closed: %v", entries)
	if entries > 5 {
		t.Errorf("the store holds %v entries, want the open window and bookkeeping (stream time, index)", entries)
	}
}

// TestOnCloseIdle: when a partition goes quiet, the idle timeout advances
// its stream time by wall clock, so the last window's final row appears
// without new data. Event times are close to the wall clock here, as in
// live traffic.
func TestOnCloseIdle(t *testing.T) {
	c := newCluster(t, "in", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := time.Now().Truncate(10 * time.Second).Add(-20 * time.Second)
	var rs []*kgo.Record
	for i := 0; i < 10; i++ {
		rs = append(rs, &kgo.Record{Topic: "in", Partition: 0, Key: []byte("k"), Timestamp: base.Add(time.Duration(i) * time.Second), Value: []byte(`{"v":1}`)})
	}
	mc := newTestClientOpts(t, c.addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := mc.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p, err := New(mustParse(t, windowYAML("tumbling: 10s\n        idle_timeout: 1s", "emit: on_close")), c.config("a"))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	var got []string
	for len(got) == 0 {
		select {
		case err := <-done:
			t.Fatalf("Run() = %v", err)
		case <-ctx.Done():
			t.Fatal("no final row appeared: the idle timeout did not close the window")
		case <-time.After(200 * time.Millisecond):
		}
		got, _ = table(t, ctx, c.addrs, "out")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if len(got) != 1 || !strings.Contains(got[0], `"n":10,"sum":10`) {
		t.Errorf("output = %q, want one final row with n 10", got)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Repartition topics are created with retention.ms=-1 (a replay of
// records older than the broker's retention must not lose them before
// they are read), and records the group committed past are purged.
func TestRepartitionRetentionAndPurge(t *testing.T) {
	c := newCluster(t, "events", "per-minute")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := topology.Load("../testdata/window/tumbling.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broker.ProduceFile(ctx, c.addrs, "events", "../testdata/aggregate/events.jsonl"); err != nil {
		t.Fatal(err)
	}
	cfg := c.config("a")
	cfg.PurgeInterval = 100 * time.Millisecond
	const rep = "per-minute-per-type-repartition"
	purged := func(p *Processor) bool {
		starts, err := c.adm.ListStartOffsets(ctx, rep)
		if err != nil {
			return false
		}
		n := int64(0)
		starts.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n > 0
	}
	runWith(t, ctx, c, topo, cfg, purged)
	rcs, err := c.adm.DescribeTopicConfigs(ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(rep, nil)
	if err != nil {
		t.Fatal(err)
	}
	retention := "(not set)"
	for _, cf := range rc.Configs {
		if cf.Key == "retention.ms" && cf.Value != nil {
			retention = *cf.Value
		}
	}
	if retention != "-1" {
		t.Errorf("%s retention.ms = %s, want -1", rep, retention)
	}
}
