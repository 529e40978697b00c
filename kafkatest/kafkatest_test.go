package kafkatest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) {
	if os.Getenv(orphanEnv) != "" {
		orphanChild()
		return
	}
	os.Exit(Main(m))
}

const orphanEnv = "KAFKATEST_ORPHAN_CHILD"

// orphanChild starts a cluster, prints its JVM's pid and blocks until the
// parent SIGKILLs it.
func orphanChild() {
	c, err := Start(context.Background(), Options{})
	if err != nil {
		panic(err)
	}
	os.Stdout.WriteString(strconv.Itoa(c.node(1).cmd.Process.Pid) + " " + c.dir + "\n")
	select {}
}

// TestJVMDiesWithTestBinary SIGKILLs a test binary that runs a cluster
// (as go test's -timeout or a CI runner would) and checks that the
// broker's JVM does not outlive it.
func TestJVMDiesWithTestBinary(t *testing.T) {
	if !Selected() {
		t.Skipf("starts Apache Kafka: set %s=kafka", BrokerEnv)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), orphanEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child printed no JVM pid: %v", err)
	}
	pidText, dir, _ := strings.Cut(strings.TrimSpace(line), " ")
	pid, _ := strconv.Atoi(pidText)
	cmd.Process.Kill()
	cmd.Wait()
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for syscall.Kill(pid, 0) == nil {
		if ctx.Err() != nil {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the JVM (pid %d) outlived its SIGKILLed test binary", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The package's own tests start Apache Kafka, so they run only when the
// switch selects it (EXACTLY_TEST_BROKER=kafka): the default suite needs
// no Java.
func sharedForTest(t *testing.T) *Cluster {
	if !Selected() {
		t.Skipf("starts Apache Kafka: set %s=kafka", BrokerEnv)
	}
	return Shared(t)
}

// TestTransactionalRoundTrip commits one transactional record and aborts
// another, and checks a read_committed consumer sees the first only.
func TestTransactionalRoundTrip(t *testing.T) {
	c := sharedForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := Name("smoke")
	adm, done, err := c.admin()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, topic); err != nil {
		t.Fatal(err)
	}
	pr, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.TransactionalID(Name("smoke-txn")), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	for _, commit := range []kgo.TransactionEndTry{kgo.TryAbort, kgo.TryCommit} {
		if err := pr.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		v := "aborted"
		if commit {
			v = "committed"
		}
		if err := pr.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := pr.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("EndTransaction(%v) = %v", commit, err)
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	fs := cons.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	var got []string
	fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	if len(got) != 1 || got[0] != "committed" {
		t.Errorf("read_committed = %q, want [committed]", got)
	}
}

// TestCoordinatorsAndRestart asks who leads and coordinates, kills that
// node and restarts it, and checks the cluster answers again.
func TestCoordinatorsAndRestart(t *testing.T) {
	c := sharedForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic, group := Name("coord"), Name("coord-group")
	adm, done, err := c.admin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 2, -1, nil, topic); err != nil {
		t.Fatal(err)
	}
	done()
	leader, err := c.Leader(ctx, topic, 1)
	if err != nil || leader < 1 || int(leader) > c.Nodes() {
		t.Fatalf("Leader(%s, 1) = %d, %v; want a node of 1..%d", topic, leader, err, c.Nodes())
	}
	gc, err := c.GroupCoordinator(ctx, group)
	if err != nil || gc < 1 || int(gc) > c.Nodes() {
		t.Fatalf("GroupCoordinator(%s) = %d, %v", group, gc, err)
	}
	tc, err := c.TxnCoordinator(ctx, Name("coord-txn"))
	if err != nil || tc < 1 || int(tc) > c.Nodes() {
		t.Fatalf("TxnCoordinator = %d, %v", tc, err)
	}
	c.Kill(leader)
	if c.Running(leader) {
		t.Fatalf("node %d runs after Kill", leader)
	}
	if err := c.Restart(ctx, leader); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addr(leader)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).ApiVersions(ctx); err != nil {
		t.Errorf("node %d after Restart: ApiVersions = %v", leader, err)
	}
}
