// Package processor is the runtime: one consumer-group member that runs a
// topology. It polls records, decodes them, runs them through the graph of
// steps and produces the outputs, with the input offsets, in one
// transaction per commit interval under exactly once, or in batches under
// at least or at most once (see package txn). Stateful steps (aggregates,
// windows, dedupe) keep their state in package statestore, per partition
// of the input they read, restored from the changelogs before a record of
// that partition is processed, and write changelog and repartition records
// in the same transaction as the outputs. Records that cannot be
// decoded, evaluated or encoded follow the pipeline's error policy
// (badrecord.go).
package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/balance"
	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/internal/kafkaerr"
	"github.com/exactly-dev/exactly/metrics"
	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
	"github.com/exactly-dev/exactly/txn"
)

// cycle is what the run loop needs of a delivery guarantee's client:
// *txn.Session (exactly once) or *txn.Plain (at least or at most once).
type cycle interface {
	Client() *kgo.Client
	InTxn() (bool, time.Time)
	Poll(ctx context.Context, max int) kgo.Fetches
	Begin(ctx context.Context, f kgo.Fetches) error
	Produce(ctx context.Context, r *kgo.Record)
	End(ctx context.Context, abort bool) (bool, error)
	Rebuild() error
	Close(ctx context.Context)
}

// maxPoll bounds the records taken from one poll, so that a backlog is
// worked off in many transactions of bounded size rather than one huge one
// that could outlive the transaction timeout.
const maxPoll = 10_000

// Config configures a Processor.
type Config struct {
	Brokers            []string
	ClientID           string
	InstanceID         string
	CommitInterval     time.Duration // the topology's own interval wins when set
	TransactionTimeout time.Duration
	SessionTimeout     time.Duration
	RebalanceTimeout   time.Duration
	ShutdownTimeout    time.Duration
	Logger             *slog.Logger

	// StaticMembership joins the group as a static member whose group
	// instance id is the transactional id (<pipeline>-<instance id>):
	// a restart within the session timeout keeps its partitions without
	// a rebalance, and a stop does not leave the group (its partitions
	// wait for it, or for the session timeout).
	StaticMembership bool

	// State is where aggregate steps keep their stores; nil keeps them in
	// memory.
	State statestore.Backend

	// Metrics receives the pipeline's metrics; nil counts into metrics
	// registered nowhere.
	Metrics *metrics.Pipeline

	// KafkaOpts are appended to the client's options (tests use it).
	KafkaOpts []kgo.Opt
	// Formats are the dependencies of the codecs (the schema registry
	// client and cache); zero for pipelines of the standard formats.
	Formats format.Deps

	// PurgeInterval is how often records the group committed past are
	// deleted from the repartition topics (see purge.go). Default 30s
	// (Kafka Streams' repartition.purge.interval.ms); negative: never.
	PurgeInterval time.Duration
	// Clock is the wall clock of windows' idle_timeout and of upstream
	// idleness; nil: time.Now. (Event time comes from the records.)
	Clock func() time.Time
}

// Stats are counters of a running processor, safe to read at any time.
type Stats struct {
	RecordsIn     atomic.Int64 // input records processed in committed transactions
	RecordsOut    atomic.Int64 // output records in committed transactions
	Commits       atomic.Int64
	Aborts        atomic.Int64
	Rebuilds      atomic.Int64
	AssignedParts atomic.Int64
	Generation    atomic.Int32 // of the group, at the last assignment

	// Restore: changelog records applied, records still to apply in the
	// restore under way, completed restores, of which rebuilt from the
	// start (no usable checkpoint), and time spent.
	RestoreRecords   atomic.Int64
	RestoreRemaining atomic.Int64
	Restores         atomic.Int64
	RestoresRebuilt  atomic.Int64
	RestoreNanos     atomic.Int64

	// Bad records routed to the dead-letter topic, and skipped (counted
	// when handled, including in transactions that later abort).
	DeadLettered atomic.Int64
	Skipped      atomic.Int64
}

// Processor runs one topology as one member of its consumer group.
type Processor struct {
	topo     *topology.Topology
	cfg      Config
	g        *graph
	log      *slog.Logger
	txnID    string
	interval time.Duration
	stats    Stats
	tasks    *tasks
	m        *metrics.Pipeline
	joined   atomic.Bool // the member has had an assignment
	settled  atomic.Bool // see Settled
	stopping atomic.Bool // Run's context has ended
	oldest   time.Time   // timestamp of the oldest input record of the open transaction

	// Records of the open transaction; owned by the Run goroutine.
	in, out int64
	// The last periodic report and the counters it reported.
	lastReport time.Time
	reported   [4]int64

	// batchMax: per produced topic, its max.message.bytes (see
	// batchMaxBytes); read by kgo's goroutines.
	batchMax atomic.Pointer[map[string]int32]

	// A start without a broker connection warns after startSlow and
	// fails after startGiveUp (tests shorten them).
	startSlow, startGiveUp time.Duration

	// afterPoll, when set (tests), sees the record count of every poll
	// before the loop looks at its context: a test cancels there to stop
	// the processor exactly as a poll returns records.
	afterPoll func(records int)
}

// New prepares a processor; Run starts it.
func New(topo *topology.Topology, cfg Config) (*Processor, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PurgeInterval == 0 {
		cfg.PurgeInterval = defaultPurgeInterval
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	interval := cfg.CommitInterval
	if topo.CommitInterval > 0 {
		interval = topo.CommitInterval
	}
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	if interval >= cfg.TransactionTimeout {
		return nil, fmt.Errorf("commit interval %s must be below the transaction timeout %s", interval, cfg.TransactionTimeout)
	}
	if cfg.State == nil {
		cfg.State = statestore.NewMemory()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewPipeline(nil, topo.Name)
	}
	txnID := topo.Name + "-" + cfg.InstanceID
	p := &Processor{
		topo:     topo,
		cfg:      cfg,
		m:        cfg.Metrics,
		txnID:    txnID,
		interval: interval,
		log:      cfg.Logger.With("pipeline", topo.Name, "txn_id", txnID),

		startSlow:   startSlow,
		startGiveUp: startGiveUp,
	}
	g, err := newGraph(topo, cfg.Metrics, cfg.Formats)
	if err != nil {
		return nil, err
	}
	p.g = g
	p.g.log = p.log
	p.g.stats = &p.stats
	if cfg.Clock != nil {
		p.g.now = cfg.Clock
	}
	p.tasks = newTasks(p.g, topo.Plan, cfg.State, cfg.Brokers, cfg.KafkaOpts, p.log, &p.stats, cfg.Metrics)
	p.tasks.group = p.topo.Group
	p.tasks.plain = topo.Guarantee == topology.AtLeastOnce || topo.Guarantee == topology.AtMostOnce
	return p, nil
}

// Ready returns nil once the member has joined its group and restored the
// state of every partition it was assigned, or why not.
func (p *Processor) Ready() error {
	if s := p.g.globalsLoading(); s != "" {
		return errors.New("not ready: " + s)
	}
	if !p.joined.Load() {
		return errors.New("not ready: joining the consumer group")
	}
	if n := p.tasks.pending(); n > 0 {
		return fmt.Errorf("not ready: restoring %d partitions", n)
	}
	return nil
}

// Stats returns the processor's live counters.
func (p *Processor) Stats() *Stats { return &p.stats }

// SourceTopics returns the pipeline's source topics.
func (p *Processor) SourceTopics() []string {
	return slices.Clone(p.topo.Plan.Sources)
}

// Consumed returns every topic the processor consumes: the sources and
// the internal repartition topics.
func (p *Processor) Consumed() []string {
	return slices.Concat(p.SourceTopics(), p.topo.Plan.RepartitionTopics())
}

// ensureTopics creates the changelog, repartition and dead-letter topics
// with a client of its own, closed before Run makes the member's.
func (p *Processor) ensureTopics(ctx context.Context, watch *connWatch) error {
	if len(p.topo.Plan.Stateful) == 0 && p.topo.Plan.DeadLetter == nil && len(p.topo.Plan.Globals) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(p.cfg.Brokers...), kgo.ClientID(p.cfg.ClientID), kgo.WithHooks(watch)}, p.cfg.KafkaOpts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	watch.dialsTLSFrom(cl)
	return ensureTopics(ctx, kadm.NewClient(cl), p.g, p.topo.Plan)
}

// SinkTopics returns the topics the processor writes.
func (p *Processor) SinkTopics() []string {
	var ts []string
	seen := map[string]bool{}
	for _, s := range p.topo.Sinks {
		if !seen[s.Topic] {
			seen[s.Topic] = true
			ts = append(ts, s.Topic)
		}
	}
	return ts
}

// Run consumes, processes and produces until ctx ends or a record or
// Kafka error stops it. When ctx ends it commits the open transaction,
// leaves the group and returns nil.
func (p *Processor) Run(ctx context.Context) error {
	// Until the pipeline has started, a broker connection failing in a
	// way retrying cannot fix (authentication, TLS), or failing for
	// startGiveUp, ends the start with its cause.
	startCtx, failStart := context.WithCancelCause(ctx)
	defer failStart(nil)
	watch := newConnWatch(p.log, failStart)
	slow, giveUp := p.startSlow, p.startGiveUp
	defer time.AfterFunc(slow, func() { watch.slow(slow) }).Stop()
	defer time.AfterFunc(giveUp, func() { watch.giveUp(giveUp) }).Stop()
	startErr := func(err error) error {
		var ce *ConnectError
		if errors.As(context.Cause(startCtx), &ce) {
			return fmt.Errorf("cannot start: %w", ce)
		} else if ce = watch.lastFailure(); ce != nil && ctx.Err() == nil {
			return fmt.Errorf("cannot start: %w (while %w)", ce, err)
		}
		return err
	}
	// The internal topics exist before the member's client does: that
	// client joins the group as soon as it is made, and a repartition
	// topic missing then is found by the first produce's metadata
	// refresh, when the member rejoins to consume it too, a rebalance
	// that revokes everything and aborts the first transaction.
	if err := p.checkLimits(startCtx, watch); err != nil {
		return startErr(err)
	}
	if err := p.ensureTopics(startCtx, watch); err != nil {
		return startErr(err)
	}
	// Sink schemas are registered (and checked for compatibility) before
	// the member joins: an incompatible schema is a start-up error, and
	// a registry that is down keeps the start waiting, not ready.
	if err := p.g.prepare(startCtx); err != nil {
		return startErr(fmt.Errorf("cannot start: %w", err))
	}
	// Global tables load whole before the member joins its group: no
	// record is joined against a table still loading.
	stopGlobals, err := p.startGlobals(ctx)
	if err != nil {
		return nil // stopped while loading
	}
	defer stopGlobals()
	tcfg := txn.Config{
		Brokers:            p.cfg.Brokers,
		ClientID:           p.cfg.ClientID,
		Group:              p.topo.Group,
		TransactionalID:    p.txnID,
		Topics:             p.Consumed(),
		TransactionTimeout: p.cfg.TransactionTimeout,
		SessionTimeout:     p.cfg.SessionTimeout,
		RebalanceTimeout:   p.cfg.RebalanceTimeout,
		Logger:             p.log,
		GroupInstanceID:    p.groupInstanceID(),
		// Topics one task reads together stay on one member.
		Balancer: balance.New(p.topo.Plan.CoPartitionGroups()),
		OnAssigned: func(cl *kgo.Client, m map[string][]int32) {
			p.stats.AssignedParts.Add(int64(count(m)))
			p.m.AssignedPartitions.Add(float64(count(m)))
			p.m.Rebalances.Inc()
			p.joined.Store(true)
			member, generation := cl.GroupMetadata()
			p.stats.Generation.Store(generation)
			p.log.Info("partitions assigned", "partitions", m, "generation", generation, "member_id", member)
			p.tasks.onAssigned(cl, m)
			p.g.asg.add(m, false)
		},
		OnRevoked: func(m map[string][]int32) { p.partitionsGone(m, false) },
		OnLost:    func(m map[string][]int32) { p.partitionsGone(m, true) },
		Opts: append([]kgo.Opt{
			kgo.RecordPartitioner(newPartitioner(p.g)),
			kgo.ProducerBatchMaxBytesFn(p.batchMaxBytes),
			// Transaction markers (control records) come with the
			// records, so the offsets committed move past them, as
			// the Java consumer's position() does: otherwise an input
			// written in transactions (any exactly-once upstream, and
			// our own repartition topics) keeps a lag of one or more
			// per partition forever, and lag alerts and autoscalers
			// misfire. A marker is never a record of the input: the
			// loop skips it, and its offset is past every record
			// before it, so committing it skips no record.
			kgo.KeepControlRecords(),
			kgo.WithHooks(watch),
		}, p.cfg.KafkaOpts...),
	}
	var sess cycle
	switch p.topo.Guarantee {
	case topology.AtLeastOnce, topology.AtMostOnce:
		sess, err = txn.NewPlain(tcfg, p.topo.Guarantee == topology.AtMostOnce)
	default:
		sess, err = txn.New(tcfg)
	}
	if err != nil {
		return err
	}
	watch.dialsTLSFrom(sess.Client())
	p.g.offsets = kafkaOffsets{sess.Client}
	adm := kadm.NewClient(sess.Client())
	err = checkSinks(startCtx, adm, p.SinkTopics(), p.topo.DeadLetterTopic)
	if err == nil {
		err = p.outputLimits(startCtx, adm)
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.ShutdownTimeout)
		defer cancel()
		sess.Close(cctx)
		err = startErr(err)
		return err
	}
	watch.started()
	p.log.Info("started", "group", p.topo.Group, "guarantee", p.topo.Guarantee, "sources", p.Consumed(), "commit_interval", p.interval)

	// drain bounds everything after ctx ends: the work under way (a
	// commit the stop interrupted), the final commit and leaving the
	// group all end within the shutdown timeout of the stop. Waiting on
	// an unreachable broker without it takes the transaction timeout,
	// then a client rebuild, whatever shutdown_timeout says.
	drain, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()
	defer context.AfterFunc(ctx, func() {
		p.stopping.Store(true)
		time.AfterFunc(p.cfg.ShutdownTimeout, cancelDrain)
	})()

	stopPurge := p.runPurge(ctx)
	err = p.loop(ctx, drain, sess)
	stopPurge()

	// Shut down in order: the loop has stopped polling; end the open
	// transaction (committing the work done), then leave the group.
	sctx, cancel := context.WithTimeout(drain, p.cfg.ShutdownTimeout)
	defer cancel()
	stopping := time.Now()
	if open, _ := sess.InTxn(); open && err == nil {
		committed, eerr := p.end(sctx, sess, false, p.in, p.out)
		if eerr != nil {
			err = eerr
		}
		p.log.Info("stopping: ended the open transaction", "committed", committed, "records_in", p.in, "records_out", p.out)
	}
	sess.Close(sctx)
	if p.cfg.StaticMembership {
		p.log.Info("stopping: closed the client; as a static member it stays in the group until it returns or its session times out", "group_instance_id", p.groupInstanceID(), "duration", time.Since(stopping).Round(time.Millisecond))
	} else {
		p.log.Info("stopping: left the consumer group", "duration", time.Since(stopping).Round(time.Millisecond))
	}
	p.tasks.dropAll()
	p.log.Info("stopped", "records_in", p.stats.RecordsIn.Load(), "records_out", p.stats.RecordsOut.Load(), "commits", p.stats.Commits.Load(), "aborts", p.stats.Aborts.Load())
	return err
}

// partitionsGone runs in the rebalance callbacks for partitions revoked,
// or lost (the session expired: another member may own them already).
func (p *Processor) partitionsGone(m map[string][]int32, lost bool) {
	p.stats.AssignedParts.Add(-int64(count(m)))
	p.m.AssignedPartitions.Sub(float64(count(m)))
	for t, parts := range m {
		for _, part := range parts {
			p.m.Lag.DeleteLabelValues(t, strconv.Itoa(int(part)))
		}
	}
	if lost {
		p.log.Info("partitions lost", "partitions", m)
	} else {
		p.log.Info("partitions revoked", "partitions", m)
	}
	p.tasks.onRevoked(m, lost)
	p.g.asg.add(m, true)
}

// groupInstanceID is the static member's id, or "" for a dynamic member.
func (p *Processor) groupInstanceID() string {
	if !p.cfg.StaticMembership {
		return ""
	}
	return p.txnID
}

// Settled reports whether event time has nothing left to send: every
// upstream partition of a repartitioned window that this member owns has
// gone idle and said so in a committed transaction. Always true without
// such windows. With Consumed offsets at their ends, the output is then
// complete for the input so far.
func (p *Processor) Settled() bool { return p.settled.Load() }

// loop returns nil when ctx ends, or the error that stops the processor.
// drain outlives ctx by the shutdown timeout: produces and commits use it,
// so a commit under way when ctx ends can still finish.
func (p *Processor) loop(ctx, drain context.Context, sess cycle) error {
	produceCtx := drain
	emit := func(r *kgo.Record) {
		p.out++
		sess.Produce(produceCtx, r)
	}
	for {
		p.settled.Store(p.g.settled())
		if open, _ := sess.InTxn(); !open && p.tasks.stateful() {
			// Between transactions: drop revoked stores, restore
			// assigned ones and resume their partitions.
			if err := p.tasks.sync(ctx, sess.Client()); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		if p.g.hasIdle {
			// Windows of idle tasks close by wall clock; their final
			// rows need a transaction.
			if emits, err := p.g.tick(ctx, p.g.now(), true, nil); err != nil {
				return err
			} else if emits {
				if err := sess.Begin(ctx, kgo.Fetches{}); err != nil {
					return err
				}
				if _, err := p.g.tick(ctx, p.g.now(), false, emit); err != nil {
					return err
				}
			}
		}
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if open, began := sess.InTxn(); open {
			pollCtx, cancel = context.WithDeadline(ctx, began.Add(p.interval))
		} else if p.tasks.stateful() {
			// Wake up now and then to restore newly assigned
			// partitions, which are paused until then.
			pollCtx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
		}
		fetches := sess.Poll(pollCtx, maxPoll)
		cancel()
		if p.afterPoll != nil {
			p.afterPoll(fetches.NumRecords())
		}
		// Stopping: records this poll returned are processed all the
		// same. The client counts them as consumed, and ending the
		// transaction commits their offsets: returning without
		// processing them would lose them.
		stopping := ctx.Err() != nil
		if stopping && fetches.NumRecords() == 0 {
			return nil
		}
		if fetches.IsClientClosed() {
			return errors.New("kafka client closed unexpectedly")
		}
		var ferr error
		fetches.EachError(func(t string, part int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			p.log.Warn("fetch error", "topic", t, "partition", part, "err", err)
			if ferr == nil && kafkaerr.Fatal(err) {
				ferr = p.fetchError(t, part, err)
			}
		})
		if ferr != nil {
			sctx, c := context.WithTimeout(produceCtx, p.cfg.ShutdownTimeout)
			p.end(sctx, sess, true, 0, 0)
			c()
			return ferr
		}

		if !fetches.Empty() {
			switch err := sess.Begin(ctx, fetches); {
			case errors.Is(err, txn.ErrSkipBatch):
				continue
			case err != nil:
				return err
			}
			fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
				if n := len(fp.Records); n > 0 {
					last := fp.Records[n-1]
					p.m.Lag.WithLabelValues(fp.Topic, strconv.Itoa(int(fp.Partition))).Set(float64(fp.HighWatermark - last.Offset - 1))
					p.g.readTo(fp.Topic, fp.Partition, last.Offset+1)
					if p.oldest.IsZero() || fp.Records[0].Timestamp.Before(p.oldest) {
						p.oldest = fp.Records[0].Timestamp
					}
				}
			})
			var perr error
			fetches.EachRecord(func(r *kgo.Record) {
				if perr != nil || r.Attrs.IsControl() {
					return
				}
				perr = p.g.run(r, emit)
				if perr == nil {
					p.in++
					return
				}
				var re *RecordError
				if !errors.As(perr, &re) {
					return
				}
				switch p.topo.OnError {
				case topology.OnErrorSkip:
					p.stats.Skipped.Add(1)
					p.log.Warn("skipped a bad record", "err", perr)
					p.in++
					perr = nil
				case topology.OnErrorDeadLetter:
					p.m.DeadLettered.WithLabelValues(re.Node, string(re.Phase)).Inc()
					p.stats.DeadLettered.Add(1)
					p.log.Warn("sent a bad record to the dead-letter topic", "topic", p.topo.DeadLetterTopic, "err", perr)
					emit(deadLetter(p.topo.DeadLetterTopic, p.topo.Name, original(r), re, p.g.maxOut[p.topo.DeadLetterTopic]))
					p.in++
					perr = nil
				}
			})
			if perr != nil {
				// Stop: abort so nothing of this batch is visible.
				sctx, c := context.WithTimeout(produceCtx, p.cfg.ShutdownTimeout)
				p.end(sctx, sess, true, 0, 0)
				c()
				return perr
			}
		}

		if stopping {
			return nil // Run ends the transaction
		}
		if open, began := sess.InTxn(); open && time.Since(began) >= p.interval {
			if _, err := p.end(produceCtx, sess, false, p.in, p.out); err != nil {
				return err
			}
			p.in, p.out = 0, 0
			p.report()
		}
	}
}

// end ends the open transaction and acts on the outcome: a rebuild error
// rebuilds the client (the new one resumes from the committed offsets and
// restores state); anything else stops the processor. in and out are the
// records of the transaction, counted when it commits. Stores apply their
// overlays only when the transaction committed, so state and offsets move
// together.
func (p *Processor) end(ctx context.Context, sess cycle, abort bool, in, out int64) (bool, error) {
	open, began := sess.InTxn()
	if !open {
		return false, nil
	}
	// Past the transaction timeout the broker aborts the transaction
	// anyway: waiting longer only delays the rebuild.
	ctx, cancel := context.WithDeadline(ctx, began.Add(p.cfg.TransactionTimeout))
	defer cancel()
	if !abort {
		produceCtx := context.WithoutCancel(ctx)
		emit := func(r *kgo.Record) {
			out++
			sess.Produce(produceCtx, r)
		}
		if err := p.tasks.flush(emit, func(r *kgo.Record) { sess.Produce(produceCtx, r) }); err != nil {
			p.end(ctx, sess, true, 0, 0)
			return false, err
		}
	}
	start := time.Now()
	committed, err := sess.End(ctx, abort)
	oldest := p.oldest
	p.oldest = time.Time{}
	p.g.settle(err == nil && committed)
	var rebuild *txn.RebuildError
	switch {
	case errors.As(err, &rebuild) && p.stopping.Load():
		// A rebuild rejoins the group and restores state, only to
		// stop: the next owner of the partitions does that. Closing
		// an unreachable client can also outlast the shutdown
		// timeout.
		p.m.TxnAborts.WithLabelValues("unknown_outcome").Inc()
		return false, fmt.Errorf("stopping: the last transaction did not commit within shutdown_timeout (%s), nor within kafka.transaction_timeout (%s) of its start; its outcome is unknown and its input will be processed again from the last committed offsets (is the broker reachable?): %w", p.cfg.ShutdownTimeout, p.cfg.TransactionTimeout, rebuild.Err)
	case errors.As(err, &rebuild):
		p.stats.Rebuilds.Add(1)
		p.m.Rebuilds.Inc()
		p.m.TxnAborts.WithLabelValues("unknown_outcome").Inc()
		if rebuild.Fenced {
			p.m.Fenced.Inc()
		}
		p.log.Warn("rebuilding the client; resuming from committed offsets and restoring state", "err", err)
		p.tasks.dropAll()
		p.g.asg.clear()
		if rerr := sess.Rebuild(); rerr != nil {
			return false, rerr
		}
		return false, nil
	case err != nil:
		p.tasks.ended(false)
		p.m.TxnAborts.WithLabelValues("error").Inc()
		if errors.Is(err, txn.ErrFenced) {
			p.m.Fenced.Inc()
		}
		return false, err
	case committed:
		if err := p.tasks.ended(true); err != nil {
			return true, err
		}
		p.stats.Commits.Add(1)
		p.stats.RecordsIn.Add(in)
		p.stats.RecordsOut.Add(out)
		p.m.TxnCommits.Inc()
		p.m.CommitDuration.Observe(time.Since(start).Seconds())
		p.m.RecordsPerTxn.Observe(float64(in))
		if !oldest.IsZero() {
			p.m.EndToEnd.Observe(time.Since(oldest).Seconds())
		}
		p.log.Debug("committed", "records_in", in, "records_out", out, "duration", time.Since(start))
	default:
		p.tasks.ended(false)
		p.stats.Aborts.Add(1)
		reason := "rebalance"
		if abort {
			reason = "requested"
		}
		p.m.TxnAborts.WithLabelValues(reason).Inc()
		if !abort {
			p.log.Info("transaction aborted (rebalance or abortable error); its records will be processed again")
		}
	}
	return committed, nil
}

// batchOverhead is what a record batch of one record adds to the record's
// key, value and headers, with room to spare: the batch header (61 bytes)
// and the record's length, offset, timestamp and header varints.
const batchOverhead = 512

// producerMaxBatch is kgo's default ProducerBatchMaxBytes, used for a
// topic whose max.message.bytes could not be read.
const producerMaxBatch = 1_000_012

// maxBatch is the largest batch kgo may build for one topic (its limit is
// an int32, at most 1 GiB).
const maxBatch = 1 << 30

// batchMaxBytes is the producer's batch limit for topic (kgo's
// ProducerBatchMaxBytesFn): the topic's max.message.bytes as outputLimits
// read it. kgo's default of 1,000,012 bytes would otherwise refuse every
// record larger than that, whatever the topic accepts. kgo asks once per
// partition, when it first produces to it, which is after outputLimits.
func (p *Processor) batchMaxBytes(topic string) int32 {
	if m := p.batchMax.Load(); m != nil {
		if n, ok := (*m)[topic]; ok {
			return n
		}
	}
	return producerMaxBatch
}

// outputLimits reads the max.message.bytes (and cleanup.policy) of every
// topic the processor writes: sinks, the dead-letter topic, changelogs and
// repartition topics. The producer's batch limit per topic becomes the
// topic's max.message.bytes; the largest output record a sink accepts is
// limits.max_output_bytes or that limit, whichever is smaller, less the
// batch overhead; the dead-letter topic always by its own limit (what it
// holds is the input as it came, not an output). Sinks that compact are
// noted: a record without a key cannot go there.
func (p *Processor) outputLimits(ctx context.Context, adm *kadm.Client) error {
	sinks := p.SinkTopics()
	topics := slices.Clone(sinks)
	if dlq := p.topo.DeadLetterTopic; dlq != "" && !slices.Contains(topics, dlq) {
		topics = append(topics, dlq)
	}
	for _, a := range p.g.aggs {
		topics = append(topics, a.changelog)
		if a.repartition != "" {
			topics = append(topics, a.repartition)
		}
	}
	if len(topics) == 0 {
		return nil
	}
	var rcs kadm.ResourceConfigs
	err := retried(ctx, func() (err error) {
		rcs, err = adm.DescribeTopicConfigs(ctx, topics...)
		return err
	})
	if err != nil {
		return fmt.Errorf("describing topics %v for max.message.bytes: %w", topics, err)
	}
	batch := map[string]int32{}
	for _, t := range topics {
		limit := int64(producerMaxBatch)
		rc, err := rcs.On(t, nil)
		if err == nil && rc.Err == nil {
			for _, c := range rc.Configs {
				switch {
				case c.Value == nil:
				case c.Key == "max.message.bytes":
					if n, err := strconv.ParseInt(*c.Value, 10, 64); err == nil && n > 0 {
						limit = min(n, maxBatch)
					}
				case c.Key == "cleanup.policy":
					if slices.Contains(strings.Split(*c.Value, ","), "compact") {
						p.g.compacted[t] = true
					}
				}
			}
		}
		batch[t] = int32(limit)
		if !slices.Contains(sinks, t) && t != p.topo.DeadLetterTopic {
			continue
		}
		out := limit - batchOverhead
		if want := p.topo.Limits.MaxOutputBytes; want > 0 && slices.Contains(sinks, t) && t != p.topo.DeadLetterTopic {
			if want > out {
				p.log.Warn("limits.max_output_bytes is more than a sink topic accepts; larger records are bad records", "topic", t, "max_output_bytes", want, "max.message.bytes", limit, "limit", out)
			}
			out = min(want, out)
		}
		p.g.maxOut[t] = out
	}
	p.batchMax.Store(&batch)
	return nil
}

// reportEvery is how often the run loop logs what it committed.
const reportEvery = 30 * time.Second

// report logs, at most every reportEvery, the work committed since the
// last report.
func (p *Processor) report() {
	now := time.Now()
	if p.lastReport.IsZero() {
		p.lastReport = now
		return
	}
	if now.Sub(p.lastReport) < reportEvery {
		return
	}
	commits, in, out := p.stats.Commits.Load(), p.stats.RecordsIn.Load(), p.stats.RecordsOut.Load()
	p.log.Info("committed", "every", p.interval, "transactions", commits-p.reported[0],
		"records_in", in-p.reported[1], "records_out", out-p.reported[2], "aborts", p.stats.Aborts.Load()-p.reported[3],
		"period", now.Sub(p.lastReport).Round(time.Second))
	p.reported = [4]int64{commits, in, out, p.stats.Aborts.Load()}
	p.lastReport = now
}

func count(m map[string][]int32) int {
	n := 0
	for _, ps := range m {
		n += len(ps)
	}
	return n
}
