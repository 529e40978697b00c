package processor

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Repartition topics hold records only until the aggregate reading them
// has committed past them. They are created with retention.ms=-1: time
// retention counts from record timestamps, and a replay of data older than
// the broker's retention (7 days by default) would otherwise see its
// repartition records deleted before they were read. Instead, as Kafka
// Streams does, every purgeInterval the records below the group's
// committed offsets are deleted (DeleteRecords), so the topics stay small.

// defaultPurgeInterval is Config.PurgeInterval's default (Kafka Streams'
// repartition.purge.interval.ms).
const defaultPurgeInterval = 30 * time.Second

// purge runs until ctx ends, deleting committed repartition records every
// interval. Failures are logged and tried again next time: a purge only
// saves disk.
func (p *Processor) purge(ctx context.Context, interval time.Duration) {
	topics := p.topo.Plan.RepartitionTopics()
	if len(topics) == 0 || interval <= 0 {
		return
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(p.cfg.Brokers...), kgo.ClientID(p.cfg.ClientID)}, p.cfg.KafkaOpts...)...)
	if err != nil {
		p.log.Warn("purging repartition topics: cannot make a client", "err", err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		committed, err := adm.FetchOffsetsForTopics(ctx, p.topo.Group, topics...)
		if err != nil {
			p.log.Debug("purging repartition topics: fetching committed offsets", "err", err)
			continue
		}
		del := kadm.Offsets{}
		committed.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At > 0 {
				del.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.At, LeaderEpoch: -1})
			}
		})
		if len(del) == 0 {
			continue
		}
		resp, err := adm.DeleteRecords(ctx, del)
		if err == nil {
			err = resp.Error()
		}
		if err != nil && ctx.Err() == nil {
			p.log.Debug("purging repartition topics", "err", err)
		}
	}
}

// runPurge starts purge in a goroutine; the returned func stops it and
// waits for it.
func (p *Processor) runPurge(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.purge(ctx, p.cfg.PurgeInterval)
	}()
	return func() { cancel(); wg.Wait() }
}
