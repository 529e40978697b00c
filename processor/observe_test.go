package processor

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/kafkatest"
	"github.com/exactly-dev/exactly/metrics"
	"github.com/exactly-dev/exactly/topology"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sample returns the value of the series of name whose labels include
// every label in want, from a /metrics page.
func sample(t *testing.T, page, name string, want ...string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + name + `\{([^}]*)\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(page, -1) {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(m[1], w)
		}
		if ok {
			v, _ := strconv.ParseFloat(m[2], 64)
			return v
		}
	}
	t.Fatalf("no series %s{%s} on /metrics", name, strings.Join(want, ","))
	return 0
}

// TestMetricsAndReadiness runs the user-totals pipeline with the HTTP
// listener, holds its restore back at the broker, and checks over HTTP
// that /readyz says not ready while it restores and ready after, and that
// the metrics move as records flow: the records the sink wrote equal the
// records a read_committed reader sees.
func TestMetricsAndReadiness(t *testing.T) {
	kafkatest.SkipUnlessEmbedded(t, "it stalls ListOffsets through kfake ControlKey")
	c := newCluster(t, "events", "user-totals")
	b := c.b
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := topology.Load("../testdata/aggregate/user_totals.yaml")
	if err != nil {
		t.Fatal(err)
	}
	changelog := topology.ChangelogTopic(topo.Name, "per-user")

	// Hold every restore at its first request (ListOffsets of the
	// changelog) until release is closed.
	release := make(chan struct{})
	var once sync.Once
	held := make(chan struct{})
	b.Cluster().ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		for _, rt := range req.(*kmsg.ListOffsetsRequest).Topics {
			if rt.Topic == changelog {
				once.Do(func() { close(held) })
				b.Cluster().SleepControl(func() { <-release })
			}
		}
		return nil, nil, false
	})

	reg := metrics.NewRegistry()
	cfg := c.config("a")
	cfg.Metrics = metrics.NewPipeline(reg, topo.Name)
	p, err := New(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := metrics.NewServer("127.0.0.1:0", reg, p.Ready, nil)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + srv.Addr()
	srvCtx, stopSrv := context.WithCancel(ctx)
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(srvCtx) }()

	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before start = %d %q, want 503", code, body)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()

	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the restore never reached the broker")
	}
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "restoring") {
		t.Errorf("/readyz during the restore = %d %q, want 503 naming the restore", code, body)
	}
	if code, _ := get(t, base+"/livez"); code != http.StatusOK {
		t.Errorf("/livez = %d, want 200", code)
	}
	close(release)
	for {
		code, body = get(t, base+"/readyz")
		if code == http.StatusOK {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/readyz after the restore = %d %q, want 200", code, body)
		case <-time.After(50 * time.Millisecond):
		}
	}

	if _, err := broker.ProduceFile(ctx, c.addrs, "events", "../testdata/aggregate/events.jsonl"); err != nil {
		t.Fatal(err)
	}
	for !broker.CaughtUp(ctx, c.cl, topo.Group, p.Consumed()) {
		select {
		case <-ctx.Done():
			t.Fatal("timed out waiting for the group to catch up")
		case <-time.After(100 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	_, n := table(t, ctx, c.addrs, "user-totals")
	_, page := get(t, base+"/metrics")
	pl := `pipeline="user-totals"`
	if got := sample(t, page, "exactly_records_out_total", pl, `node="totals"`); got != float64(n) {
		t.Errorf("exactly_records_out_total{node=totals} = %v, want %d, the records a read_committed reader sees", got, n)
	}
	if got := sample(t, page, "exactly_records_in_total", pl, `node="events"`); got != 5 {
		t.Errorf("exactly_records_in_total{node=events} = %v, want 5", got)
	}
	if got := sample(t, page, "exactly_txn_commits_total", pl); got < 1 {
		t.Errorf("exactly_txn_commits_total = %v, want at least 1", got)
	}
	if got := sample(t, page, "exactly_state_entries", pl, `node="per-user"`); got < 1 {
		t.Errorf("exactly_state_entries = %v, want the users of a partition", got)
	}
	for _, name := range []string{"exactly_restore_duration_seconds_count", "exactly_txn_commit_duration_seconds_count", "exactly_end_to_end_latency_seconds_count"} {
		if got := sample(t, page, name, pl); got < 1 {
			t.Errorf("%s = %v, want at least 1", name, got)
		}
	}
	if !strings.Contains(page, "go_goroutines") || !strings.Contains(page, "process_cpu_seconds_total") {
		t.Errorf("/metrics lacks the Go or process collector")
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("GatherAndLint = %v, %v", problems, err)
	}
	stopSrv()
	if err := <-srvDone; err != nil {
		t.Errorf("server Run() = %v", err)
	}
}
