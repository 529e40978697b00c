package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/kafkatest"
)

// Helpers for tests that run exactly and its broker as real processes.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the exactly binary once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "exactly-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "exactly")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a child process whose output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(string(b), "\n")
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			t.Logf("last lines of %s:\n%s", name, strings.Join(lines, "\n"))
		}
	})
	return p
}

func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(sig)
	}
}

func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits up to d for a clean exit. It first waits
// (up to d) until the process has logged anything: a SIGTERM that lands
// before main has set up its signal handling kills the process with the
// signal instead, which is not what the test asks about (an instance
// restarted just before the input is caught up meets this on a busy
// machine).
func (p *proc) stop(t *testing.T, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if fi, err := os.Stat(p.log); err == nil && fi.Size() > 0 {
			break
		}
	}
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("%s exited with %v after SIGTERM, want exit status 0", p.name, p.err)
		}
	case <-time.After(d):
		t.Errorf("%s did not exit within %s of SIGTERM", p.name, d)
	}
}

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }

// testBroker returns the address of the broker a process test runs
// against, with topics of the given partition count created: `exactly
// broker` as a process of its own (the default), or the package's one
// Apache Kafka cluster when EXACTLY_TEST_BROKER=kafka (see kafkatest), which
// the tests share: each names its topics, pipeline and group uniquely.
func testBroker(t *testing.T, partitions int, topics ...string) string {
	t.Helper()
	if !kafkatest.Selected() {
		var args []string
		for _, topic := range topics {
			args = append(args, "--topic", topic+":"+strconv.Itoa(partitions))
		}
		_, addr := startBroker(t, args...)
		return addr
	}
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Tests share the cluster one after the other with fixed names
	// (TestCrash and TestCrashAvro both use crash-in and the group
	// crash): each starts from no topics and no groups.
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopics(ctx, int32(partitions), nil, topics...); err != nil {
		t.Fatal(err)
	}
	return c.Addrs()[0] // one seed: the clients find the other nodes
}

// startBroker runs `exactly broker` as its own process and returns its
// address.
func startBroker(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t), append([]string{"broker", "--port", "0"}, args...)...)
	cmd.Stdout = pw
	logPath := filepath.Join(t.TempDir(), "broker.log")
	f, _ := os.Create(logPath)
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	p := &proc{name: "broker", cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(pr).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			t.Fatal("broker printed no address")
		}
		return p, a
	case <-time.After(20 * time.Second):
		t.Fatal("broker did not start within 20s")
	}
	return nil, ""
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// lagZero reports whether group has committed, on every partition it
// commits for, exactly the partition's end offset: lag 0, also on
// transactional topics (its own repartition topics) whose last offset is
// a transaction marker, as the Java consumer and Kafka Streams commit.
func lagZero(ctx context.Context, cl *kgo.Client, group string) (bool, string) {
	adm := kadm.NewClient(cl)
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false, err.Error()
	}
	var topics []string
	committed.Each(func(o kadm.OffsetResponse) {
		if !slices.Contains(topics, o.Topic) {
			topics = append(topics, o.Topic)
		}
	})
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return false, err.Error()
	}
	var behind []string
	ends.Each(func(e kadm.ListedOffset) {
		c, ok := committed.Lookup(e.Topic, e.Partition)
		if e.Offset > 0 && (!ok || c.At != e.Offset) {
			behind = append(behind, fmt.Sprintf("%s/%d committed %d of %d", e.Topic, e.Partition, c.At, e.Offset))
		}
	})
	return len(behind) == 0, strings.Join(behind, ", ")
}

// waitLagZero waits (up to a minute) for lagZero.
func waitLagZero(ctx context.Context, t *testing.T, cl *kgo.Client, group string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var why string
	for {
		ok, w := lagZero(ctx, cl, group)
		if ok {
			return
		}
		why = w
		select {
		case <-ctx.Done():
			t.Fatalf("consumer lag of group %s never reached 0 after catching up: %s", group, why)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
