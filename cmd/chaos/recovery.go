package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// killRecovery is the kind of a measured kill of the recovery mode.
const killRecovery = "recovery"

// recoveryGrace: commits seen this soon after a kill are the killed
// process's own last transaction completing (its EndTxn was on the wire),
// not a recovery, which takes a process start, a join, a restore and a
// commit interval.
const recoveryGrace = 500 * time.Millisecond

// recoveryEvent is one measured kill: the instance's partitions at the
// kill, and how long until every one of them committed again.
type recoveryEvent struct {
	At         time.Time
	Instance   string
	Partitions []int32
	Took       time.Duration
	Measured   bool
}

// recoveryLoop is the fault phase of the recovery mode: cfg.RecoveryKills
// times, it waits until the group is settled (stable, every instance a
// member, the victim's partitions committing), SIGKILLs the next instance
// in turn while its transaction is open, starts it again at once, and
// waits until every partition the victim owned has committed past its
// offset at the kill. That time is what a user sees: how long the output
// of a crashed instance's partitions stops.
//
// With dynamic membership the restarted process is a new member; the
// coordinator hands out the dead member's partitions only once its
// session expired (the rebalance the newcomer starts waits for it). With
// static membership the restarted process takes over the dead member's
// place under the same group.instance.id and gets its partitions back
// without a rebalance.
func (c *cluster) recoveryLoop(ctx context.Context, deadline time.Time, mon *offsetMonitor) {
	// A kill starts only this long before the input stops: time for a
	// dynamic member's session to expire and the group to rebalance
	// while input still streams. (The measurement itself may end after
	// that: the victim's partitions have a backlog to commit.)
	need := c.cfg.SessionTimeout + 10*time.Second
	for i := 0; i < c.cfg.RecoveryKills; i++ {
		c.mu.Lock()
		inst := c.mu.inst[i%len(c.mu.inst)]
		c.mu.Unlock()
		parts, ok := c.waitSettled(ctx, inst, mon, deadline.Add(-need))
		if !ok {
			c.log.Warn("recovery: the group did not settle before the fault phase ends; no more measured kills", "done", i)
			return
		}
		c.mu.Lock()
		inst.busy = true
		c.mu.Unlock()
		c.waitTxnOpen(ctx, inst, 5*time.Second)
		at := c.kill(ctx, inst, killRecovery)
		c.restart(inst)
		ev := recoveryEvent{At: at, Instance: inst.id, Partitions: parts}
		// The killed process's last transaction may have been ending
		// (its EndTxn on the wire): its offsets show up a moment after
		// the kill. Progress counts from recoveryGrace on.
		from := at.Add(recoveryGrace)
		sleep(ctx, recoveryGrace)
		for wait := at.Add(c.cfg.SessionTimeout + c.cfg.RebalanceTimeout + 40*time.Second); time.Now().Before(wait); {
			if d, ok := mon.resumed(at, from, parts); ok {
				ev.Took, ev.Measured = d, true
				break
			}
			if !sleep(ctx, 100*time.Millisecond) {
				break
			}
		}
		c.release(inst)
		c.log.Info("recovery", "instance", inst.id, "partitions", parts, "measured", ev.Measured, "took", ev.Took.Round(time.Millisecond))
		c.mu.Lock()
		c.mu.recoveries = append(c.mu.recoveries, ev)
		c.mu.Unlock()
	}
}

// waitSettled waits until the group is Stable with one member per
// instance, inst's member owns partitions of `in`, and each of them
// committed within the last second; it returns those partitions. It gives
// up at until.
func (c *cluster) waitSettled(ctx context.Context, inst *instance, mon *offsetMonitor, until time.Time) ([]int32, bool) {
	for time.Now().Before(until) {
		if parts := c.memberPartitions(ctx, inst); len(parts) > 0 && mon.movedSince(parts, time.Now().Add(-time.Second)) {
			return parts, true
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return nil, false
		}
	}
	return nil, false
}

// memberPartitions are the partitions of `in` the group assigns to inst's
// member, when the group is Stable with as many members as instances.
func (c *cluster) memberPartitions(ctx context.Context, inst *instance) []int32 {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	gs, err := c.adm.DescribeGroups(ctx, pipelineName)
	if err != nil {
		return nil
	}
	g := gs[pipelineName]
	if g.State != "Stable" || len(g.Members) != c.cfg.Instances {
		return nil
	}
	for _, m := range g.Members {
		if !c.isMember(m, inst) {
			continue
		}
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			return nil
		}
		var parts []int32
		for _, t := range a.Topics {
			if t.Topic == "in" {
				parts = append(parts, t.Partitions...)
			}
		}
		slices.Sort(parts)
		return parts
	}
	return nil
}

// isMember reports whether m is inst's member: by its group instance id
// when static, by its client id when dynamic.
func (c *cluster) isMember(m kadm.DescribedGroupMember, inst *instance) bool {
	if c.cfg.StaticMembership {
		return m.InstanceID != nil && *m.InstanceID == c.txnID(inst.id)
	}
	return m.ClientID == c.clientID(inst.id)
}

// recoveryCoverage fills the recovery figures.
func recoveryCoverage(rep *Report, cfg Config, evs []recoveryEvent) {
	if cfg.RecoveryKills == 0 {
		return
	}
	rep.RecoveryMembership = "dynamic"
	if cfg.StaticMembership {
		rep.RecoveryMembership = "static"
	}
	rep.RecoverySessionTimeout = cfg.SessionTimeout.Seconds()
	rep.RecoveryKills = len(evs)
	var ds []time.Duration
	for _, ev := range evs {
		if ev.Measured {
			ds = append(ds, ev.Took)
		} else {
			rep.Problems = append(rep.Problems, fmt.Sprintf("recovery kill of %s at %s: partitions %v did not commit again in time", ev.Instance, ev.At.Format(time.TimeOnly), ev.Partitions))
		}
	}
	rep.RecoveryKillsMeasured = len(ds)
	rep.RecoveryVictimP50, rep.RecoveryVictimMax = p50max(ds)
}
