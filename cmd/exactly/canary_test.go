package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/exactly-dev/exactly/broker"
)

const canary = "canary-S3cr3t-7f3a"

// TestCanarySecret runs a pipeline against a broker that needs SASL, with
// a canary password, debug logging, a bad record and the metrics
// listener; the canary must appear in no log line, metric, error message
// or dead-letter header.
func TestCanarySecret(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("PLAIN", "svc", canary),
		kfake.SeedTopics(1, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	auth := kgo.SASL(plain.Auth{User: "svc", Pass: canary}.AsMechanism())
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), auth)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx,
		&kgo.Record{Topic: "in", Value: []byte(`{"n":1}`)},
		&kgo.Record{Topic: "in", Value: []byte(`{"n":`)}, // poison
	).FirstErr(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	pipeline := filepath.Join(dir, "p.yaml")
	os.WriteFile(pipeline, []byte("name: canary\ndead_letter_topic: dlq\nsources:\n  - {name: in, topic: in}\nsteps:\n  - {name: m, map: '{\"n\": value.n}'}\nsinks:\n  - {name: out, topic: out}\n"), 0o644)
	t.Setenv("EXACTLY_KAFKA_SASL_PASSWORD", canary)

	// The listener runs while the pipeline does; scrape it then.
	var metricsPage string
	scraped := make(chan struct{})
	var stdout, stderr syncBuffer
	go func() {
		defer close(scraped)
		for ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
			addr := listenAddr(stderr.String())
			if addr == "" {
				continue
			}
			resp, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "exactly_txn_commits_total") {
				metricsPage = string(b)
				return
			}
		}
	}()
	err = run(ctx, []string{"run", "-c", pipeline, "--brokers", addr, "--instance-id", "x",
		"--sasl-mechanism", "PLAIN", "--sasl-username", "svc", "--sasl-allow-plain-without-tls",
		"--http-addr", "127.0.0.1:0", "--log-level", "debug", "--until-caught-up", "--print-output"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	<-scraped
	if metricsPage == "" {
		t.Fatal("never scraped /metrics while the pipeline ran")
	}

	// A wrong password: the error must not quote the right one either.
	var errOut syncBuffer
	t.Setenv("EXACTLY_KAFKA_SASL_PASSWORD", canary+"-wrong")
	short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShort()
	wrongErr := run(short, []string{"run", "-c", pipeline, "--brokers", addr, "--instance-id", "y",
		"--sasl-mechanism", "PLAIN", "--sasl-username", "svc", "--sasl-allow-plain-without-tls", "--http-addr="}, io.Discard, &errOut)

	dlq, err := broker.ReadCommitted(ctx, []string{addr}, []string{"dlq"}, auth)
	if err != nil {
		t.Fatal(err)
	}
	if len(dlq) != 1 {
		t.Fatalf("dead-letter topic holds %d records, want the poison record", len(dlq))
	}
	var headers strings.Builder
	for _, h := range dlq[0].Headers {
		headers.WriteString(h.Key + "=" + string(h.Value) + "\n")
	}
	if !strings.Contains(stderr.String(), "level=DEBUG") {
		t.Errorf("no debug log lines captured: the test would prove little")
	}
	for what, text := range map[string]string{
		"logs": stderr.String(), "output": stdout.String(), "metrics": metricsPage,
		"dead-letter headers": headers.String(), "wrong-password error": errString(wrongErr) + errOut.String(),
	} {
		if strings.Contains(text, canary) {
			t.Errorf("the canary secret appears in the %s", what)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// listenAddr finds the metrics address in the daemon's log.
func listenAddr(log string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "serving metrics and health checks") {
			if i := strings.Index(line, "addr="); i >= 0 {
				return strings.Fields(line[i+len("addr="):])[0]
			}
		}
	}
	return ""
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
