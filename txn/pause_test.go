package txn

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// fakeClock drives a pauseWatch whose ticker never fires on its own.
type fakeClock struct {
	mu sync.Mutex
	t  time.Duration
}

func (c *fakeClock) now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) reading() reading {
	d := c.now()
	return reading{d, d}
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t += d
	c.mu.Unlock()
}

func TestPauseWatchEpoch(t *testing.T) {
	w := newPauseWatch(time.Hour) // the real ticker stays out of the way
	defer w.Close()
	var c fakeClock
	w.mu.Lock()
	w.now, w.last = c.reading, reading{}
	w.mu.Unlock()

	const threshold = time.Hour
	step := threshold / 4
	start := w.epoch()
	for range 20 { // ticking on time is no pause
		c.advance(step)
		w.tick()
	}
	if got := w.epoch(); got != start {
		t.Fatalf("epoch after regular ticks = %d, want %d", got, start)
	}

	// The process stands still; on waking, the caller looks before the
	// ticker has run: the overdue tick already counts.
	c.advance(threshold + time.Second)
	woke := w.epoch()
	if woke == start {
		t.Fatalf("epoch right after a pause = %d, want a change from %d", woke, start)
	}
	w.tick() // the ticker counts the same pause: the epoch stays put
	if got := w.epoch(); got != woke {
		t.Fatalf("epoch once the ticker counted the pause = %d, want %d (the same pause)", got, woke)
	}
	c.advance(step)
	w.tick()
	if got := w.epoch(); got != woke {
		t.Fatalf("epoch after a regular tick = %d, want %d", got, woke)
	}

	// A second pause changes it again.
	c.advance(2 * threshold)
	w.tick()
	if got := w.epoch(); got == woke {
		t.Fatalf("epoch after a second pause = %d, want a change from %d", got, woke)
	}
}

// A gap just under the threshold is scheduling noise, not a pause.
func TestPauseWatchBelowThreshold(t *testing.T) {
	w := newPauseWatch(time.Hour)
	defer w.Close()
	var c fakeClock
	w.mu.Lock()
	w.now, w.last = c.reading, reading{}
	w.mu.Unlock()
	start := w.epoch()
	c.advance(time.Hour)
	if got := w.epoch(); got != start {
		t.Fatalf("epoch after a gap of exactly the threshold = %d, want %d", got, start)
	}
	w.tick()
	if got := w.epoch(); got != start {
		t.Fatalf("epoch after the tick = %d, want %d", got, start)
	}
}

// The real ticker keeps the epoch still while the process runs.
func TestPauseWatchRunning(t *testing.T) {
	w := newPauseWatch(2 * time.Second)
	start := w.epoch()
	time.Sleep(1500 * time.Millisecond)
	got := w.epoch()
	w.Close()
	w.Close() // twice is fine
	if got != start {
		t.Fatalf("epoch of a running process changed from %d to %d", start, got)
	}
}

// A batch after the process stood still (since the previous batch ended,
// in the poll that returned its records or an idle one before) is a
// zombie's:
// Produce sends nothing of it (the client here is nil: touching it would
// panic) and stays that way for the rest of the batch.
func TestPlainPauseInsidePollMakesZombie(t *testing.T) {
	w := newPauseWatch(time.Hour)
	defer w.Close()
	var c fakeClock
	w.mu.Lock()
	w.now, w.last = c.reading, reading{}
	w.mu.Unlock()
	p := &Plain{cfg: Config{SessionTimeout: 2 * time.Hour}, pauses: w, open: true}
	p.epoch = w.epoch() // what the end of the previous batch noted
	if p.stale() {
		t.Fatal("fresh batch is stale")
	}
	c.advance(2 * time.Hour) // the pause, inside the poll
	p.lastPoll = time.Now()  // the poll returns after the wake
	if !p.stale() {
		t.Fatal("batch whose poll spanned a pause is not stale")
	}
	p.Produce(context.Background(), &kgo.Record{Topic: "out"})
	if !p.zombie {
		t.Fatal("Produce after a pause did not mark the batch a zombie's")
	}
}

// A suspended machine: Linux's monotonic clock stops, the wall clock
// runs on. That is a pause too.
func TestPauseWatchSuspend(t *testing.T) {
	w := newPauseWatch(time.Hour)
	defer w.Close()
	var wall time.Duration
	w.mu.Lock()
	w.now = func() reading { return reading{mono: time.Minute, wall: wall} }
	w.last = reading{mono: time.Minute}
	w.mu.Unlock()
	start := w.epoch()
	wall = 3 * time.Hour
	if got := w.epoch(); got == start {
		t.Fatalf("epoch after the wall clock ran 3h with the monotonic clock still = %d, want a change", got)
	}
}

// At most once too, a zombie's batch never counts as committed: records
// Produce skipped have no offsets, and state changes would not match the
// changelog. End rebuilds instead (the batch itself is lost, as at most
// once allows).
func TestPlainZombieEndRebuildsAtMostOnce(t *testing.T) {
	for _, amo := range []bool{false, true} {
		cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1")) // never dialled: nothing is produced
		if err != nil {
			t.Fatal(err)
		}
		w := newPauseWatch(time.Hour)
		p := &Plain{cfg: Config{SessionTimeout: time.Hour}, atMostOnce: amo, cl: cl, pauses: w, open: true, zombie: true}
		committed, err := p.End(context.Background(), false)
		var rebuild *RebuildError
		if committed || !errors.As(err, &rebuild) {
			t.Errorf("at most once %v: End of a zombie's batch = %v, %v; want not committed and a *RebuildError", amo, committed, err)
		}
		w.Close()
		cl.Close()
	}
}
