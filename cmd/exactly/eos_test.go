package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/broker"
	"github.com/exactly-dev/exactly/kafkatest"
)

// TestKafkaStreamsEOSVerifier runs Kafka Streams' own exactly-once system
// test against exactly: Kafka's EosTestDriver (StreamsEosTest "run")
// produces random keyed integers to data while two exactly instances run
// testdata/eos/process.yaml, the application side of StreamsEosTest
// "process" (echo, min, sum), and are SIGKILLed in turn; once they have
// caught up and stopped, the driver's verifier (StreamsEosTest "verify")
// reads data and every output with read_committed and checks every value:
// echo holds data record for record, min and sum the running minimum and
// sum of the key after each data record, partition by partition, and no
// transaction is left open. It prints ALL-RECORDS-DELIVERED only if all
// hold.
func TestKafkaStreamsEOSVerifier(t *testing.T) {
	if testing.Short() {
		t.Skip("the EOS verifier test runs processes for about two minutes")
	}
	if !kafkatest.Selected() {
		t.Skip("Kafka's EOS driver runs against real Kafka only (EXACTLY_TEST_BROKER=kafka): it is Kafka's own check, and the embedded broker's known transaction differences are covered by the crash tests")
	}
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

	// The driver's topics are fixed: data, echo, min, sum. Every output
	// has the partition count of data, since the verifier compares output
	// partition p with data partition p.
	addr := testBroker(t, partitions, "data", "echo", "min", "sum")
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

	pipeline, err := filepath.Abs(filepath.Join("..", "..", "testdata", "eos", "process.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	member := func(id string) *proc {
		return start(t, id, "run", "-c", pipeline, "--brokers", addr, "--instance-id", id,
			"--session-timeout", "6s", "--transaction-timeout", "5s", "--rebalance-timeout", "10s", "--commit-interval", "100ms", "--log-level", "info", "--http-addr", "127.0.0.1:0")
	}

	gen, genLog := java("driver", "run")
	if err := gen.Start(); err != nil {
		t.Fatal(err)
	}
	genDone := make(chan error, 1)
	go func() { genDone <- gen.Wait() }()
	defer func() {
		gen.Process.Kill()
	}()

	a, b := member("a"), member("b")
	for k := 0; k < kills; k++ {
		// Let the restarted instance rejoin and work for a while: each
		// kill stalls its partitions for up to the session timeout.
		time.Sleep(5 * time.Second)
		victim := &a
		if k%2 == 1 {
			victim = &b
		}
		(*victim).kill()
		t.Logf("kill %d: SIGKILL instance %s", k+1, (*victim).name)
		time.Sleep(500 * time.Millisecond)
		*victim = member((*victim).name)
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

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	waitFor(ctx, t, "the group to commit every data record", func() bool { return broker.CaughtUp(ctx, cl, "EosTest", []string{"data"}) })
	waitLagZero(ctx, t, cl, "EosTest")
	// The verifier first waits for the group EosTest to have no member.
	a.stop(t, 30*time.Second)
	b.stop(t, 30*time.Second)

	ver, verLog := java("verifier", "verify")
	if err := ver.Run(); err != nil {
		t.Fatalf("EOS verifier exited with %v:\n%s", err, tail(verLog))
	}
	out, _ := os.ReadFile(verLog)
	t.Logf("verifier:\n%s", tail(verLog))
	if !strings.Contains(string(out), "ALL-RECORDS-DELIVERED") || strings.Contains(string(out), "FAILED") {
		t.Fatalf("Kafka's EOS verifier did not print ALL-RECORDS-DELIVERED: exactly's echo, min or sum output is wrong (see the verifier's log above)")
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
