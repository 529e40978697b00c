package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-dev/exactly/broker"
)

// The broker process is this binary run as `__broker`: the embedded broker
// of `exactly broker` (broker.Start) plus kfake controls that
//
//   - observe, per consumer group, the first SyncGroup and the last offset
//     commit: the processing window of a run, taken where no client can
//     bias it;
//   - with --latency, delay Produce, OffsetCommit and the transaction
//     requests.
//
// It prints its address alone on stdout's first line, then answers
// commands read line by line from stdin, one reply line each ("ok ..." or
// "err ..."):
//
//	gc              runtime.GC; replies the heap in use
//	cpu             replies its own user+sys CPU time in nanoseconds
//	window <group>  replies the group's first SyncGroup and last commit
//	                (unix nanoseconds, 0 if none) and its commit count
//
// It exits when stdin closes, so it never outlives the tool.

// delayed are the requests the latency model slows down.
var delayed = []kmsg.Key{kmsg.Produce, kmsg.OffsetCommit, kmsg.AddPartitionsToTxn, kmsg.AddOffsetsToTxn, kmsg.EndTxn, kmsg.TxnOffsetCommit}

func brokerMain(args []string) int {
	fs := flag.NewFlagSet(brokerCmd, flag.ContinueOnError)
	partitions := fs.Int("partitions", 6, "partitions of auto-created topics")
	latency := fs.Duration("latency", 0, "delay of Produce, OffsetCommit and transaction requests")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if path := os.Getenv("EXACTLY_BENCH_BROKER_CPUPROFILE"); path != "" {
		// Profiles the broker's whole life: compare modes one per
		// invocation (go tool pprof -top <file>).
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "broker:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "broker:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	b, err := broker.Start(broker.Options{Partitions: *partitions, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		return 1
	}
	defer b.Close()
	c := b.Cluster()
	obs := newObserver()
	obs.install(c)
	if *latency > 0 {
		d := *latency
		for _, k := range delayed {
			c.ControlKey(int16(k), func(kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				c.SleepControl(func() { time.Sleep(d) })
				return nil, nil, false // now let kfake handle it
			})
		}
	}
	fmt.Println(strings.Join(b.Addrs(), ","))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return 0
		case line, ok := <-lines:
			if !ok {
				return 0
			}
			fmt.Println(obs.command(line))
		}
	}
}

// observer records, per group, when it was first assigned partitions and
// when it last committed offsets.
type observer struct {
	mu     sync.Mutex
	groups map[string]*groupTimes
}

type groupTimes struct {
	synced, committed time.Time
	commits           int64
}

func newObserver() *observer { return &observer{groups: map[string]*groupTimes{}} }

func (o *observer) get(group string) *groupTimes {
	g := o.groups[group]
	if g == nil {
		g = &groupTimes{}
		o.groups[group] = g
	}
	return g
}

// install adds the observing controls. They run before any delay control
// (controls run in the order added), so they see each request as it
// arrives, and return "not handled" so kfake goes on with it.
func (o *observer) install(c *kfake.Cluster) {
	observe := func(key kmsg.Key, group func(kmsg.Request) string, synced bool) {
		c.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			now := time.Now()
			o.mu.Lock()
			g := o.get(group(req))
			if synced {
				if g.synced.IsZero() {
					g.synced = now
				}
			} else {
				g.committed = now
				g.commits++
			}
			o.mu.Unlock()
			return nil, nil, false
		})
	}
	observe(kmsg.SyncGroup, func(r kmsg.Request) string { return r.(*kmsg.SyncGroupRequest).Group }, true)
	observe(kmsg.OffsetCommit, func(r kmsg.Request) string { return r.(*kmsg.OffsetCommitRequest).Group }, false)
	observe(kmsg.TxnOffsetCommit, func(r kmsg.Request) string { return r.(*kmsg.TxnOffsetCommitRequest).Group }, false)
}

func (o *observer) command(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "err empty command"
	}
	switch {
	case f[0] == "gc" && len(f) == 1:
		// Collect only. Returning the freed memory to the OS as well
		// (debug.FreeOSMemory) made every run fault all of its memory
		// back in: on a virtual machine with costly page faults that
		// tripled the broker's CPU per record and halved the copy loop's
		// throughput, so runs measured the hypervisor. The heap's pages
		// stay mapped, and the next run reuses them.
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return fmt.Sprintf("ok %d", ms.HeapAlloc)
	case f[0] == "cpu" && len(f) == 1:
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return "err " + err.Error()
		}
		return fmt.Sprintf("ok %d", ru.Utime.Nano()+ru.Stime.Nano())
	case f[0] == "window" && len(f) == 2:
		o.mu.Lock()
		defer o.mu.Unlock()
		g := o.groups[f[1]]
		if g == nil {
			return "ok 0 0 0"
		}
		return fmt.Sprintf("ok %d %d %d", unixNano(g.synced), unixNano(g.committed), g.commits)
	}
	return fmt.Sprintf("err unknown command %q", line)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// brokerProc is the tool's handle on the broker process.
type brokerProc struct {
	cmd  *exec.Cmd
	addr string
	in   io.WriteCloser
	out  *bufio.Reader
	log  string
	done chan struct{}
	err  error // cmd.Wait's error, once done is closed
	mu   sync.Mutex
}

// startBroker runs this binary as the broker, with GOGC=off and the given
// GOMEMLIMIT, logging to logPath.
func startBroker(ctx context.Context, self, logPath string, partitions int, latency time.Duration, memLimit string) (*brokerProc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, brokerCmd, "--partitions", strconv.Itoa(partitions), "--latency", latency.String())
	cmd.Env = append(os.Environ(), "GOGC=off", "GOMEMLIMIT="+memLimit)
	cmd.Stderr = f
	in, err := cmd.StdinPipe()
	if err != nil {
		f.Close()
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting the broker: %w", err)
	}
	b := &brokerProc{cmd: cmd, in: in, out: bufio.NewReader(out), log: logPath, done: make(chan struct{})}
	go func() {
		b.err = cmd.Wait()
		f.Close()
		close(b.done)
	}()
	addr := make(chan string, 1)
	go func() {
		line, _ := b.out.ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a != "" {
			b.addr = a
			return b, nil
		}
		b.close()
		return nil, fmt.Errorf("the broker printed no address:\n%s", tail(logPath, 20))
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	b.close()
	return nil, errors.New("the broker did not print its address within 30s")
}

// call sends one command and returns the fields of its "ok" reply.
func (b *brokerProc) call(command string) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := io.WriteString(b.in, command+"\n"); err != nil {
		return nil, fmt.Errorf("broker command %q: %w (broker log: %s)", command, err, b.log)
	}
	line, err := b.out.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("broker command %q: no reply: %w (broker log: %s)", command, err, b.log)
	}
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != "ok" {
		return nil, fmt.Errorf("broker command %q: %s", command, strings.TrimSpace(line))
	}
	return f[1:], nil
}

func (b *brokerProc) ints(command string, n int) ([]int64, error) {
	f, err := b.call(command)
	if err != nil {
		return nil, err
	}
	if len(f) != n {
		return nil, fmt.Errorf("broker command %q: want %d numbers, got %q", command, n, f)
	}
	out := make([]int64, n)
	for i, s := range f {
		if out[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return nil, fmt.Errorf("broker command %q: %w", command, err)
		}
	}
	return out, nil
}

// cpu returns the broker's CPU time so far.
func (b *brokerProc) cpu() (time.Duration, error) {
	v, err := b.ints("cpu", 1)
	if err != nil {
		return 0, err
	}
	return time.Duration(v[0]), nil
}

// gc collects the broker's garbage and returns its heap in use.
func (b *brokerProc) gc() (int64, error) {
	v, err := b.ints("gc", 1)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// windowCommits returns the group's processing window and commit count as
// the broker saw them.
func (b *brokerProc) windowCommits(group string) (synced, committed time.Time, commits int64, err error) {
	v, err := b.ints("window "+group, 3)
	if err != nil {
		return
	}
	if v[0] == 0 || v[1] == 0 {
		return time.Time{}, time.Time{}, v[2], fmt.Errorf("the broker saw no group assignment or no offset commit of group %s", group)
	}
	return time.Unix(0, v[0]), time.Unix(0, v[1]), v[2], nil
}

// close ends the broker: closing stdin makes it exit; it is killed if it
// does not within 10s.
func (b *brokerProc) close() {
	b.in.Close()
	select {
	case <-b.done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = b.cmd.Process.Kill()
	<-b.done
}
