// Package balance assigns a consumer group's partitions so that topics read
// together stay together: partition p of every topic of a co-partition
// group goes to one member, as Kafka Streams' task assignor does for the
// two sides of a join. Everything else is kgo's sticky balancer: the groups
// are shown to it as one topic each (their first), and its plan is widened
// back to every topic of the group, so each member keeps what it had
// across rebalances.
package balance

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Protocol is the name the balancer joins a group with. It differs from
// kgo's "sticky", so a member without it (an older version) cannot be
// mixed into a group that needs co-partitioning: the join fails with
// INCONSISTENT_GROUP_PROTOCOL rather than split a task.
const Protocol = "exactly-copartitioned-sticky"

// New returns a balancer keeping each of groups (topics whose partition p
// must go to one member) together, sticky otherwise. Without groups it is
// kgo's sticky balancer itself.
func New(groups [][]string) kgo.GroupBalancer {
	inner := kgo.StickyBalancer()
	if len(groups) == 0 {
		return inner
	}
	b := &balancer{inner: inner, rep: map[string]string{}, members: map[string][]string{}}
	for _, g := range groups {
		b.members[g[0]] = g[1:]
		for _, t := range g[1:] {
			b.rep[t] = g[0]
		}
	}
	return b
}

type balancer struct {
	inner kgo.GroupBalancer
	// rep maps every topic of a group but its first to the first.
	rep map[string]string
	// members maps each group's first topic to the others.
	members map[string][]string
}

func (b *balancer) ProtocolName() string { return Protocol }
func (b *balancer) IsCooperative() bool  { return b.inner.IsCooperative() }

func (b *balancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	return b.inner.JoinGroupMetadata(interests, current, generation)
}

func (b *balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return b.inner.ParseSyncAssignment(assignment)
}

// MemberBalancer hands the sticky balancer the members as if each group
// were its first topic: the other topics leave their subscriptions and
// their previous assignments.
func (b *balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	narrowed := make([]kmsg.JoinGroupResponseMember, len(members))
	for i, m := range members {
		meta, err := b.narrow(m.ProtocolMetadata)
		if err != nil {
			return nil, nil, fmt.Errorf("member %s: %w", m.MemberID, err)
		}
		narrowed[i] = m
		narrowed[i].ProtocolMetadata = meta
	}
	mb, topics, err := b.inner.MemberBalancer(narrowed)
	if err != nil {
		return nil, nil, err
	}
	// Ask for the partition counts of every topic of a group, to check
	// them.
	for first, others := range b.members {
		if _, ok := topics[first]; ok {
			for _, t := range others {
				topics[t] = struct{}{}
			}
		}
	}
	return &memberBalancer{b: b, inner: mb}, topics, nil
}

// narrow drops the topics that are not first of their group from a
// member's subscription and previous assignment.
func (b *balancer) narrow(metadata []byte) ([]byte, error) {
	var meta kmsg.ConsumerMemberMetadata
	meta.Default()
	if err := meta.ReadFrom(metadata); err != nil {
		return nil, fmt.Errorf("reading member metadata: %w", err)
	}
	meta.Topics = slices.DeleteFunc(meta.Topics, b.isFollower)
	meta.OwnedPartitions = slices.DeleteFunc(meta.OwnedPartitions, func(o kmsg.ConsumerMemberMetadataOwnedPartition) bool {
		return b.isFollower(o.Topic)
	})
	if len(meta.UserData) > 0 {
		var sticky kmsg.StickyMemberMetadata
		sticky.Default()
		if err := sticky.ReadFrom(meta.UserData); err != nil {
			return nil, fmt.Errorf("reading sticky assignment: %w", err)
		}
		sticky.CurrentAssignment = slices.DeleteFunc(sticky.CurrentAssignment, func(a kmsg.StickyMemberMetadataCurrentAssignment) bool {
			return b.isFollower(a.Topic)
		})
		meta.UserData = sticky.AppendTo(nil)
	}
	return meta.AppendTo(nil), nil
}

func (b *balancer) isFollower(topic string) bool {
	_, ok := b.rep[topic]
	return ok
}

type memberBalancer struct {
	b     *balancer
	inner kgo.GroupMemberBalancer
}

// SetBalanceInfo passes the cluster's description on (racks).
func (m *memberBalancer) SetBalanceInfo(info kgo.BalanceInfo) {
	if ib, ok := m.inner.(kgo.GroupMemberBalancerInfo); ok {
		ib.SetBalanceInfo(info)
	}
}

func (m *memberBalancer) Balance(topics map[string]int32) kgo.IntoSyncAssignment {
	into, _ := m.BalanceOrError(topics)
	return into
}

// BalanceOrError balances the groups' first topics with the others left
// out, then gives each member the same partitions of the others. Topics of
// a group with unequal partition counts are an error: a partition would
// have no partner (exactly checks this at start, before joining).
func (m *memberBalancer) BalanceOrError(topics map[string]int32) (kgo.IntoSyncAssignment, error) {
	narrowed := make(map[string]int32, len(topics))
	for t, n := range topics {
		first, follower := m.b.rep[t]
		if !follower {
			narrowed[t] = n
			continue
		}
		if want, ok := topics[first]; ok && want != n {
			return nil, fmt.Errorf("topics %s (%d partitions) and %s (%d partitions) are read together, partition by partition: give them the same partition count", first, want, t, n)
		}
	}
	var into kgo.IntoSyncAssignment
	if eb, ok := m.inner.(kgo.GroupMemberBalancerOrError); ok {
		var err error
		if into, err = eb.BalanceOrError(narrowed); err != nil {
			return nil, err
		}
	} else {
		into = m.inner.Balance(narrowed)
	}
	return widened{b: m.b, inner: into, counts: topics}, nil
}

// widened is a sticky plan with every group's other topics added beside
// its first.
type widened struct {
	b      *balancer
	inner  kgo.IntoSyncAssignment
	counts map[string]int32
}

func (w widened) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	out := w.inner.IntoSyncAssignment()
	for i := range out {
		var a kmsg.ConsumerMemberAssignment
		a.Default()
		if err := a.ReadFrom(out[i].MemberAssignment); err != nil {
			continue // kgo's own encoding: cannot fail
		}
		var add []kmsg.ConsumerMemberAssignmentTopic
		for _, t := range a.Topics {
			for _, other := range w.b.members[t.Topic] {
				if _, ok := w.counts[other]; ok {
					add = append(add, kmsg.ConsumerMemberAssignmentTopic{Topic: other, Partitions: slices.Clone(t.Partitions)})
				}
			}
		}
		if len(add) == 0 {
			continue
		}
		a.Topics = append(a.Topics, add...)
		slices.SortFunc(a.Topics, func(x, y kmsg.ConsumerMemberAssignmentTopic) int {
			switch {
			case x.Topic < y.Topic:
				return -1
			case x.Topic > y.Topic:
				return 1
			}
			return 0
		})
		out[i].MemberAssignment = a.AppendTo(nil)
	}
	return out
}
