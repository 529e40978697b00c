package statestore

import (
	"encoding/binary"
	"errors"

	"github.com/cockroachdb/pebble"
)

// On-disk layout: one Pebble DB per store partition, in
// dir/<store>/<partition>. One DB per partition, not one DB with key
// prefixes, because a partition is the unit that moves: when a partition is
// revoked for good its directory can be deleted whole, a wipe touches one
// partition's files only, a corrupt DB costs one partition's rebuild and not
// every task's, and compactions of busy partitions do not rewrite idle ones.
// What a DB per partition would cost, memory and file descriptors per DB,
// is bounded by sharing one block cache and one table cache (open sstables)
// across all of them.
//
// Keys inside a DB:
//
//	0x00 'm'      meta: the checkpoint, entry count and byte count
//	0x01 <key>    one entry of the store
//
// The meta record is written in the same batch as the data it describes, so
// the checkpoint can never disagree with the data after a crash.
var (
	metaKey   = []byte{0x00, 'm'}
	dataStart = []byte{0x01}
	dataEnd   = []byte{0x02} // exclusive: every data key is below it
)

// The meta record: a version byte, then checkpoint, entries and bytes as
// big-endian int64s.
const (
	metaVersion = 1
	metaLen     = 1 + 3*8
)

// meta is what a store's meta record holds.
type meta struct {
	checkpoint int64 // next changelog offset to read, -1 if unknown
	entries    int64
	bytes      int64
}

func (m meta) encode() []byte {
	b := make([]byte, metaLen)
	b[0] = metaVersion
	binary.BigEndian.PutUint64(b[1:], uint64(m.checkpoint))
	binary.BigEndian.PutUint64(b[9:], uint64(m.entries))
	binary.BigEndian.PutUint64(b[17:], uint64(m.bytes))
	return b
}

func decodeMeta(b []byte) (meta, bool) {
	if len(b) != metaLen || b[0] != metaVersion {
		return meta{}, false
	}
	m := meta{
		checkpoint: int64(binary.BigEndian.Uint64(b[1:])),
		entries:    int64(binary.BigEndian.Uint64(b[9:])),
		bytes:      int64(binary.BigEndian.Uint64(b[17:])),
	}
	if m.checkpoint < -1 || m.entries < 0 || m.bytes < 0 {
		return meta{}, false
	}
	return m, true
}

func dataKey(key []byte) []byte {
	k := make([]byte, 1+len(key))
	k[0] = dataStart[0]
	copy(k[1:], key)
	return k
}

// loadMeta reads the meta record. Without a valid one the checkpoint is
// unknown (-1), so the next restore wipes and rebuilds the store; the
// counts are recounted so Len and SizeBytes are right until then.
func loadMeta(db *pebble.DB) (meta, error) {
	v, closer, err := db.Get(metaKey)
	if err == nil {
		m, ok := decodeMeta(v)
		_ = closer.Close()
		if ok {
			return m, nil
		}
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return meta{}, err
	}
	m := meta{checkpoint: -1}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: dataStart, UpperBound: dataEnd})
	if err != nil {
		return meta{}, err
	}
	for it.First(); it.Valid(); it.Next() {
		m.entries++
		m.bytes += int64(len(it.Key())-1) + int64(len(it.Value()))
	}
	return m, errors.Join(it.Error(), it.Close())
}
