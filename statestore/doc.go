// Package statestore keeps the state of stateful steps (keyed aggregates,
// windows, dedupe): one Store per task (input partition) per named store,
// backed by memory or by Pebble, each mirrored by one partition of a
// compacted changelog topic, and restored from it when a task is assigned.
// It knows nothing of steps: the processor decides what the keys and values
// of a store mean. A restore request that fails is sent again when
// internal/kafkaerr calls the error Retriable.
//
// Three rules make the state exactly-once along with the outputs. Each rule
// exists because of a way state goes wrong without it.
//
// # The overlay: state moves with the transaction
//
// While a transaction is open, Put writes only to the store's overlay; Get
// reads the overlay first (a pending delete reads as absent) and committed
// state after. The runtime produces the same writes to the changelog inside
// the transaction. When the transaction commits, Commit applies the overlay;
// when it aborts, Abort discards it, and the consumer rewinds to the
// committed offsets.
//
// Why: an aborted transaction's records are reprocessed. Had their state
// changes been applied straight to the store, they would be applied twice
// (a count of 2 for one record), while the aborted changelog records, which
// read_committed never returns, would say otherwise: the store would
// disagree with its own changelog and with the outputs. With the overlay,
// committed state only ever holds what committed in Kafka.
//
// # The checkpoint: what the store reflects
//
// Commit(next) records that the store reflects its changelog up to, not
// including, offset next. Pebble writes the data and the checkpoint in one
// batch, so they cannot disagree after a crash, and only after the Kafka
// transaction committed, so a store on disk always holds a committed prefix
// of its changelog. A restart then replays only the tail after the
// checkpoint, instead of the whole changelog.
//
// Pebble commits do not wait for fsync: its WAL replays whole batches in
// order, so a crash loses at most a suffix of commits, which leaves an older
// committed prefix, and restore reads the lost tail back. A store whose
// checkpoint is -1 (new, wiped, or unreadable) reflects nothing known.
//
// # Restore: catch up before processing
//
// Before a task processes a record, RestorePartition brings each store up to
// date with its changelog partition:
//
//   - It takes the log start offset and the high watermark (hwm) first; the
//     hwm is where the restore ends.
//   - A store with no checkpoint, one below the log start (the records it
//     needs were deleted), or one above the hwm is wiped and rebuilt from
//     the log start. Above the hwm means the store is ahead of the
//     changelog: it holds writes the changelog does not, from a transaction
//     whose outcome the runtime misjudged, or from an older topic of the
//     same name. Replaying on top of it would keep those writes forever.
//   - It reads with read_committed, so aborted records (a zombie's, or a
//     transaction that failed) never reach the store.
//   - It reads until its read position reaches the hwm, not the last stable
//     offset (LSO). While some producer's transaction is open on the
//     changelog, the LSO stays at that transaction's first record, and
//     committed records after it wait behind it. Stopping at the LSO would
//     miss them: the task would process with old state and write wrong
//     outputs and a changelog built on the wrong state. So the restore waits
//     until the transaction ends; a zombie's is aborted by the broker at the
//     transaction timeout, which is why the transaction timeout must stay
//     short.
//   - FinishRestore(hwm) makes the restored state durable with the
//     checkpoint, and the task starts processing.
//
// Restore issues its own fetch requests and decodes them with kgo's own
// decoder, which returns the exact next offset to read: transaction markers,
// aborted batches and compacted-away records occupy offsets but are never
// returned, so the offset of the last returned record cannot tell whether
// the hwm has been passed.
//
// # Changelog topics
//
// EnsureChangelog creates a changelog with one partition per task and
// cleanup.policy=compact, and refuses an existing one with another partition
// count (its partitions hold other tasks' state) or without compaction
// (retention would delete keys the state still needs).
package statestore
