package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
)

// waitCaughtUp returns nil once group has committed offsets at the end of
// every partition of topics, or ctx's error.
func waitCaughtUp(ctx context.Context, brokers []string, group string, topics []string, opts ...kgo.Opt) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if broker.CaughtUp(ctx, cl, group, topics) {
			return nil
		}
	}
}

// printCommitted prints every record a read_committed reader sees on
// topics, one per line: topic, partition@offset, key, value.
func printCommitted(ctx context.Context, w io.Writer, brokers []string, topics []string, opts ...kgo.Opt) error {
	recs, err := broker.ReadCommitted(ctx, brokers, topics, opts...)
	if err != nil {
		return err
	}
	for _, r := range recs {
		fmt.Fprintf(w, "%s\t%d@%d\t%s\t%s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
	}
	return nil
}
