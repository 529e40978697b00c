package processor

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// fatalFetch reports whether a fetch error stops the processor. The client
// retries everything else itself (a group rejoin, a leader moving, a topic
// being created), so those are only logged.
func fatalFetch(err error) bool {
	return errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) ||
		errors.Is(err, kerr.SaslAuthenticationFailed)
}
