package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/internal/kafkaerr"
)

// ErrFenced means this instance's producer was fenced too often in a short
// time: another live process is using the same transactional id, and the
// two would keep fencing each other.
var ErrFenced = errors.New("fenced repeatedly: another live process uses the same transactional id (is the same instance id running twice?)")

// RebuildError means the client must be rebuilt (Rebuild) before going on:
// the transaction's outcome is unknown, or the producer was fenced (by the
// broker aborting a transaction that outlived the transaction timeout, or by
// a newer process with the same transactional id).
type RebuildError struct {
	Fenced bool
	Err    error
}

func (e *RebuildError) Error() string {
	if e.Fenced {
		return "producer fenced, rebuilding client: " + e.Err.Error()
	}
	return "transaction outcome unknown, rebuilding client: " + e.Err.Error()
}

func (e *RebuildError) Unwrap() error { return e.Err }

// ProduceError is a produce failure that retrying the same records cannot
// fix (a record too large, an unknown topic, an authorization failure).
// The transaction was aborted.
type ProduceError struct {
	Topic string
	Err   error
}

func (e *ProduceError) Error() string {
	return fmt.Sprintf("producing to %s: %v", e.Topic, e.Err)
}

func (e *ProduceError) Unwrap() error { return e.Err }

// fenceLimit fences within fenceWindow make a fence fatal (ErrFenced).
const (
	fenceLimit  = 3
	fenceWindow = time.Minute
)

// Config configures a Session.
type Config struct {
	Brokers            []string
	ClientID           string
	Group              string
	TransactionalID    string
	Topics             []string
	TransactionTimeout time.Duration
	SessionTimeout     time.Duration
	RebalanceTimeout   time.Duration
	Logger             *slog.Logger

	// GroupInstanceID, when set, makes the member a static one (KIP-345,
	// Java's group.instance.id): a restart within the session timeout
	// gets its partitions back without a rebalance, and closing does not
	// leave the group.
	GroupInstanceID string
	// Balancer assigns the group's partitions; nil: kgo's sticky
	// balancer. It must be eager (see groupOpts).
	Balancer kgo.GroupBalancer

	// OnAssigned and OnRevoked, when set, are called from the group's
	// rebalance callbacks, with the partitions gained or lost (lost
	// partitions count as revoked). They must not call End.
	// OnAssigned runs before fetching of the new partitions begins, so it
	// may pause them (to restore state first) with the client it gets.
	OnAssigned func(*kgo.Client, map[string][]int32)
	OnRevoked  func(map[string][]int32)
	// OnLost, when set, gets the partitions lost (the session expired or
	// the member was fenced: another member may own them already), which
	// otherwise go to OnRevoked.
	OnLost func(map[string][]int32)

	// Opts are appended to the client's options (tests use it).
	Opts []kgo.Opt
}

// Session is one group member's transactional client. It is not safe for
// concurrent use: one goroutine polls, produces and ends.
type Session struct {
	cfg    Config
	s      *kgo.GroupTransactSession
	inTxn  bool
	began  time.Time
	fences []time.Time // recent fences, see fencedTooOften

	results *produceResults // of the open transaction
}

// New creates the client and starts joining the group.
func New(cfg Config) (*Session, error) {
	s := &Session{cfg: cfg, results: &produceResults{}}
	if err := s.connect(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Session) connect() error {
	cfg := s.cfg
	opts := append(groupOpts(cfg),
		kgo.TransactionalID(cfg.TransactionalID),
		kgo.TransactionTimeout(cfg.TransactionTimeout),
		kgo.RequireStableFetchOffsets(),
	)
	opts = append(opts, cfg.Opts...)
	gts, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("creating Kafka client: %w", err)
	}
	s.s = gts
	// Fence the previous incarnation now (InitProducerID bumps the
	// transactional id's epoch and aborts its open transaction), not at
	// the first transaction: until then a transaction it left open keeps
	// the last stable offset of every changelog it wrote to where it
	// was, and the restores of this member wait on it for the
	// transaction timeout plus the broker's abort check (up to 10s
	// more; seen in the chaos harness's recovery runs). Failing here is
	// not fatal: the first transaction tries again.
	ctx, cancel := context.WithTimeout(context.Background(), fenceTimeout)
	defer cancel()
	if _, _, err := gts.Client().ProducerID(ctx); err != nil && cfg.Logger != nil {
		cfg.Logger.Debug("fencing the previous incarnation at start failed; the first transaction will", "err", err)
	}
	return nil
}

// fenceTimeout bounds connect's early fencing.
const fenceTimeout = 10 * time.Second

func balancer(cfg Config) kgo.GroupBalancer {
	if cfg.Balancer != nil {
		return cfg.Balancer
	}
	return kgo.StickyBalancer()
}

// groupOpts are the client options of a group member, whatever its
// guarantee.
func groupOpts(cfg Config) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.RebalanceTimeout(cfg.RebalanceTimeout),
		// Kafka wants heartbeats at most a third of the session timeout
		// apart; a fifth leaves room for one lost heartbeat.
		kgo.HeartbeatInterval(min(3*time.Second, cfg.SessionTimeout/5)),
		// An eager balancer: a rebalance revokes every partition before
		// the member rejoins, and the revoke makes an open transaction
		// abort at once. With a cooperative balancer, End can block
		// until the rebalance completes (waiting for a dead member's
		// session to expire), past the transaction timeout; the broker
		// then aborts the transaction and we must rebuild, which
		// triggers yet another rebalance. Sticky keeps each partition
		// on its member across rebalances, so state stays local.
		kgo.Balancers(balancer(cfg)),
		// Upstream transactions that aborted are never input.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Java's default (fetch.max.wait.ms). kgo's 5s default would hold
		// a partition resumed after its restore for up to 5s behind a
		// fetch already waiting at the broker.
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
			if cfg.OnAssigned != nil {
				cfg.OnAssigned(cl, m)
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if cfg.OnRevoked != nil && len(m) > 0 {
				cfg.OnRevoked(m)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			switch {
			case len(m) == 0:
			case cfg.OnLost != nil:
				cfg.OnLost(m)
			case cfg.OnRevoked != nil:
				cfg.OnRevoked(m)
			}
		}),
	}
	if cfg.GroupInstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.GroupInstanceID))
	}
	if cfg.Logger != nil {
		opts = append(opts, kgo.WithLogger(kgoLogger{cfg.Logger}))
	}
	return opts
}

// Client returns the underlying client, for admin requests. Do not manage
// transactions with it.
func (s *Session) Client() *kgo.Client { return s.s.Client() }

// InTxn reports whether a transaction is open, and since when.
func (s *Session) InTxn() (bool, time.Time) { return s.inTxn, s.began }

// Poll polls for up to max records (max <= 0: all buffered). Errors from
// ctx ending are dropped from the result: the caller sees ctx itself.
func (s *Session) Poll(ctx context.Context, max int) kgo.Fetches {
	return s.s.PollRecords(ctx, max)
}

// Begin opens a transaction if none is open. The fetched records are not
// used: their offsets are committed inside the transaction by End.
func (s *Session) Begin(_ context.Context, _ kgo.Fetches) error {
	if s.inTxn {
		return nil
	}
	if err := s.s.Begin(); err != nil {
		return err
	}
	s.results = &produceResults{}
	s.inTxn = true
	s.began = time.Now()
	return nil
}

// Produce sends r inside the open transaction without waiting for the
// broker. A failure is remembered and makes End abort.
func (s *Session) Produce(ctx context.Context, r *kgo.Record) {
	s.s.Produce(ctx, r, s.results.produce())
}

// End ends the open transaction, committing it unless a produce failed or
// abort is set, and reports whether it committed. A nil error with
// committed false means the transaction aborted cleanly and the consumer
// was rewound to the committed offsets.
//
// Errors: *RebuildError (call Rebuild, then go on), ErrFenced (stop),
// *ProduceError (stop: the same records would fail again).
//
// ctx bounds the call; the caller should not let it outlive the
// transaction timeout, past which the broker aborts the transaction
// anyway. A ctx that ends makes the outcome unknown.
func (s *Session) End(ctx context.Context, abort bool) (committed bool, err error) {
	if !s.inTxn {
		return false, nil
	}
	s.inTxn = false
	// Flush before reading the produce failures: a record's promise runs
	// when the broker answers, and an answer still on its way would
	// otherwise be read only after the commit, which the broker makes
	// with whatever it accepted. kgo's End does not look at produce
	// failures itself. Then wait for the promises Flush does not wait
	// for: of records kgo refused before buffering them (see
	// produceResults). Either ends early only with ctx, leaving the
	// outcome unknown, as any error of ending does.
	res := s.results
	var perr error
	var ptopic string
	if !abort {
		if err := s.s.Client().Flush(ctx); err != nil {
			return false, &RebuildError{Err: fmt.Errorf("flushing the transaction's records: %w", err)}
		}
		if err := res.wait(ctx); err != nil {
			return false, &RebuildError{Err: fmt.Errorf("waiting for the results of the transaction's records: %w", err)}
		}
		perr, ptopic = res.first()
	}

	try := kgo.TryCommit
	if abort || perr != nil {
		try = kgo.TryAbort
	}
	committed, err = s.s.End(ctx, try)
	// An abort does not flush: kgo's End fails what is still buffered
	// and waits for the records in flight, whose failures arrive only
	// now. They are this transaction's, and kept in its own results, so
	// the next transaction never takes them for its own (it did: it
	// aborted, or stopped the caller with this one's *ProduceError,
	// although all of its own records went through).
	if perr == nil && !committed {
		// A ctx that ends first leaves a late failure unread: the
		// transaction aborted all the same.
		_ = res.wait(ctx)
		perr, ptopic = res.first()
	}
	if err == nil && perr != nil && !kafkaerr.Abortable(perr) {
		err = perr
		if !kafkaerr.Fenced(perr) {
			return false, &ProduceError{Topic: ptopic, Err: perr}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		if kafkaerr.Fenced(err) {
			if s.fencedTooOften(time.Now()) {
				return false, fmt.Errorf("%w: %w", ErrFenced, err)
			}
			return false, &RebuildError{Fenced: true, Err: err}
		}
		return false, &RebuildError{Err: err}
	}
	return committed, nil
}

// fencedTooOften records a fence at now and reports whether there were
// fenceLimit of them within fenceWindow. One fence is normal: a paused
// process whose transaction the broker aborted, or a restart. Repeated
// fences mean two live processes share the transactional id.
func (s *Session) fencedTooOften(now time.Time) bool {
	s.fences = append(s.fences, now)
	for len(s.fences) > 0 && now.Sub(s.fences[0]) > fenceWindow {
		s.fences = s.fences[1:]
	}
	return len(s.fences) >= fenceLimit
}

// Rebuild closes the client and creates a new one. The new client
// initialises the producer id again (fencing any older holder of the
// transactional id), rejoins the group and resumes from the committed
// offsets.
func (s *Session) Rebuild() error {
	s.inTxn = false
	s.s.Close()
	// The old client's promises, however late, go to the results of
	// the transaction they belong to; Begin makes new ones.
	return s.connect()
}

// Close aborts an open transaction (the caller ends it first to keep its
// work) and leaves the group, bounded by ctx.
func (s *Session) Close(ctx context.Context) {
	if s.inTxn {
		s.End(ctx, true)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.s.CloseAllowingRebalance()
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// The close goes on in the background; the process is
		// exiting and the session timeout will expel us.
	}
}

type kgoLogger struct{ l *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case l.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelDebug
	case l.l.Enabled(ctx, slog.LevelInfo):
		// kgo's info level logs every request cycle; keep it at
		// debug and pass only warnings and errors at info.
		return kgo.LogLevelWarn
	case l.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	}
	return kgo.LogLevelError
}

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	case kgo.LogLevelInfo:
		lv = slog.LevelDebug
	}
	l.l.Log(context.Background(), lv, msg, append(keyvals, "component", "kgo")...)
}
