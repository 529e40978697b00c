package format

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

const testAvro = `{"type":"record","name":"T","fields":[{"name":"a","type":"long"}]}`

func TestWireHeader(t *testing.T) {
	b := AppendWireHeader([]byte(nil), 0x01020304)
	if want := []byte{0, 1, 2, 3, 4}; !bytes.Equal(b, want) {
		t.Fatalf("AppendWireHeader = %x, want %x", b, want)
	}
	id, rest, err := SplitWire(append(b, 'x'))
	if err != nil || id != 0x01020304 || string(rest) != "x" {
		t.Fatalf("SplitWire = %d, %q, %v", id, rest, err)
	}
	for _, bad := range [][]byte{{}, {0, 1, 2}, {1, 0, 0, 0, 1, 'x'}, []byte(`{"a":1}`)} {
		_, _, err := SplitWire(bad)
		if !errors.Is(err, ErrWireFormat) || Class(err) != "wire_format" {
			t.Errorf("SplitWire(%x) = %v, want ErrWireFormat of class wire_format", bad, err)
		}
	}
}

func TestIndexes(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want []byte
	}{
		{[]int{0}, []byte{0}},
		{nil, []byte{0}},
		{[]int{1}, []byte{2, 2}},
		{[]int{0, 2}, []byte{4, 0, 4}},
	} {
		b := AppendIndexes(nil, tc.in)
		if !bytes.Equal(b, tc.want) {
			t.Errorf("AppendIndexes(%v) = %x, want %x", tc.in, b, tc.want)
		}
		got, rest, err := SplitIndexes(append(b, 9))
		want := tc.in
		if len(want) == 0 {
			want = []int{0}
		}
		if err != nil || len(rest) != 1 || len(got) != len(want) {
			t.Fatalf("SplitIndexes(%x) = %v, %x, %v", b, got, rest, err)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("SplitIndexes(%x) = %v, want %v", b, got, want)
			}
		}
	}
}

// down makes reg answer 503 to every request while *on is true, counting
// the requests it refused.
func down(reg *srfake.Registry, on *atomic.Bool, refused *atomic.Int64) {
	reg.Intercept(func(w http.ResponseWriter, _ *http.Request) bool {
		if !on.Load() {
			return false
		}
		refused.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error_code":50301,"message":"down"}`))
		return true
	})
}

func newTestSchemas(t *testing.T, reg *srfake.Registry) *Schemas {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	s := NewSchemas(cl, nil)
	s.backoff = func(int) time.Duration { return time.Millisecond }
	t.Cleanup(s.Close)
	return s
}

// A registry down at start: ByID waits, says why in Waiting, and returns
// the schema once the registry answers.
func TestSchemasDownAtStart(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	reg.SeedSchema("t-value", 1, 7, sr.Schema{Schema: testAvro})
	var on atomic.Bool
	var refused atomic.Int64
	on.Store(true)
	down(reg, &on, &refused)
	s := newTestSchemas(t, reg)

	var once sync.Once
	waiting := make(chan string, 1)
	go func() {
		// Bring the registry back after three refusals, noting what
		// Waiting said meanwhile.
		for refused.Load() < 3 {
			time.Sleep(time.Millisecond)
		}
		once.Do(func() { waiting <- s.Waiting() })
		on.Store(false)
	}()
	sch, err := s.ByID(context.Background(), 7)
	if err != nil || sch.Schema != testAvro {
		t.Fatalf("ByID(7) = %q, %v, want the schema once the registry is back", sch.Schema, err)
	}
	if w := <-waiting; w == "" {
		t.Errorf("Waiting() = %q while the registry was down, want why", w)
	}
	if w := s.Waiting(); w != "" {
		t.Errorf("Waiting() = %q after the registry answered, want empty", w)
	}
}

// Down mid-run: cached ids need no request; a new id waits until the
// caller gives up or Schemas closes, then is ErrRegistryUnavailable, not
// a record error.
func TestSchemasDownMidRun(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	reg.SeedSchema("t-value", 1, 7, sr.Schema{Schema: testAvro})
	reg.SeedSchema("t-value", 2, 8, sr.Schema{Schema: `{"type":"record","name":"T","fields":[{"name":"b","type":"long"}]}`})
	var on atomic.Bool
	var refused atomic.Int64
	down(reg, &on, &refused)
	s := newTestSchemas(t, reg)
	if _, err := s.ByID(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	on.Store(true)
	if sch, err := s.ByID(context.Background(), 7); err != nil || sch.Schema != testAvro {
		t.Fatalf("cached ByID(7) while down = %q, %v", sch.Schema, err)
	}
	if n := refused.Load(); n != 0 {
		t.Fatalf("a cached id asked the registry %d times", n)
	}
	go func() {
		for refused.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		s.Close()
	}()
	_, err := s.ByID(context.Background(), 8)
	if !errors.Is(err, ErrRegistryUnavailable) || Class(err) != "" {
		t.Fatalf("ByID(8) while down, then Close = %v, want ErrRegistryUnavailable without a record class", err)
	}
}

func TestSchemasUnknownID(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	var requests atomic.Int64
	reg.Intercept(func(http.ResponseWriter, *http.Request) bool { requests.Add(1); return false })
	s := newTestSchemas(t, reg)
	_, err := s.ByID(context.Background(), 99)
	if !errors.Is(err, ErrUnknownSchema) || Class(err) != "unknown_schema" {
		t.Fatalf("ByID(99) = %v, want ErrUnknownSchema of class unknown_schema", err)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("an unknown id was asked %d times, want once (a 404 is final)", n)
	}
}

func TestSchemasRegister(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	s := newTestSchemas(t, reg)
	ss, err := s.Register(context.Background(), "out-value", sr.Schema{Schema: testAvro})
	if err != nil || ss.ID <= 0 {
		t.Fatalf("Register = %+v, %v", ss, err)
	}
	got, err := s.ByID(context.Background(), ss.ID)
	if err != nil || got.Schema == "" {
		t.Fatalf("ByID(registered) = %+v, %v", got, err)
	}
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost {
			return false
		}
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"error_code":409,"message":"Schema being registered is incompatible with an earlier schema"}`))
		return true
	})
	_, err = s.Register(context.Background(), "out-value", sr.Schema{Schema: `{"type":"string"}`})
	if !errors.Is(err, ErrIncompatible) {
		t.Fatalf("Register(incompatible) = %v, want ErrIncompatible", err)
	}
}

// A parse that fails because the registry did not answer (a reference it
// fetched) is not the schema's fault: Parsed does not keep that failure,
// and the next call parses again. A parse that fails on the schema itself
// is kept.
func TestParsedKeepsOnlySchemaErrors(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	reg.SeedSchema("t-value", 1, 7, sr.Schema{Schema: testAvro})
	s := newTestSchemas(t, reg)
	ctx := context.Background()
	calls := 0
	parse := func(err error) func(sr.Schema) (any, error) {
		return func(sr.Schema) (any, error) {
			calls++
			if err != nil {
				return nil, err
			}
			return "parsed", nil
		}
	}
	if _, err := s.Parsed(ctx, "k", 7, parse(fmt.Errorf("fetching a reference: %w", ErrRegistryUnavailable))); !errors.Is(err, ErrRegistryUnavailable) {
		t.Fatalf("first Parsed = %v, want ErrRegistryUnavailable", err)
	}
	if v, err := s.Parsed(ctx, "k", 7, parse(nil)); err != nil || v != "parsed" {
		t.Fatalf("Parsed once the registry answers = %v, %v, want parsed: an outage must not fail the id for good", v, err)
	}
	bad := errors.New("not a schema")
	if _, err := s.Parsed(ctx, "k2", 7, parse(bad)); !errors.Is(err, bad) {
		t.Fatalf("Parsed of a bad schema = %v", err)
	}
	before := calls
	if _, err := s.Parsed(ctx, "k2", 7, parse(nil)); !errors.Is(err, bad) || calls != before {
		t.Errorf("a schema error was not kept: err %v, parses %d", err, calls-before)
	}
}
