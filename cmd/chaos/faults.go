package main

import (
	"context"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"
)

const (
	sigCont = syscall.SIGCONT
	sigStop = syscall.SIGSTOP
	// A woken zombie is left alone this long, so it gets to find out it
	// was fenced and log it before anything else happens to it.
	zombieCalm = 4 * time.Second
)

// Kinds of kill.
const (
	killPlain        = "plain"         // an instance that has worked a while
	killAfterRestart = "after-restart" // an instance that just started: joining or restoring
	killRebalance    = "rebalance"     // an instance in the rebalance another's start caused
)

// faults injects the run's faults over cfg.Duration: a kill loop, a pause
// loop and, with BrokerKills, a broker kill loop, with their own seeded
// random sources, sharing the instance table. It returns when all are
// done. The recovery mode runs its measured kills instead.
func (c *cluster) faults(ctx context.Context, mon *offsetMonitor) {
	deadline := time.Now().Add(c.cfg.Duration)
	if c.cfg.RecoveryKills > 0 {
		c.recoveryLoop(ctx, deadline, mon)
		sleep(ctx, time.Until(deadline))
		return
	}
	var wg sync.WaitGroup
	if c.cfg.BrokerKills > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.brokerLoop(ctx, deadline, rand.New(rand.NewPCG(c.cfg.Seed, 3)))
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.killLoop(ctx, deadline, rand.New(rand.NewPCG(c.cfg.Seed, 1)))
	}()
	go func() {
		defer wg.Done()
		c.pauseLoop(ctx, deadline, rand.New(rand.NewPCG(c.cfg.Seed, 2)))
	}()
	wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// pick marks up to n random eligible instances busy and returns them.
func (c *cluster) pick(rng *rand.Rand, n int) []*instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ok []*instance
	now := time.Now()
	for _, inst := range c.mu.inst {
		if !inst.busy && !inst.paused && inst.p != nil && !inst.p.exited() && now.After(inst.calmUntil) {
			ok = append(ok, inst)
		}
	}
	rng.Shuffle(len(ok), func(i, j int) { ok[i], ok[j] = ok[j], ok[i] })
	ok = ok[:min(n, len(ok))]
	for _, inst := range ok {
		inst.busy = true
	}
	return ok
}

func (c *cluster) release(insts ...*instance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, inst := range insts {
		inst.busy = false
	}
}

// kill SIGKILLs inst's current process, first asking the broker whether its
// transaction is open.
// It returns the time of the kill (zero when inst was down).
func (c *cluster) kill(ctx context.Context, inst *instance, kind string) time.Time {
	c.mu.Lock()
	p := inst.p
	c.mu.Unlock()
	if p == nil {
		return time.Time{}
	}
	open, probed := c.txnOpen(ctx, inst)
	// A plain kill waits a little for the victim to be inside a
	// transaction, so that most kills test what matters: a crash with
	// outputs, changelog writes and offsets in flight.
	for wait := time.Now().Add(1500 * time.Millisecond); kind == "plain" && !open && time.Now().Before(wait) && ctx.Err() == nil; {
		time.Sleep(20 * time.Millisecond)
		open, probed = c.txnOpen(ctx, inst)
	}
	restoring := tableRestoring(p.log)
	at := time.Now()
	p.kill()
	c.mu.Lock()
	inst.p = nil
	c.mu.kills = append(c.mu.kills, killEvent{At: at, Instance: inst.id, Kind: kind, OpenTxn: open, Probed: probed, TableRestore: restoring})
	n := len(c.mu.kills)
	c.mu.Unlock()
	c.log.Info("SIGKILL", "n", n, "incarnation", p.name, "kind", kind, "open_txn", open, "uptime", time.Since(p.started).Round(time.Millisecond))
	return at
}

func (c *cluster) restart(inst *instance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.stopping || (inst.p != nil && !inst.p.exited()) {
		return
	}
	if err := c.startLocked(inst); err != nil {
		c.log.Error("restarting", "instance", inst.id, "err", err)
		return
	}
	c.mu.restarts++
}

func (c *cluster) killCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mu.kills)
}

// killLoop spreads cfg.Kills kills over the fault phase. Half the actions
// kill one instance that has worked a while; a quarter kill an instance,
// restart it and kill it again while it joins and restores; a quarter kill
// and restart one instance and then kill another during the rebalance the
// restart causes. Each victim restarts after a short random delay.
func (c *cluster) killLoop(ctx context.Context, deadline time.Time, rng *rand.Rand) {
	for {
		left := c.cfg.Kills - c.killCount()
		remaining := time.Until(deadline)
		if left <= 0 || remaining <= 0 {
			return
		}
		// An action kills 1.5 instances on average and takes a second
		// or two itself (waiting for an open transaction, restart
		// delays): wait 0.3 to 0.9 of its slot before it.
		actions := float64(left)/1.5 + 0.5
		gap := time.Duration(float64(remaining) / actions * (0.3 + 0.6*rng.Float64()))
		if !sleep(ctx, gap) || time.Now().After(deadline) {
			return
		}
		kind := killPlain
		switch r := rng.IntN(4); {
		case r == 2 && left >= 2:
			kind = killAfterRestart
		case r == 3 && left >= 2 && c.cfg.Instances >= 2:
			kind = killRebalance
		}
		n := 1
		if kind == killRebalance {
			n = 2
		}
		victims := c.pick(rng, n)
		if len(victims) == 0 {
			continue // everyone is paused or busy: try again later
		}
		if len(victims) < n {
			kind = killAfterRestart
		}
		v := victims[0]
		// Aim the first kill at an open transaction: that is where
		// exactly-once can break. The follow-up kills aim at a join,
		// a restore or a rebalance instead, whatever the transaction.
		c.waitTxnOpen(ctx, v, 1500*time.Millisecond)
		c.kill(ctx, v, killPlain)
		if !sleep(ctx, between(rng, 200*time.Millisecond, time.Second)) {
			c.release(victims...)
			return
		}
		c.restart(v)
		switch kind {
		case killAfterRestart:
			wait := sleep(ctx, between(rng, 100*time.Millisecond, 800*time.Millisecond))
			if rng.IntN(2) == 0 {
				// Half of them the moment the instance has its
				// partitions: while it restores its stores and
				// the table.
				wait = c.waitAssigned(ctx, v, 5*time.Second)
			}
			if wait {
				c.kill(ctx, v, killAfterRestart)
				if sleep(ctx, between(rng, 200*time.Millisecond, time.Second)) {
					c.restart(v)
				}
			}
		case killRebalance:
			w := victims[1]
			if sleep(ctx, between(rng, 100*time.Millisecond, 500*time.Millisecond)) {
				c.kill(ctx, w, killRebalance)
				if sleep(ctx, between(rng, 200*time.Millisecond, time.Second)) {
					c.restart(w)
				}
			}
		}
		c.release(victims...)
	}
}

// waitAssigned waits up to d for inst's current process to log that it
// has partitions; false when ctx ended.
func (c *cluster) waitAssigned(ctx context.Context, inst *instance, d time.Duration) bool {
	c.mu.Lock()
	p := inst.p
	c.mu.Unlock()
	for end := time.Now().Add(d); p != nil && !logContains(p.log, logAssigned) && time.Now().Before(end); {
		if !sleep(ctx, 10*time.Millisecond) {
			return false
		}
	}
	return ctx.Err() == nil
}

// pauseLoop makes cfg.Pauses zombies, spread evenly over the fault phase:
// SIGSTOP for PauseFor (longer than the session timeout, so the group
// moves the member's partitions away and the broker aborts its
// transaction), then SIGCONT.
func (c *cluster) pauseLoop(ctx context.Context, deadline time.Time, rng *rand.Rand) {
	if c.cfg.Pauses == 0 {
		return
	}
	start := time.Now()
	span := time.Until(deadline) - c.cfg.PauseFor
	if span < 0 {
		span = 0
	}
	slot := span / time.Duration(c.cfg.Pauses)
	for i := range c.cfg.Pauses {
		at := start.Add(time.Duration(i)*slot + between(rng, slot/4, slot*3/4))
		if !sleep(ctx, time.Until(at)) {
			return
		}
		v, open := c.pickZombie(ctx, rng)
		if v == nil {
			c.log.Warn("no instance to pause")
			continue
		}
		c.mu.Lock()
		p := v.p
		v.paused = true
		c.mu.Unlock()
		ev := pauseEvent{Instance: v.id, Log: p.log, LogOffset: p.logSize(), Stopped: time.Now(), OpenTxn: open}
		p.signal(sigStop)
		c.log.Info("SIGSTOP", "incarnation", p.name, "for", c.cfg.PauseFor, "open_txn", open)
		sleep(ctx, c.cfg.PauseFor)
		p.signal(sigCont)
		ev.Continued = time.Now()
		c.log.Info("SIGCONT", "incarnation", p.name)
		c.mu.Lock()
		v.paused = false
		v.busy = false
		v.calmUntil = time.Now().Add(zombieCalm)
		c.mu.pauses = append(c.mu.pauses, ev)
		c.mu.Unlock()
	}
}

// pickZombie marks busy and returns an instance to pause, preferring one
// whose transaction is open: such a zombie has a transaction for the broker
// to abort at the transaction timeout, and must find itself fenced when it
// wakes. It waits up to 10s for any instance to be eligible and then up to
// 3s for one to have its transaction open.
func (c *cluster) pickZombie(ctx context.Context, rng *rand.Rand) (inst *instance, open bool) {
	var cands []*instance
	for try := 0; len(cands) == 0; try++ {
		if cands = c.pick(rng, c.cfg.Instances); len(cands) == 0 && (try == 50 || !sleep(ctx, 200*time.Millisecond)) {
			return nil, false
		}
	}
	chosen := cands[0]
	deadline := time.Now().Add(3 * time.Second)
	if c.cfg.Mode != exactlyOnce {
		deadline = time.Now() // the other modes need not use transactions
	}
probe:
	for time.Now().Before(deadline) {
		for _, inst := range cands {
			if open, _ = c.txnOpen(ctx, inst); open {
				chosen = inst
				break probe
			}
		}
		if !sleep(ctx, 25*time.Millisecond) {
			break
		}
	}
	for _, inst := range cands {
		if inst != chosen {
			c.release(inst)
		}
	}
	return chosen, open
}
