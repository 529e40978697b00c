package statestore

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// backendCase builds one backend for the conformance suite.
type backendCase struct {
	name string
	new  func(t *testing.T) Backend
}

func backends() []backendCase {
	return []backendCase{
		{"memory", func(t *testing.T) Backend {
			b := NewMemory()
			t.Cleanup(func() { _ = b.Close() })
			return b
		}},
		{"pebble", func(t *testing.T) Backend {
			b, err := NewPebble(t.TempDir(), 1<<20)
			if err != nil {
				t.Fatalf("NewPebble: %v", err)
			}
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Backend.Close: %v", err)
				}
			})
			return b
		}},
	}
}

func openStore(t *testing.T, b Backend, name string, partition int32) Store {
	t.Helper()
	st, err := b.Open(name, partition)
	if err != nil {
		t.Fatalf("Open(%q, %d): %v", name, partition, err)
	}
	return st
}

// op is one step applied to a store. value nil means delete.
type op struct {
	do     string // put, commit, abort, restore, finish, wipe
	key    string
	value  []byte
	offset int64
}

func put(k, v string) op              { return op{do: "put", key: k, value: []byte(v)} }
func del(k string) op                 { return op{do: "put", key: k} }
func commit(next int64) op            { return op{do: "commit", offset: next} }
func abort() op                       { return op{do: "abort"} }
func restore(k, v string, o int64) op { return op{do: "restore", key: k, value: []byte(v), offset: o} }
func restoreDel(k string, o int64) op { return op{do: "restore", key: k, offset: o} }
func finish(next int64) op            { return op{do: "finish", offset: next} }
func wipe() op                        { return op{do: "wipe"} }

func apply(t *testing.T, st Store, ops []op) {
	t.Helper()
	for i, o := range ops {
		var err error
		switch o.do {
		case "put":
			st.Put([]byte(o.key), o.value)
		case "commit":
			err = st.Commit(o.offset)
		case "abort":
			st.Abort()
		case "restore":
			err = st.Restore([]byte(o.key), o.value, o.offset)
		case "finish":
			err = st.FinishRestore(o.offset)
		case "wipe":
			err = st.Wipe()
		default:
			t.Fatalf("unknown op %q", o.do)
		}
		if err != nil {
			t.Fatalf("op %d (%s %q): %v", i, o.do, o.key, err)
		}
	}
}

// state is what a store should show: key to value, nil for absent.
type state map[string][]byte

func checkStore(t *testing.T, st Store, want state, pending int, checkpoint, length, size int64) {
	t.Helper()
	for k, wv := range want {
		v, ok, err := st.Get([]byte(k))
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		switch {
		case wv == nil && ok:
			t.Errorf("Get(%q) = %q, true, want absent", k, v)
		case wv != nil && !ok:
			t.Errorf("Get(%q) = absent, want %q", k, wv)
		case wv != nil && (!bytes.Equal(v, wv) || v == nil):
			t.Errorf("Get(%q) = %q (nil %t), want %q", k, v, v == nil, wv)
		}
	}
	if got := st.Pending(); got != pending {
		t.Errorf("Pending() = %d, want %d", got, pending)
	}
	if got := st.Checkpoint(); got != checkpoint {
		t.Errorf("Checkpoint() = %d, want %d", got, checkpoint)
	}
	if got := st.Len(); got != length {
		t.Errorf("Len() = %d, want %d", got, length)
	}
	if got := st.SizeBytes(); got != size {
		t.Errorf("SizeBytes() = %d, want %d", got, size)
	}
}

func TestConformance(t *testing.T) {
	cases := []struct {
		name       string
		ops        []op
		want       state
		pending    int
		checkpoint int64
		len, size  int64
	}{
		{
			name:       "new store is empty with unknown checkpoint",
			want:       state{"a": nil},
			checkpoint: -1,
		},
		{
			name:       "get sees pending put",
			ops:        []op{put("a", "1")},
			want:       state{"a": []byte("1")},
			pending:    1,
			checkpoint: -1,
		},
		{
			name:       "get sees pending delete of committed key",
			ops:        []op{put("a", "1"), commit(5), del("a")},
			want:       state{"a": nil},
			pending:    1,
			checkpoint: 5,
			len:        1, size: 2,
		},
		{
			name:       "abort discards overlay",
			ops:        []op{put("a", "1"), commit(5), put("a", "2"), put("b", "3"), del("a"), abort()},
			want:       state{"a": []byte("1"), "b": nil},
			checkpoint: 5,
			len:        1, size: 2,
		},
		{
			name:       "commit applies puts and deletes",
			ops:        []op{put("a", "1"), put("b", "22"), commit(3), del("a"), put("c", "333"), commit(7)},
			want:       state{"a": nil, "b": []byte("22"), "c": []byte("333")},
			checkpoint: 7,
			len:        2, size: 3 + 4,
		},
		{
			name:       "last write in overlay wins",
			ops:        []op{put("a", "1"), del("a"), put("a", "xyz"), commit(1)},
			want:       state{"a": []byte("xyz")},
			checkpoint: 1,
			len:        1, size: 4,
		},
		{
			name:       "delete of absent key",
			ops:        []op{del("x"), commit(1)},
			want:       state{"x": nil},
			checkpoint: 1,
		},
		{
			name:       "overwrite changes size",
			ops:        []op{put("a", "1"), commit(1), put("a", "12345"), commit(2)},
			want:       state{"a": []byte("12345")},
			checkpoint: 2,
			len:        1, size: 6,
		},
		{
			name:       "empty value is a value, not a delete",
			ops:        []op{put("a", ""), commit(1)},
			want:       state{"a": {}},
			checkpoint: 1,
			len:        1, size: 1,
		},
		{
			name:       "commit without changes moves checkpoint",
			ops:        []op{put("a", "1"), commit(1), commit(9)},
			want:       state{"a": []byte("1")},
			checkpoint: 9,
			len:        1, size: 2,
		},
		{
			name:       "restore and finish",
			ops:        []op{restore("a", "1", 0), restore("b", "22", 1), restoreDel("a", 2), restore("c", "", 3), finish(10)},
			want:       state{"a": nil, "b": []byte("22"), "c": {}},
			checkpoint: 10,
			len:        2, size: 3 + 1,
		},
		{
			name:       "restore over committed state",
			ops:        []op{put("a", "1"), put("b", "2"), commit(2), restore("a", "xyz", 2), restoreDel("b", 3), finish(4)},
			want:       state{"a": []byte("xyz"), "b": nil},
			checkpoint: 4,
			len:        1, size: 4,
		},
		{
			name:       "restore with nothing to read sets checkpoint",
			ops:        []op{finish(12)},
			checkpoint: 12,
		},
		{
			name:       "wipe clears data, overlay and checkpoint",
			ops:        []op{put("a", "1"), commit(4), put("b", "2"), wipe()},
			want:       state{"a": nil, "b": nil},
			checkpoint: -1,
		},
		{
			name:       "store works after wipe",
			ops:        []op{put("a", "1"), commit(4), wipe(), restore("b", "2", 0), finish(1), put("c", "3"), commit(2)},
			want:       state{"a": nil, "b": []byte("2"), "c": []byte("3")},
			checkpoint: 2,
			len:        2, size: 4,
		},
	}
	for _, bc := range backends() {
		t.Run(bc.name, func(t *testing.T) {
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					st := openStore(t, bc.new(t), "s", int32(i))
					apply(t, st, tc.ops)
					checkStore(t, st, tc.want, tc.pending, tc.checkpoint, tc.len, tc.size)
				})
			}
		})
	}
}

func TestCopies(t *testing.T) {
	for _, bc := range backends() {
		t.Run(bc.name, func(t *testing.T) {
			st := openStore(t, bc.new(t), "s", 0)
			key, val := []byte("k"), []byte("v1")
			st.Put(key, val)
			key[0], val[0] = 'x', 'x'
			checkStore(t, st, state{"k": []byte("v1"), "x": nil}, 1, -1, 0, 0)

			if err := st.Commit(1); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			got, _, _ := st.Get([]byte("k"))
			got[0] = 'y'
			checkStore(t, st, state{"k": []byte("v1")}, 0, 1, 1, 3)

			rkey, rval := []byte("r"), []byte("r1")
			if err := st.Restore(rkey, rval, 1); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			rkey[0], rval[0] = 'x', 'x'
			if err := st.FinishRestore(2); err != nil {
				t.Fatalf("FinishRestore: %v", err)
			}
			checkStore(t, st, state{"k": []byte("v1"), "r": []byte("r1"), "x": nil}, 0, 2, 2, 6)
		})
	}
}

func TestCommitErrors(t *testing.T) {
	cases := []struct {
		name string
		next int64
	}{
		{"backwards", 3},
		{"to unknown", -1},
		{"negative", -2},
	}
	for _, bc := range backends() {
		for _, tc := range cases {
			t.Run(bc.name+"/"+tc.name, func(t *testing.T) {
				st := openStore(t, bc.new(t), "s", 0)
				apply(t, st, []op{put("a", "1"), commit(5), put("a", "2")})
				if err := st.Commit(tc.next); err == nil {
					t.Fatalf("Commit(%d) after Commit(5) = nil, want error", tc.next)
				}
				// Nothing applied, overlay kept.
				checkStore(t, st, state{"a": []byte("2")}, 1, 5, 1, 2)
				st.Abort()
				checkStore(t, st, state{"a": []byte("1")}, 0, 5, 1, 2)
			})
		}
	}
}

func TestOpenClose(t *testing.T) {
	for _, bc := range backends() {
		t.Run(bc.name, func(t *testing.T) {
			b := bc.new(t)
			st := openStore(t, b, "s", 0)
			if _, err := b.Open("s", 0); !errors.Is(err, ErrAlreadyOpen) {
				t.Errorf("second Open(s, 0) = %v, want ErrAlreadyOpen", err)
			}
			if _, err := b.Open("s", -1); err == nil || !strings.Contains(err.Error(), "partition -1 of store s is negative") {
				t.Errorf("Open(s, -1) = %v, want an error naming the negative partition", err)
			}
			other := openStore(t, b, "s", 1) // another partition is another store
			other.Put([]byte("a"), []byte("1"))
			if err := other.Commit(1); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			checkStore(t, st, state{"a": nil}, 0, -1, 0, 0)

			if err := st.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if _, _, err := st.Get([]byte("a")); !errors.Is(err, ErrClosed) {
				t.Errorf("Get after Close = %v, want ErrClosed", err)
			}
			if err := st.Commit(1); !errors.Is(err, ErrClosed) {
				t.Errorf("Commit after Close = %v, want ErrClosed", err)
			}
			if err := st.Close(); err != nil {
				t.Errorf("second Close = %v, want nil", err)
			}
			st = openStore(t, b, "s", 0) // open again after Close
			if err := b.Close(); err != nil {
				t.Fatalf("Backend.Close: %v", err)
			}
			if _, _, err := st.Get([]byte("a")); !errors.Is(err, ErrClosed) {
				t.Errorf("Get after Backend.Close = %v, want ErrClosed", err)
			}
			if _, err := b.Open("s", 2); !errors.Is(err, ErrClosed) {
				t.Errorf("Open after Backend.Close = %v, want ErrClosed", err)
			}
		})
	}
}

func TestOpenBadName(t *testing.T) {
	for _, bc := range backends() {
		for _, name := range []string{"", ".", "..", "a/b", `a\b`, "../x"} {
			t.Run(fmt.Sprintf("%s/%q", bc.name, name), func(t *testing.T) {
				if _, err := bc.new(t).Open(name, 0); err == nil {
					t.Errorf("Open(%q, 0) = nil error, want error", name)
				}
			})
		}
	}
}

// TestConcurrent opens, writes, reads stats of and closes stores of one
// backend from many goroutines; run with -race.
func TestConcurrent(t *testing.T) {
	for _, bc := range backends() {
		t.Run(bc.name, func(t *testing.T) {
			b := bc.new(t)
			const partitions, commits = 8, 20
			errs := make(chan error, partitions)
			for p := range int32(partitions) {
				go func() {
					errs <- func() error {
						st, err := b.Open("s", p)
						if err != nil {
							return err
						}
						done := make(chan struct{})
						go func() { // a metrics collector
							defer close(done)
							for range commits {
								_, _ = st.Len(), st.SizeBytes()
							}
						}()
						for i := range int64(commits) {
							st.Put([]byte(fmt.Sprint(i%5)), []byte(fmt.Sprint(i)))
							if err := st.Commit(i + 1); err != nil {
								return err
							}
						}
						<-done
						if got := st.Len(); got != 5 {
							return fmt.Errorf("partition %d: Len() = %d, want 5", p, got)
						}
						return st.Close()
					}()
				}()
			}
			for range partitions {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
		})
	}
}
