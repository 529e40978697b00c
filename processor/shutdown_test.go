package processor

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// freezer makes the broker look stopped (SIGSTOP) to the clients that dial
// through it: once frozen, connections stay open but what is written is
// never delivered and nothing more comes back.
type freezer struct{ frozen atomic.Bool }

func (f *freezer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return &freezableConn{Conn: c, f: f}, nil
}

type freezableConn struct {
	net.Conn
	f *freezer
}

func (c *freezableConn) Write(b []byte) (int, error) {
	if c.f.frozen.Load() {
		return len(b), nil // a stopped broker reads nothing
	}
	return c.Conn.Write(b)
}

func (c *freezableConn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if err != nil || !c.f.frozen.Load() {
			return n, err
		}
		// A stopped broker sends nothing: drop what was in flight.
	}
}

// TestStopWithUnreachableBroker freezes the broker as a poll returns
// records, then stops the processor: the transaction holding them cannot
// commit. Run must return by the shutdown timeout (well within the
// transaction timeout, and without rebuilding the client) with an error
// saying the last commit did not happen.
func TestStopWithUnreachableBroker(t *testing.T) {
	c := newCluster(t, "in", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := mustParse(t, `name: frozen
sources:
  - {name: in, topic: in}
steps:
  - {name: pass, filter: value.n > 0}
sinks:
  - {name: out, topic: out}
`)
	var f freezer
	cfg := c.config("a")
	cfg.TransactionTimeout = 60 * time.Second
	cfg.SessionTimeout = 90 * time.Second
	cfg.ShutdownTimeout = 2 * time.Second
	cfg.KafkaOpts = []kgo.Opt{kgo.Dialer(f.dial)}
	p, err := New(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var stopped atomic.Int64 // unix nanos of the stop
	var armed atomic.Bool
	p.afterPoll = func(n int) {
		if n > 0 && armed.Load() && !f.frozen.Swap(true) {
			// Stop a little later, so the commit under way (or the
			// final one) is what waits on the frozen broker.
			time.AfterFunc(300*time.Millisecond, func() {
				stopped.Store(time.Now().UnixNano())
				stop()
			})
		}
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	// A first transaction commits (the producer id and the group are
	// set up), then the broker freezes as the next records arrive.
	c.produce(t, "in", `{"n":1}`)
	for p.Stats().Commits.Load() == 0 {
		select {
		case err := <-done:
			t.Fatalf("Run() = %v", err)
		case <-ctx.Done():
			t.Fatal("the first record was never committed")
		case <-time.After(50 * time.Millisecond):
		}
	}
	armed.Store(true)
	c.produce(t, "in", `{"n":1}`, `{"n":2}`, `{"n":3}`)

	select {
	case err = <-done:
	case <-ctx.Done():
		t.Fatal("Run did not return within 2 minutes of a stop with the broker unreachable")
	}
	if stopped.Load() == 0 {
		t.Fatalf("Run() = %v before it was stopped", err)
	}
	took := time.Since(time.Unix(0, stopped.Load()))
	if err == nil {
		t.Error("Run() = nil, want an error: the last transaction could not commit")
	} else {
		t.Logf("Run() = %v, %s after the stop", err, took.Round(time.Millisecond))
	}
	// Generous against a busy machine; without the bound the stop waits
	// out the transaction timeout (60s) and then a client rebuild.
	if took > 20*time.Second {
		t.Errorf("Run returned %s after the stop, want about shutdown_timeout (%s)", took.Round(time.Second), cfg.ShutdownTimeout)
	}
	if n := p.Stats().Rebuilds.Load(); n != 0 {
		t.Errorf("Stats().Rebuilds = %d, want 0: no client rebuild once stopping", n)
	}
}
