package kafkatest

import (
	"context"
	"errors"
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

// CreateTopics creates topics with partitions each, replicated on every
// node (the cluster's default.replication.factor), with configs. A topic
// that exists already is an error: tests sharing a cluster name their
// topics uniquely.
//
// Unless configs say otherwise, the topics keep records forever
// (retention.ms=-1): tests write records with event timestamps of fixed
// past dates, and Kafka's time retention (7 days, measured on the record
// timestamps) would delete them within minutes, which the embedded broker
// never does.
func (c *Cluster) CreateTopics(ctx context.Context, partitions int32, configs map[string]*string, topics ...string) error {
	if _, ok := configs["retention.ms"]; !ok {
		cfg := map[string]*string{"retention.ms": kadm.StringPtr("-1")}
		for k, v := range configs {
			cfg[k] = v
		}
		configs = cfg
	}
	adm, done, err := c.admin()
	if err != nil {
		return err
	}
	defer done()
	rs, err := adm.CreateTopics(ctx, partitions, -1, configs, topics...)
	if err != nil {
		return fmt.Errorf("kafkatest: creating topics %v: %w", topics, err)
	}
	for _, r := range rs.Sorted() {
		if r.Err != nil {
			return fmt.Errorf("kafkatest: creating topic %s: %w (%s)", r.Topic, r.Err, r.ErrMessage)
		}
	}
	return nil
}

// Reset deletes every consumer group and every topic but Kafka's internal
// ones, and waits until they are gone, so tests that run one after the
// other with fixed names (events, out, ...) can share the cluster. A
// group that still has members (a client not yet closed) is retried until
// its session expires or ctx ends.
func (c *Cluster) Reset(ctx context.Context) error {
	adm, done, err := c.admin()
	if err != nil {
		return err
	}
	defer done()
	for {
		err := reset(ctx, adm)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafkatest: resetting the cluster: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func reset(ctx context.Context, adm *kadm.Client) error {
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return err
	}
	if names := groups.Groups(); len(names) > 0 {
		rs, err := adm.DeleteGroups(ctx, names...)
		if err != nil {
			return err
		}
		for _, r := range rs.Sorted() {
			if r.Err != nil && !errors.Is(r.Err, kerr.GroupIDNotFound) {
				return fmt.Errorf("deleting group %s: %w", r.Group, r.Err)
			}
		}
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return err
	}
	if names := topics.Names(); len(names) > 0 {
		rs, err := adm.DeleteTopics(ctx, names...)
		if err != nil {
			return err
		}
		for _, r := range rs.Sorted() {
			if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("deleting topic %s: %w", r.Topic, r.Err)
			}
		}
		return errors.New("topics deleted, checking they are gone")
	}
	return nil
}
