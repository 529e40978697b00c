package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
)

const crashPipeline = `name: crash
dead_letter_topic: crash-dlq
sources:
  - name: in
    topic: crash-in
steps:
  - name: drop-threes
    filter: value.id % 10 != 3
  - name: double
    map: '{"id": value.id, "twice": value.id * 2}'
sinks:
  - name: out
    topic: crash-out
`

// TestCrash runs the broker and two exactly instances as processes, kills
// one of them with SIGKILL again and again while input streams in, and
// checks that a read_committed reader of the output sees every expected
// record exactly once and nothing else. Poison records (invalid JSON) are
// mixed in: each must reach the dead-letter topic exactly once.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs processes for about a minute")
	}
	crashTest(t, crashCase{
		pipeline: crashPipeline, records: 100_000, kills: 6,
		encode: func(id int) []byte {
			if poisoned(int64(id)) {
				return []byte(`{"id":` + strconv.Itoa(id) + `,`) // invalid JSON
			}
			return []byte(`{"id":` + strconv.Itoa(id) + `}`)
		},
		decode: func(b []byte) (id, twice int64, err error) {
			var v struct{ ID, Twice int64 }
			err = json.Unmarshal(b, &v)
			return v.ID, v.Twice, err
		},
	})
}

// crashCase is TestCrash in one format: the pipeline, how input values
// are written (poison ones too) and output values read.
type crashCase struct {
	pipeline       string
	args           []string // more flags for the instances
	records, kills int
	encode         func(id int) []byte
	decode         func(b []byte) (id, twice int64, err error)
}

func crashTest(t *testing.T, cc crashCase) {
	records, kills := cc.records, cc.kills
	const partitions = 6
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	addr := testBroker(t, partitions, "crash-in", "crash-out")
	pipeline := filepath.Join(t.TempDir(), "crash.yaml")
	if err := os.WriteFile(pipeline, []byte(cc.pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	member := func(id string) *proc {
		return start(t, id, append([]string{"run", "-c", pipeline, "--brokers", addr, "--instance-id", id,
			"--session-timeout", "4s", "--transaction-timeout", "3s", "--rebalance-timeout", "8s", "--commit-interval", "100ms", "--log-level", "info", "--http-addr", "127.0.0.1:0"}, cc.args...)...)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// Stream the input over about thirty seconds, so the kills land
	// mid-stream.
	// The input is written in transactions, as an exactly-once upstream
	// writes: every batch ends in a transaction marker, which the
	// pipeline's committed offsets must pass (lag 0 at the end).
	up, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("crash-upstream"), kgo.DefaultProduceTopic("crash-in"))
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	produced := make(chan error, 1)
	go func() {
		const batch = 1000
		for i := 0; i < records; i += batch {
			var rs []*kgo.Record
			for id := i; id < i+batch; id++ {
				rs = append(rs, &kgo.Record{Topic: "crash-in", Key: []byte(strconv.Itoa(id)), Value: cc.encode(id)})
			}
			err := up.BeginTransaction()
			if err == nil {
				err = up.ProduceSync(ctx, rs...).FirstErr()
			}
			if err == nil {
				err = up.EndTransaction(ctx, kgo.TryCommit)
			}
			if err != nil {
				produced <- err
				return
			}
			time.Sleep(300 * time.Millisecond)
		}
		produced <- nil
	}()

	a, b := member("a"), member("b")
	rng := rand.New(rand.NewPCG(1, 2))
	for k := 0; k < kills; k++ {
		// Let the restarted instance rejoin and work for a while: each
		// kill stalls its partitions for up to the session timeout.
		time.Sleep(time.Duration(3000+rng.IntN(2000)) * time.Millisecond)
		a.kill()
		t.Logf("kill %d: SIGKILL instance a", k+1)
		time.Sleep(time.Duration(200+rng.IntN(500)) * time.Millisecond)
		a = member("a")
	}
	if err := <-produced; err != nil {
		t.Fatalf("producing input: %v", err)
	}

	waitFor(ctx, t, "the group to commit every input record", func() bool { return broker.CaughtUp(ctx, cl, "crash", []string{"crash-in"}) })
	waitLagZero(ctx, t, cl, "crash")
	a.stop(t, 30*time.Second)
	b.stop(t, 30*time.Second)

	committed, err := broker.ReadCommitted(ctx, []string{addr}, []string{"crash-out"})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[int64]int, records)
	for _, r := range committed {
		id, twice, err := cc.decode(r.Value)
		if err != nil {
			t.Fatalf("output %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		if twice != 2*id || id%10 == 3 || poisoned(id) || id < 0 || id >= int64(records) {
			t.Errorf("output %s = %x: not a record the pipeline could produce", r.Key, r.Value)
		}
		seen[id]++
	}
	var lost, dups int
	for id := int64(0); id < int64(records); id++ {
		switch n := seen[id]; {
		case id%10 == 3, poisoned(id):
		case n == 0:
			lost++
		case n > 1:
			dups += n - 1
		}
	}
	var poisons int
	for id := int64(0); id < int64(records); id++ {
		if poisoned(id) && id%10 != 3 {
			poisons++
		}
	}
	want := records - records/10 - poisons
	uncommitted := countUncommitted(ctx, t, addr, "crash-out")
	t.Logf("input %d, expected output %d, read_committed %d (lost %d, duplicated %d), read_uncommitted %d (aborted attempts %d), kills %d",
		records, want, len(committed), lost, dups, uncommitted, uncommitted-len(committed), kills)
	if lost != 0 || dups != 0 || len(committed) != want {
		t.Errorf("read_committed sees %d records, %d lost, %d duplicated; want exactly %d, each once", len(committed), lost, dups, want)
	}
	dlq, err := broker.ReadCommitted(ctx, []string{addr}, []string{"crash-dlq"})
	if err != nil {
		t.Fatal(err)
	}
	dead := map[string]int{}
	for _, r := range dlq {
		dead[string(r.Key)]++
	}
	var deadWrong int
	for id := int64(0); id < int64(records); id++ {
		if n := dead[strconv.FormatInt(id, 10)]; poisoned(id) != (n == 1) || n > 1 {
			deadWrong++
		}
	}
	t.Logf("poison records %d (all ids with id %% 997 == 1), dead-lettered %d", countPoisoned(int64(records)), len(dlq))
	if deadWrong != 0 || len(dlq) != countPoisoned(int64(records)) {
		t.Errorf("the dead-letter topic holds %d records (%d ids wrong); want each of the %d poison records exactly once", len(dlq), deadWrong, countPoisoned(int64(records)))
	}
	if uncommitted <= len(committed) {
		t.Errorf("read_uncommitted sees %d records, read_committed %d: the kills hit no open transaction, so the test proved nothing", uncommitted, len(committed))
	}
	if kcat, err := exec.LookPath("kcat"); err == nil {
		n := kcatCount(ctx, t, kcat, addr, "crash-out")
		t.Logf("kcat (librdkafka, isolation.level=read_committed) reads %d records", n)
		if n != len(committed) {
			t.Errorf("kcat read_committed count = %d, want %d", n, len(committed))
		}
	} else if os.Getenv("CI") != "" {
		t.Errorf("kcat not found: CI must install it (.ci/run does)")
	} else {
		t.Logf("kcat not installed: skipped the independent read_committed check")
	}
}

// countUncommitted counts every data record in topic, aborted ones too.
func countUncommitted(ctx context.Context, t *testing.T, addr, topic string) int {
	t.Helper()
	// Read every partition up to the end offset it has now, control
	// records included (so a partition ending in a transaction marker
	// is seen to end): waiting for polls to come back empty instead
	// gives up too early on a busy machine.
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	adm.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("listing end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			parts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return 0
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s read_uncommitted: %v (partitions not read to their end: %v)", topic, ctx.Err(), want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				n++
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return n
}

func kcatCount(ctx context.Context, t *testing.T, kcat, addr, topic string) int {
	t.Helper()
	cmd := exec.CommandContext(ctx, kcat, "-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%o\n")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, errb.String())
	}
	return len(strings.Fields(out.String()))
}

// poisoned reports whether the crash test writes id as invalid JSON.
func poisoned(id int64) bool { return id%997 == 1 }

func countPoisoned(records int64) int {
	n := 0
	for id := int64(0); id < records; id++ {
		if poisoned(id) {
			n++
		}
	}
	return n
}
