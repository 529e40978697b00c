package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// instance is one instance id of the group; each start is a new process
// (an incarnation) with its own log file.
type instance struct {
	id    string
	n     int   // incarnations so far
	p     *proc // the current one; nil while down
	procs []*proc

	// Fault bookkeeping: a busy instance is in the middle of a fault
	// action; a paused one is SIGSTOPped; until calmUntil it is left
	// alone (a woken zombie gets time to be fenced and say so).
	busy      bool
	paused    bool
	calmUntil time.Time
}

// cluster runs the exactly processes of a chaos run and injects faults.
type cluster struct {
	cfg      Config
	bin      string
	addr     string
	pipeline string
	logDir   string
	log      *slog.Logger
	adm      *kadm.Client

	mu struct {
		sync.Mutex
		inst        []*instance
		stopping    bool
		restarts    int
		kills       []killEvent
		pauses      []pauseEvent
		brokerKills []brokerKillEvent
		recoveries  []recoveryEvent
		unexpected  []string // crashes: exits the harness did not cause
		unclean     []string // SIGTERMs not followed by exit 0 within stopTimeout
	}
	watchers sync.WaitGroup
}

type killEvent struct {
	At       time.Time
	Instance string
	Kind     string // plain, after-restart, rebalance
	OpenTxn  bool   // the broker listed the victim's transaction as Ongoing just before the SIGKILL
	Probed   bool   // the broker answered that question
	// TableRestore: the victim had its partitions and had not yet logged
	// a restored table partition (see join.go).
	TableRestore bool
}

type pauseEvent struct {
	Instance  string
	Log       string
	LogOffset int64 // log size at SIGSTOP: later lines come after the wake
	Stopped   time.Time
	Continued time.Time
	OpenTxn   bool // the broker listed its transaction as Ongoing just before the SIGSTOP
}

func (c *cluster) txnID(inst string) string { return pipelineName + "-" + inst }

// clientID is inst's client id in the recovery mode.
func (c *cluster) clientID(inst string) string { return pipelineName + "-" + inst }

// startLocked starts a new incarnation of inst.
func (c *cluster) startLocked(inst *instance) error {
	inst.n++
	name := fmt.Sprintf("%s.%d", inst.id, inst.n)
	args := []string{"run", "-c", c.pipeline, "--brokers", c.addr, "--instance-id", inst.id,
		"--session-timeout", c.cfg.SessionTimeout.String(), "--transaction-timeout", c.cfg.TransactionTimeout.String(),
		"--rebalance-timeout", c.cfg.RebalanceTimeout.String(), "--commit-interval", commitInterval.String(),
		// The window check replays every watermark the repartition
		// topics received: keep them (the purge would delete them
		// once consumed).
		"--repartition-purge-interval", "0s",
		"--log-level", "info"}
	if c.cfg.StaticMembership {
		args = append(args, "--static-membership")
	}
	if c.cfg.RecoveryKills > 0 {
		// The recovery loop finds a dynamic member's partitions by
		// its client id.
		args = append(args, "--client-id", c.clientID(inst.id))
	}
	p, err := startProc(name, filepath.Join(c.logDir, name+".log"), c.bin, args...)
	if err != nil {
		return err
	}
	inst.p = p
	inst.procs = append(inst.procs, p)
	c.watchers.Add(1)
	go c.watch(inst, p)
	return nil
}

// watch notices an incarnation that exits on its own, records it and starts
// the instance again a second later.
func (c *cluster) watch(inst *instance, p *proc) {
	defer c.watchers.Done()
	<-p.done
	if p.expected.Load() {
		return
	}
	c.log.Error("instance exited on its own", "incarnation", p.name, "err", p.err)
	c.mu.Lock()
	c.mu.unexpected = append(c.mu.unexpected, fmt.Sprintf("%s exited on its own (%v); last lines:\n%s", p.name, p.err, tail(p.log, 15)))
	if inst.p == p {
		inst.p = nil
	}
	c.mu.Unlock()
	time.Sleep(time.Second)
	c.mu.Lock()
	defer c.mu.Unlock()
	if inst.p == nil && !inst.busy && !c.mu.stopping {
		if err := c.startLocked(inst); err != nil {
			c.log.Error("restarting", "instance", inst.id, "err", err)
			return
		}
		c.mu.restarts++
	}
}

// start starts every instance and waits until each has logged that it
// started, so a daemon that refuses the pipeline fails the run at once.
func (c *cluster) start(ctx context.Context) error {
	c.mu.Lock()
	for i := range c.cfg.Instances {
		inst := &instance{id: fmt.Sprintf("i%d", i+1)}
		c.mu.inst = append(c.mu.inst, inst)
		if err := c.startLocked(inst); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	procs := make([]*proc, 0, len(c.mu.inst))
	for _, inst := range c.mu.inst {
		procs = append(procs, inst.p)
	}
	c.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range procs {
		for !logContains(p.log, `msg=started`) {
			if p.exited() {
				return fmt.Errorf("exactly run (%s) exited at start with %v:\n%s", p.name, p.err, tail(p.log, 20))
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("exactly run (%s) did not log \"started\" within 30s:\n%s", p.name, tail(p.log, 20))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// restartAll starts every instance that is down and wakes any paused one.
func (c *cluster) restartAll() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, inst := range c.mu.inst {
		if inst.p != nil && inst.paused {
			inst.p.signal(sigCont)
			inst.paused = false
		}
		if inst.p == nil || inst.p.exited() {
			if err := c.startLocked(inst); err != nil {
				return err
			}
			c.mu.restarts++
		}
	}
	return nil
}

// stopAll sends SIGTERM to every instance and waits for each to exit 0.
func (c *cluster) stopAll() []string {
	c.mu.Lock()
	c.mu.stopping = true
	var procs []*proc
	for _, inst := range c.mu.inst {
		if inst.p != nil {
			procs = append(procs, inst.p)
			inst.p.expected.Store(true)
		}
	}
	c.mu.Unlock()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		unclean []string
	)
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.stop(stopTimeout); err != nil {
				mu.Lock()
				unclean = append(unclean, fmt.Sprintf("%v; last lines:\n%s", err, tail(p.log, 15)))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c.watchers.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return append(c.mu.unclean, unclean...)
}

// killAll ends every process at once: cleanup after an error.
func (c *cluster) killAll() {
	c.mu.Lock()
	c.mu.stopping = true
	var procs []*proc
	for _, inst := range c.mu.inst {
		procs = append(procs, inst.procs...)
	}
	c.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
	c.watchers.Wait()
}

func (c *cluster) allProcs() []*proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ps []*proc
	for _, inst := range c.mu.inst {
		ps = append(ps, inst.procs...)
	}
	return ps
}

// waitTxnOpen waits up to d for inst's transaction to be open, so a fault
// lands mid-transaction, and reports whether it is.
func (c *cluster) waitTxnOpen(ctx context.Context, inst *instance, d time.Duration) bool {
	if c.cfg.Mode != exactlyOnce {
		return false // the other modes need not use transactions
	}
	deadline := time.Now().Add(d)
	for {
		if open, _ := c.txnOpen(ctx, inst); open {
			return true
		}
		if time.Now().After(deadline) || !sleep(ctx, 25*time.Millisecond) {
			return false
		}
	}
}

// txnOpen asks the broker whether inst's current process has a transaction
// open right now, with records on the output topic. A transaction that began before the process started is
// its killed predecessor's, which stays open until the new process
// initializes its producer or the transaction times out: it does not count.
func (c *cluster) txnOpen(ctx context.Context, inst *instance) (open, probed bool) {
	c.mu.Lock()
	p := inst.p
	c.mu.Unlock()
	if p == nil {
		return false, false
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	id := c.txnID(inst.id)
	ds, err := c.adm.DescribeTransactions(ctx, id)
	if err != nil {
		return false, false
	}
	d, err := ds.On(id, nil)
	if err != nil || d.Err != nil {
		return false, false // no such transactional id (yet), or no answer
	}
	open = strings.EqualFold(d.State, "Ongoing") && d.StartTimestamp >= p.started.UnixMilli()
	// Open with records on the output topic, whose aborted records the
	// check counts: a transaction that so far wrote only its changelog
	// (the output still in the client's buffer) proves nothing when
	// killed. A broker that lists no partitions is taken at its word.
	if open && len(d.Topics) > 0 {
		_, open = d.Topics["out"]
	}
	return open, true
}
