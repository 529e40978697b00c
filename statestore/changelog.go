package statestore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/exactly-dev/exactly/internal/kafkaerr"
)

// EnsureChangelog creates topic with the given partitions and
// cleanup.policy=compact if it does not exist. If it exists with a
// different partition count, or a cleanup.policy that does not contain
// compact, it returns an error naming the topic, what it has, what it needs
// and how to fix it.
//
// Why both rules: task p restores from changelog partition p, so a
// changelog with another partition count holds state partitioned for other
// tasks; and a changelog that is not compacted loses the older keys of the
// state once retention deletes them, so a later restore silently rebuilds
// a store that lacks them. Neither is ever repaired by waiting, so both
// stop the pipeline before it processes anything.
//
// The topic is created with the cluster's default replication factor
// (Kafka 2.4+).
func EnsureChangelog(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	if partitions <= 0 {
		return fmt.Errorf("statestore: changelog topic %s needs a positive partition count, got %d", topic, partitions)
	}
	// Existence comes from DescribeConfigs, which kadm does not cache;
	// kadm's metadata is cached and may say "unknown topic" for a while
	// after the topic was created.
	policy, exists, err := cleanupPolicy(ctx, adm, topic)
	if err != nil {
		return err
	}
	if !exists {
		resp, err := adm.CreateTopic(ctx, partitions, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)
		if err == nil {
			return nil
		}
		if !kafkaerr.TopicExists(err) {
			if resp.ErrMessage != "" {
				err = fmt.Errorf("%s: %w", resp.ErrMessage, err)
			}
			return fmt.Errorf("statestore: creating changelog topic %s with %d partitions and cleanup.policy=compact: %w", topic, partitions, err)
		}
		// Another instance created it first: check it like any other.
		// Kafka's controller knows the topic before the brokers do: for a
		// moment after its creation (seconds on a busy machine) the broker
		// answering DescribeConfigs and Metadata still calls it unknown,
		// so ask again until it knows it.
		for attempt := 0; ; attempt++ {
			if policy, exists, err = cleanupPolicy(ctx, adm, topic); err != nil || exists {
				break
			}
			if attempt == topicVisibleAttempts || !sleepCtx(ctx, topicVisibleStep) {
				return fmt.Errorf("statestore: changelog topic %s already exists but the brokers did not describe it within %s; start again in a few seconds", topic, topicVisibleAttempts*topicVisibleStep)
			}
		}
		if err != nil {
			return err
		}
	}

	var have int32
	for attempt := 0; ; attempt++ {
		if have, err = partitionCount(ctx, adm, topic); err == nil || !kafkaerr.UnknownTopic(err) {
			break
		}
		if attempt == topicVisibleAttempts || !sleepCtx(ctx, topicVisibleStep) {
			break
		}
	}
	if err != nil {
		return err
	}
	var errs []error
	if have != partitions {
		errs = append(errs, fmt.Errorf("statestore: changelog topic %s has %d partitions, needs %d (one per partition of its source): "+
			"its state is partitioned for %d tasks and cannot be reused; delete the topic and reprocess the source from its start, "+
			"or give the source back %d partitions", topic, have, partitions, have, have))
	}
	if !hasCompact(policy) {
		errs = append(errs, fmt.Errorf("statestore: changelog topic %s has cleanup.policy=%s, needs compact: retention would delete older keys of the state; "+
			"fix with: kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact", topic, policy, topic))
	}
	return errors.Join(errs...)
}

// How long EnsureChangelog waits for a topic the controller has created to
// be known to the brokers too.
const (
	topicVisibleStep     = 100 * time.Millisecond
	topicVisibleAttempts = 100
)

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// cleanupPolicy returns topic's cleanup.policy and whether topic exists.
func cleanupPolicy(ctx context.Context, adm *kadm.Client, topic string) (policy string, exists bool, err error) {
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	var rc kadm.ResourceConfig
	if err == nil {
		rc, err = configs.On(topic, nil)
	}
	if err == nil {
		err = rc.Err
	}
	if kafkaerr.UnknownTopic(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("statestore: describing configs of changelog topic %s: %w", topic, err)
	}
	policy = "delete" // Kafka's default, if the broker does not say
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	return policy, true, nil
}

// partitionCount returns the partition count of topic, which exists.
func partitionCount(ctx context.Context, adm *kadm.Client, topic string) (int32, error) {
	details, err := adm.ListTopics(ctx, topic)
	if err == nil && kafkaerr.UnknownTopic(details[topic].Err) {
		// kadm answered from its metadata cache, filled before the topic
		// existed. Asking for authorized operations makes kadm skip the
		// cache and send a Metadata request.
		details, err = adm.ListTopics(kadm.WithAuthorizedOps(ctx), topic)
	}
	if err == nil {
		err = details[topic].Err
	}
	if err != nil {
		return 0, fmt.Errorf("statestore: describing changelog topic %s: %w", topic, err)
	}
	return int32(len(details[topic].Partitions)), nil
}

// hasCompact reports whether a cleanup.policy list ("compact",
// "compact,delete", "delete") contains compact.
func hasCompact(policy string) bool {
	for p := range strings.SplitSeq(policy, ",") {
		if strings.TrimSpace(p) == "compact" {
			return true
		}
	}
	return false
}
