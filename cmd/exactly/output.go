package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// waitCaughtUp returns nil once group has committed offsets at the end of
// every partition of topics, or ctx's error.
func waitCaughtUp(ctx context.Context, brokers []string, group string, topics []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if caughtUp(ctx, adm, group, topics) {
			return nil
		}
	}
}

func caughtUp(ctx context.Context, adm *kadm.Client, group string, topics []string) bool {
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

// printCommitted prints every record a read_committed reader sees on
// topics, one per line: topic, partition@offset, key, value.
func printCommitted(ctx context.Context, w io.Writer, brokers []string, topics []string) error {
	recs, err := readCommitted(ctx, brokers, topics)
	if err != nil {
		return err
	}
	for _, r := range recs {
		fmt.Fprintf(w, "%s\t%d@%d\t%s\t%s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
	}
	return nil
}

// readCommitted reads topics from the start to their current end with
// read_committed, in topic, partition, offset order.
func readCommitted(ctx context.Context, brokers []string, topics []string) ([]*kgo.Record, error) {
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
