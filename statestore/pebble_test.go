package statestore

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

func newPebble(t *testing.T, dir string) Backend {
	t.Helper()
	b, err := NewPebble(dir, 1<<20)
	if err != nil {
		t.Fatalf("NewPebble(%s): %v", dir, err)
	}
	return b
}

func closeBackend(t *testing.T, b Backend) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatalf("Backend.Close: %v", err)
	}
}

// TestPebbleReopen closes and reopens stores, both the store alone and the
// whole backend, and checks what survives: committed data and checkpoint,
// and nothing else.
func TestPebbleReopen(t *testing.T) {
	cases := []struct {
		name       string
		ops        []op
		want       state
		checkpoint int64
		len, size  int64
	}{
		{
			name:       "committed data and checkpoint survive",
			ops:        []op{put("a", "1"), put("b", "22"), commit(3), del("a"), commit(4)},
			want:       state{"a": nil, "b": []byte("22")},
			checkpoint: 4,
			len:        1, size: 3,
		},
		{
			name:       "uncommitted overlay is lost as in a crash",
			ops:        []op{put("a", "1"), commit(3), put("a", "2"), put("b", "3"), del("a")},
			want:       state{"a": []byte("1"), "b": nil},
			checkpoint: 3,
			len:        1, size: 2,
		},
		{
			name:       "aborted overlay is lost",
			ops:        []op{put("a", "1"), abort()},
			want:       state{"a": nil},
			checkpoint: -1,
		},
		{
			name:       "finished restore survives",
			ops:        []op{restore("a", "1", 0), restore("b", "2", 1), finish(5)},
			want:       state{"a": []byte("1"), "b": []byte("2")},
			checkpoint: 5,
			len:        2, size: 4,
		},
		{
			name:       "unfinished restore is lost",
			ops:        []op{put("a", "1"), commit(1), restore("b", "2", 1)},
			want:       state{"a": []byte("1"), "b": nil},
			checkpoint: 1,
			len:        1, size: 2,
		},
		{
			name:       "wipe survives",
			ops:        []op{put("a", "1"), commit(1), wipe()},
			want:       state{"a": nil},
			checkpoint: -1,
		},
	}
	for _, reopenBackend := range []bool{false, true} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/backend restart %t", tc.name, reopenBackend), func(t *testing.T) {
				dir := t.TempDir()
				b := newPebble(t, dir)
				st := openStore(t, b, "counts", 3)
				apply(t, st, tc.ops)
				if err := st.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if reopenBackend {
					closeBackend(t, b)
					b = newPebble(t, dir)
				}
				defer closeBackend(t, b)
				st = openStore(t, b, "counts", 3)
				checkStore(t, st, tc.want, 0, tc.checkpoint, tc.len, tc.size)
			})
		}
	}
}

// TestPebbleRestoreFlush restores more than one batch holds: the flushed
// part survives a close without FinishRestore, with the checkpoint after
// the last flushed record, so a new restore resumes there.
func TestPebbleRestoreFlush(t *testing.T) {
	dir := t.TempDir()
	b := newPebble(t, dir)
	defer func() { closeBackend(t, b) }()
	st := openStore(t, b, "big", 0)
	value := bytes.Repeat([]byte("v"), 1<<20)
	n := restoreFlushBytes/len(value) + 2
	for i := range n {
		if err := st.Restore([]byte(fmt.Sprintf("k%03d", i)), value, int64(10+i)); err != nil {
			t.Fatalf("Restore(%d): %v", i, err)
		}
	}
	if got, want := st.Len(), int64(n); got != want {
		t.Errorf("Len() during restore = %d, want %d", got, want)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st = openStore(t, b, "big", 0)
	cp := st.Checkpoint()
	if cp < 11 || cp > int64(10+n-1) {
		t.Fatalf("Checkpoint() after an interrupted restore of offsets 10..%d = %d, want after a flushed record and before the last", 10+n-1, cp)
	}
	flushed := cp - 10
	if got := st.Len(); got != flushed {
		t.Errorf("Len() = %d, want the %d flushed records", got, flushed)
	}
	if got, want := st.SizeBytes(), flushed*int64(4+len(value)); got != want {
		t.Errorf("SizeBytes() = %d, want %d", got, want)
	}
	last := fmt.Sprintf("k%03d", flushed-1)
	if v, ok, err := st.Get([]byte(last)); err != nil || !ok || !bytes.Equal(v, value) {
		t.Errorf("Get(%s) = %d bytes, %t, %v; want the restored value", last, len(v), ok, err)
	}
	if _, ok, err := st.Get([]byte(fmt.Sprintf("k%03d", flushed))); err != nil || ok {
		t.Errorf("Get(k%03d) = %t, %v; want absent: it was not flushed", flushed, ok, err)
	}
}

// TestPebbleBadMeta: a store whose meta record is unreadable has an
// unknown checkpoint, so restore rebuilds it, and its counts are recounted.
func TestPebbleBadMeta(t *testing.T) {
	dir := t.TempDir()
	b := newPebble(t, dir)
	defer func() { closeBackend(t, b) }()
	st := openStore(t, b, "s", 0)
	apply(t, st, []op{put("a", "1"), put("bb", "22"), commit(7)})
	ps := st.(*pebbleStore)
	if err := ps.mu.db.Set(metaKey, []byte("garbage"), nil); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st = openStore(t, b, "s", 0)
	checkStore(t, st, state{"a": []byte("1"), "bb": []byte("22")}, 0, -1, 2, 2+4)
}

// TestPebbleSharedCache checks every store of a backend uses the backend's
// one block cache: the same object in their options, and blocks one store
// reads show in another's cache metrics.
func TestPebbleSharedCache(t *testing.T) {
	b := newPebble(t, t.TempDir())
	defer closeBackend(t, b)
	pb := b.(*pebbleBackend)
	var stores []*pebbleStore
	for _, id := range []storeID{{"a", 0}, {"a", 1}, {"b", 0}} {
		stores = append(stores, openStore(t, b, id.store, id.partition).(*pebbleStore))
	}
	for _, s := range stores {
		if s.opts.Cache != pb.cache {
			t.Errorf("store %v uses cache %p, want the backend's %p", s.id, s.opts.Cache, pb.cache)
		}
		if s.opts.TableCache != pb.tableCache {
			t.Errorf("store %v uses table cache %p, want the backend's %p", s.id, s.opts.TableCache, pb.tableCache)
		}
	}

	// Cache metrics are the cache's, not the DB's: a shared cache shows
	// one store's lookups in every store's metrics. Misses only grow,
	// unlike the entry count, which eviction may lower.
	a, other := stores[0], stores[2]
	before := other.mu.db.Metrics().BlockCache.Misses
	apply(t, a, []op{put("k", "v"), commit(1)})
	if err := a.mu.db.Flush(); err != nil { // into an sstable, read through the cache
		t.Fatalf("Flush: %v", err)
	}
	if _, ok, err := a.Get([]byte("k")); err != nil || !ok {
		t.Fatalf("Get(k) = %t, %v", ok, err)
	}
	if after := other.mu.db.Metrics().BlockCache.Misses; after <= before {
		t.Errorf("block cache misses seen from store b = %d after a read in store a, was %d; want more: the cache is not shared", after, before)
	}
}

// crashDirEnv tells the test binary, re-run as a child, to commit to a
// Pebble store in that directory until it is killed.
const crashDirEnv = "STATESTORE_CRASH_DIR"

// TestPebbleCrashPrefix kills (SIGKILL) a process in the middle of a stream
// of commits and checks the store it leaves: whatever commit the
// checkpoint names, the data is exactly the data of that commit, neither
// older nor newer, because data and checkpoint go in one batch.
func TestPebbleCrashPrefix(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPebbleCrashPrefix$")
	// The child needs no broker: with real Kafka selected its TestMain
	// would start a cluster first.
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, "EXACTLY_TEST_BROKER=embedded")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child: %v", err)
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && line != "committing\n" {
			err = fmt.Errorf("child said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("child did not start: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("child did not start within 20s")
	}
	time.Sleep(300 * time.Millisecond) // let it commit a while
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("killing child: %v", err)
	}
	_ = cmd.Wait()

	b := newPebble(t, dir)
	defer closeBackend(t, b)
	st := openStore(t, b, "crash", 0)
	cp := st.Checkpoint()
	if cp < 1 {
		t.Fatalf("Checkpoint() after the crash = %d, want a commit the child made", cp)
	}
	// Commit i wrote last=i and k<i%10>=i.
	want := state{"last": []byte(strconv.FormatInt(cp, 10))}
	for j := int64(0); j < 10; j++ {
		var v []byte
		for i := cp; i >= 1; i-- {
			if i%10 == j {
				v = []byte(strconv.FormatInt(i, 10))
				break
			}
		}
		want[fmt.Sprintf("k%d", j)] = v
	}
	var length, size int64
	for k, v := range want {
		if v != nil {
			length++
			size += int64(len(k) + len(v))
		}
	}
	checkStore(t, st, want, 0, cp, length, size)
	t.Logf("the child was killed after commit %d", cp)
}

func crashChild(dir string) {
	b, err := NewPebble(dir, 1<<20)
	if err != nil {
		panic(err)
	}
	st, err := b.Open("crash", 0)
	if err != nil {
		panic(err)
	}
	// Bounded, so a child whose parent died does not run on.
	deadline := time.Now().Add(time.Minute)
	for i := int64(1); time.Now().Before(deadline); i++ {
		v := []byte(strconv.FormatInt(i, 10))
		st.Put([]byte(fmt.Sprintf("k%d", i%10)), v)
		st.Put([]byte("last"), v)
		if err := st.Commit(i); err != nil {
			panic(err)
		}
		if i == 1 {
			fmt.Println("committing")
		}
	}
	os.Exit(1)
}
