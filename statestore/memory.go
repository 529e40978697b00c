package statestore

import (
	"fmt"
	"sync"
)

// NewMemory returns a backend that keeps stores in memory. A store's data
// lives until it is closed, so every Open starts empty with checkpoint -1
// and is rebuilt from its changelog.
func NewMemory() Backend {
	b := &memoryBackend{}
	b.mu.open = map[storeID]*memoryStore{}
	return b
}

type storeID struct {
	store     string
	partition int32
}

// newStoreID is the id of partition of store, if Open may take them.
func newStoreID(store string, partition int32) (storeID, error) {
	if err := checkName(store); err != nil {
		return storeID{}, err
	}
	if partition < 0 {
		return storeID{}, fmt.Errorf("statestore: partition %d of store %s is negative", partition, store)
	}
	return storeID{store, partition}, nil
}

// checkOpenableLocked says why a backend cannot open id, with the lock
// over its closed flag and its open stores held: it is closed, or id is
// open already (or being opened).
func checkOpenableLocked[S any](closed bool, open map[storeID]S, id storeID) error {
	if closed {
		return ErrClosed
	}
	if _, ok := open[id]; ok {
		return fmt.Errorf("open store %s partition %d: %w", id.store, id.partition, ErrAlreadyOpen)
	}
	return nil
}

type memoryBackend struct {
	mu struct {
		sync.Mutex
		open   map[storeID]*memoryStore
		closed bool
	}
}

func (b *memoryBackend) Open(store string, partition int32) (Store, error) {
	id, err := newStoreID(store, partition)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := checkOpenableLocked(b.mu.closed, b.mu.open, id); err != nil {
		return nil, err
	}
	s := &memoryStore{backend: b, id: id}
	s.mu.data = map[string][]byte{}
	s.mu.overlay = overlay{}
	s.mu.checkpoint = -1
	b.mu.open[id] = s
	return s, nil
}

func (b *memoryBackend) Close() error {
	b.mu.Lock()
	open := b.mu.open
	b.mu.open = map[storeID]*memoryStore{}
	b.mu.closed = true
	b.mu.Unlock()
	for _, s := range open {
		s.release()
	}
	return nil
}

func (b *memoryBackend) forget(s *memoryStore) {
	b.mu.Lock()
	if b.mu.open[s.id] == s {
		delete(b.mu.open, s.id)
	}
	b.mu.Unlock()
}

type memoryStore struct {
	backend *memoryBackend
	id      storeID
	mu      struct {
		sync.Mutex
		data       map[string][]byte
		overlay    overlay
		checkpoint int64
		bytes      int64
		closed     bool
	}
}

func (s *memoryStore) Get(key []byte) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, false, ErrClosed
	}
	if v, found := s.mu.overlay.get(key); found {
		if v == nil {
			return nil, false, nil
		}
		return clone(v), true, nil
	}
	v, ok := s.mu.data[string(key)]
	if !ok {
		return nil, false, nil
	}
	return clone(v), true, nil
}

func (s *memoryStore) Put(key, value []byte) {
	s.mu.Lock()
	s.mu.overlay.put(key, value)
	s.mu.Unlock()
}

func (s *memoryStore) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.overlay)
}

func (s *memoryStore) Commit(next int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	if err := checkCommit(s.mu.checkpoint, next); err != nil {
		return err
	}
	for k, v := range s.mu.overlay {
		// The overlay's values are already private copies.
		s.applyLocked(k, v)
	}
	clear(s.mu.overlay)
	s.mu.checkpoint = next
	return nil
}

// applyLocked sets (v non-nil) or deletes (v nil) key k in committed state,
// keeping the byte count. v must not be shared with the caller.
func (s *memoryStore) applyLocked(k string, v []byte) {
	old, existed := s.mu.data[k]
	if existed {
		s.mu.bytes -= int64(len(k) + len(old))
	}
	if v == nil {
		delete(s.mu.data, k)
		return
	}
	s.mu.data[k] = v
	s.mu.bytes += int64(len(k) + len(v))
}

func (s *memoryStore) Abort() {
	s.mu.Lock()
	clear(s.mu.overlay)
	s.mu.Unlock()
}

func (s *memoryStore) Checkpoint() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.checkpoint
}

func (s *memoryStore) Restore(key, value []byte, _ int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	var v []byte
	if value != nil {
		v = clone(value)
	}
	s.applyLocked(string(key), v)
	return nil
}

func (s *memoryStore) FinishRestore(next int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	if next < 0 {
		return fmt.Errorf("statestore: restore of store %s partition %d finished at negative offset %d", s.id.store, s.id.partition, next)
	}
	s.mu.checkpoint = next
	return nil
}

func (s *memoryStore) Len() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.mu.data))
}

func (s *memoryStore) SizeBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.bytes
}

func (s *memoryStore) Close() error {
	s.release()
	s.backend.forget(s)
	return nil
}

// release drops the store's data and marks it closed. It takes the store's
// lock itself and is called without the backend's.
func (s *memoryStore) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.closed = true
	s.mu.data = nil
	s.mu.overlay = overlay{}
	s.mu.bytes = 0
}

func (s *memoryStore) Wipe() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	s.mu.data = map[string][]byte{}
	clear(s.mu.overlay)
	s.mu.bytes = 0
	s.mu.checkpoint = -1
	return nil
}
