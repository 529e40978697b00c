package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
)

// waitCaughtUp returns nil once group has committed offsets at the end of
// every partition of topics, or ctx's error.
//
// Whether a partition is done can take a read: below its end there may be
// only transaction markers and aborted records, which the group never
// commits past one by one. That read costs the broker a fetch per
// partition, so it is only made once the group's committed offsets stood
// still for a tick: while they move, the pipeline is still working.
//
// settled, when not nil, must hold too: a pipeline with windows behind a
// repartition is done only once its upstream partitions have sent their
// last watermarks (the windows they close need them).
func waitCaughtUp(ctx context.Context, brokers []string, group string, topics []string, settled func() bool, opts ...kgo.Opt) error {
	return waitStill(ctx, brokers, group, func(cl *kgo.Client, _ *kadm.Client, _ kadm.OffsetResponses) bool {
		return (settled == nil || settled()) && broker.CaughtUp(ctx, cl, group, topics)
	}, opts...)
}

// waitStill polls group's committed offsets every 200 ms and returns nil
// once they stood still for a tick and done holds, or ctx's error. done
// may read the broker: it is asked only while the group is not moving.
func waitStill(ctx context.Context, brokers []string, group string, done func(*kgo.Client, *kadm.Client, kadm.OffsetResponses) bool, opts ...kgo.Opt) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var last kadm.OffsetResponses
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			continue
		}
		moved := !sameOffsets(last, committed)
		last = committed
		if !moved && done(cl, adm, committed) {
			return nil
		}
	}
}

// sameOffsets reports whether a and b commit the same offsets.
func sameOffsets(a, b kadm.OffsetResponses) bool {
	if a == nil || len(a) != len(b) {
		return false
	}
	same := true
	a.Each(func(o kadm.OffsetResponse) {
		if p, ok := b.Lookup(o.Topic, o.Partition); !ok || p.At != o.At {
			same = false
		}
	})
	return same
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
