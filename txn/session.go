package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrFenced means another process with the same transactional id started:
// this one is a zombie and must stop.
var ErrFenced = errors.New("fenced: another instance started with the same transactional id (is the same instance id running twice?)")

// UnknownOutcomeError wraps an error from ending a transaction. The
// transaction may or may not have committed; the caller must Rebuild.
type UnknownOutcomeError struct{ Err error }

func (e *UnknownOutcomeError) Error() string {
	return "transaction outcome unknown, rebuilding client: " + e.Err.Error()
}

func (e *UnknownOutcomeError) Unwrap() error { return e.Err }

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

// Config configures a Session.
type Config struct {
	Brokers            []string
	ClientID           string
	Group              string
	TransactionalID    string
	Topics             []string
	TransactionTimeout time.Duration
	SessionTimeout     time.Duration
	Logger             *slog.Logger

	// OnAssigned and OnRevoked, when set, are called from the group's
	// rebalance callbacks, with the partitions gained or lost (lost
	// partitions count as revoked). They must not call End.
	OnAssigned func(map[string][]int32)
	OnRevoked  func(map[string][]int32)

	// Opts are appended to the client's options (tests use it).
	Opts []kgo.Opt
}

// Session is one group member's transactional client. It is not safe for
// concurrent use: one goroutine polls, produces and ends.
type Session struct {
	cfg   Config
	s     *kgo.GroupTransactSession
	inTxn bool
	began time.Time

	mu struct {
		sync.Mutex
		err      error // first produce error of the open transaction
		errTopic string
	}
}

// New creates the client and starts joining the group.
func New(cfg Config) (*Session, error) {
	s := &Session{cfg: cfg}
	if err := s.connect(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Session) connect() error {
	cfg := s.cfg
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.TransactionalID(cfg.TransactionalID),
		kgo.TransactionTimeout(cfg.TransactionTimeout),
		kgo.SessionTimeout(cfg.SessionTimeout),
		// Kafka wants heartbeats at most a third of the session timeout
		// apart; a fifth leaves room for one lost heartbeat.
		kgo.HeartbeatInterval(min(3*time.Second, cfg.SessionTimeout/5)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if cfg.OnAssigned != nil {
				cfg.OnAssigned(m)
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if cfg.OnRevoked != nil && len(m) > 0 {
				cfg.OnRevoked(m)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if cfg.OnRevoked != nil && len(m) > 0 {
				cfg.OnRevoked(m)
			}
		}),
	}
	if cfg.Logger != nil {
		opts = append(opts, kgo.WithLogger(kgoLogger{cfg.Logger}))
	}
	opts = append(opts, cfg.Opts...)
	gts, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("creating Kafka client: %w", err)
	}
	s.s = gts
	return nil
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

// Begin opens a transaction if none is open.
func (s *Session) Begin() error {
	if s.inTxn {
		return nil
	}
	if err := s.s.Begin(); err != nil {
		return classify(err)
	}
	s.inTxn = true
	s.began = time.Now()
	return nil
}

// Produce sends r inside the open transaction without waiting for the
// broker. A failure is remembered and makes End abort.
func (s *Session) Produce(ctx context.Context, r *kgo.Record) {
	s.s.Produce(ctx, r, s.promise)
}

func (s *Session) promise(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	if s.mu.err == nil {
		s.mu.err, s.mu.errTopic = err, r.Topic
	}
	s.mu.Unlock()
}

// End ends the open transaction, committing it unless a produce failed or
// abort is set. It returns whether the transaction committed. A nil error
// with committed false means the transaction aborted cleanly and the
// consumer was rewound. Errors: ErrFenced (stop), *ProduceError (stop: the
// same records would fail again), *UnknownOutcomeError (Rebuild), or ctx's
// error.
func (s *Session) End(ctx context.Context, abort bool) (committed bool, err error) {
	if !s.inTxn {
		return false, nil
	}
	s.inTxn = false
	s.mu.Lock()
	perr, ptopic := s.mu.err, s.mu.errTopic
	s.mu.err, s.mu.errTopic = nil, ""
	s.mu.Unlock()

	try := kgo.TryCommit
	if abort || perr != nil {
		try = kgo.TryAbort
	}
	committed, err = s.s.End(ctx, try)
	if err != nil {
		if ctx.Err() != nil {
			return false, &UnknownOutcomeError{Err: ctx.Err()}
		}
		if c := classify(err); errors.Is(c, ErrFenced) {
			return false, c
		}
		return false, &UnknownOutcomeError{Err: err}
	}
	if perr != nil {
		if c := classify(perr); errors.Is(c, ErrFenced) {
			return false, c
		}
		if abortable(perr) {
			return false, nil
		}
		return false, &ProduceError{Topic: ptopic, Err: perr}
	}
	return committed, nil
}

// Rebuild closes the client and creates a new one, which rejoins the group
// and resumes from the committed offsets.
func (s *Session) Rebuild() error {
	s.inTxn = false
	s.mu.Lock()
	s.mu.err = nil
	s.mu.Unlock()
	s.s.Close()
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

// classify maps errors that mean "this instance is a zombie" to ErrFenced.
func classify(err error) error {
	switch {
	case errors.Is(err, kerr.ProducerFenced),
		errors.Is(err, kerr.InvalidProducerEpoch),
		errors.Is(err, kerr.FencedInstanceID):
		return fmt.Errorf("%w: %v", ErrFenced, err)
	}
	return err
}

// abortable reports whether a produce error only dooms the current
// transaction: the same records can be produced again in the next one.
func abortable(err error) bool {
	return errors.Is(err, kerr.TransactionAbortable) ||
		errors.Is(err, kgo.ErrAborting) ||
		errors.Is(err, context.Canceled) ||
		kerr.IsRetriable(err)
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
