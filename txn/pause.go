package txn

import (
	"sync"
	"time"
)

// pauseWatch notices that the whole process stood still (SIGSTOP, a VM
// or container freeze, a suspended machine) for longer than a threshold.
//
// Without transactions nothing fences a member the group expelled while
// it stood still: records its client had already fetched come out of the
// next poll as if nothing happened, and processing them against state that
// another member has since moved on writes stale changelog values, which a
// later restore takes as the latest. A wall-clock check around the poll
// misses a pause inside the poll, where a member waiting for input spends
// most of its time. So a goroutine ticks a few times per threshold and
// counts the gaps; a batch during which the count changed is a zombie's.
//
// The count is also read from the caller's side (a tick overdue by more
// than the threshold counts as the pause it is), because after a wake the
// scheduler may run the caller before the ticker.
type pauseWatch struct {
	threshold time.Duration
	start     time.Time      // origin of both clocks
	now       func() reading // replaced in tests
	stop      chan struct{}
	stopOnce  sync.Once
	wg        sync.WaitGroup

	mu     sync.Mutex
	last   reading // now() at the last tick
	pauses uint64  // gaps the ticker counted
}

// reading is the time since the watch started on both clocks: the
// monotonic one, which a stopped process or a frozen VM cannot hide from,
// and the wall clock, which also runs while the machine is suspended (the
// monotonic clock of Linux does not). A wall clock stepped forward counts
// as a pause too: a needless rebuild, never a missed one.
type reading struct{ mono, wall time.Duration }

// gap is the longer of the two clocks' spans from r to later.
func (r reading) gap(later reading) time.Duration {
	return max(later.mono-r.mono, later.wall-r.wall)
}

func newPauseWatch(threshold time.Duration) *pauseWatch {
	w := &pauseWatch{threshold: threshold, start: time.Now(), stop: make(chan struct{})}
	startWall := w.start.Round(0)
	w.now = func() reading {
		t := time.Now()
		return reading{mono: t.Sub(w.start), wall: t.Round(0).Sub(startWall)}
	}
	w.last = w.now()
	w.wg.Add(1)
	go w.run()
	return w
}

func (w *pauseWatch) run() {
	defer w.wg.Done()
	t := time.NewTicker(w.threshold / 4)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.tick()
		}
	}
}

// tick records a tick at now(), counting a gap past the threshold.
func (w *pauseWatch) tick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	if w.last.gap(now) > w.threshold {
		w.pauses++
	}
	w.last = now
}

// epoch changes whenever the process stood still for longer than the
// threshold: it is the number of pauses seen, plus one while a pause has
// just ended and the ticker has not counted it yet (which the ticker's
// count then equals).
func (w *pauseWatch) epoch() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.pauses
	if w.last.gap(w.now()) > w.threshold {
		n++
	}
	return n
}

// Close stops the ticker; it may be called more than once.
func (w *pauseWatch) Close() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
}
