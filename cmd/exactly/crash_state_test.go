package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
)

const crashAggPipeline = `name: crashagg
sources:
  - name: in
    topic: crashagg-in
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
    topic: crashagg-out
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
	crashStateful(t, crashAggPipeline, false)
}

// TestCrashWindowed is TestCrashStateful with 10-second tumbling windows
// on the record timestamp: every update of a (key, window) must be the
// aggregate of a prefix of the key's records in that window, each once.
func TestCrashWindowed(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs processes for about a minute")
	}
	yaml := strings.Replace(crashAggPipeline, "      group_by: key\n", "      group_by: key\n      window: {tumbling: 10s}\n", 1)
	// Its own pipeline, group and topics: a real Kafka cluster is shared
	// by the package's tests.
	yaml = strings.ReplaceAll(yaml, "crashagg", "crashwin")
	crashStateful(t, yaml, true)
}

func crashStateful(t *testing.T, pipelineYAML string, windowed bool) {
	const (
		records    = 100_000
		keys       = 1000
		partitions = 6
		kills      = 8
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	name := "crashagg"
	if windowed {
		name = "crashwin"
	}
	in, out := name+"-in", name+"-out"
	addr := testBroker(t, partitions, in, out)
	pipeline := filepath.Join(t.TempDir(), "crashagg.yaml")
	if err := os.WriteFile(pipeline, []byte(pipelineYAML), 0o644); err != nil {
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
	// A group is a key, or a key and window: its record count and the
	// seq of its first record (amounts are seqs, so a prefix of n
	// records sums to n*first + n(n-1)/2).
	type group struct{ n, first int64 }
	groups := map[string]*group{}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	produced := make(chan error, 1)
	go func() {
		const batch = 1000
		for i := 0; i < records; i += batch {
			var rs []*kgo.Record
			// One second of event time per batch: time only moves on
			// within a partition, so no record is late.
			ts := base.Add(time.Duration(i/batch) * time.Second)
			for j := 0; j < batch; j++ {
				k := rng.IntN(keys)
				if rng.IntN(2) == 0 {
					k = rng.IntN(keys / 10)
				}
				want[k]++
				key := "k" + strconv.Itoa(k)
				g := key
				if windowed {
					g += "@" + ts.Truncate(10*time.Second).Format(time.RFC3339Nano)
				}
				if groups[g] == nil {
					groups[g] = &group{first: want[k]}
				}
				groups[g].n++
				v := fmt.Sprintf(`{"seq":%d,"amount":%d}`, want[k], want[k])
				rs = append(rs, &kgo.Record{Topic: in, Key: []byte(key), Value: []byte(v), Timestamp: ts})
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
	waitFor(ctx, t, "the group to commit every input record", func() bool { return broker.CaughtUp(ctx, cl, name, []string{in}) })
	waitLagZero(ctx, t, cl, name)
	for _, m := range members {
		m.stop(t, 30*time.Second)
	}

	committed, err := broker.ReadCommitted(ctx, []string{addr}, []string{out})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[int64]int{}
	final := map[string]int64{}
	var bad, dups, lost int
	for _, r := range committed {
		var row struct {
			Key         string
			N           int64
			Total       json.Number
			LastSeq     json.Number `json:"last_seq"`
			WindowStart string      `json:"window_start"`
		}
		if err := json.Unmarshal(r.Value, &row); err != nil {
			t.Fatalf("output %s: %v", r.Value, err)
		}
		g := row.Key
		if windowed {
			g += "@" + row.WindowStart
		}
		want := groups[g]
		if want == nil {
			t.Fatalf("output %s for a group that got no input (phantom)", r.Value)
		}
		// The aggregate of the first N records of the group.
		total := row.N*want.first + row.N*(row.N-1)/2
		if row.Total.String() != strconv.FormatInt(total, 10) || row.LastSeq.String() != strconv.FormatInt(want.first+row.N-1, 10) {
			if bad < 5 {
				t.Errorf("group %s: update %s is not the aggregate of a prefix of its input", g, r.Value)
			}
			bad++
		}
		if seen[g] == nil {
			seen[g] = map[int64]int{}
		}
		seen[g][row.N]++
		final[g] = row.N
	}
	for g, w := range groups {
		for n := int64(1); n <= w.n; n++ {
			switch seen[g][n] {
			case 0:
				lost++
			case 1:
			default:
				dups += seen[g][n] - 1
			}
		}
		if final[g] != w.n {
			t.Errorf("group %s: final count %d, want %d", g, final[g], w.n)
		}
	}
	uncommitted := countUncommitted(ctx, t, addr, out)
	t.Logf("input %d records over %d keys, %d groups; read_committed %d updates (lost %d, duplicated %d, inconsistent %d); read_uncommitted %d (aborted %d); kills %d",
		records, keys, len(groups), len(committed), lost, dups, bad, uncommitted, uncommitted-len(committed), kills)
	if lost != 0 || dups != 0 || bad != 0 || len(committed) != records {
		t.Errorf("read_committed sees %d updates, %d lost, %d duplicated, %d inconsistent; want %d, each once", len(committed), lost, dups, bad, records)
	}
	if uncommitted <= len(committed) {
		t.Errorf("read_uncommitted sees %d records, read_committed %d: the kills hit no open transaction", uncommitted, len(committed))
	}
}
