package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func TestServer(t *testing.T) {
	reg := NewRegistry()
	p := NewPipeline(reg, "quickstart")
	p.TxnCommits.Inc()

	var mu sync.Mutex
	readyErr := errors.New("not ready: restoring 3 partitions")
	ready := func() error {
		mu.Lock()
		defer mu.Unlock()
		return readyErr
	}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	s := NewServer("127.0.0.1:0", reg, ready, log)
	if got := s.Addr(); got != "127.0.0.1:0" {
		t.Errorf("Addr() before Listen = %q, want the configured %q", got, "127.0.0.1:0")
	}
	if err := s.Listen(); err != nil {
		t.Fatalf("Listen() error: %v", err)
	}
	addr := s.Addr()
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr() after Listen = %q, want the bound port", addr)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	if got := s.Addr(); got != addr {
		t.Errorf("Addr() while running = %q, want %q", got, addr)
	}
	base := "http://" + addr

	for _, tc := range []struct {
		path  string
		ready error
		code  int
		body  string // exact, or a substring for /metrics
	}{
		{"/metrics", readyErr, 200, `exactly_txn_commits_total{pipeline="quickstart"} 1`},
		{"/metrics", readyErr, 200, "go_goroutines"},
		{"/livez", readyErr, 200, "ok\n"},
		{"/readyz", readyErr, 503, "not ready: restoring 3 partitions\n"},
		{"/readyz", nil, 200, "ready\n"},
		{"/livez", nil, 200, "ok\n"},
	} {
		mu.Lock()
		readyErr = tc.ready
		mu.Unlock()
		code, body := get(t, base+tc.path)
		ok := body == tc.body
		if tc.path == "/metrics" {
			ok = strings.Contains(body, tc.body)
		}
		if code != tc.code || !ok {
			t.Errorf("GET %s (ready() = %v) = %d %q, want %d %q", tc.path, tc.ready, code, body, tc.code, tc.body)
		}
	}
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Errorf("GET /nope = %d, want 404", code)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() after cancel = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run() did not return after its context ended")
	}
	if _, err := http.Get(base + "/livez"); err == nil {
		t.Errorf("GET /livez after Run returned succeeded, want a refused connection")
	}
}

// TestServerRunListens checks Run binds by itself when Listen was not
// called.
func TestServerRunListens(t *testing.T) {
	s := NewServer("127.0.0.1:0", NewRegistry(), nil, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	deadline := time.Now().Add(30 * time.Second)
	for strings.HasSuffix(s.Addr(), ":0") {
		if time.Now().After(deadline) {
			t.Fatal("Run() did not listen")
		}
		time.Sleep(time.Millisecond)
	}
	if code, body := get(t, "http://"+s.Addr()+"/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("GET /readyz with a nil ready = %d %q, want 200 %q", code, body, "ready\n")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() after cancel = %v, want nil", err)
	}
}

func TestServerListenError(t *testing.T) {
	reg := NewRegistry()
	taken := NewServer("127.0.0.1:0", reg, nil, nil)
	if err := taken.Listen(); err != nil {
		t.Fatalf("Listen() error: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- taken.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	// Same registry: a second server must not fail on its handler metrics.
	s := NewServer(taken.Addr(), reg, nil, nil)
	err := s.Run(t.Context())
	if err == nil {
		t.Fatalf("Run() on the taken %s = nil, want an error", taken.Addr())
	}
	for _, want := range []string{"http.addr", taken.Addr()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Run() on a taken address = %q, want it to name %q", err, want)
		}
	}
}
