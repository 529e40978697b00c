package txn

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/internal/kafkaerr"
)

// produceResults collects the produce results of one transaction or batch
// from kgo's promise goroutines, for End to act on: the first failure, and
// whether every record's promise has run.
//
// Each transaction or batch has its own (Begin makes it), so a promise
// that runs late, after its transaction ended (a record kgo failed while
// aborting, or one a closed client failed), lands in the one it belongs to
// and is never read as the next one's.
//
// End cannot rely on kgo's Flush alone to know every result is in: a
// record kgo refuses before buffering it (no topic, produced outside a
// transaction, larger than MaxBufferedBytes, over the buffer limits with
// manual flushing) never counts as buffered, and Flush does not wait for
// its promise, which runs whenever kgo's promise goroutine gets to it.
type produceResults struct {
	mu    sync.Mutex
	err   error
	topic string
	// pending counts records handed to kgo whose promise has not run;
	// idle is closed when it drops to zero (nil while it is zero).
	pending int
	idle    chan struct{}
}

// produce counts a record about to be handed to kgo and returns its
// promise.
func (f *produceResults) produce() func(*kgo.Record, error) {
	f.mu.Lock()
	if f.pending == 0 {
		f.idle = make(chan struct{})
	}
	f.pending++
	f.mu.Unlock()
	return f.promise
}

// promise is the kgo produce promise. A client we closed (Rebuild, Close)
// fails what it still buffered: that belongs to a transaction or batch
// that is over, not to the open one.
func (f *produceResults) promise(r *kgo.Record, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil && !kafkaerr.ClientClosed(err) && f.err == nil {
		f.err, f.topic = err, r.Topic
	}
	if f.pending--; f.pending == 0 {
		close(f.idle)
		f.idle = nil
	}
}

// wait returns once every record's promise has run, or with ctx's error.
func (f *produceResults) wait(ctx context.Context) error {
	f.mu.Lock()
	idle := f.idle
	f.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// first returns the first failure kept, and the topic of its record.
func (f *produceResults) first() (error, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err, f.topic
}
