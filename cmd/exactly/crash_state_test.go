package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
)

const crashAggPipeline = `name: crashagg
sources:
  - name: in
    topic: in
steps:
  - name: per-key
    aggregate:
      group_by: key
      columns:
        n: {fn: count}
        total: {fn: sum, of: value.amount}
        last_seq: {fn: last, of: value.seq}
sinks:
  - name: out
    topic: out
`

// TestCrashStateful runs a per-key count and sum over 100,000 records of
// 1,000 keys in two instances, killing them with SIGKILL while they
// process and while they restore, and checks every update a
// read_committed reader sees: each key's updates are exactly 1..N once
// each (no update lost or doubled), each is the aggregate of a prefix of
// the key's input, and the final table equals the ground truth.
func TestCrashStateful(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs processes for about a minute")
	}
	const (
		records    = 100_000
		keys       = 1000
		partitions = 6
		kills      = 8
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	_, addr := startBroker(t, "--topic", "in:"+strconv.Itoa(partitions), "--topic", "out:"+strconv.Itoa(partitions))
	pipeline := filepath.Join(t.TempDir(), "crashagg.yaml")
	if err := os.WriteFile(pipeline, []byte(crashAggPipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	member := func(id string) *proc {
		return start(t, id, "run", "-c", pipeline, "--brokers", addr, "--instance-id", id,
			"--session-timeout", "4s", "--transaction-timeout", "3s", "--rebalance-timeout", "8s", "--commit-interval", "100ms", "--log-level", "info", "--http-addr", "127.0.0.1:0")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// Keys are skewed: a tenth of the keys get half of the records.
	rng := rand.New(rand.NewPCG(3, 4))     // the producer's
	killRng := rand.New(rand.NewPCG(5, 6)) // the killer's
	want := make([]int64, keys)            // records per key
	produced := make(chan error, 1)
	go func() {
		const batch = 1000
		for i := 0; i < records; i += batch {
			var rs []*kgo.Record
			for j := 0; j < batch; j++ {
				k := rng.IntN(keys)
				if rng.IntN(2) == 0 {
					k = rng.IntN(keys / 10)
				}
				want[k]++
				v := fmt.Sprintf(`{"seq":%d,"amount":%d}`, want[k], want[k])
				rs = append(rs, &kgo.Record{Topic: "in", Key: []byte("k" + strconv.Itoa(k)), Value: []byte(v)})
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				produced <- err
				return
			}
			time.Sleep(300 * time.Millisecond)
		}
		produced <- nil
	}()

	members := map[string]*proc{"a": member("a"), "b": member("b")}
	for k := 0; k < kills; k++ {
		id := []string{"a", "b"}[k%2]
		// Every fourth kill comes right after a restart, while the
		// instance restores its stores; the others after it has worked
		// a while.
		wait := time.Duration(3000+killRng.IntN(2000)) * time.Millisecond
		if k%4 == 3 {
			wait = time.Duration(100+killRng.IntN(400)) * time.Millisecond
		}
		time.Sleep(wait)
		members[id].kill()
		t.Logf("kill %d: SIGKILL instance %s after %s", k+1, id, wait)
		time.Sleep(time.Duration(200+killRng.IntN(500)) * time.Millisecond)
		members[id] = member(id)
	}
	if err := <-produced; err != nil {
		t.Fatalf("producing input: %v", err)
	}
	waitFor(ctx, t, "the group to commit every input record", func() bool { return broker.CaughtUp(ctx, cl, "crashagg", []string{"in"}) })
	for _, m := range members {
		m.stop(t, 30*time.Second)
	}

	committed, err := broker.ReadCommitted(ctx, []string{addr}, []string{"out"})
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]map[int64]int, keys)
	final := make([]int64, keys)
	var bad, dups, lost int
	for _, r := range committed {
		var row struct {
			Key     string
			N       int64
			Total   json.Number
			LastSeq json.Number `json:"last_seq"`
		}
		if err := json.Unmarshal(r.Value, &row); err != nil {
			t.Fatalf("output %s: %v", r.Value, err)
		}
		k, err := strconv.Atoi(string(r.Key[1:]))
		if err != nil || k >= keys || row.Key != string(r.Key) {
			t.Fatalf("output with key %q, row key %q", r.Key, row.Key)
		}
		// The aggregate of the first N records of a key: count N, sum
		// 1+..+N, last seq N.
		if row.Total.String() != strconv.FormatInt(row.N*(row.N+1)/2, 10) || row.LastSeq.String() != strconv.FormatInt(row.N, 10) {
			if bad < 5 {
				t.Errorf("key %s: update %s is not the aggregate of a prefix of its input", r.Key, r.Value)
			}
			bad++
		}
		if seen[k] == nil {
			seen[k] = map[int64]int{}
		}
		seen[k][row.N]++
		final[k] = row.N
	}
	for k := 0; k < keys; k++ {
		for n := int64(1); n <= want[k]; n++ {
			switch seen[k][n] {
			case 0:
				lost++
			case 1:
			default:
				dups += seen[k][n] - 1
			}
		}
		if final[k] != want[k] {
			t.Errorf("key k%d: final count %d, want %d", k, final[k], want[k])
		}
	}
	uncommitted := countUncommitted(ctx, t, addr, "out")
	t.Logf("input %d records over %d keys; read_committed %d updates (lost %d, duplicated %d, inconsistent %d); read_uncommitted %d (aborted %d); kills %d",
		records, keys, len(committed), lost, dups, bad, uncommitted, uncommitted-len(committed), kills)
	if lost != 0 || dups != 0 || bad != 0 || len(committed) != records {
		t.Errorf("read_committed sees %d updates, %d lost, %d duplicated, %d inconsistent; want %d, each once", len(committed), lost, dups, bad, records)
	}
	if uncommitted <= len(committed) {
		t.Errorf("read_uncommitted sees %d records, read_committed %d: the kills hit no open transaction", uncommitted, len(committed))
	}
}
