package kafkatest

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Who leads and coordinates what, as the cluster answers now. A test that
// kills "the transaction coordinator" asks first, then calls Kill.

func (c *Cluster) admin() (*kadm.Client, func(), error) {
	var seeds []string
	for _, n := range c.nodes {
		if c.Running(n.id) {
			seeds = append(seeds, c.Addr(n.id))
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// Leader is the node leading topic's partition.
func (c *Cluster) Leader(ctx context.Context, topic string, partition int32) (int32, error) {
	adm, done, err := c.admin()
	if err != nil {
		return -1, err
	}
	defer done()
	return retry(ctx, func() (int32, error) { return leader(ctx, adm, topic, partition) })
}

func leader(ctx context.Context, adm *kadm.Client, topic string, partition int32) (int32, error) {
	m, err := adm.Metadata(ctx, topic)
	if err != nil {
		return -1, err
	}
	t, ok := m.Topics[topic]
	if !ok || t.Err != nil {
		return -1, fmt.Errorf("kafkatest: metadata of topic %s: %v", topic, t.Err)
	}
	p, ok := t.Partitions[partition]
	if !ok {
		return -1, fmt.Errorf("kafkatest: topic %s has no partition %d", topic, partition)
	}
	if p.Err != nil {
		return -1, fmt.Errorf("kafkatest: %s/%d: %w", topic, partition, p.Err)
	}
	return p.Leader, nil
}

// GroupCoordinator is the node coordinating the consumer group.
func (c *Cluster) GroupCoordinator(ctx context.Context, group string) (int32, error) {
	adm, done, err := c.admin()
	if err != nil {
		return -1, err
	}
	defer done()
	return retry(ctx, func() (int32, error) { return coordinator(adm.FindGroupCoordinators(ctx, group), group) })
}

// TxnCoordinator is the node coordinating the transactional id.
func (c *Cluster) TxnCoordinator(ctx context.Context, txnID string) (int32, error) {
	adm, done, err := c.admin()
	if err != nil {
		return -1, err
	}
	defer done()
	return retry(ctx, func() (int32, error) { return coordinator(adm.FindTxnCoordinators(ctx, txnID), txnID) })
}

// retry calls f until it returns no retriable Kafka error (the first
// FindCoordinator of a kind creates its internal topic and answers
// COORDINATOR_NOT_AVAILABLE meanwhile) or ctx ends.
func retry(ctx context.Context, f func() (int32, error)) (int32, error) {
	for {
		id, err := f()
		if err == nil || !kerr.IsRetriable(err) {
			return id, err
		}
		select {
		case <-ctx.Done():
			return id, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func coordinator(rs kadm.FindCoordinatorResponses, key string) (int32, error) {
	r, ok := rs[key]
	if !ok {
		return -1, fmt.Errorf("kafkatest: no coordinator answer for %q", key)
	}
	if r.Err != nil {
		return -1, fmt.Errorf("kafkatest: finding the coordinator of %q: %w", key, r.Err)
	}
	return r.NodeID, nil
}
