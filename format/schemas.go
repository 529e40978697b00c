package format

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// Errors of the schema registry formats. Decode and Encode errors wrap
// one of them (through *RecordError's Class, see Classify), so the
// pipeline's error policy routes a bad record and dashboards can count
// each kind.
var (
	// ErrUnknownSchema: the registry does not know the schema id a
	// record names (a record written against another registry, or a
	// schema hard-deleted since). A record error.
	ErrUnknownSchema = errors.New("unknown schema id")
	// ErrWireFormat: the bytes are not in the Confluent wire format
	// (no magic byte 0, or shorter than its 5-byte header). A record
	// error.
	ErrWireFormat = errors.New("not in the schema registry wire format")
	// ErrSchemaMismatch: the bytes do not decode with their writer
	// schema, or a value does not fit the sink's schema. A record error.
	ErrSchemaMismatch = errors.New("does not match the schema")
	// ErrIncompatible: the registry refused a sink's schema as
	// incompatible with the subject's earlier versions. A start-up
	// error.
	ErrIncompatible = errors.New("schema incompatible with the subject's registered versions")
	// ErrRegistryUnavailable: the registry could not be reached (or
	// answered 5xx) until the caller gave up or Schemas was closed. Not
	// a record error: the record was not looked at, and the pipeline
	// stops instead of dead-lettering it.
	ErrRegistryUnavailable = errors.New("schema registry unavailable")
	// ErrNoRegistry: a codec needs a registry and none is configured.
	ErrNoRegistry = errors.New("no schema registry configured: set registry.urls (flag --registry, env EXACTLY_REGISTRY_URLS)")
)

// ClassError is a record error with a class for the exactly.error.class
// header of its dead letter.
type ClassError struct {
	Class string // one word: unknown_schema, wire_format, schema_mismatch
	Err   error
}

func (e *ClassError) Error() string { return e.Err.Error() }
func (e *ClassError) Unwrap() error { return e.Err }

// Class returns the class of err if it wraps a *ClassError, else "".
func Class(err error) string {
	var ce *ClassError
	if errors.As(err, &ce) {
		return ce.Class
	}
	return ""
}

func classed(class string, err error) error { return &ClassError{Class: class, Err: err} }

// Schemas is a Schema Registry client with the schema cache every codec
// of a process shares. Schemas never change once registered (an id, or a
// subject and version, always names the same text), so entries are never
// evicted or refreshed; a soft-deleted schema keeps working from the
// cache. All methods are safe for concurrent use.
//
// A request that fails for want of the registry (connection refused, a
// timeout, an HTTP 5xx or 429) is tried again with backoff (100ms
// doubling to 5s) until the context ends or Close is called: at start a
// pipeline waits (readiness stays false) until the registry answers, and
// mid-run a record with a new schema id waits for it rather than being
// dropped, while ids already cached need no request at all. An answer
// that will not change by asking again (404, 401, 409, 422) is returned
// at once.
type Schemas struct {
	cl   *sr.Client
	log  *slog.Logger
	done chan struct{}
	stop sync.Once
	// backoff is the wait before retry n (0-based).
	backoff func(n int) time.Duration

	mu struct {
		sync.Mutex
		byID       map[int]sr.Schema
		byVersion  map[subjectVersion]sr.SubjectSchema
		registered map[string]sr.SubjectSchema // subject + "\x00" + text
		parsed     map[parsedKey]parsedEntry
		waiting    string // why a request is retrying now, "" if none
	}
}

type subjectVersion struct {
	subject string
	version int
}

type parsedKey struct {
	kind string
	id   int
}

type parsedEntry struct {
	v   any
	err error
}

// NewSchemas returns a cache over cl. log may be nil.
func NewSchemas(cl *sr.Client, log *slog.Logger) *Schemas {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Schemas{cl: cl, log: log, done: make(chan struct{}), backoff: defaultBackoff}
	s.mu.byID = map[int]sr.Schema{}
	s.mu.byVersion = map[subjectVersion]sr.SubjectSchema{}
	s.mu.registered = map[string]sr.SubjectSchema{}
	s.mu.parsed = map[parsedKey]parsedEntry{}
	return s
}

func defaultBackoff(n int) time.Duration {
	d := 100 * time.Millisecond
	for range min(n, 6) {
		d *= 2
	}
	return min(d, 5*time.Second)
}

// Close ends every wait for the registry: they return
// ErrRegistryUnavailable. Cached schemas keep working.
func (s *Schemas) Close() { s.stop.Do(func() { close(s.done) }) }

// Client returns the registry client.
func (s *Schemas) Client() *sr.Client { return s.cl }

// Waiting says why a registry request is being retried now, or "" when
// none is: for readiness and logs.
func (s *Schemas) Waiting() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.waiting
}

// ByID returns the schema with id, from the cache or the registry. An id
// the registry does not know is ErrUnknownSchema.
func (s *Schemas) ByID(ctx context.Context, id int) (sr.Schema, error) {
	s.mu.Lock()
	sch, ok := s.mu.byID[id]
	s.mu.Unlock()
	if ok {
		return sch, nil
	}
	err := s.retry(ctx, fmt.Sprintf("schema id %d", id), func(ctx context.Context) (err error) {
		sch, err = s.cl.SchemaByID(ctx, id)
		return err
	})
	if err != nil {
		if notFound(err) {
			return sr.Schema{}, classed("unknown_schema", fmt.Errorf("%w %d: the registry has no schema with this id (written against another registry, or deleted)", ErrUnknownSchema, id))
		}
		return sr.Schema{}, err
	}
	s.mu.Lock()
	s.mu.byID[id] = sch
	s.mu.Unlock()
	return sch, nil
}

// ByVersion returns version of subject; a version of 0 or less is the
// latest, which is asked of the registry every time (and then cached
// under its number and id).
func (s *Schemas) ByVersion(ctx context.Context, subject string, version int) (sr.SubjectSchema, error) {
	if version > 0 {
		s.mu.Lock()
		ss, ok := s.mu.byVersion[subjectVersion{subject, version}]
		s.mu.Unlock()
		if ok {
			return ss, nil
		}
	}
	var ss sr.SubjectSchema
	want := version
	if want <= 0 {
		want = -1 // the registry's "latest"
	}
	err := s.retry(ctx, fmt.Sprintf("subject %s version %d", subject, version), func(ctx context.Context) (err error) {
		ss, err = s.cl.SchemaByVersion(ctx, subject, want)
		return err
	})
	if err != nil {
		if notFound(err) {
			if version > 0 {
				return ss, fmt.Errorf("the registry has no version %d of subject %s: %w", version, subject, err)
			}
			return ss, fmt.Errorf("the registry has no subject %s: register its schema, or check the topic and the subject naming: %w", subject, err)
		}
		return ss, err
	}
	s.cache(ss)
	return ss, nil
}

// Register registers sch under subject (or finds it there already) and
// returns its id and version. A schema the registry refuses as
// incompatible is ErrIncompatible, an invalid one an error naming the
// registry's reason.
func (s *Schemas) Register(ctx context.Context, subject string, sch sr.Schema) (sr.SubjectSchema, error) {
	key := subject + "\x00" + sch.Schema
	s.mu.Lock()
	ss, ok := s.mu.registered[key]
	s.mu.Unlock()
	if ok {
		return ss, nil
	}
	err := s.retry(ctx, "registering subject "+subject, func(ctx context.Context) (err error) {
		ss, err = s.cl.CreateSchema(ctx, subject, sch)
		return err
	})
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusConflict {
			return ss, fmt.Errorf("subject %s: %w (%s): make the schema compatible (add fields with defaults) or change the subject's compatibility level", subject, ErrIncompatible, re.Message)
		}
		if errors.As(err, &re) && re.StatusCode == http.StatusUnprocessableEntity {
			return ss, fmt.Errorf("subject %s: the registry refused the schema as invalid: %s", subject, re.Message)
		}
		return ss, err
	}
	if ss.Schema.Schema == "" {
		ss.Schema = sch
	}
	s.cache(ss)
	s.mu.Lock()
	s.mu.registered[key] = ss
	s.mu.Unlock()
	return ss, nil
}

func (s *Schemas) cache(ss sr.SubjectSchema) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss.ID > 0 {
		if _, ok := s.mu.byID[ss.ID]; !ok {
			s.mu.byID[ss.ID] = ss.Schema
		}
	}
	if ss.Version > 0 {
		s.mu.byVersion[subjectVersion{ss.Subject, ss.Version}] = ss
	}
}

// Parsed returns parse(schema id), computed once per kind and id and then
// shared: each format keeps its compiled form of a schema here (kind
// names the format and any variant, e.g. "avro" or "avro reader=7"). A
// parse error is cached too: the schema will not change.
func (s *Schemas) Parsed(ctx context.Context, kind string, id int, parse func(sr.Schema) (any, error)) (any, error) {
	k := parsedKey{kind, id}
	s.mu.Lock()
	e, ok := s.mu.parsed[k]
	s.mu.Unlock()
	if ok {
		return e.v, e.err
	}
	sch, err := s.ByID(ctx, id)
	if err != nil {
		return nil, err
	}
	v, err := parse(sch)
	if err != nil && (errors.Is(err, ErrRegistryUnavailable) || ctx.Err() != nil) {
		// Parsing fetched something (a reference) and the registry did
		// not answer: not the schema's fault, so not kept; the next
		// record asks again.
		return nil, err
	}
	s.mu.Lock()
	if prev, ok := s.mu.parsed[k]; ok { // another goroutine won
		s.mu.Unlock()
		return prev.v, prev.err
	}
	s.mu.parsed[k] = parsedEntry{v, err}
	s.mu.Unlock()
	return v, err
}

// retry calls f until it succeeds, fails in a way asking again cannot
// fix, ctx ends or s is closed.
func (s *Schemas) retry(ctx context.Context, what string, f func(context.Context) error) error {
	for n := 0; ; n++ {
		err := f(ctx)
		if err == nil || !transient(err) || ctx.Err() != nil {
			if n > 0 {
				s.setWaiting("")
				s.log.Info("schema registry answers again", "request", what)
			}
			if err != nil && ctx.Err() != nil && transient(err) {
				return fmt.Errorf("%w (%s): %w", ErrRegistryUnavailable, what, err)
			}
			return err
		}
		msg := fmt.Sprintf("waiting for the schema registry (%s): %v", what, err)
		s.setWaiting(msg)
		if n == 0 || n%10 == 0 {
			s.log.Warn("schema registry request failed; trying again", "request", what, "attempt", n+1, "err", err)
		}
		t := time.NewTimer(s.backoff(n))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			s.setWaiting("")
			return fmt.Errorf("%w (%s): %v: %w", ErrRegistryUnavailable, what, err, ctx.Err())
		case <-s.done:
			t.Stop()
			s.setWaiting("")
			return fmt.Errorf("%w (%s): %v; stopped waiting", ErrRegistryUnavailable, what, err)
		}
	}
}

func (s *Schemas) setWaiting(msg string) {
	s.mu.Lock()
	s.mu.waiting = msg
	s.mu.Unlock()
}

// transient reports whether asking again may succeed: the registry was
// not reached, or answered that it is overloaded or broken.
func transient(err error) bool {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests || re.StatusCode == http.StatusRequestTimeout
	}
	// Not an HTTP answer: refused, reset, DNS, a request timeout (the
	// caller's context ending is checked apart).
	return true
}

func notFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}
