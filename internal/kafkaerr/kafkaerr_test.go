package kafkaerr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClasses gives the class of each error as every function sees it.
func TestClasses(t *testing.T) {
	type class struct{ fenced, abortable, fatal, retriable bool }
	tests := []struct {
		err  error
		want class
	}{
		{kerr.ProducerFenced, class{fenced: true}},
		{fmt.Errorf("wrapped: %w", kerr.InvalidProducerEpoch), class{fenced: true}},
		{kerr.FencedInstanceID, class{fenced: true}},
		{kerr.TransactionAbortable, class{abortable: true}},
		{kgo.ErrAborting, class{abortable: true, retriable: true}},
		{context.Canceled, class{abortable: true}},
		{context.DeadlineExceeded, class{}},
		{kerr.NotLeaderForPartition, class{abortable: true, retriable: true}},
		{fmt.Errorf("fetch: %w", kerr.LeaderNotAvailable), class{abortable: true, retriable: true}},
		{kerr.MessageTooLarge, class{}},
		{kerr.TopicAuthorizationFailed, class{fatal: true}},
		{kerr.GroupAuthorizationFailed, class{fatal: true}},
		{kerr.ClusterAuthorizationFailed, class{fatal: true}},
		{kerr.TransactionalIDAuthorizationFailed, class{fatal: true}},
		{kerr.SaslAuthenticationFailed, class{fatal: true}},
		{fmt.Errorf("unable to join group session: %w", kerr.InvalidSessionTimeout), class{fatal: true}},
		{kerr.UnknownTopicOrPartition, class{abortable: true, retriable: true}},
		{Permanent(fmt.Errorf("no partition 3: %w", kerr.UnknownTopicOrPartition)), class{abortable: true}},
		{kgo.ErrClientClosed, class{}},
		{io.ErrUnexpectedEOF, class{retriable: true}}, // a dropped connection
		{errors.New("other"), class{retriable: true}},
	}
	for _, tt := range tests {
		got := class{Fenced(tt.err), Abortable(tt.err), Fatal(tt.err), Retriable(tt.err)}
		if got != tt.want {
			t.Errorf("class of %v = %+v, want %+v", tt.err, got, tt.want)
		}
	}
}

func TestTopicAndOffset(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("statestore: creating changelog topic t: %w", err) }
	if !TopicExists(wrap(kerr.TopicAlreadyExists)) || TopicExists(wrap(kerr.UnknownTopicOrPartition)) {
		t.Error("TopicExists: want true for TOPIC_ALREADY_EXISTS only")
	}
	if !UnknownTopic(wrap(kerr.UnknownTopicOrPartition)) || UnknownTopic(wrap(kerr.TopicAlreadyExists)) {
		t.Error("UnknownTopic: want true for UNKNOWN_TOPIC_OR_PARTITION only")
	}
	if !OffsetOutOfRange(wrap(kerr.OffsetOutOfRange)) || OffsetOutOfRange(wrap(kerr.UnknownTopicOrPartition)) {
		t.Error("OffsetOutOfRange: want true for OFFSET_OUT_OF_RANGE only")
	}
	for _, err := range []error{kerr.SaslAuthenticationFailed, kerr.IllegalSaslState, kerr.UnsupportedSaslMechanism} {
		if !SASLFailed(wrap(err)) {
			t.Errorf("SASLFailed(%v) = false, want true", err)
		}
	}
	if SASLFailed(kerr.TopicAuthorizationFailed) {
		t.Error("SASLFailed(TOPIC_AUTHORIZATION_FAILED) = true, want false: an ACL, not SASL")
	}
	if !ClientClosed(wrap(kgo.ErrClientClosed)) || ClientClosed(wrap(context.Canceled)) {
		t.Error("ClientClosed: want true for kgo.ErrClientClosed only")
	}
}

// Permanent keeps the message and the error it wraps.
func TestPermanent(t *testing.T) {
	inner := fmt.Errorf("the topic does not exist: %w", kerr.UnknownTopicOrPartition)
	p := fmt.Errorf("restoring: %w", Permanent(inner))
	if p.Error() != "restoring: "+inner.Error() || !errors.Is(p, kerr.UnknownTopicOrPartition) || Retriable(p) {
		t.Errorf("Permanent(%v) wrapped = %q, Is unknown topic %v, Retriable %v; want the message unchanged, true, false", inner, p, errors.Is(p, kerr.UnknownTopicOrPartition), Retriable(p))
	}
}
