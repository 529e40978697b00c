package processor

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// syncBuffer is a bytes.Buffer for a logger written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestWrongSecuritySettings starts a pipeline with SASL or TLS settings
// against a plaintext listener: the log must warn naming the cause, and the
// start must fail with it, rather than reconnect silently forever.
func TestWrongSecuritySettings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opt   kgo.Opt
		cause string
	}{
		{"scram", kgo.SASL(scram.Auth{User: "u", Pass: "p"}.AsSha256Mechanism()), "authentication failed"},
		{"plain", kgo.SASL(plain.Auth{User: "u", Pass: "p"}.AsMechanism()), "authentication failed"},
		{"tls", kgo.DialTLSConfig(&tls.Config{InsecureSkipVerify: true}), "TLS handshake failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, "in", "out")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			topo := mustParse(t, `name: sec
sources:
  - {name: in, topic: in}
steps:
  - {name: pass, filter: value.n > 0}
sinks:
  - {name: out, topic: out}
`)
			var logs syncBuffer
			cfg := c.config("a")
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			cfg.KafkaOpts = []kgo.Opt{tc.opt}
			p, err := New(topo, cfg)
			if err != nil {
				t.Fatal(err)
			}
			p.startSlow, p.startGiveUp = time.Second, 5*time.Second
			err = p.Run(ctx)
			if ctx.Err() != nil {
				t.Fatalf("Run() = %v after the test's deadline, want a start that fails by itself", err)
			}
			var ce *ConnectError
			if err == nil || !errors.As(err, &ce) || ce.Cause != tc.cause {
				t.Errorf("Run() = %v, want a *ConnectError with cause %q", err, tc.cause)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), tc.cause) {
				t.Errorf("log:\n%s\nwant a warning naming %q", logs.String(), tc.cause)
			}
		})
	}
}
