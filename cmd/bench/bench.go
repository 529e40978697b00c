package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/kafkatest"
	"github.com/exactly-dev/exactly/topology"
)

// Commit intervals chosen from a warm-up aim at targetTxns transactions
// per run, comfortably above the minTxns every exactly-once run must
// span, within [minInterval, maxInterval].
const (
	targetTxns  = 40
	minTxns     = 30
	minInterval = time.Millisecond
	maxInterval = 100 * time.Millisecond // exactly's default
	// maxPoll is how many records exactly takes from one poll at most
	// (processor.maxPoll): a transaction holds at least one poll.
	maxPoll = 10_000
)

// bench is one invocation's state.
type bench struct {
	cfg       Config
	progress  io.Writer
	self, bin string
	dir       string
	brk       benchBroker
	adm       *kadm.Client
	intervals map[string]time.Duration // chosen per interval-owning mode
	reg       *benchRegistry           // the Avro mode's; nil without it
}

// run carries out the whole benchmark and returns its report; on error
// the report holds what was measured so far. progress receives a line per
// step.
func run(ctx context.Context, cfg Config, progress io.Writer) (rep *Report, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	b := &bench{cfg: cfg, progress: progress, intervals: map[string]time.Duration{}}
	rep = newReport(cfg)
	b.dir = cfg.LogDir
	if b.dir == "" {
		if b.dir, err = os.MkdirTemp("", "exactly-bench"); err != nil {
			return rep, err
		}
		defer func() {
			if err == nil {
				os.RemoveAll(b.dir)
			} else {
				rep.LogDir = b.dir
			}
		}()
	} else {
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			return rep, err
		}
		rep.LogDir = b.dir
	}
	if b.self, err = os.Executable(); err != nil {
		return rep, fmt.Errorf("finding this binary to re-execute it as the broker and the baseline: %w", err)
	}
	b.bin = cfg.Bin
	if b.bin == "" {
		b.logf("building ./cmd/exactly")
		if b.bin, err = buildExactly(ctx, b.dir); err != nil {
			return rep, err
		}
	}

	if cfg.Broker == brokerKafka {
		b.logf("starting Apache Kafka %s, 1 node", kafkatest.Version)
		start := time.Now()
		k, err := startKafka(ctx)
		if err != nil {
			return rep, err
		}
		b.brk = k
		defer b.brk.close()
		b.logf("Apache Kafka %s at %s, started in %s", kafkatest.Version, b.brk.address(), time.Since(start).Round(100*time.Millisecond))
	} else {
		p, err := startBroker(ctx, b.self, filepath.Join(b.dir, "broker.log"), cfg.Partitions, cfg.Latency, cfg.BrokerMemLimit)
		if err != nil {
			return rep, err
		}
		b.brk = p
		defer b.brk.close()
		b.logf("broker at %s (GOGC=off GOMEMLIMIT=%s, latency %s)", b.brk.address(), cfg.BrokerMemLimit, cfg.Latency)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brk.address()))
	if err != nil {
		return rep, err
	}
	defer cl.Close()
	b.adm = kadm.NewClient(cl)

	err = b.load(ctx)
	if b.reg != nil {
		defer b.reg.close()
	}
	if err != nil {
		return rep, err
	}
	heap, err := b.brk.gc()
	if err != nil {
		return rep, err
	}
	rep.BrokerHeapAfterLoadBytes = heap

	sel := b.selected()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0))
	// Warm-ups first, in random order except that a mode runs after the
	// mode whose commit interval it shares; then every counted run, in
	// one random order across the modes.
	warm := slices.Clone(sel)
	rng.Shuffle(len(warm), func(i, j int) { warm[i], warm[j] = warm[j], warm[i] })
	slices.SortStableFunc(warm, func(x, y *mode) int { return boolInt(b.owner(x) != x.id) - boolInt(b.owner(y) != y.id) })
	type planned struct {
		m     *mode
		index int
	}
	var plan []planned
	for _, m := range warm {
		plan = append(plan, planned{m, 0})
	}
	var counted []planned
	for _, m := range sel {
		for i := 1; i <= cfg.Runs; i++ {
			counted = append(counted, planned{m, i})
		}
	}
	rng.Shuffle(len(counted), func(i, j int) { counted[i], counted[j] = counted[j], counted[i] })
	plan = append(plan, counted...)

	runs := map[string][]Run{}
	warmups := map[string]Run{}
	defer func() { rep.summarize(sel, warmups, runs, b.intervals) }()
	for i, p := range plan {
		r, err := b.measure(ctx, p.m, p.index)
		if err != nil {
			return rep, fmt.Errorf("mode %s (%s), run %s: %w", p.m.id, p.m.title, runName(p.m, p.index), err)
		}
		what := "warm-up"
		if p.index == 0 {
			warmups[p.m.id] = r
			if b.cfg.CommitInterval == 0 && b.owner(p.m) == p.m.id && !p.m.restore() {
				b.intervals[p.m.id] = nextInterval(r)
			}
		} else {
			what = "run " + strconv.Itoa(p.index)
			runs[p.m.id] = append(runs[p.m.id], r)
		}
		extra := ""
		if r.CommitInterval != "" {
			extra = fmt.Sprintf(", %d commits at %s", r.Commits, r.CommitInterval)
		}
		b.logf("[%d/%d] %s %s %s: %s rec/s, client %.2f µs/rec, broker %.2f µs/rec, RSS %s%s",
			i+1, len(plan), p.m.id, p.m.title, what, thousands(r.RecordsPerSecond()), r.CPUMicrosPerRecord(), r.BrokerMicrosPerRecord(), mib(r.MaxRSSBytes), extra)
	}
	return rep, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "bench: "+format+"\n", args...)
}

// selected returns the modes to run, in a-g order.
func (b *bench) selected() []*mode {
	var sel []*mode
	for _, m := range modes {
		if slices.Contains(b.cfg.Modes, m.id) {
			sel = append(sel, m)
		}
	}
	return sel
}

// owner returns the mode whose commit interval m runs at: its partner when
// that runs too, else itself.
func (b *bench) owner(m *mode) string {
	if m.partner != "" && slices.Contains(b.cfg.Modes, m.partner) {
		return m.partner
	}
	return m.id
}

// interval returns the commit interval of m's next run.
func (b *bench) interval(m *mode) time.Duration {
	if b.cfg.CommitInterval > 0 {
		return b.cfg.CommitInterval
	}
	if d, ok := b.intervals[b.owner(m)]; ok {
		return d
	}
	// A warm-up: guess from the input size at a million records/s.
	return clampInterval(time.Duration(b.cfg.Records) * time.Microsecond / targetTxns)
}

// nextInterval picks the commit interval of a mode's counted runs from its
// warm-up, so that a run spans about targetTxns transactions. A
// transaction lasts its interval plus an overhead (finishing the poll under
// way, which may hold up to maxPoll records, then committing): the
// warm-up's window per transaction less the interval it ran at.
func nextInterval(warm Run) time.Duration {
	window := time.Duration(warm.WindowSeconds * float64(time.Second))
	want := window / targetTxns
	used, err := time.ParseDuration(warm.CommitInterval)
	if err == nil && warm.Commits > 0 {
		want -= max(window/time.Duration(warm.Commits)-used, 0)
	}
	return clampInterval(want)
}

func clampInterval(d time.Duration) time.Duration {
	return min(max(d.Truncate(time.Millisecond), minInterval), maxInterval)
}

// load creates and fills the input topics the selected modes read.
func (b *bench) load(ctx context.Context) error {
	var inputs []string
	restore := false
	for _, m := range b.selected() {
		if m.restore() {
			restore = true
		} else if !slices.Contains(inputs, m.input) {
			inputs = append(inputs, m.input)
		}
	}
	for _, t := range inputs {
		if err := createTopic(ctx, b.adm, t, b.cfg.Partitions, nil); err != nil {
			return err
		}
	}
	if len(inputs) > 0 {
		start := time.Now()
		if slices.Contains(inputs, avroTopic) {
			reg, err := newBenchRegistry()
			if err != nil {
				return err
			}
			b.reg = reg
		}
		if err := preload(ctx, []string{b.brk.address()}, b.cfg, inputs, b.reg); err != nil {
			return fmt.Errorf("preloading %v: %w", inputs, err)
		}
		b.logf("preloaded %d records into each of %v in %s", b.cfg.Records, inputs, time.Since(start).Round(time.Millisecond))
	}
	if !restore {
		return nil
	}
	if err := createTopic(ctx, b.adm, emptyTopic, b.cfg.Partitions, nil); err != nil {
		return err
	}
	// The restore pipeline's sink: exactly refuses to start without it.
	if err := createTopic(ctx, b.adm, outTopic(restorePipeline), b.cfg.Partitions, nil); err != nil {
		return err
	}
	if err := createTopic(ctx, b.adm, restoreChangelog, b.cfg.Partitions, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}); err != nil {
		return err
	}
	start := time.Now()
	if err := preloadChangelog(ctx, []string{b.brk.address()}, restoreChangelog, b.cfg.Partitions, b.cfg.Records); err != nil {
		return fmt.Errorf("preloading changelog %s: %w", restoreChangelog, err)
	}
	b.logf("preloaded %d distinct keys into %s in %s", b.cfg.Records, restoreChangelog, time.Since(start).Round(time.Millisecond))
	return nil
}

// measure runs mode m once, then deletes the run's topics and collects the
// broker's garbage.
func (b *bench) measure(ctx context.Context, m *mode, index int) (Run, error) {
	name := runName(m, index)
	r := Run{Mode: m.id, Index: index, Pipeline: name}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.RunTimeout)
	defer cancel()
	if !m.restore() {
		if err := createTopic(ctx, b.adm, outTopic(name), b.cfg.Partitions, nil); err != nil {
			return r, err
		}
	}
	if err := b.brk.begin(ctx); err != nil {
		return r, err
	}
	cpu0, err := b.brk.cpu()
	if err != nil {
		return r, err
	}
	meter := readCPU()
	switch {
	case m.baseline():
		err = b.runCopy(ctx, m, name, &r)
	case m.restore():
		err = b.runRestore(ctx, m, name, index, &r)
	default:
		err = b.runExactly(ctx, m, name, &r)
	}
	if err != nil {
		return r, err
	}
	cpu1, err := b.brk.cpu()
	if err != nil {
		return r, err
	}
	r.BrokerCPUSeconds = (cpu1 - cpu0).Seconds()
	r.OtherCPUSeconds = meter.other(time.Duration(r.CPUSeconds*float64(time.Second)), cpu1-cpu0).Seconds()
	if !m.restore() {
		// Free what the run wrote, so the broker's heap holds only the
		// input when the next run starts.
		topics := []string{outTopic(name), topology.ChangelogTopic(name, aggStep), topology.RepartitionTopic(name, aggStep)}
		if _, err := b.adm.DeleteTopics(ctx, topics...); err != nil {
			return r, fmt.Errorf("deleting the run's topics: %w", err)
		}
	}
	_, err = b.brk.gc()
	return r, err
}

// runExactly runs `exactly run --until-caught-up` on the mode's pipeline.
func (b *bench) runExactly(ctx context.Context, m *mode, name string, r *Run) error {
	interval := b.interval(m)
	r.CommitInterval = interval.String()
	path := filepath.Join(b.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(m.yaml(name, outTopic(name))), 0o644); err != nil {
		return err
	}
	c, err := startChild(filepath.Join(b.dir, name+".log"), b.bin, append([]string{"run", "-c", path,
		"--brokers", b.brk.address(), "--instance-id", "bench", "--until-caught-up", "--http-addr=",
		"--log-level", "info", "--log-format", "json", "--commit-interval", interval.String()}, b.registryArgs(m)...)...)
	if err != nil {
		return err
	}
	if err := c.wait(ctx); err != nil {
		return err
	}
	c.usage(r)
	lines, err := logLines(c.log)
	if err != nil {
		return err
	}
	in, commits, err := stoppedLine(lines)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, c.log)
	}
	if in != int64(b.cfg.Records) {
		return fmt.Errorf("exactly committed %d input records, want %d (%s)", in, b.cfg.Records, c.log)
	}
	r.Records, r.Commits = in, commits
	p50, p99, err := caughtUpLine(lines)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, c.log)
	}
	r.CommitP50Seconds, r.CommitP99Seconds = p50.Seconds(), p99.Seconds()
	return b.window(ctx, name, r)
}

// registryArgs points the instance at the registry when m reads Avro.
func (b *bench) registryArgs(m *mode) []string {
	if m.input != avroTopic || b.reg == nil {
		return nil
	}
	return []string{"--registry", b.reg.reg.URL()}
}

// runCopy runs the baseline copy loop.
func (b *bench) runCopy(ctx context.Context, m *mode, name string, r *Run) error {
	interval := b.interval(m)
	r.CommitInterval = interval.String()
	c, err := startChild(filepath.Join(b.dir, name+".log"), b.self, copyCmd,
		"--brokers", b.brk.address(), "--group", name, "--from", m.input, "--to", outTopic(name),
		"--records", strconv.Itoa(b.cfg.Records), "--commit-interval", interval.String())
	if err != nil {
		return err
	}
	if err := c.wait(ctx); err != nil {
		return err
	}
	c.usage(r)
	var res copyResult
	if err := json.Unmarshal(c.stdout.Bytes(), &res); err != nil {
		return fmt.Errorf("the copy loop printed %q: %w", c.stdout.String(), err)
	}
	if res.Records != int64(b.cfg.Records) {
		return fmt.Errorf("the copy loop copied %d records, want %d", res.Records, b.cfg.Records)
	}
	r.Records, r.Commits = res.Records, res.Commits
	r.CommitP50Seconds, r.CommitP99Seconds = res.CommitP50Seconds, res.CommitP99Seconds
	return b.window(ctx, name, r)
}

// window sets the run's processing window from what the broker saw.
func (b *bench) window(ctx context.Context, group string, r *Run) error {
	synced, committed, err := b.brk.window(ctx, group)
	if err != nil {
		return err
	}
	r.WindowSeconds = committed.Sub(synced).Seconds()
	if r.WindowSeconds <= 0 {
		return fmt.Errorf("group %s: last commit %s is not after its assignment %s", group, committed, synced)
	}
	return nil
}

// runRestore starts exactly on the restore pipeline, waits for /readyz to
// answer 200 (every partition restored), and stops it.
func (b *bench) runRestore(ctx context.Context, m *mode, name string, index int, r *Run) error {
	path := filepath.Join(b.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(m.yaml(name, outTopic(name))), 0o644); err != nil {
		return err
	}
	addr, err := freePort()
	if err != nil {
		return err
	}
	c, err := startChild(filepath.Join(b.dir, fmt.Sprintf("%s-%d.log", name, index)), b.bin, "run", "-c", path,
		"--brokers", b.brk.address(), "--instance-id", "r"+strconv.Itoa(index), "--http-addr", addr,
		"--log-level", "info", "--log-format", "json")
	if err != nil {
		return err
	}
	if err := waitReady(ctx, c, addr); err != nil {
		_ = c.cmd.Process.Kill()
		<-c.done
		return err
	}
	ready := time.Now()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if err := c.wait(ctx); err != nil {
		return err
	}
	c.usage(r)
	r.WallSeconds = ready.Sub(c.started).Seconds()
	lines, err := logLines(c.log)
	if err != nil {
		return err
	}
	records, took, parts := restoredLines(lines)
	if parts != b.cfg.Partitions || records != int64(b.cfg.Records) {
		return fmt.Errorf("exactly logged %d restored partitions holding %d records, want %d holding %d (%s)", parts, records, b.cfg.Partitions, b.cfg.Records, c.log)
	}
	r.Records, r.WindowSeconds = records, took.Seconds()
	return nil
}

// buildExactly builds ./cmd/exactly of the module the working directory is
// in, into dir.
func buildExactly(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("finding the module root (go env GOMOD = %q, %v): run from inside the exactly module or pass --exactly", gomod, err)
	}
	bin := filepath.Join(dir, "exactly")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/exactly")
	cmd.Dir = filepath.Dir(gomod)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/exactly in %s: %v\n%s", cmd.Dir, err, buf.String())
	}
	return bin, nil
}
