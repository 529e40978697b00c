package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CaughtUp reports whether group has committed offsets at the end of every
// non-empty partition of topics.
func CaughtUp(ctx context.Context, adm *kadm.Client, group string, topics []string) bool {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return false
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false
	}
	ok := true
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			ok = false
			return
		}
		if o.Offset == 0 {
			return
		}
		c, found := committed.Lookup(o.Topic, o.Partition)
		if !found || c.Err != nil || c.At < o.Offset {
			ok = false
		}
	})
	return ok
}

// ReadCommitted reads topics from the start to their current end with
// read_committed, in topic, partition, offset order.
func ReadCommitted(ctx context.Context, brokers []string, topics []string) ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(250*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %v: %w", topics, err)
	}
	want := map[string]map[int32]kgo.Offset{}
	remaining := 0
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			if want[o.Topic] == nil {
				want[o.Topic] = map[int32]kgo.Offset{}
			}
			want[o.Topic][o.Partition] = kgo.NewOffset().AtStart()
			remaining++
		}
	})
	byPart := map[string]map[int32][]*kgo.Record{}
	if remaining > 0 {
		cl.AddConsumePartitions(want)
		idle := 0
		for remaining > 0 && idle < 3 {
			// A partition whose tail is transaction markers or aborted
			// records never shows a record at end-1; for those, three
			// empty polls in a row mean nothing more is readable.
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			fs := cl.PollFetches(pctx)
			cancel()
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("reading output: %w", err)
			}
			fs.EachError(func(t string, p int32, e error) {
				if !errors.Is(e, context.DeadlineExceeded) {
					err = fmt.Errorf("reading %s/%d: %w", t, p, e)
				}
			})
			if err != nil {
				return nil, err
			}
			if fs.NumRecords() == 0 {
				idle++
				continue
			}
			idle = 0
			fs.EachPartition(func(p kgo.FetchTopicPartition) {
				if len(p.Records) == 0 {
					return
				}
				if byPart[p.Topic] == nil {
					byPart[p.Topic] = map[int32][]*kgo.Record{}
				}
				byPart[p.Topic][p.Partition] = append(byPart[p.Topic][p.Partition], p.Records...)
				end, _ := ends.Lookup(p.Topic, p.Partition)
				last := p.Records[len(p.Records)-1].Offset
				if _, open := want[p.Topic][p.Partition]; open && last+1 >= end.Offset {
					delete(want[p.Topic], p.Partition)
					remaining--
				}
			})
		}
	}
	var out []*kgo.Record
	for _, t := range sortedKeys(byPart) {
		for _, p := range sortedKeys(byPart[t]) {
			out = append(out, byPart[t][p]...)
		}
	}
	return out, nil
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}
