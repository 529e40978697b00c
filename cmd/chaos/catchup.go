package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ghostGrace is how long the group may show more members than there are
// live processes before the harness calls the extra ones ghosts: a killed
// member's session expires after the session timeout, and the rebalance
// that follows takes a moment.
func (c *cluster) ghostGrace() time.Duration { return c.cfg.SessionTimeout + 3*time.Second }

// catchUp waits until done reports the group has consumed everything it
// must (every committed record of `in`, and what the windows need: see
// windowSettle), up to timeout.
//
// kfake (the embedded broker) can leave a ghost member in the group
// forever: a new member's pending timer stops when its JoinGroup arrives;
// if the process dies while that JoinGroup waits for the rebalance, the
// JoinGroup response cannot be delivered, and kfake's group.reply then
// skips updateHeartbeat, so the member never gets a session timer. Once
// the leader's SyncGroup completes the rebalance, clearPendingSync also
// stops the timer that would have dropped members that never synced. The
// group is Stable with a dead member owning partitions, and nothing ever
// moves them. Real Kafka expires such a member after its session timeout.
// When the group holds more members than there are live processes for
// longer than ghostGrace, catchUp counts a ghost and restarts one
// instance with SIGTERM: its LeaveGroup starts a rebalance, which drops
// members that do not rejoin.
func (c *cluster) catchUp(ctx context.Context, cl *kgo.Client, timeout time.Duration, rep *Report, done func(context.Context, *kgo.Client) bool) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var extraSince time.Time
	nudge := 0
	for {
		if done(ctx, cl) {
			return true
		}
		if g, err := c.adm.DescribeGroups(ctx, pipelineName); err == nil {
			d := g[pipelineName]
			switch {
			case d.State != "Stable" || len(d.Members) <= c.cfg.Instances:
				extraSince = time.Time{}
			case extraSince.IsZero():
				extraSince = time.Now()
			case time.Since(extraSince) > c.ghostGrace():
				rep.GhostMembers += len(d.Members) - c.cfg.Instances
				rep.Problems = append(rep.Problems, "ghost member in the group, restarting one instance to shed it; "+describeGroup(ctx, c.adm))
				c.log.Warn("ghost member in the group: restarting an instance to make the broker drop it", "members", len(d.Members), "live", c.cfg.Instances)
				if err := c.restartGracefully(nudge % c.cfg.Instances); err != nil {
					rep.Problems = append(rep.Problems, err.Error())
				}
				nudge++
				extraSince = time.Time{}
			}
		}
		if !sleep(ctx, 500*time.Millisecond) {
			return false
		}
	}
}

// restartGracefully stops instance i with SIGTERM and starts it again.
func (c *cluster) restartGracefully(i int) error {
	c.mu.Lock()
	inst := c.mu.inst[i]
	p := inst.p
	c.mu.Unlock()
	var err error
	if p != nil {
		if err = p.stop(stopTimeout); err != nil {
			c.mu.Lock()
			c.mu.unclean = append(c.mu.unclean, fmt.Sprintf("%v; last lines:\n%s", err, tail(p.log, 15)))
			c.mu.Unlock()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	inst.p = nil
	if serr := c.startLocked(inst); serr != nil {
		return serr
	}
	c.mu.restarts++
	return nil
}
