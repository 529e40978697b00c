// Package kafkaerr says what an error from Kafka, or from franz-go talking
// to it, means: the one place that sorts broker error codes and client
// errors into classes. It decides nothing: each caller acts on the class
// in its own way.
//
//   - txn ends a transaction: a produce error that is Abortable aborts it
//     and the records come again; one that is Fenced rebuilds the client
//     (or stops, when it keeps happening); any other stops the pipeline.
//     An error from ending the transaction itself, whatever its class
//     (unless Fenced), leaves the outcome unknown, and txn rebuilds.
//   - processor polls: a fetch error that is Fatal stops it; the client
//     retries every other one by itself. A broker connection that fails
//     with SASLFailed is reported as a failed authentication.
//   - statestore restores and creates topics: a request that fails
//     Retriable is sent again to a reloaded leader; TopicExists,
//     UnknownTopic and OffsetOutOfRange tell what a topic or an offset is
//     (not) there.
//
// Every function unwraps with errors.Is or errors.As, so wrapped errors
// keep their class.
package kafkaerr

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Fenced reports whether err means this producer's epoch is stale: a newer
// producer took the transactional id, the broker aborted a transaction
// that outlived the transaction timeout and bumped the epoch, or another
// static member took the group instance id. Only a new client (a new
// producer id) can go on, and only if the fencing was not by a live twin.
func Fenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) ||
		errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.FencedInstanceID)
}

// Abortable reports whether a produce error dooms only the open
// transaction: abort it, and the same records can be produced again in the
// next one. That is TRANSACTION_ABORTABLE, a transaction already aborting,
// a produce cancelled by its context, and every retriable broker error
// (the client gave up retrying within the transaction). Not abortable:
// errors the same records would meet again (a record too large, an
// unknown topic, an authorization failure) and Fenced errors.
func Abortable(err error) bool {
	return errors.Is(err, kerr.TransactionAbortable) ||
		errors.Is(err, kgo.ErrAborting) ||
		errors.Is(err, context.Canceled) ||
		kerr.IsRetriable(err)
}

// Fatal reports whether err means the cluster refuses this client:
// authentication failed, an ACL denies it the topic, the group, the
// cluster or the transactional id, or the group refuses its session
// timeout (outside group.min/max.session.timeout.ms). Neither retrying nor
// a new client can help; stop, and let the user fix the credentials, ACLs
// or settings.
func Fatal(err error) bool {
	return errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) ||
		errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.InvalidSessionTimeout)
}

// SASLFailed reports whether the broker refused the SASL exchange: wrong
// credentials, a mechanism it does not enable, or a broken handshake.
// The processor reports it as a failed authentication, which no retry
// fixes while the settings stay as they are.
func SASLFailed(err error) bool {
	return errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.IllegalSaslState) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism)
}

// Retriable reports whether a request sent by hand (kmsg, a kgo Broker)
// is worth sending again, after reloading the partition's leader: a
// retriable broker error (leader moved, epoch changed) or a transport
// error (connection dropped, broker restarting), which such requests do
// not retry by themselves. Not retriable: a non-retriable broker error,
// an error marked Permanent, the caller's context ending, and a client we
// closed. Callers bound their retries, so a broker that stays unreachable
// still ends in its last error.
func Retriable(err error) bool {
	var perm permanent
	if errors.As(err, &perm) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || ClientClosed(err) {
		return false
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	return true
}

// Permanent marks err as an answer retrying cannot change (a topic with
// too few partitions), so that Retriable is false for it, however it is
// wrapped. The message and errors.Is of err are unchanged.
func Permanent(err error) error { return permanent{err} }

type permanent struct{ error }

func (e permanent) Unwrap() error { return e.error }

// ClientClosed reports whether err comes from a client we closed: it
// belongs to work that is over, not to a failure.
func ClientClosed(err error) bool { return errors.Is(err, kgo.ErrClientClosed) }

// TopicExists reports whether creating a topic failed because it exists
// (another replica created it first).
func TopicExists(err error) bool { return errors.Is(err, kerr.TopicAlreadyExists) }

// UnknownTopic reports whether the broker does not know the topic or
// partition: it does not exist, or it was created a moment ago and this
// broker has not learnt of it yet.
func UnknownTopic(err error) bool { return errors.Is(err, kerr.UnknownTopicOrPartition) }

// OffsetOutOfRange reports whether the offset asked for is no longer (or
// not yet) in the partition: retention or a purge deleted the records.
func OffsetOutOfRange(err error) bool { return errors.Is(err, kerr.OffsetOutOfRange) }
