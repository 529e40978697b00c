package processor

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// retriable reports whether a fetch error goes away by itself (the client
// retries it): a topic being created, a leader moving.
func retriable(err error) bool {
	return kerr.IsRetriable(err) || errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID)
}
