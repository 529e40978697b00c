package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/exactly-dev/exactly/config"
	"github.com/exactly-dev/exactly/processor"
	"github.com/exactly-dev/exactly/txn"
)

// redriveCmd sends dead-lettered records back to the topic they came from
// (or another), exactly once: it consumes the dead-letter topic in its own
// consumer group and produces in transactions that commit its offsets, so
// a record is redriven once however often the command runs or crashes.
func redriveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("redrive", stderr)
	dlq := fs.String("dlq", "", "dead-letter topic to read (required)")
	to := fs.String("to", "", "send every record to this topic (default: the topic named by its exactly.source.topic header)")
	from := fs.Int64("from-offset", 0, "redrive only records at or after this offset of each partition")
	until := fs.Int64("to-offset", -1, "redrive only records before this offset of each partition (default: all)")
	config.AddFlags(fs)
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	if *dlq == "" {
		return usageError{errors.New("missing --dlq topic")}
	}
	s, err := config.Load(fs)
	if err != nil {
		return usageError{err}
	}
	if len(s.Kafka.Brokers) == 1 && s.Kafka.Brokers[0] == config.Embedded {
		return usageError{errors.New("redrive needs --brokers of the cluster holding the dead-letter topic")}
	}
	log := newLogger(s, stderr)
	kopts, _, err := s.KafkaOpts()
	if err != nil {
		return usageError{err}
	}
	for _, w := range s.Warnings() {
		log.Warn(w)
	}
	group := "exactly-redrive-" + *dlq
	sess, err := txn.New(txn.Config{
		Brokers:            s.Kafka.Brokers,
		ClientID:           s.Kafka.ClientID,
		Group:              group,
		TransactionalID:    group + "-" + s.InstanceID,
		Topics:             []string{*dlq},
		TransactionTimeout: s.Kafka.TransactionTimeout,
		SessionTimeout:     s.Kafka.SessionTimeout,
		RebalanceTimeout:   s.Kafka.RebalanceTimeout,
		Logger:             log,
		Opts:               append([]kgo.Opt{kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, kopts...),
	})
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error {
		if err := waitCaughtUp(gctx, s.Kafka.Brokers, group, []string{*dlq}, nil, kopts...); err == nil {
			cancel()
		}
		return nil
	})
	var sent, skipped int
	g.Go(func() error {
		for {
			pctx, pcancel := context.WithTimeout(gctx, 500*time.Millisecond)
			fetches := sess.Poll(pctx, 10_000)
			pcancel()
			if gctx.Err() != nil {
				return nil
			}
			var ferr error
			fetches.EachError(func(t string, p int32, e error) {
				if !errors.Is(e, context.DeadlineExceeded) && !errors.Is(e, context.Canceled) {
					ferr = fmt.Errorf("reading %s/%d: %w", t, p, e)
				}
			})
			if ferr != nil {
				return ferr
			}
			if fetches.Empty() {
				continue
			}
			if err := sess.Begin(gctx, fetches); err != nil {
				return err
			}
			var rerr error
			n, k := 0, 0
			fetches.EachRecord(func(r *kgo.Record) {
				if rerr != nil {
					return
				}
				if r.Offset < *from || (*until >= 0 && r.Offset >= *until) {
					k++
					return
				}
				out, err := undeadLetter(r, *to)
				if err != nil {
					rerr = err
					return
				}
				sess.Produce(gctx, out)
				n++
			})
			ectx, ecancel := context.WithTimeout(context.WithoutCancel(gctx), s.Kafka.TransactionTimeout)
			committed, err := sess.End(ectx, rerr != nil)
			ecancel()
			if rerr != nil {
				return rerr
			}
			var rebuild *txn.RebuildError
			switch {
			case errors.As(err, &rebuild):
				log.Warn("rebuilding the client; resuming from committed offsets", "err", err)
				if err := sess.Rebuild(); err != nil {
					return err
				}
			case err != nil:
				return err
			case committed:
				sent += n
				skipped += k
			}
		}
	})
	err = g.Wait()
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), s.ShutdownTimeout)
	defer scancel()
	sess.Close(sctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "redrove %d records from %s (%d outside the offset range)\n", sent, *dlq, skipped)
	return nil
}

// undeadLetter rebuilds the original record from a dead-letter record:
// same key, value and headers, without the exactly.* headers, to its
// source topic or to.
func undeadLetter(r *kgo.Record, to string) (*kgo.Record, error) {
	out := &kgo.Record{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Topic: to}
	for _, h := range r.Headers {
		switch {
		case h.Key == processor.HeaderOmitted:
			// Redriving the empty stand-in would lose the record.
			return nil, fmt.Errorf("record %s/%d@%d cannot be redriven: %s; produce the original again yourself, then redrive from offset %d", r.Topic, r.Partition, r.Offset, h.Value, r.Offset+1)
		case h.Key == processor.HeaderTopic && out.Topic == "":
			out.Topic = string(h.Value)
		case strings.HasPrefix(h.Key, "exactly."):
		default:
			out.Headers = append(out.Headers, h)
		}
	}
	if out.Topic == "" {
		return nil, fmt.Errorf("record %s/%d@%d has no %s header: pass --to", r.Topic, r.Partition, r.Offset, processor.HeaderTopic)
	}
	return out, nil
}
