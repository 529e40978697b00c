package txn

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/internal/kafkaerr"
)

// firstProduceErr keeps the first produce error of the open transaction
// or batch, from kgo's promise goroutines, for End to act on.
type firstProduceErr struct {
	mu    sync.Mutex
	err   error
	topic string
}

// promise is the kgo produce promise. A client we closed (Rebuild, Close)
// fails what it still buffered: that belongs to a transaction or batch
// that is over, not to the open one.
func (f *firstProduceErr) promise(r *kgo.Record, err error) {
	if err == nil || kafkaerr.ClientClosed(err) {
		return
	}
	f.mu.Lock()
	if f.err == nil {
		f.err, f.topic = err, r.Topic
	}
	f.mu.Unlock()
}

// take returns the error kept, and the topic of its record, and forgets
// them.
func (f *firstProduceErr) take() (error, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	err, topic := f.err, f.topic
	f.err, f.topic = nil, ""
	return err, topic
}
