// Package txn owns the cycle of a group member that consumes, transforms
// and produces: Session runs it in Kafka transactions (exactly once), Plain
// in batches without them (at least once, at most once), with the same
// shape so the processor drives both alike. It decides what an error means
// for the cycle (commit, abort and go on, rebuild the client, or stop),
// from the classes package internal/kafkaerr sorts Kafka errors into.
//
// # The cycle
//
//  1. Poll. A transaction begins only once a poll has returned records:
//     beginning and ending an empty transaction costs a round of requests
//     (and, in franz-go, a 500 ms wait), for nothing.
//  2. The caller processes the records and hands every output record to
//     Produce, which does not wait for the broker.
//  3. When the commit interval has passed, End flushes the producer,
//     commits the consumed offsets with the group's generation (KIP-447)
//     inside the transaction, and ends it.
//
// End reports one of four things:
//
//   - committed: outputs and offsets are visible to read_committed readers,
//     together;
//   - aborted (committed false, err nil): a rebalance revoked partitions
//     during the transaction, or a produce failed with an abortable error.
//     Nothing is visible, and the consumer has been rewound to the last
//     committed offsets, so the same records come again;
//   - a *ProduceError: a produce failed with an error the same records
//     would meet again (a record too large, an unknown topic, an
//     authorization failure). The transaction aborted; the caller stops;
//   - a *RebuildError: nobody knows whether the transaction committed:
//     the EndTxn request may have reached the coordinator before the
//     connection broke. Guessing either way loses or doubles a batch, so
//     the caller must Rebuild: a new client joins the group, fetches the
//     committed offsets and (for stateful pipelines) state is restored from
//     the changelogs, which hold exactly what committed.
//
// # Zombies
//
// The transactional id is <pipeline>-<instance id>, stable across restarts.
// A restarted instance initialises its producer id with it, which fences
// the predecessor and aborts the predecessor's open transaction at once.
// The predecessor, if it is still alive (a paused process waking up), is
// fenced at its next request. One fence is normal (that, or the broker
// aborting a transaction that outlived the transaction timeout), so End
// returns a *RebuildError with Fenced set and the caller rebuilds. Three
// fences within a minute mean two live processes share the transactional
// id: End returns ErrFenced and the caller must stop, not rebuild, since
// rebuilding would fence the other in turn and the two would take turns
// forever. Offsets are committed with the group generation, so a member
// that was expelled from the group cannot commit offsets either.
//
// The transaction timeout must stay below the session timeout, so that the
// broker aborts a dead member's open transaction before the group can give
// its partitions to another member (franz-go's advice for group
// transactions); config validates it.
package txn
