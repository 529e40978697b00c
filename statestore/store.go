package statestore

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Store is one task's partition of one named store.
//
// A Store is safe for concurrent use, so a metrics collector may call Len
// and SizeBytes while the task's run loop writes; the overlay itself belongs
// to one transaction at a time, which only the run loop drives.
type Store interface {
	// Get reads key: the overlay first (a pending delete reads as absent),
	// then committed state. The returned value is a copy the caller may keep
	// and modify.
	Get(key []byte) (value []byte, ok bool, err error)
	// Put writes key into the overlay; a nil value deletes it (an empty,
	// non-nil value is a value). The store copies key and value.
	Put(key, value []byte)
	// Pending reports how many keys the overlay holds.
	Pending() int
	// Commit applies the overlay to committed state and records that the
	// store now reflects its changelog up to (not including) offset next.
	// For Pebble, data and checkpoint go in one batch (atomic), so after a
	// crash the store holds a committed prefix.
	//
	// next may not move the checkpoint backwards. On error committed state
	// and the overlay are unchanged; the store is then behind its changelog,
	// which a restore from its checkpoint repairs.
	Commit(next int64) error
	// Abort discards the overlay.
	Abort()
	// Checkpoint returns the changelog offset the committed state reflects
	// (the next offset to read), or -1 when unknown (new store, or a Pebble
	// store without a valid checkpoint).
	Checkpoint() int64
	// Restore applies one changelog record read during restore (nil value =
	// delete) directly to committed state, bypassing the overlay. Writes are
	// batched internally and made durable, with the checkpoint, by
	// FinishRestore.
	Restore(key, value []byte, offset int64) error
	// FinishRestore ends a restore: the store now reflects its changelog up
	// to (not including) offset next.
	FinishRestore(next int64) error
	// Len is the number of entries in committed state.
	Len() int64
	// SizeBytes is the size of committed state: the sum of the lengths of
	// its keys and values. It counts data, not the backend's overhead,
	// compression or disk usage, so both backends report the same number.
	SizeBytes() int64
	// Close releases the store, keeping its data (Pebble) for a later Open.
	// The overlay is discarded. A memory store's data is gone.
	Close() error
	// Wipe deletes all of the store's data and checkpoint, leaving it empty
	// and open. The overlay is discarded too.
	Wipe() error
}

// Backend opens stores.
type Backend interface {
	// Open opens partition of the named store. A store partition can be open
	// once at a time: a second Open before Close is an error, because two
	// tasks sharing one store would interleave their overlays.
	Open(store string, partition int32) (Store, error)
	// Close closes every store still open and releases the backend.
	Close() error
}

var (
	// ErrClosed is returned by operations on a closed store or backend.
	ErrClosed = errors.New("statestore: store is closed")
	// ErrAlreadyOpen is returned by Open for a store partition that is
	// already open and not yet closed.
	ErrAlreadyOpen = errors.New("statestore: store partition is already open")
)

// checkName rejects store names that cannot be used as one directory name,
// so a name can neither escape the state directory nor collide with
// another store's files.
func checkName(store string) error {
	switch {
	case store == "":
		return errors.New("statestore: store name is empty")
	case store == "." || store == "..":
		return fmt.Errorf("statestore: store name %q is not a usable directory name", store)
	case strings.ContainsAny(store, "/\\\x00"):
		return fmt.Errorf("statestore: store name %q contains a path separator or NUL; name stores after their node, e.g. \"counts\"", store)
	}
	return nil
}

// checkCommit checks that a commit does not move the checkpoint backwards:
// the checkpoint only grows while the changelog grows, and a smaller one is
// a bug in the caller that would make the next restore replay records the
// store already holds (harmless) or, worse, hide a lost commit.
func checkCommit(checkpoint, next int64) error {
	if next < -1 {
		return fmt.Errorf("statestore: commit offset %d is negative; pass the offset after the last changelog record the transaction wrote", next)
	}
	if next < checkpoint {
		return fmt.Errorf("statestore: commit offset %d is below the checkpoint %d; the checkpoint never moves backwards, pass Checkpoint() when the transaction wrote no changelog record", next, checkpoint)
	}
	return nil
}

// overlay holds one transaction's uncommitted writes by key. A nil value is
// a pending delete; every other value, empty ones included, is non-nil.
type overlay map[string][]byte

func (o overlay) put(key, value []byte) {
	// string(key) copies the key; bytes.Clone copies the value and keeps a
	// non-nil empty value non-nil, so it stays a value and not a delete.
	o[string(key)] = bytes.Clone(value)
}

// get reports whether the overlay holds key and, if so, its value (nil for
// a pending delete).
func (o overlay) get(key []byte) (value []byte, found bool) {
	value, found = o[string(key)]
	return value, found
}

// clone copies b into a new non-nil slice, so an empty value read back is
// still distinguishable from nil and the caller owns what it gets.
func clone(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

// entrySize is what one entry adds to SizeBytes.
func entrySize(key, value []byte) int64 { return int64(len(key) + len(value)) }
