package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/kafkatest"
)

// TestKafkaStreamsEOSVerifier runs Kafka Streams' own exactly-once system
// test against exactly: Kafka's EosTestDriver (StreamsEosTest "run")
// produces random keyed integers to data while exactly instances run the
// application side, and are SIGKILLed in turn; once they have caught up
// and stopped, the driver's verifier reads data and every output with
// read_committed and checks every value, and prints ALL-RECORDS-DELIVERED
// only if all hold.
//
//   - process: testdata/eos/process.yaml, the application of
//     StreamsEosTest "process" (echo, min, sum), on two instances. The
//     verifier checks that echo holds data record for record, min and sum
//     the running minimum and sum of the key after each data record,
//     partition by partition, and that no transaction is left open.
//   - process-complex: the same plus a copy of data into the topic
//     repartition, read back for max and cnt. An exactly pipeline may not
//     read a topic it writes, so this runs as two pipelines
//     (complex-process.yaml, complex-max-cnt.yaml) that share the name,
//     and so the consumer group, EosTest, two instances each. The verifier
//     also checks repartition against data and max and cnt against
//     repartition.
func TestKafkaStreamsEOSVerifier(t *testing.T) {
	if testing.Short() {
		t.Skip("the EOS verifier test runs processes for about two minutes")
	}
	if !kafkatest.Selected() {
		t.Skip("Kafka's EOS driver runs against real Kafka only (EXACTLY_TEST_BROKER=kafka): it is Kafka's own check, and the embedded broker's known transaction differences are covered by the crash tests")
	}
	t.Run("process", func(t *testing.T) {
		eosVerify(t, "verify", []string{"echo", "min", "sum"}, "process.yaml")
	})
	t.Run("process-complex", func(t *testing.T) {
		eosVerify(t, "verify-complex", []string{"echo", "min", "sum", "repartition", "max", "cnt"}, "complex-process.yaml", "complex-max-cnt.yaml")
	})
}

// eosVerify runs the EOS driver, two instances of each pipeline (files
// under testdata/eos) with kills, and the driver's verify command.
func eosVerify(t *testing.T, verify string, outputs []string, pipelines ...string) {
	jars, err := kafkatest.StreamsTestJars()
	if err != nil {
		t.Fatal(err)
	}
	const (
		partitions = 3
		kills      = 4
	)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	// The driver's topics and group are fixed (data, the outputs,
	// EosTest): clear what an earlier run left, then create the topics.
	// Every output has the partition count of data, since the verifier
	// compares output partition p with data partition p.
	k := kafkatest.Shared(t)
	addr := k.Addrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	clearEOS(ctx, t, kadm.NewClient(cl))
	if err := k.CreateTopics(ctx, partitions, nil, append([]string{"data"}, outputs...)...); err != nil {
		t.Fatal(err)
	}

	props := filepath.Join(t.TempDir(), "eos.properties")
	if err := os.WriteFile(props, []byte("bootstrap.servers="+addr+"\nprocessing.guarantee=exactly_once_v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	java := func(name, command string) (*exec.Cmd, string) {
		logPath := filepath.Join(t.TempDir(), name+".log")
		f, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		cmd := exec.CommandContext(ctx, "java", "-Xmx256m", "-cp", filepath.Join(jars, "*"),
			"org.apache.kafka.streams.tests.StreamsEosTest", props, command)
		cmd.Stdout, cmd.Stderr = f, f
		return cmd, logPath
	}
	tail := func(path string) string {
		b, _ := os.ReadFile(path)
		lines := strings.Split(string(b), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		return strings.Join(lines, "\n")
	}

	type instance struct {
		id, pipeline string
		p            *proc
	}
	var members []*instance
	for i, file := range pipelines {
		path, err := filepath.Abs(filepath.Join("..", "..", "testdata", "eos", file))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"a", "b"} {
			members = append(members, &instance{id: fmt.Sprintf("%s%d", id, i+1), pipeline: path})
		}
	}
	run := func(m *instance) {
		m.p = start(t, m.id, "run", "-c", m.pipeline, "--brokers", addr, "--instance-id", m.id,
			"--session-timeout", "6s", "--transaction-timeout", "5s", "--rebalance-timeout", "10s", "--commit-interval", "100ms", "--log-level", "info", "--http-addr", "127.0.0.1:0")
	}

	gen, genLog := java("driver", "run")
	if err := gen.Start(); err != nil {
		t.Fatal(err)
	}
	genDone := make(chan error, 1)
	go func() { genDone <- gen.Wait() }()
	defer gen.Process.Kill()

	for _, m := range members {
		run(m)
	}
	for n := 0; n < kills; n++ {
		// Let the restarted instance rejoin and work for a while: each
		// kill stalls its partitions for up to the session timeout.
		time.Sleep(5 * time.Second)
		m := members[n%len(members)]
		m.p.kill()
		t.Logf("kill %d: SIGKILL instance %s", n+1, m.id)
		time.Sleep(500 * time.Millisecond)
		run(m)
	}
	time.Sleep(5 * time.Second)

	// The driver stops producing on SIGTERM: its shutdown hook flushes,
	// prints Terminated and the JVM exits with 143 (128 + SIGTERM).
	gen.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-genDone:
		b, _ := os.ReadFile(genLog)
		if ee, ok := err.(*exec.ExitError); (err != nil && !(ok && ee.ExitCode() == 143)) || !strings.Contains(string(b), "\nTerminated\n") {
			t.Fatalf("EOS driver (run) exited with %v:\n%s", err, tail(genLog))
		}
	case <-ctx.Done():
		t.Fatalf("EOS driver (run) did not stop:\n%s", tail(genLog))
	}
	t.Logf("driver:\n%s", tail(genLog))

	waitFor(ctx, t, "the group to commit every data record", func() bool { return broker.CaughtUp(ctx, cl, "EosTest", []string{"data"}) })
	waitLagZero(ctx, t, cl, "EosTest")
	// The verifier first waits for the group EosTest to have no member.
	for _, m := range members {
		m.p.stop(t, 30*time.Second)
	}

	ver, verLog := java("verifier", verify)
	if err := ver.Run(); err != nil {
		t.Fatalf("EOS verifier exited with %v:\n%s", err, tail(verLog))
	}
	out, _ := os.ReadFile(verLog)
	t.Logf("verifier:\n%s", tail(verLog))
	if !strings.Contains(string(out), "ALL-RECORDS-DELIVERED") || strings.Contains(string(out), "FAILED") {
		t.Fatalf("Kafka's EOS verifier did not print ALL-RECORDS-DELIVERED: an output of exactly is wrong (see the verifier's log above)")
	}

	// The verifier saw echo equal to data; read_uncommitted must see more
	// (the aborted attempts), or the kills hit no open transaction and
	// the run proved nothing.
	data := countUncommitted(ctx, t, addr, "data")
	echo := countUncommitted(ctx, t, addr, "echo")
	t.Logf("data %d records, echo read_uncommitted %d (aborted attempts %d), kills %d", data, echo, echo-data, kills)
	if echo <= data {
		t.Errorf("echo read_uncommitted holds %d records, data %d: the kills hit no open transaction, so the test proved nothing", echo, data)
	}
}

// clearEOS deletes the group EosTest and the topics an EOS run uses (the
// driver's fixed names and the pipelines' changelogs), and waits until
// they are gone.
func clearEOS(ctx context.Context, t *testing.T, adm *kadm.Client) {
	t.Helper()
	fixed := []string{"data", "echo", "min", "sum", "repartition", "max", "cnt"}
	for {
		if _, err := adm.DeleteGroups(ctx, "EosTest"); err != nil && ctx.Err() != nil {
			t.Fatalf("deleting group EosTest: %v", err)
		}
		topics, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatalf("listing topics: %v", err)
		}
		var left []string
		for _, name := range topics.Names() {
			if slices.Contains(fixed, name) || strings.HasPrefix(name, "EosTest-") {
				left = append(left, name)
			}
		}
		if len(left) == 0 {
			return
		}
		if _, err := adm.DeleteTopics(ctx, left...); err != nil && ctx.Err() != nil {
			t.Fatalf("deleting topics %v: %v", left, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topics %v still there after deleting them", left)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
