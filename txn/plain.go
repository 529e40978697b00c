package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/internal/kafkaerr"
)

// ErrSkipBatch is returned by Plain.Begin in at-most-once mode when the
// offsets of the polled records could not be committed: the records must
// not be processed (another member will, from the committed offsets).
var ErrSkipBatch = errors.New("offsets of the polled records not committed; skipping them")

// Plain is the cycle of a pipeline without transactions, at-least-once or
// at-most-once. It has the same shape as Session so the runtime drives
// both alike; a "transaction" here is the batch between Begin and End.
//
// At-least-once: End flushes the producer (outputs and changelog records
// are acknowledged) and only then commits the input offsets. A crash
// between the two processes the batch again: duplicates, never loss.
// State changes are applied once the flush succeeded, so the store matches
// its changelog; a batch processed twice is applied twice.
//
// A batch's records are held in the client until End (kgo's
// ManualFlushing): nothing of a batch reaches the broker before End has
// checked that the batch is not a zombie's (see Produce). With kgo's
// default lingering they went out as they were produced, so records
// produced just before a SIGSTOP went out the moment the process woke,
// before End could abort them: a zombie's changelog values, older than
// the new owner's, landed after them, and the next restore took them for
// the latest (the chaos harness lost counts at least once).
//
// At-most-once: Begin commits the offsets of the polled records before
// they are processed. A crash after that loses the batch: never
// duplicates.
//
// Rebalances are blocked from a poll until End (kgo's
// BlockRebalanceOnPoll), so a member that stays in the group never commits
// offsets for partitions another member already owns. One the group
// expelled meanwhile (it stood still, or its session lapsed) finds out in
// End, which then rebuilds: see End.
type Plain struct {
	cfg        Config
	atMostOnce bool
	cl         *kgo.Client
	open       bool
	began      time.Time
	lastPoll   time.Time // when the last poll returned
	zombie     bool      // a pause past the session timeout was seen in the open batch
	pauses     *pauseWatch
	// pauses.epoch() when the last batch ended (or the client was made):
	// a pause since, even in an idle poll that returned nothing, may
	// have cost the membership the next batch's records came under.
	epoch uint64

	results *produceResults // of the open batch

	// Held records and bytes past which Produce sends early: half the
	// client's limits, at most plainFlushBytes.
	flushRecords, flushBytes int64
}

// A batch sends what it holds early (in Produce, after the same zombie
// check End makes) once it holds half the records the client may buffer
// (kgo's MaxBufferedRecords, 50,000 by default) or plainFlushBytes
// (less when MaxBufferedBytes is set lower). With manual flushing kgo
// refuses records past its limits instead of waiting, and one batch may
// produce more than that (several polls of 10,000 records, each written
// to a sink and to repartition topics); the bytes bound what a batch of
// large records holds in memory.
const plainFlushBytes = 64 << 20

// NewPlain creates the client and starts joining the group.
func NewPlain(cfg Config, atMostOnce bool) (*Plain, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Plain{cfg: cfg, atMostOnce: atMostOnce, results: &produceResults{}}
	if err := p.connect(); err != nil {
		return nil, err
	}
	// Heartbeats go at most a fifth of the session timeout apart (see
	// groupOpts): standing still for half of it may already have cost the
	// membership.
	p.pauses = newPauseWatch(max(p.cfg.SessionTimeout/2, 500*time.Millisecond))
	p.epoch = p.pauses.epoch()
	return p, nil
}

func (p *Plain) connect() error {
	opts := append(groupOpts(p.cfg), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(), kgo.ManualFlushing())
	opts = append(opts, p.cfg.Opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("creating Kafka client: %w", err)
	}
	p.cl = cl
	p.flushRecords, p.flushBytes = 1, plainFlushBytes
	if n, ok := cl.OptValue(kgo.MaxBufferedRecords).(int64); ok {
		p.flushRecords = max(n/2, 1)
	}
	if n, ok := cl.OptValue(kgo.MaxBufferedBytes).(int64); ok && n > 0 {
		p.flushBytes = min(p.flushBytes, max(n/2, 1))
	}
	return nil
}

// Client returns the underlying client.
func (p *Plain) Client() *kgo.Client { return p.cl }

// InTxn reports whether a batch is open, and since when.
func (p *Plain) InTxn() (bool, time.Time) { return p.open, p.began }

// Poll polls for up to max records. Between batches it first lets a
// pending rebalance go ahead.
func (p *Plain) Poll(ctx context.Context, max int) kgo.Fetches {
	if !p.open {
		p.cl.AllowRebalance()
	}
	f := p.cl.PollRecords(ctx, max)
	p.lastPoll = time.Now()
	return f
}

// Begin opens a batch. At most once, it first commits the offsets of the
// polled records; if that fails it returns ErrSkipBatch.
func (p *Plain) Begin(ctx context.Context, f kgo.Fetches) error {
	if p.atMostOnce {
		var rs []*kgo.Record
		f.EachRecord(func(r *kgo.Record) { rs = append(rs, r) })
		if err := p.cl.CommitRecords(ctx, rs...); err != nil {
			p.cfg.Logger.Warn("committing offsets before processing failed; skipping the batch", "err", err)
			return ErrSkipBatch
		}
	}
	if !p.open {
		p.open, p.began = true, time.Now()
		p.results = &produceResults{}
	}
	return nil
}

// Produce adds r to the batch without waiting; a failure makes End fail.
// The batch is held in the client and sent by End (or, for a large batch,
// here once it holds many: see plainFlushBytes), each time right after
// the zombie check below.
//
// Without transactions nothing fences a zombie: a process paused past the
// session timeout (its partitions already given to another member, which
// restored their state from the changelogs) would, on waking, write
// outputs and changelog records computed from state that is no longer
// current, and a later restore could take that stale state as the latest.
// So a batch that lasts longer than the session timeout since its poll, or
// where the process stood still (see pauseWatch) at any time since the
// previous batch ended (in the poll that returned its records, or in
// idle polls before it that returned nothing), is treated as a zombie's:
// nothing of it is sent (what it holds is aborted), and End rebuilds the
// client, which rejoins and processes the records again (at least once
// allows that).
//
// What this cannot catch is a pause between the check and the records
// reaching the broker: a send already under way goes out on the wake.
// End notices such a pause once the flush returns and rebuilds, so no
// store keeps state that the changelog may contradict; the window is the
// time to hand one flush to the network. Only transactions (exactly_once)
// close it.
func (p *Plain) Produce(ctx context.Context, r *kgo.Record) {
	if p.zombie || p.stale() {
		p.zombie = true
		return
	}
	if p.cl.BufferedProduceRecords() >= p.flushRecords || p.cl.BufferedProduceBytes() >= p.flushBytes {
		// A failed flush shows in the records' promises, and End's
		// flush returns it again.
		p.cl.Flush(ctx)
		if p.stale() { // a pause during the flush, as in End
			p.zombie = true
			return
		}
	}
	p.cl.Produce(ctx, r, p.results.produce())
}

// End closes the batch: it sends the records the batch holds, waits for
// every one to be acknowledged and, at least once, commits the input
// offsets. committed true means the outputs are written and the member
// still owned its partitions, so state changes may be applied.
//
// abort (or a failed produce) cannot take back what was already sent. At
// least once, the batch must be processed again: End returns a
// *RebuildError so the client is rebuilt and resumes from the committed
// offsets, and state is restored from the changelogs. At most once, the
// batch is dropped; a failed send rebuilds too, because some of the
// batch's changelog records may be written and the stores would not show
// them.
//
// A *RebuildError also comes when the process stood still while the batch
// was sent, or when the offset commit finds the group moved on without
// this member: either way the batch's writes may have reached the broker
// after those of a member that took its partitions over, and no store may
// keep state the changelog contradicts.
func (p *Plain) End(ctx context.Context, abort bool) (bool, error) {
	if !p.open {
		return false, nil
	}
	p.open = false
	defer p.cl.AllowRebalance()
	defer func() { p.epoch = p.pauses.epoch() }()
	// A pause after the last Produce leaves the batch held: the same
	// check, before sending it.
	if p.stale() {
		p.zombie = true
	}
	if p.zombie {
		// The batch cannot count as committed (its state changes would
		// not match the changelog, and its changelog records have no
		// offsets), and nothing of it was sent. Rebuild: the new
		// client rejoins and restores state from the changelogs. At
		// least once, the batch is processed again; at most once, its
		// offsets were committed before it was processed, and it is
		// lost, as that mode allows.
		p.zombie = false
		p.cl.AbortBufferedRecords(ctx)
		return false, &RebuildError{Err: fmt.Errorf("the process stood still or the batch outlived the session timeout: another member may own its partitions; %s", p.again())}
	}
	if abort {
		// Nothing held is sent (a large batch may have sent some
		// early: see Produce).
		p.cl.AbortBufferedRecords(ctx)
		if p.atMostOnce {
			return false, nil
		}
		return false, &RebuildError{Err: errors.New("batch aborted")}
	}
	ferr := p.cl.Flush(ctx)
	if ferr == nil {
		// Records kgo refused before buffering them are not flushed:
		// their promises too (see produceResults).
		ferr = p.results.wait(ctx)
	}
	perr, ptopic := p.results.first()
	if p.pauses.epoch() != p.epoch {
		// Stood still while the batch was on its way: what it wrote
		// may have landed after a new owner's writes.
		return false, &RebuildError{Err: fmt.Errorf("the process stood still while the batch was sent: another member may own its partitions and have written before it; %s", p.again())}
	}
	switch {
	case perr != nil && !kafkaerr.Abortable(perr):
		return false, &ProduceError{Topic: ptopic, Err: perr}
	case perr != nil:
		ferr = perr
	}
	if ferr != nil {
		return false, &RebuildError{Err: fmt.Errorf("%w; %s", ferr, p.again())}
	}
	if !p.atMostOnce {
		if err := p.cl.CommitUncommittedOffsets(ctx); err != nil {
			if lostMembership(err) {
				return false, &RebuildError{Err: fmt.Errorf("committing offsets: the group moved on without this member, and the batch's writes may have landed after a new owner's: %w; %s", err, p.again())}
			}
			// The outputs are written; the records will come again
			// from the last committed offsets (duplicates).
			p.cfg.Logger.Warn("committing offsets failed; the batch will be processed again", "err", err)
		}
	}
	return true, nil
}

// again says what becomes of a batch that did not commit.
func (p *Plain) again() string {
	if p.atMostOnce {
		return "the batch is dropped (at most once)"
	}
	return "processing the batch again"
}

// lostMembership reports whether an offset commit failed because the
// group no longer counts this member (or this generation) as the owner of
// its partitions.
func lostMembership(err error) bool {
	return errors.Is(err, kerr.UnknownMemberID) ||
		errors.Is(err, kerr.IllegalGeneration) ||
		errors.Is(err, kerr.FencedInstanceID)
}

// stale reports whether the open batch may be a zombie's: processing took
// longer than the session timeout since the last poll, or the process stood
// still since the previous batch ended (in the polls between, too).
func (p *Plain) stale() bool {
	return (!p.lastPoll.IsZero() && time.Since(p.lastPoll) > p.cfg.SessionTimeout) ||
		p.pauses.epoch() != p.epoch
}

// Rebuild closes the client and creates a new one, which resumes from the
// committed offsets.
func (p *Plain) Rebuild() error {
	p.open, p.zombie = false, false
	p.epoch = p.pauses.epoch()
	p.cl.Close()
	return p.connect()
}

// Close ends an open batch without committing it and leaves the group.
func (p *Plain) Close(ctx context.Context) {
	p.open = false
	p.pauses.Close()
	p.cl.AllowRebalance()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.cl.Close()
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
