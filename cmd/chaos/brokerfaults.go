package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// brokerNodes is a Kafka cluster whose nodes the harness may SIGKILL and
// restart, and ask who leads and coordinates what: *kafkatest.Cluster.
type brokerNodes interface {
	Nodes() int
	Addrs() []string
	Kill(node int32)
	Restart(ctx context.Context, node int32) error
	Leader(ctx context.Context, topic string, partition int32) (int32, error)
	GroupCoordinator(ctx context.Context, group string) (int32, error)
	TxnCoordinator(ctx context.Context, txnID string) (int32, error)
}

// The roles a broker kill aims at, in turn.
const (
	roleInLeader   = "input partition leader"
	roleOutLeader  = "output partition leader"
	roleGroupCoord = "group coordinator"
	roleTxnCoord   = "transaction coordinator"
)

var brokerRoles = []string{roleInLeader, roleOutLeader, roleGroupCoord, roleTxnCoord}

// The moments a broker kill lands at, in turn.
const (
	momentStream  = "mid-stream"       // whenever the loop gets there
	momentCommit  = "mid-commit"       // an instance's transaction is being committed (or at least open)
	momentRestore = "during a restore" // an instance just restarted and got its partitions
)

var brokerMoments = []string{momentStream, momentCommit, momentRestore}

// brokerSchedule is the role and moment of each broker kill in turn: the
// first four aim at each role once, at the moment that tests it most (a
// partition leader failing over under a fetch, an output leader and a
// transaction coordinator while a transaction ends, the group coordinator
// while an instance joins and restores); all twelve pairs by the twelfth.
var brokerSchedule = [][2]string{
	{roleInLeader, momentStream},
	{roleOutLeader, momentCommit},
	{roleGroupCoord, momentRestore},
	{roleTxnCoord, momentCommit},
	{roleInLeader, momentRestore},
	{roleOutLeader, momentStream},
	{roleGroupCoord, momentCommit},
	{roleTxnCoord, momentRestore},
	{roleInLeader, momentCommit},
	{roleOutLeader, momentRestore},
	{roleGroupCoord, momentStream},
	{roleTxnCoord, momentStream},
}

// killForRestore is the kind of the instance kill that sets up a broker
// kill during a restore.
const killForRestore = "for-restore"

type brokerKillEvent struct {
	At       time.Time
	Node     int32
	Role     string
	Moment   string
	Target   string   // the partition, group or transactional id of the role
	Instance string   // the instance whose commit or restore the kill aimed at
	Held     []string // every role the node held at the kill
	// Committing: the kill aimed at a commit found the instance's
	// transaction in PrepareCommit at the broker (else it was Ongoing,
	// or the broker did not say).
	Committing bool
	// CommitLate: else the transaction was Ongoing for longer than the
	// commit interval: the instance was ending it.
	CommitLate bool
	// Restoring: the kill aimed at a restore came before the instance
	// logged that it restored.
	Restoring bool
	Down      time.Duration // killed until restarted
	Restart   time.Duration // restart until the cluster lists it again
	InSync    time.Duration // restart until every partition's replicas are all in sync
	Err       string
}

// brokerLoop sends cfg.BrokerKills broker kills over the fault phase, the
// role and the moment of each as brokerSchedule says, each node restarted after
// cfg.BrokerDown and given time to catch up (every replica back in sync)
// before the next kill: with min.insync.replicas=2 of 3, a second node
// down would stop every write, which tests patience, not correctness. It
// goes on past the deadline until every role was aimed at once.
func (c *cluster) brokerLoop(ctx context.Context, deadline time.Time, rng *rand.Rand) {
	for i := 0; i < c.cfg.BrokerKills; i++ {
		remaining := time.Until(deadline)
		if remaining <= 0 && i >= len(brokerRoles) {
			return
		}
		// A kill cycle (down, restart, catching up) takes 10 to 30s on
		// two busy cores: wait only a small part of the slot first.
		gap := 500 * time.Millisecond
		if remaining > 0 {
			gap += time.Duration(float64(remaining/time.Duration(c.cfg.BrokerKills-i)) * 0.15 * rng.Float64())
		}
		if !sleep(ctx, gap) {
			return
		}
		k := brokerSchedule[i%len(brokerSchedule)]
		c.brokerKill(ctx, rng, k[0], k[1])
	}
}

// brokerKill does one kill: finds the node holding role (for an instance
// it picks), waits for moment, SIGKILLs the node, restarts it after a
// while and waits until its replicas are back in sync.
func (c *cluster) brokerKill(ctx context.Context, rng *rand.Rand, role, moment string) {
	var inst *instance
	for try := 0; inst == nil; try++ {
		if vs := c.pick(rng, 1); len(vs) > 0 {
			inst = vs[0]
		} else if try == 100 || !sleep(ctx, 100*time.Millisecond) {
			break
		}
	}
	if inst != nil {
		defer c.release(inst)
	}
	ev := brokerKillEvent{Role: role, Moment: moment}
	if inst != nil {
		ev.Instance = inst.id
	}
	var restoreLog string
	if moment == momentRestore && inst != nil {
		// Kill and restart the instance, then kill the broker as soon
		// as the new process has its partitions: it restores them now.
		c.kill(ctx, inst, killForRestore)
		c.restart(inst)
		c.mu.Lock()
		p := inst.p
		c.mu.Unlock()
		if p != nil {
			restoreLog = p.log
			for wait := time.Now().Add(30 * time.Second); !logContains(p.log, logAssigned) && time.Now().Before(wait); {
				if !sleep(ctx, 20*time.Millisecond) {
					return
				}
			}
		}
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	node, target, err := c.roleNode(lctx, rng, role, inst)
	cancel()
	if err != nil {
		ev.Err = fmt.Sprintf("finding the %s: %v", role, err)
		c.recordBrokerKill(ev)
		return
	}
	ev.Node, ev.Target = node, target
	ev.Held = c.rolesHeld(ctx, node)
	if moment == momentCommit && inst != nil {
		ev.Committing, ev.CommitLate = c.waitCommitting(ctx, inst, 3*time.Second)
	}
	if restoreLog != "" {
		ev.Restoring = !logContains(restoreLog, "msg=restored")
	}
	ev.At = time.Now()
	c.cfg.Kafka.Kill(node)
	c.log.Info("broker SIGKILL", "node", node, "role", role, "target", target, "moment", moment, "instance", ev.Instance,
		"held", strings.Join(ev.Held, ", "), "prepare_commit", ev.Committing, "txn_past_commit_interval", ev.CommitLate, "restoring", ev.Restoring)
	down := c.cfg.BrokerDown
	if down == 0 {
		down = between(rng, time.Second, 3*time.Second)
	}
	sleep(ctx, down)
	ev.Down = time.Since(ev.At)
	restarted := time.Now()
	if err := c.cfg.Kafka.Restart(ctx, node); err != nil {
		ev.Err = fmt.Sprintf("restarting node %d: %v", node, err)
		c.recordBrokerKill(ev)
		return
	}
	ev.Restart = time.Since(restarted)
	if err := c.waitInSync(ctx, 2*time.Minute); err != nil {
		ev.Err = fmt.Sprintf("after restarting node %d: %v", node, err)
	}
	ev.InSync = time.Since(restarted)
	c.log.Info("broker restarted", "node", node, "down", ev.Down.Round(time.Millisecond), "restart", ev.Restart.Round(time.Millisecond), "in_sync", ev.InSync.Round(time.Millisecond))
	c.recordBrokerKill(ev)
}

func (c *cluster) recordBrokerKill(ev brokerKillEvent) {
	if ev.Err != "" {
		c.log.Error("broker kill", "role", ev.Role, "moment", ev.Moment, "err", ev.Err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.brokerKills = append(c.mu.brokerKills, ev)
}

// roleNode is the node holding role now, and what it holds it for.
func (c *cluster) roleNode(ctx context.Context, rng *rand.Rand, role string, inst *instance) (int32, string, error) {
	k := c.cfg.Kafka
	switch role {
	case roleInLeader, roleOutLeader:
		topic := "in"
		if role == roleOutLeader {
			topic = "out"
		}
		p := int32(rng.IntN(partitions))
		n, err := k.Leader(ctx, topic, p)
		return n, fmt.Sprintf("%s/%d", topic, p), err
	case roleGroupCoord:
		n, err := k.GroupCoordinator(ctx, pipelineName)
		return n, "group " + pipelineName, err
	default:
		id := c.txnID("i1")
		if inst != nil {
			id = c.txnID(inst.id)
		}
		n, err := k.TxnCoordinator(ctx, id)
		return n, "transactional id " + id, err
	}
}

// rolesHeld lists the roles node holds now: leader of any partition of in
// or out, coordinator of the group or of any instance's transactional id.
func (c *cluster) rolesHeld(ctx context.Context, node int32) []string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var held []string
	if m, err := c.adm.Metadata(ctx, "in", "out"); err == nil {
		for _, t := range []struct{ topic, role string }{{"in", roleInLeader}, {"out", roleOutLeader}} {
			for _, p := range m.Topics[t.topic].Partitions {
				if p.Leader == node {
					held = append(held, t.role)
					break
				}
			}
		}
	}
	if r, ok := c.adm.FindGroupCoordinators(ctx, pipelineName)[pipelineName]; ok && r.Err == nil && r.NodeID == node {
		held = append(held, roleGroupCoord)
	}
	var ids []string
	for i := range c.cfg.Instances {
		ids = append(ids, c.txnID(fmt.Sprintf("i%d", i+1)))
	}
	for _, r := range c.adm.FindTxnCoordinators(ctx, ids...) {
		if r.Err == nil && r.NodeID == node {
			held = append(held, roleTxnCoord)
			break
		}
	}
	return held
}

// waitCommitting waits up to d for inst's transaction to be committing:
// in PrepareCommit at its coordinator (the end of the transaction is under
// way: markers being written), or Ongoing for longer than the commit
// interval (the instance is flushing, committing offsets or ending it). It
// reports which it caught; failing both, it settles for an open
// transaction.
func (c *cluster) waitCommitting(ctx context.Context, inst *instance, d time.Duration) (prepare, late bool) {
	id := c.txnID(inst.id)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		ds, err := c.adm.DescribeTransactions(qctx, id)
		cancel()
		var t kadm.DescribedTransaction
		if err == nil {
			t, err = ds.On(id, nil)
		}
		if err != nil || t.Err != nil {
			sleep(ctx, 10*time.Millisecond)
			continue
		}
		switch {
		case strings.EqualFold(t.State, "PrepareCommit"):
			return true, false
		case strings.EqualFold(t.State, "Ongoing") && time.Since(time.UnixMilli(t.StartTimestamp)) > commitInterval:
			return false, true
		}
	}
	c.waitTxnOpen(ctx, inst, time.Second)
	return false, false
}

// waitInSync waits until every partition of every topic (Kafka's own
// included) has all its replicas in sync.
func (c *cluster) waitInSync(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	last := "no answer"
	for {
		m, err := c.adm.Metadata(ctx)
		if err == nil {
			var behind []string
			for _, t := range m.Topics.Sorted() {
				for _, p := range t.Partitions.Sorted() {
					if len(p.ISR) < len(p.Replicas) || p.Leader < 0 {
						behind = append(behind, fmt.Sprintf("%s/%d (isr %v of %v)", t.Topic, p.Partition, p.ISR, p.Replicas))
					}
				}
			}
			if len(behind) == 0 {
				return nil
			}
			last = fmt.Sprintf("%d partitions not in sync, e.g. %s", len(behind), behind[0])
		} else {
			last = err.Error()
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return fmt.Errorf("replicas not back in sync within %s: %s", d, last)
		}
	}
}

// replication fills the report's replication figures: the smallest
// replication factor and min.insync.replicas over every topic of the run
// and Kafka's transaction state log and offsets topic.
func replication(ctx context.Context, adm *kadm.Client, rep *Report) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := adm.Metadata(ctx)
	if err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("metadata for the replication check: %v", err))
		return
	}
	rep.MinReplicationFactor = -1
	var names []string
	for _, t := range m.Topics.Sorted() {
		names = append(names, t.Topic)
		for _, p := range t.Partitions {
			if rf := len(p.Replicas); rep.MinReplicationFactor < 0 || rf < rep.MinReplicationFactor {
				rep.MinReplicationFactor = rf
			}
		}
	}
	rep.ReplicatedTopics = len(names)
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("topic configs for the replication check: %v", err))
		return
	}
	rep.MinInsyncReplicas = -1
	for _, rc := range rcs {
		if rc.Err != nil {
			continue
		}
		for _, cfg := range rc.Configs {
			if cfg.Key != "min.insync.replicas" || cfg.Value == nil {
				continue
			}
			var v int
			if _, err := fmt.Sscan(*cfg.Value, &v); err == nil && (rep.MinInsyncReplicas < 0 || v < rep.MinInsyncReplicas) {
				rep.MinInsyncReplicas = v
			}
		}
	}
}

// brokerCoverage fills the broker figures from the kill events.
func brokerCoverage(rep *Report, evs []brokerKillEvent) {
	rep.BrokerKillsByRole = map[string]int{}
	rep.BrokerKillsHeld = map[string]int{}
	rep.BrokerKillsByMoment = map[string]int{}
	var restart, inSync []time.Duration
	for _, ev := range evs {
		if ev.Err != "" {
			rep.BrokerKillErrors++
			rep.Problems = append(rep.Problems, "broker kill ("+ev.Role+", "+ev.Moment+"): "+ev.Err)
		}
		if ev.At.IsZero() {
			continue
		}
		rep.BrokerKills++
		rep.BrokerKillsByRole[ev.Role]++
		rep.BrokerKillsByMoment[ev.Moment]++
		for _, h := range ev.Held {
			rep.BrokerKillsHeld[h]++
		}
		if ev.Committing {
			rep.BrokerKillsCommitting++
		}
		if ev.CommitLate {
			rep.BrokerKillsCommitLate++
		}
		if ev.Restoring {
			rep.BrokerKillsRestoring++
		}
		if ev.Err == "" {
			restart = append(restart, ev.Restart)
			inSync = append(inSync, ev.InSync)
		}
	}
	rep.BrokerRestartP50, rep.BrokerRestartMax = p50max(restart)
	rep.BrokerInSyncP50, rep.BrokerInSyncMax = p50max(inSync)
}

// p50max are the median and the largest of ds, in seconds.
func p50max(ds []time.Duration) (p50, mx float64) {
	if len(ds) == 0 {
		return 0, 0
	}
	ds = slices.Clone(ds)
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[(len(ds)-1)/2].Seconds(), ds[len(ds)-1].Seconds()
}
