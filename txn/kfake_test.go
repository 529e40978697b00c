package txn

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kfakeCluster starts an embedded one-broker cluster with the topics in
// and out (one partition each), closed when the test ends, and a context
// of 30 seconds for the test's requests.
func kfakeCluster(t *testing.T) (*kfake.Cluster, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, ctx
}

// kfakeSession is a Session with transactional id txnID in group g,
// consuming in, on c, with the client options opts; closed when the test
// ends.
func kfakeSession(t *testing.T, ctx context.Context, c *kfake.Cluster, txnID string, opts ...kgo.Opt) *Session {
	t.Helper()
	s, err := New(Config{Brokers: c.ListenAddrs(), Group: "g", TransactionalID: txnID, Topics: []string{"in"},
		TransactionTimeout: time.Minute, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second, Opts: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(ctx) })
	return s
}
