package statestore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"github.com/cockroachdb/pebble"
)

const (
	// restoreFlushBytes bounds the memory a restore holds in its batch
	// before writing it to the DB.
	restoreFlushBytes = 16 << 20

	// tableCacheSize is how many sstables all stores together keep open,
	// the same as Pebble's default MaxOpenFiles for one DB.
	tableCacheSize = 1000
)

// NewPebble returns a backend that keeps each store partition in a Pebble
// DB under dir/<store>/<partition> (layout.go says why, and what the keys
// inside look like), all sharing one block cache of
// cacheBytes (Pebble's default for one DB is 8 MiB; give it what the
// machine can spare, it is the stores' read performance) and one table
// cache. Pebble's own messages are dropped; NewPebbleWithLogger keeps them.
func NewPebble(dir string, cacheBytes int64) (Backend, error) {
	return NewPebbleWithLogger(dir, cacheBytes, nil)
}

// NewPebbleWithLogger is NewPebble with Pebble's messages sent to log:
// informational ones (WAL replay on open) at debug level, background errors
// (a failed flush or compaction, e.g. disk full) at error level. A nil log
// drops them.
func NewPebbleWithLogger(dir string, cacheBytes int64, log *slog.Logger) (Backend, error) {
	if dir == "" {
		return nil, errors.New("statestore: pebble state directory is empty; set the state directory to a path on local disk")
	}
	if cacheBytes <= 0 {
		return nil, fmt.Errorf("statestore: pebble block cache of %d bytes is too small; give it at least a few MiB, e.g. 64 MiB", cacheBytes)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("statestore: creating state directory: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cache := pebble.NewCache(cacheBytes)
	b := &pebbleBackend{
		dir:        dir,
		log:        log,
		cache:      cache,
		tableCache: pebble.NewTableCache(cache, 2*runtime.GOMAXPROCS(0), tableCacheSize),
	}
	b.mu.open = map[storeID]*pebbleStore{}
	return b, nil
}

// pebbleLogger adapts slog to Pebble's logger.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

// Fatalf is how Pebble reports a broken invariant (corruption) from which
// it cannot continue. Pebble's default exits the process; only main exits
// here, so this panics, which still stops the process unless recovered.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("pebble fatal error", "error", msg)
	panic("statestore: pebble: " + msg)
}

type pebbleBackend struct {
	dir        string
	log        *slog.Logger
	cache      *pebble.Cache
	tableCache *pebble.TableCache
	opening    sync.WaitGroup // Opens running without mu
	mu         struct {
		sync.Mutex
		open   map[storeID]*pebbleStore
		closed bool
	}
}

func (b *pebbleBackend) Open(store string, partition int32) (Store, error) {
	id, err := newStoreID(store, partition)
	if err != nil {
		return nil, err
	}
	// Reserve the slot, then open without the lock: opening replays the
	// WAL, and other partitions' Opens and Closes need not wait for it.
	b.mu.Lock()
	if err := checkOpenableLocked(b.mu.closed, b.mu.open, id); err != nil {
		b.mu.Unlock()
		return nil, err
	}
	b.mu.open[id] = nil
	b.opening.Add(1)
	b.mu.Unlock()
	defer b.opening.Done()

	s, err := b.open(id)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil && b.mu.closed {
		err = errors.Join(ErrClosed, s.release())
	}
	if err != nil {
		delete(b.mu.open, id)
		return nil, err
	}
	b.mu.open[id] = s
	return s, nil
}

func (b *pebbleBackend) open(id storeID) (*pebbleStore, error) {
	store, partition := id.store, id.partition
	dir := filepath.Join(b.dir, store, strconv.Itoa(int(partition)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("statestore: creating directory of store %s partition %d: %w", store, partition, err)
	}
	log := b.log.With("node", store, "partition", partition)
	opts := &pebble.Options{
		Cache:      b.cache,
		TableCache: b.tableCache,
		Logger:     pebbleLogger{log},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				log.Error("pebble background error", "dir", dir, "error", err)
			},
		},
		// The newest format this Pebble writes, so a store made now stays
		// readable by newer Pebble releases, which drop old formats.
		FormatMajorVersion: pebble.FormatNewest,
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("statestore: opening pebble store %s partition %d in %s (is another exactly process using this state directory?): %w", store, partition, dir, err)
	}
	s := &pebbleStore{backend: b, id: id, dir: dir, opts: opts}
	s.mu.db = db
	s.mu.overlay = overlay{}
	if s.mu.meta, err = loadMeta(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("statestore: reading pebble store %s partition %d in %s: %w", store, partition, dir, err)
	}
	return s, nil
}

func (b *pebbleBackend) Close() error {
	b.mu.Lock()
	if b.mu.closed {
		b.mu.Unlock()
		return nil
	}
	b.mu.closed = true
	open := b.mu.open
	b.mu.open = map[storeID]*pebbleStore{}
	b.mu.Unlock()
	// Opens in progress hold references to the caches; they see closed
	// and release their store.
	b.opening.Wait()
	var errs []error
	for _, s := range open {
		if s != nil { // nil: an Open in progress, which sees closed
			errs = append(errs, s.release())
		}
	}
	// Each DB held its own references; these are the backend's.
	errs = append(errs, b.tableCache.Unref())
	b.cache.Unref()
	return errors.Join(errs...)
}

func (b *pebbleBackend) forget(s *pebbleStore) {
	b.mu.Lock()
	if b.mu.open[s.id] == s {
		delete(b.mu.open, s.id)
	}
	b.mu.Unlock()
}

type pebbleStore struct {
	backend *pebbleBackend
	id      storeID
	dir     string
	opts    *pebble.Options
	mu      struct {
		sync.Mutex
		db      *pebble.DB // nil once closed
		overlay overlay
		// meta describes committed state, including a restore batch not
		// yet written; the DB's meta record may lag it during a restore.
		meta meta
		// restore is the indexed batch of a restore in progress, nil
		// otherwise; lastRestored is the offset of its last record.
		restore      *pebble.Batch
		lastRestored int64
	}
}

func (s *pebbleStore) errorf(format string, args ...any) error {
	return fmt.Errorf("statestore: store %s partition %d: "+format, append([]any{s.id.store, s.id.partition}, args...)...)
}

// readerLocked is where committed state is read: the restore batch reads
// through to the DB, so records restored but not yet flushed are seen.
func (s *pebbleStore) readerLocked() pebble.Reader {
	if s.mu.restore != nil {
		return s.mu.restore
	}
	return s.mu.db
}

// getLocked reads the committed value of a data key.
func getLocked(r pebble.Reader, dk []byte) ([]byte, bool, error) {
	v, closer, err := r.Get(dk)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := clone(v)
	return out, true, closer.Close()
}

func (s *pebbleStore) Get(key []byte) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.db == nil {
		return nil, false, ErrClosed
	}
	if v, found := s.mu.overlay.get(key); found {
		if v == nil {
			return nil, false, nil
		}
		return clone(v), true, nil
	}
	v, ok, err := getLocked(s.readerLocked(), dataKey(key))
	if err != nil {
		return nil, false, s.errorf("reading a key: %w", err)
	}
	return v, ok, nil
}

func (s *pebbleStore) Put(key, value []byte) {
	s.mu.Lock()
	s.mu.overlay.put(key, value)
	s.mu.Unlock()
}

func (s *pebbleStore) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.overlay)
}

// writeLocked adds to batch w the set (value non-nil) or delete (nil) of
// key, reading its old value from r to keep m's counts.
func writeLocked(w *pebble.Batch, r pebble.Reader, m *meta, key, value []byte) error {
	dk := dataKey(key)
	old, existed, err := getLocked(r, dk)
	if err != nil {
		return err
	}
	if existed {
		m.entries--
		m.bytes -= entrySize(key, old)
	}
	if value == nil {
		if !existed {
			return nil
		}
		return w.Delete(dk, nil)
	}
	m.entries++
	m.bytes += entrySize(key, value)
	return w.Set(dk, value, nil)
}

// Commit writes the overlay and the checkpoint in one batch without
// waiting for fsync. Pebble's WAL replays batches whole and in order, so a
// crash, even of the machine, leaves a prefix of commits: the store then
// reflects an older checkpoint, and restore replays the changelog from
// there. An fsync per transaction would buy nothing but latency.
func (s *pebbleStore) Commit(next int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.db == nil {
		return ErrClosed
	}
	if s.mu.restore != nil {
		return s.errorf("commit during a restore; call FinishRestore first")
	}
	if err := checkCommit(s.mu.meta.checkpoint, next); err != nil {
		return err
	}
	if len(s.mu.overlay) == 0 && next == s.mu.meta.checkpoint {
		return nil
	}
	batch := s.mu.db.NewBatch()
	defer batch.Close()
	m := s.mu.meta
	for k, v := range s.mu.overlay {
		if err := writeLocked(batch, s.mu.db, &m, []byte(k), v); err != nil {
			return s.errorf("committing: %w", err)
		}
	}
	m.checkpoint = next
	if err := batch.Set(metaKey, m.encode(), nil); err != nil {
		return s.errorf("committing: %w", err)
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		return s.errorf("committing: %w", err)
	}
	s.mu.meta = m
	clear(s.mu.overlay)
	return nil
}

func (s *pebbleStore) Abort() {
	s.mu.Lock()
	clear(s.mu.overlay)
	s.mu.Unlock()
}

func (s *pebbleStore) Checkpoint() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.meta.checkpoint
}

// Restore adds the record to an indexed batch (so later records of the
// same key, and Get, see it). A batch that grows past restoreFlushBytes is
// written with the checkpoint set after this record: every record restore
// reads is committed, so that is a committed prefix, and a restore that
// is interrupted resumes from it instead of from the start.
func (s *pebbleStore) Restore(key, value []byte, offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.db == nil {
		return ErrClosed
	}
	if s.mu.restore == nil {
		s.mu.restore = s.mu.db.NewIndexedBatch()
	}
	if err := writeLocked(s.mu.restore, s.mu.restore, &s.mu.meta, key, value); err != nil {
		return s.errorf("restoring offset %d: %w", offset, err)
	}
	s.mu.lastRestored = offset
	if s.mu.restore.Len() < restoreFlushBytes {
		return nil
	}
	return s.flushRestoreLocked(offset+1, pebble.NoSync)
}

// flushRestoreLocked writes the restore batch, if any, with the meta record
// at checkpoint next.
func (s *pebbleStore) flushRestoreLocked(next int64, opts *pebble.WriteOptions) error {
	batch := s.mu.restore
	if batch == nil {
		batch = s.mu.db.NewBatch()
	}
	s.mu.restore = nil
	defer batch.Close()
	m := s.mu.meta
	m.checkpoint = next
	if err := batch.Set(metaKey, m.encode(), nil); err != nil {
		return s.errorf("writing restored records: %w", err)
	}
	if err := batch.Commit(opts); err != nil {
		return s.errorf("writing restored records: %w", err)
	}
	s.mu.meta = m
	return nil
}

// FinishRestore writes what is left of the restore with the checkpoint
// and syncs: a restore is rare and long, and losing it to a machine crash
// would cost all of it again.
func (s *pebbleStore) FinishRestore(next int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.db == nil {
		return ErrClosed
	}
	if next < 0 {
		return s.errorf("restore finished at negative offset %d", next)
	}
	if s.mu.restore != nil && next <= s.mu.lastRestored {
		return s.errorf("restore finished at offset %d but restored a record at offset %d", next, s.mu.lastRestored)
	}
	return s.flushRestoreLocked(next, pebble.Sync)
}

func (s *pebbleStore) Len() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.meta.entries
}

func (s *pebbleStore) SizeBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.meta.bytes
}

func (s *pebbleStore) Close() error {
	err := s.release()
	s.backend.forget(s)
	return err
}

// release discards the overlay and any unfinished restore batch, and
// closes the DB. It takes the store's lock itself.
func (s *pebbleStore) release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.db == nil {
		return nil
	}
	var errs []error
	if s.mu.restore != nil {
		errs = append(errs, s.mu.restore.Close())
		s.mu.restore = nil
	}
	clear(s.mu.overlay)
	if err := s.mu.db.Close(); err != nil {
		errs = append(errs, s.errorf("closing: %w", err))
	}
	s.mu.db = nil
	return errors.Join(errs...)
}

// Wipe deletes every entry and the meta record with one range deletion in
// one synced batch, so a crash leaves either the old store or an empty one
// without a checkpoint, both of which the next restore handles. Pebble
// drops the sstables the range deletion covers whole (delete-only
// compactions) without rewriting them.
func (s *pebbleStore) Wipe() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.db == nil {
		return ErrClosed
	}
	if s.mu.restore != nil {
		_ = s.mu.restore.Close()
		s.mu.restore = nil
	}
	clear(s.mu.overlay)
	batch := s.mu.db.NewBatch()
	defer batch.Close()
	err := batch.DeleteRange(dataStart, dataEnd, nil)
	if err == nil {
		err = batch.Delete(metaKey, nil)
	}
	if err == nil {
		err = batch.Commit(pebble.Sync)
	}
	if err != nil {
		return s.errorf("wiping: %w", err)
	}
	s.mu.meta = meta{checkpoint: -1}
	return nil
}
