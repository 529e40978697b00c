package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"

	"github.com/exactly-dev/exactly/config"
	"github.com/exactly-dev/exactly/processor"
	"github.com/exactly-dev/exactly/txn"
)

// redriveSettings are the settings redrive uses: it serves no HTTP, keeps
// no state and never starts the embedded broker, so those settings are
// neither offered as flags nor checked (a settings file or environment
// shared with `exactly run` may hold them).
var redriveSettings = config.Scope{
	"kafka.brokers", "kafka.client_id", "kafka.transaction_timeout",
	"kafka.session_timeout", "kafka.rebalance_timeout", "kafka.linger",
	"kafka.tls.", "kafka.sasl.", "instance_id", "shutdown_timeout", "log.",
}

// redriveCmd sends dead-lettered records back to the topic they came from
// (or another), exactly once: it consumes the dead-letter topic in its own
// consumer group and produces in transactions that commit its offsets, so
// a record is redriven once however often the command runs or crashes.
//
// The group's committed offset of a partition is the one place that says
// what was redriven: every record below it was. So the offset may only
// pass a record that was redriven or can never be (a stand-in whose key
// and value were left out, reported). At a record the offset range leaves
// out, or one that cannot be sent anywhere, the partition stops for this
// run: the commit is held at that record, and the other partitions go on.
func redriveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("redrive", stderr)
	dlq := fs.String("dlq", "", "dead-letter topic to read (required)")
	to := fs.String("to", "", "send every record to this topic (default: the topic named by its exactly.source.topic header)")
	var from, until offsetBounds
	fs.Var(&from, "from-offset", "redrive a partition only from this offset: N for every partition, or P=N,... per partition; a partition whose unredriven records start below it is left as is")
	fs.Var(&until, "to-offset", "redrive records before this offset only: N for every partition, or P=N,... per partition; later records stay for a later run (default: all)")
	redriveSettings.AddFlags(fs)
	fs.Lookup("brokers").Usage = "seed brokers host:port of the cluster holding the dead-letter topic (required)"
	fs.Lookup("instance-id").Usage = "stable id of this process; transactional id is exactly-redrive-<dlq>-<instance-id> (default: host name)"
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	if *dlq == "" {
		return usageError{errors.New("missing --dlq topic")}
	}
	s, err := redriveSettings.Load(fs)
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
		Opts: append([]kgo.Opt{
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			// A dead-letter topic is written in transactions: each
			// ends in a commit marker, which takes an offset. The
			// markers come with the records so the offsets committed
			// move past them, as the Java consumer's do: otherwise the
			// group keeps a lag of 1 per partition after redriving
			// everything. record passes over them.
			kgo.KeepControlRecords(),
		}, kopts...),
	})
	if err != nil {
		return err
	}
	rd := &redriver{dlq: *dlq, to: *to, group: group, from: from, until: until}
	rd.mu.stops = map[int32]stop{}
	rd.mu.sent = map[int32]int{}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error {
		if err := rd.waitDone(gctx, s.Kafka.Brokers, kopts...); err == nil {
			cancel()
		}
		return nil
	})
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
			var b batch
			fetches.EachRecord(func(r *kgo.Record) {
				if out := rd.record(r, &b); out != nil {
					sess.Produce(gctx, out)
				}
			})
			// The commit holds each stopped partition at its stop, though
			// the consumer has read past it.
			stops := rd.stopsWith(b.stops)
			ectx, ecancel := context.WithTimeout(context.WithoutCancel(gctx), s.Kafka.TransactionTimeout)
			ectx = kgo.PreTxnCommitFnContext(ectx, func(req *kmsg.TxnOffsetCommitRequest) error {
				holdAtStops(req, *dlq, stops)
				return nil
			})
			committed, err := sess.End(ectx, false)
			ecancel()
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
				rd.commit(&b)
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
	return rd.report(stdout)
}

// redriver decides, record by record, what a redrive sends, and keeps
// what committed transactions did, for the report.
type redriver struct {
	dlq, to, group string
	from, until    offsetBounds

	mu struct {
		sync.Mutex
		stops    map[int32]stop  // partition: where it stopped for this run
		sent     map[int32]int   // partition: records redriven
		omitted  []string        // stand-ins passed over, as report lines
		problems map[int32]error // partition: why it stopped, when the user must act
	}
}

// stop is where a partition stopped for this run: the offset of the first
// record it did not redrive and must not commit past, and why.
type stop struct {
	offset int64
	why    string
	err    error // set when the record cannot be redriven as the flags stand
}

// batch is what one transaction did, applied to the redriver once it
// commits.
type batch struct {
	sent    map[int32]int
	omitted []string
	stops   map[int32]stop
}

// record returns the record to produce for dead letter r, or nil when r
// is not redriven (it is a stand-in, or its partition stopped).
func (rd *redriver) record(r *kgo.Record, b *batch) *kgo.Record {
	if r.Attrs.IsControl() {
		// A transaction marker: nothing to redrive, and never a reason
		// to stop (a stop holds the commit, markers past it included).
		return nil
	}
	if s, ok := rd.stopAt(r.Partition, b); ok && r.Offset >= s.offset {
		return nil
	}
	halt := func(s stop) {
		if b.stops == nil {
			b.stops = map[int32]stop{}
		}
		b.stops[r.Partition] = s
	}
	if f, ok := rd.from.of(r.Partition); ok && r.Offset < f {
		halt(stop{offset: r.Offset, why: fmt.Sprintf(
			"records from offset %d on were not redriven yet and come before --from-offset %d; the group's offset cannot pass them, so nothing of this partition was redriven. Redrive it without --from-offset, or drop offsets %d to %d on purpose by moving group %s to offset %d (kafka-consumer-groups --reset-offsets --to-offset %d --topic %s:%d)",
			r.Offset, f, r.Offset, f-1, rd.group, f, f, rd.dlq, r.Partition)})
		return nil
	}
	if u, ok := rd.until.of(r.Partition); ok && r.Offset >= u {
		halt(stop{offset: r.Offset, why: fmt.Sprintf("reached --to-offset %d; records from offset %d on stay for a later run", u, r.Offset)})
		return nil
	}
	out, err := undeadLetter(r, rd.to)
	var omitted *omittedError
	switch {
	case errors.As(err, &omitted):
		b.omitted = append(b.omitted, omitted.Error())
		return nil
	case err != nil:
		halt(stop{offset: r.Offset, why: err.Error(), err: err})
		return nil
	}
	if b.sent == nil {
		b.sent = map[int32]int{}
	}
	b.sent[r.Partition]++
	return out
}

// stopAt is partition p's stop, from this transaction or an earlier one.
func (rd *redriver) stopAt(p int32, b *batch) (stop, bool) {
	if s, ok := b.stops[p]; ok {
		return s, true
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	s, ok := rd.mu.stops[p]
	return s, ok
}

// stopsWith returns the stops so far plus those of b, as offsets.
func (rd *redriver) stopsWith(more map[int32]stop) map[int32]int64 {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	m := map[int32]int64{}
	for p, s := range rd.mu.stops {
		m[p] = s.offset
	}
	for p, s := range more {
		m[p] = s.offset
	}
	return m
}

// commit applies a committed transaction's batch. A stop is kept only
// once its transaction committed: after an abort the consumer rewinds,
// meets the same record again and stops there again.
func (rd *redriver) commit(b *batch) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	for p, n := range b.sent {
		rd.mu.sent[p] += n
	}
	rd.mu.omitted = append(rd.mu.omitted, b.omitted...)
	maps.Copy(rd.mu.stops, b.stops)
}

// holdAtStops lowers the offset committed for each stopped partition of
// topic to its stop.
func holdAtStops(req *kmsg.TxnOffsetCommitRequest, topic string, stops map[int32]int64) {
	for i := range req.Topics {
		t := &req.Topics[i]
		if t.Topic != topic {
			continue
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if s, ok := stops[p.Partition]; ok && p.Offset > s {
				p.Offset = s
			}
		}
	}
}

// waitDone returns nil once the group's committed offset of every
// partition of the dead-letter topic has reached its end, or the
// partition's stop or --to-offset: the group commits past transaction
// markers (see KeepControlRecords above), so at the end its lag is 0.
// Like waitCaughtUp it looks only once the committed offsets stood still
// for a tick.
func (rd *redriver) waitDone(ctx context.Context, brokers []string, opts ...kgo.Opt) error {
	return waitStill(ctx, brokers, rd.group, func(_ *kgo.Client, adm *kadm.Client, committed kadm.OffsetResponses) bool {
		return rd.done(ctx, adm, committed)
	}, opts...)
}

func (rd *redriver) done(ctx context.Context, adm *kadm.Client, committed kadm.OffsetResponses) bool {
	ends, err := adm.ListEndOffsets(ctx, rd.dlq)
	if err != nil || ends.Error() != nil {
		return false
	}
	stops := rd.stopsWith(nil)
	ok := true
	ends.Each(func(o kadm.ListedOffset) {
		limit := o.Offset
		if s, stopped := stops[o.Partition]; stopped {
			limit = min(limit, s)
		}
		if u, bounded := rd.until.of(o.Partition); bounded {
			limit = min(limit, u)
		}
		from := int64(0)
		if c, found := committed.Lookup(o.Topic, o.Partition); found && c.Err == nil && c.At >= 0 {
			from = c.At
		}
		if from < limit {
			ok = false
		}
	})
	return ok
}

// report prints what the run did, partition by partition, and returns an
// error when a partition stopped at a record the user must act on.
func (rd *redriver) report(w io.Writer) error {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	total := 0
	for _, n := range rd.mu.sent {
		total += n
	}
	fmt.Fprintf(w, "redrove %d records from %s\n", total, rd.dlq)
	parts := slices.Sorted(maps.Keys(rd.mu.sent))
	for p := range rd.mu.stops {
		if _, ok := rd.mu.sent[p]; !ok {
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	var errs []error
	for _, p := range parts {
		line := fmt.Sprintf("  partition %d: %d redriven", p, rd.mu.sent[p])
		if s, ok := rd.mu.stops[p]; ok {
			line += fmt.Sprintf("; stopped at offset %d: %s", s.offset, s.why)
			if s.err != nil {
				errs = append(errs, fmt.Errorf("partition %d stopped at offset %d: %w", p, s.offset, s.err))
			}
		}
		fmt.Fprintln(w, line)
	}
	for _, o := range rd.mu.omitted {
		fmt.Fprintf(w, "not redriven: %s\n", o)
	}
	return errors.Join(errs...)
}

// omittedError is a stand-in: a dead letter whose key and value were left
// out, as the original was larger than the dead-letter topic accepts.
// Redriving it would send an empty record in the original's place, so it
// is passed over and reported.
type omittedError struct {
	at, original, note string
}

func (e *omittedError) Error() string {
	return fmt.Sprintf("%s stands in for %s: %s; produce the original from %s again yourself", e.at, e.original, e.note, e.original)
}

// undeadLetter rebuilds the original record from a dead-letter record:
// same key, value and headers, without the exactly.* headers, to its
// source topic or to. A stand-in returns an *omittedError.
func undeadLetter(r *kgo.Record, to string) (*kgo.Record, error) {
	out := &kgo.Record{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Topic: to}
	var omitted string
	src := map[string]string{}
	for _, h := range r.Headers {
		switch {
		case h.Key == processor.HeaderOmitted:
			omitted = string(h.Value)
		case h.Key == processor.HeaderTopic || h.Key == processor.HeaderPartition || h.Key == processor.HeaderOffset:
			src[h.Key] = string(h.Value)
			if h.Key == processor.HeaderTopic && out.Topic == "" {
				out.Topic = string(h.Value)
			}
		case strings.HasPrefix(h.Key, "exactly."):
		default:
			out.Headers = append(out.Headers, h)
		}
	}
	if omitted != "" {
		return nil, &omittedError{
			at:       fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset),
			original: fmt.Sprintf("%s/%s@%s", src[processor.HeaderTopic], src[processor.HeaderPartition], src[processor.HeaderOffset]),
			note:     omitted,
		}
	}
	if out.Topic == "" {
		return nil, fmt.Errorf("record %s/%d@%d has no %s header: pass --to", r.Topic, r.Partition, r.Offset, processor.HeaderTopic)
	}
	return out, nil
}

// offsetBounds is the value of --from-offset and --to-offset: one offset
// for every partition ("5"), or offsets per partition ("0=5,2=7"; other
// partitions unbounded).
type offsetBounds struct {
	all   int64
	isAll bool
	parts map[int32]int64
}

func (o *offsetBounds) Set(v string) error {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return fmt.Errorf("offset %d is negative", n)
		}
		o.all, o.isAll, o.parts = n, true, nil
		return nil
	}
	parts := map[int32]int64{}
	for _, f := range strings.Split(v, ",") {
		ps, ns, ok := strings.Cut(strings.TrimSpace(f), "=")
		p, perr := strconv.ParseInt(ps, 10, 32)
		n, nerr := strconv.ParseInt(ns, 10, 64)
		if !ok || perr != nil || nerr != nil || p < 0 || n < 0 {
			return fmt.Errorf("%q: want an offset for every partition (5) or partition=offset pairs (0=5,2=7)", f)
		}
		parts[int32(p)] = n
	}
	o.all, o.isAll, o.parts = 0, false, parts
	return nil
}

func (o *offsetBounds) String() string {
	if o.isAll {
		return strconv.FormatInt(o.all, 10)
	}
	var fs []string
	for _, p := range slices.Sorted(maps.Keys(o.parts)) {
		fs = append(fs, fmt.Sprintf("%d=%d", p, o.parts[p]))
	}
	return strings.Join(fs, ",")
}

func (o *offsetBounds) Type() string { return "offsets" }

// of returns the bound of partition p, if it has one.
func (o *offsetBounds) of(p int32) (int64, bool) {
	if o.isAll {
		return o.all, true
	}
	n, ok := o.parts[p]
	return n, ok
}
