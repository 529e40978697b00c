package topology

import "slices"

// A stream-stream join's task is partition p of every topic either side
// reads: records of one key must meet in one task. When both sides are
// still keyed as their topics were written (no key step, no repartitioning
// aggregate upstream), the topics must be co-partitioned (one partition
// count, the same producer partitioner; checked at start). Otherwise both
// sides go through the step's repartition topic, keyed by the join key,
// and the task's event time is the minimum over the upstream partitions,
// as behind an aggregate's repartition.

// streamJoinStep plans stream-stream join n: its store's tasks are the
// partitions of the first topic of this stream (the join's from), and
// partition p of every topic either side reads is one task.
func streamJoinStep(t *Topology, n *Node, up *upstream) *StatefulStep {
	s := &StatefulStep{Node: n,
		Changelog: InternalTopic{Name: ChangelogTopic(t.Name, n.Name), Purpose: "changelog", Configs: changelogConfigs, Exact: true}}
	if n.Join.Repartition {
		s.Repartition = &InternalTopic{Name: RepartitionTopic(t.Name, n.Name), Purpose: "repartition", Configs: repartitionConfigs, Exact: true}
		s.Input = s.Repartition.Name
		s.CoPartition = []string{s.Input}
		for _, i := range up.topics[n] {
			s.Feeds = append(s.Feeds, up.names[i])
		}
		return s
	}
	for _, in := range n.Inputs {
		if in != n.Join.Stream {
			s.Input = up.first[in]
			break
		}
	}
	if s.Input == "" {
		s.Input = up.first[n.Join.Stream]
	}
	s.CoPartition = []string{s.Input}
	for _, i := range up.topics[n] {
		s.Feeds = append(s.Feeds, up.names[i])
		if name := up.names[i]; !slices.Contains(s.CoPartition, name) {
			s.CoPartition = append(s.CoPartition, name)
		}
	}
	s.Changelog.PartitionsOf = s.Input
	return s
}
