package broker

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/statestore"
)

// CaughtUp reports whether group has consumed every committed record of
// topics: for each partition, either its committed offset is at the end,
// or nothing committed lies between the two. The second case is common:
// under read_committed a consumer's offset stops after the last record it
// saw, before the commit marker (or the aborted records) that follow it.
func CaughtUp(ctx context.Context, cl *kgo.Client, group string, topics []string) bool {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil || ends.Error() != nil {
		return false
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false
	}
	ok := true
	ends.Each(func(o kadm.ListedOffset) {
		if !ok || o.Offset == 0 {
			return
		}
		from := int64(0)
		if c, found := committed.Lookup(o.Topic, o.Partition); found && c.Err == nil {
			from = c.At
		}
		if from >= o.Offset {
			return
		}
		err := statestore.ReadCommitted(ctx, cl, o.Topic, o.Partition, from, o.Offset, func(*kgo.Record) error {
			return errPending
		})
		ok = err == nil
	})
	return ok
}

var errPending = fmt.Errorf("records pending")

// ReadCommitted returns every record a read_committed reader sees on
// topics up to their current end, in topic, partition, offset order.
// opts are extra client options (TLS, SASL).
func ReadCommitted(ctx context.Context, brokers []string, topics []string, opts ...kgo.Opt) ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %v: %w", topics, err)
	}
	var parts []kadm.ListedOffset
	ends.Each(func(o kadm.ListedOffset) { parts = append(parts, o) })
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].Topic != parts[j].Topic {
			return parts[i].Topic < parts[j].Topic
		}
		return parts[i].Partition < parts[j].Partition
	})
	var out []*kgo.Record
	for _, o := range parts {
		if o.Offset == 0 {
			continue
		}
		err := statestore.ReadCommitted(ctx, cl, o.Topic, o.Partition, 0, o.Offset, func(r *kgo.Record) error {
			out = append(out, r)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading %s/%d: %w", o.Topic, o.Partition, err)
		}
	}
	return out, nil
}
