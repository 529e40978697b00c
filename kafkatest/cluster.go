package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options is one cluster.
type Options struct {
	// Nodes is how many combined broker+controller nodes to run: 1
	// (default) or 3. Replication factors and min.insync.replicas of the
	// internal topics follow it (3 nodes: replicated 3 times, min ISR 2).
	Nodes int
	// Features are --feature flags of the storage formatter, such as
	// "transaction.version=0", which makes the brokers run transactions as
	// 3.x brokers do (no KIP-890 part 2). Empty formats with Kafka's
	// defaults (transaction.version=2 on 4.x).
	Features []string
	// Dir holds each node's data, properties and log; empty makes a
	// temporary folder that Stop removes.
	Dir string
	// StartTimeout bounds the wait for the cluster to answer (default 2
	// minutes: two JVMs starting at once on 2 busy cores take a while).
	StartTimeout time.Duration
	// Properties are extra server.properties lines for every node,
	// "key=value", after the defaults (later wins).
	Properties []string
}

// Cluster is a running Apache Kafka cluster on loopback.
type Cluster struct {
	opts      Options
	dir       string
	ownDir    bool
	jars      string
	clusterID string
	nodes     []*node

	mu      sync.Mutex
	stopped bool
}

// node is one broker+controller. Its ports stay the same across restarts,
// as its advertised listener and the controller quorum name them.
type node struct {
	id       int32
	port     int
	ctrlPort int
	dir      string
	props    string
	log      string

	mu  sync.Mutex
	cmd *exec.Cmd
	// done is closed when the current process has exited.
	done chan struct{}
	// guard is the write end of the watchdog's stdin: when the test binary
	// dies, the pipe closes and the watchdog SIGKILLs the JVM.
	guard *os.File
}

// Start formats and starts a cluster and waits until every node answers.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 1
	}
	if opts.Nodes != 1 && opts.Nodes != 3 {
		return nil, fmt.Errorf("kafkatest: Nodes = %d, want 1 or 3", opts.Nodes)
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	jars, err := Jars()
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, dir: opts.Dir, jars: jars}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "kafkatest-"); err != nil {
			return nil, err
		}
		c.ownDir = true
	}
	// A random Kafka Uuid (16 bytes, base64url); one starting with '-'
	// would read as a flag to the formatter, so Kafka never makes those.
	for c.clusterID == "" || c.clusterID[0] == '-' {
		id := make([]byte, 16)
		rand.Read(id)
		c.clusterID = base64.RawURLEncoding.EncodeToString(id)
	}

	ports, err := freePorts(2 * opts.Nodes)
	if err != nil {
		return nil, err
	}
	var voters []string
	for i := 0; i < opts.Nodes; i++ {
		n := &node{id: int32(i + 1), port: ports[2*i], ctrlPort: ports[2*i+1]}
		n.dir = filepath.Join(c.dir, fmt.Sprintf("node%d", n.id))
		n.props = filepath.Join(n.dir, "server.properties")
		n.log = filepath.Join(n.dir, "server.log")
		c.nodes = append(c.nodes, n)
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", n.id, n.ctrlPort))
	}
	if err := os.WriteFile(filepath.Join(c.dir, "log4j2.properties"), []byte(log4jConfig), 0o644); err != nil {
		return nil, err
	}
	for _, n := range c.nodes {
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(n.props, []byte(c.properties(n, voters)), 0o644); err != nil {
			return nil, err
		}
	}
	// Format the nodes one after the other: each is a JVM of its own.
	for _, n := range c.nodes {
		if err := c.format(ctx, n); err != nil {
			c.Stop()
			return nil, err
		}
	}
	for _, n := range c.nodes {
		if err := c.startNode(n); err != nil {
			c.Stop()
			return nil, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := c.waitReady(wctx, nil); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// properties is a node's server.properties: small and quick to start, with
// the internal topics replicated as often as there are nodes.
func (c *Cluster) properties(n *node, voters []string) string {
	rf := len(c.nodes)
	minISR := 1
	if rf == 3 {
		minISR = 2
	}
	lines := []string{
		"process.roles=broker,controller",
		fmt.Sprintf("node.id=%d", n.id),
		"controller.quorum.voters=" + strings.Join(voters, ","),
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", n.port, n.ctrlPort),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d", n.port),
		"controller.listener.names=CONTROLLER",
		"inter.broker.listener.name=PLAINTEXT",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs=" + filepath.Join(n.dir, "data"),
		"auto.create.topics.enable=false",
		"num.partitions=1",
		fmt.Sprintf("default.replication.factor=%d", rf),
		fmt.Sprintf("min.insync.replicas=%d", minISR),
		fmt.Sprintf("offsets.topic.replication.factor=%d", rf),
		"offsets.topic.num.partitions=4",
		fmt.Sprintf("transaction.state.log.replication.factor=%d", rf),
		fmt.Sprintf("transaction.state.log.min.isr=%d", minISR),
		"transaction.state.log.num.partitions=4",
		fmt.Sprintf("share.coordinator.state.topic.replication.factor=%d", rf),
		fmt.Sprintf("share.coordinator.state.topic.min.isr=%d", minISR),
		"group.initial.rebalance.delay.ms=0",
		// The tests run members with session timeouts of a few seconds;
		// Kafka's default floor is 6 s.
		"group.min.session.timeout.ms=1000",
		"num.network.threads=2",
		"num.io.threads=2",
		"num.recovery.threads.per.data.dir=1",
		"background.threads=2",
		"log.cleaner.threads=1",
		"log.cleaner.dedupe.buffer.size=4194304",
		"log.segment.bytes=33554432",
		"log.index.size.max.bytes=1048576",
	}
	lines = append(lines, c.opts.Properties...)
	return strings.Join(lines, "\n") + "\n"
}

// log4jConfig sends the broker's warnings and errors to its stdout, which
// goes to the node's server.log.
const log4jConfig = `status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = info
`

// jvmArgs keeps each JVM small and quick to start on a busy 2-core machine.
func (c *Cluster) jvmArgs() []string {
	return []string{
		"-Xms128m", "-Xmx512m",
		"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(c.dir, "log4j2.properties"),
		"-cp", filepath.Join(c.jars, "*"),
	}
}

func (c *Cluster) format(ctx context.Context, n *node) error {
	args := append(c.jvmArgs(), "kafka.tools.StorageTool", "format", "-t", c.clusterID, "-c", n.props, "--ignore-formatted")
	for _, f := range c.opts.Features {
		args = append(args, "--feature", f)
	}
	cmd := exec.CommandContext(ctx, "java", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kafkatest: formatting node %d (java %s): %v\n%s", n.id, strings.Join(args, " "), err, out)
	}
	return nil
}

// startNode starts n's JVM in a process group of its own, with a watchdog
// that SIGKILLs it when the test binary exits however it exits (a panic,
// a -timeout, a SIGKILL), so no JVM outlives the tests.
func (c *Cluster) startNode(n *node) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("java", append(c.jvmArgs(), "kafka.Kafka", n.props)...)
	// Never the test binary's stdout: go test waits for it to close.
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("kafkatest: starting node %d: %w", n.id, err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return err
	}
	// The watchdog reads its stdin: "stop" means the JVM is gone and it
	// may leave; end of file means the test binary died.
	// (No "--" before the group: dash's kill takes it for a pid and kills
	// nothing.)
	dog := exec.Command("sh", "-c", fmt.Sprintf(`read x; [ "$x" = stop ] || kill -9 -%d`, cmd.Process.Pid))
	dog.Stdin = pr
	dog.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := dog.Start(); err != nil {
		pr.Close()
		pw.Close()
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("kafkatest: starting the watchdog of node %d: %w", n.id, err)
	}
	pr.Close()
	done := make(chan struct{})
	n.cmd, n.done, n.guard = cmd, done, pw
	go func() {
		cmd.Wait()
		io.WriteString(pw, "stop\n")
		pw.Close()
		dog.Wait()
		close(done)
	}()
	return nil
}

// Addrs are the brokers' host:port, node 1 first.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.nodes {
		a = append(a, fmt.Sprintf("127.0.0.1:%d", n.port))
	}
	return a
}

// Addr is node's host:port (nodes count from 1, as their broker ids).
func (c *Cluster) Addr(node int32) string { return fmt.Sprintf("127.0.0.1:%d", c.node(node).port) }

// Nodes is how many nodes the cluster has.
func (c *Cluster) Nodes() int { return len(c.nodes) }

// Features are the --feature flags the storage was formatted with.
func (c *Cluster) Features() []string { return c.opts.Features }

// LogFile is node's server.log.
func (c *Cluster) LogFile(node int32) string { return c.node(node).log }

func (c *Cluster) node(id int32) *node {
	if id < 1 || int(id) > len(c.nodes) {
		panic(fmt.Sprintf("kafkatest: no node %d in a %d-node cluster", id, len(c.nodes)))
	}
	return c.nodes[id-1]
}

// Kill SIGKILLs node's JVM and waits until it is gone.
func (c *Cluster) Kill(node int32) {
	n := c.node(node)
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Running reports whether node's JVM is alive.
func (c *Cluster) Running(node int32) bool {
	n := c.node(node)
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Restart starts node again (after Kill) and waits until the cluster
// counts it as a live broker again.
func (c *Cluster) Restart(ctx context.Context, node int32) error {
	if c.Running(node) {
		return fmt.Errorf("kafkatest: node %d is running; Kill it first", node)
	}
	if err := c.startNode(c.node(node)); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	return c.waitReady(wctx, []int32{node})
}

// waitReady polls until every running node answers ApiVersions and a
// metadata request lists every running broker, and (on first start)
// until the controller is known. It never sleeps a fixed time first.
func (c *Cluster) waitReady(ctx context.Context, only []int32) error {
	var want []int32
	for _, n := range c.nodes {
		if c.Running(n.id) {
			want = append(want, n.id)
		}
	}
	var last error
	for {
		for _, n := range c.nodes {
			if (only == nil || contains(only, n.id)) && !c.Running(n.id) {
				return fmt.Errorf("kafkatest: node %d exited while starting; the end of %s:\n%s", n.id, n.log, tail(n.log, 30))
			}
		}
		if last = c.answers(ctx, want); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			var logs strings.Builder
			for _, n := range c.nodes {
				fmt.Fprintf(&logs, "--- node %d (%s):\n%s\n", n.id, n.log, tail(n.log, 15))
			}
			return fmt.Errorf("kafkatest: the cluster did not answer in time (%v):\n%s", last, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func contains(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// answers checks each wanted node once, with a client of its own seeded
// with that node only.
func (c *Cluster) answers(ctx context.Context, want []int32) error {
	for _, id := range want {
		err := func() error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addr(id)), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second),
				kgo.DialTimeout(time.Second))
			if err != nil {
				return err
			}
			defer cl.Close()
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			adm := kadm.NewClient(cl)
			if _, err := adm.ApiVersions(rctx); err != nil {
				return err
			}
			m, err := adm.BrokerMetadata(rctx)
			if err != nil {
				return err
			}
			if m.Controller < 0 {
				return errors.New("no active controller yet")
			}
			for _, w := range want {
				found := false
				for _, b := range m.Brokers {
					found = found || b.NodeID == w
				}
				if !found {
					return fmt.Errorf("node %d does not list broker %d yet", id, w)
				}
			}
			return nil
		}()
		if err != nil {
			return fmt.Errorf("node %d: %w", id, err)
		}
	}
	return nil
}

// Stop SIGKILLs every node (the tests need no clean shutdown, and Kafka's
// takes seconds) and removes the data folder Start made.
func (c *Cluster) Stop() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	c.mu.Unlock()
	for _, n := range c.nodes {
		c.Kill(n.id)
	}
	if c.ownDir {
		os.RemoveAll(c.dir)
	}
}

// freePorts reserves n distinct free loopback ports by listening on port 0,
// then releases them for the brokers.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
