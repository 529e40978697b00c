package topology

import (
	"errors"
	"fmt"
	"slices"
)

// Plan is how a validated pipeline runs: its stateful steps with the store
// and internal topics each owns, the topics whose partitions its tasks
// read, and the co-partition groups the group's balancer keeps together.
// Topic provisioning, the runtime graph and describe all read it; nothing
// else works these out.
type Plan struct {
	// Pipeline is the pipeline's name, which internal topics are named
	// after.
	Pipeline string
	// Sources are the source topics, in file order, without repeats.
	Sources []string
	// Stateful are the steps that keep a store, in processing order.
	Stateful []*StatefulStep
	// DeadLetter is the dead-letter topic the runtime creates when
	// missing; nil without one.
	DeadLetter *InternalTopic
	// Joins are the join steps, in processing order.
	Joins []*JoinStep
	// Globals are the global tables: every instance reads all of each
	// (not through the group), before it processes anything.
	Globals []*Node
}

// JoinStep is a join: partition p of its input and of its table's topic
// are one task.
type JoinStep struct {
	Node *Node
	// Input is the topic the joined records are read from (keyed as
	// read: the plan's parse checked it).
	Input string
	// Repartition is the topic the records go through first when they
	// are not keyed as read; nil otherwise.
	Repartition *InternalTopic
	// Table is the table source's store; nil for a global table.
	Table *StatefulStep
	// Global is the global table source, or nil.
	Global *Node
	// Left is the store of the table a table-table join reads from
	// (Input is its topic); nil for a stream-table join.
	Left *StatefulStep
	// Subscription and Response are a foreign-key join's topics (see
	// foreignKeyJoin); nil for other joins.
	Subscription, Response *InternalTopic
}

// CoPartition returns the topics whose partition p the join reads in one
// task: its input and its table's topic, or for a foreign-key join the
// response topic and the left table's (the subscription topic and the
// right table's are its store's).
func (j *JoinStep) CoPartition() []string {
	if j.Foreign() {
		return []string{j.Response.Name, j.Input}
	}
	return []string{j.Input, j.Table.Input}
}

// StatefulStep is a step that keeps a store: its state is split into
// tasks, one per partition of its input topic, each backed by the same
// partition of its changelog topic.
type StatefulStep struct {
	Node *Node
	// Table: the store of a table source, backed by the source's own
	// topic (Changelog names it; the runtime neither creates it nor
	// writes to it).
	Table bool
	// Changelog backs the step's store; compacted.
	Changelog InternalTopic
	// Repartition is the topic records reach the step through when they
	// must be regrouped by a key other than their record key; nil when
	// the step reads its source's partitions directly.
	Repartition *InternalTopic
	// Input is the topic whose partitions are the step's tasks: the
	// repartition topic, or the one source topic the step reads.
	Input string
	// Feeds are the source topics whose records reach the step, in file
	// order: behind a repartition, each of their partitions writes its
	// watermark into every repartition partition.
	Feeds []string
	// CoPartition are the topics whose partition p one task of the step
	// reads together, Input first. Partition p of each goes to the same
	// member, and they must have one partition count.
	CoPartition []string
}

// InternalTopic is a topic the runtime creates for the pipeline.
type InternalTopic struct {
	Name string
	// Purpose says what the topic is for: "changelog", "repartition" or
	// "dead letters".
	Purpose string
	// PartitionsOf names the source topic whose partition count the
	// topic takes; "" for the most of any source topic.
	PartitionsOf string
	// Configs are the topic configs it is created with.
	Configs map[string]string
	// Exact: an existing topic with another partition count is an error
	// (a changelog's partitions are its tasks' stores; a repartition
	// topic's are its tasks).
	Exact bool
}

// Internal topic configs. A changelog is compacted: the latest value per
// key is the store. Repartition and dead-letter topics keep their records
// until exactly deletes them (retention counts from record timestamps, and
// a replayed backlog carries old ones): repartition records once their
// offsets are committed, dead letters never (they wait for a person).
var (
	changelogConfigs   = map[string]string{"cleanup.policy": "compact"}
	repartitionConfigs = map[string]string{"cleanup.policy": "delete", "retention.ms": "-1"}
)

// Stateful reports whether a step of kind k keeps a store.
func (k Kind) Stateful() bool { return k == KindAggregate || k == KindDedupe }

// Repartitioned reports whether records reach n, an aggregate step,
// through its repartition topic.
func (n *Node) Repartitioned() bool {
	switch {
	case n.Kind == KindAggregate && n.Aggregate != nil:
		return !n.Aggregate.GroupByKey
	case n.Kind == KindJoin && n.Join != nil:
		return n.Join.Repartition
	}
	return false
}

// Step returns the plan of stateful step name, or nil.
func (p *Plan) Step(name string) *StatefulStep {
	for _, s := range p.Stateful {
		if s.Node.Name == name {
			return s
		}
	}
	return nil
}

// Topics returns every internal topic of the plan: per stateful step its
// repartition topic (if any) and changelog, then the dead-letter topic.
func (p *Plan) Topics() []InternalTopic {
	var out []InternalTopic
	for _, s := range p.Stateful {
		if s.Repartition != nil {
			out = append(out, *s.Repartition)
		}
		if !s.Table {
			out = append(out, s.Changelog)
		}
	}
	for _, j := range p.Joins {
		if j.Repartition != nil {
			out = append(out, *j.Repartition)
		}
		if j.Foreign() {
			out = append(out, *j.Subscription, *j.Response)
		}
	}
	if p.DeadLetter != nil {
		out = append(out, *p.DeadLetter)
	}
	return out
}

// RepartitionTopics returns the repartition topics of the plan.
func (p *Plan) RepartitionTopics() []string {
	var out []string
	for _, s := range p.Stateful {
		if s.Repartition != nil {
			out = append(out, s.Repartition.Name)
		}
	}
	for _, j := range p.Joins {
		if j.Repartition != nil {
			out = append(out, j.Repartition.Name)
		}
		if j.Foreign() {
			out = append(out, j.Subscription.Name, j.Response.Name)
		}
	}
	return out
}

// CoPartitionGroups returns the sets of two or more topics whose partition
// p must be assigned to one member, merged where they share a topic.
func (p *Plan) CoPartitionGroups() [][]string {
	var groups [][]string
	var sets [][]string
	for _, s := range p.Stateful {
		sets = append(sets, s.CoPartition)
	}
	for _, j := range p.Joins {
		if j.Table != nil {
			sets = append(sets, j.CoPartition())
		}
	}
	for _, set := range sets {
		if len(set) < 2 {
			continue
		}
		g := slices.Clone(set)
		// Merge every group sharing a topic with g into g.
		for i := 0; i < len(groups); {
			if slices.ContainsFunc(groups[i], func(t string) bool { return slices.Contains(g, t) }) {
				for _, t := range groups[i] {
					if !slices.Contains(g, t) {
						g = append(g, t)
					}
				}
				groups = slices.Delete(groups, i, i+1)
				continue
			}
			i++
		}
		groups = append(groups, g)
	}
	return groups
}

// Partitions returns the partition count of every topic the plan reads or
// creates, given the counts of its source topics: an internal topic takes
// the count of the source its PartitionsOf names, or the most of any
// source. A topic missing from sources gets none.
func (p *Plan) Partitions(sources map[string]int32) map[string]int32 {
	parts := make(map[string]int32, len(sources))
	var most int32
	for _, s := range p.Sources {
		if n, ok := sources[s]; ok {
			parts[s] = n
			most = max(most, n)
		}
	}
	for _, g := range p.Globals {
		if n, ok := sources[g.Topic]; ok {
			parts[g.Topic] = n
		}
	}
	for _, it := range p.Topics() {
		if it.PartitionsOf == "" {
			parts[it.Name] = most
		} else if n, ok := parts[it.PartitionsOf]; ok {
			parts[it.Name] = n
		}
	}
	return parts
}

// CheckCoPartitioned reports every pair of topics one task reads together
// (partition p of each) whose partition counts differ, one error per pair,
// with the fix: a partition of one would have no partner, and the keys of
// partition p would not be the same. parts holds the counts (see
// Partitions); a topic missing from it is not checked. Kafka Streams finds
// this only when a task is created; exactly checks it before a member joins
// its group, and `exactly validate --brokers` before a deploy.
func (p *Plan) CheckCoPartitioned(parts map[string]int32) error {
	var errs []error
	for _, s := range p.Stateful {
		for _, t := range s.CoPartition[min(1, len(s.CoPartition)):] {
			a, aok := parts[s.CoPartition[0]]
			b, bok := parts[t]
			if aok && bok && a != b {
				fix := "give them the same partition count"
				if s.Node.StreamJoin() && s.Repartition == nil {
					// A key step on either side regroups both
					// streams through the join's repartition topic.
					fix = fmt.Sprintf("insert a step `key: key` just before %s on either side, so both streams go through %s, created with the partition count of the largest source topic; or %s",
						s.Node.Name, RepartitionTopic(p.Pipeline, s.Node.Name), fix)
				}
				errs = append(errs, fmt.Errorf("step %s reads partition p of %s and of %s together, but %s has %d partitions and %s has %d: %s",
					s.Node.Name, s.CoPartition[0], t, s.CoPartition[0], a, t, b, fix))
			}
		}
	}
	for _, j := range p.Joins {
		if j.Table == nil {
			continue // a global table: every instance reads all of it
		}
		co := j.CoPartition()
		in, table := co[0], co[1]
		a, aok := parts[in]
		b, bok := parts[table]
		if !aok || !bok || a == b {
			continue
		}
		if j.Left != nil || j.Foreign() {
			// A table-table join: both sides are tables, which no
			// key step regroups.
			errs = append(errs, fmt.Errorf("join step %s reads partition p of %s and of %s together, but %s has %d partitions and %s has %d: give them the same partition count",
				j.Node.Name, in, table, in, a, table, b))
			continue
		}
		fix := "give them the same partition count"
		if j.Repartition == nil {
			// The records are keyed as read from their topic: a key
			// step makes the join regroup them through its own
			// repartition topic, created with the table's count.
			fix = fmt.Sprintf("insert a step `key: key` just before %s, so its records go through %s, created with the %d partitions of %s; or give both topics the same partition count",
				j.Node.Name, RepartitionTopic(p.Pipeline, j.Node.Name), b, table)
		}
		errs = append(errs, fmt.Errorf("join step %s looks up records of partition p of %s in partition p of table %s (topic %s), but %s has %d partitions and %s has %d: %s",
			j.Node.Name, in, j.Table.Node.Name, table, in, a, table, b, fix))
	}
	return errors.Join(errs...)
}

// plan works out t's plan; t is valid.
func plan(t *Topology) *Plan {
	up := upstreamOf(t)
	tasks := taskTopicsOf(t)
	p := &Plan{Pipeline: t.Name}
	for _, n := range t.Sources {
		if n.Global {
			p.Globals = append(p.Globals, n)
		}
	}
	// The group consumes every source topic but the global tables'.
	for _, name := range up.names {
		if !slices.ContainsFunc(p.Globals, func(g *Node) bool { return g.Topic == name }) {
			p.Sources = append(p.Sources, name)
		}
	}
	tables := map[*Node]*StatefulStep{}
	for _, n := range t.Sources {
		if !n.Table || n.Global {
			continue
		}
		s := &StatefulStep{Node: n, Table: true, Input: n.Topic, Feeds: []string{n.Topic}, CoPartition: []string{n.Topic},
			Changelog: InternalTopic{Name: n.Topic, Purpose: "table", PartitionsOf: n.Topic}}
		tables[n] = s
		p.Stateful = append(p.Stateful, s)
	}
	for _, n := range t.Steps {
		if n.StreamJoin() {
			p.Stateful = append(p.Stateful, streamJoinStep(t, n, up))
			continue
		}
		if n.Join != nil {
			j := &JoinStep{Node: n, Input: up.first[n], Table: tables[n.Join.Table]}
			if n.Join.Table.Global {
				j.Global = n.Join.Table
			}
			if n.Join.Left != nil {
				j.Left = tables[n.Join.Left]
			}
			if n.Join.On != nil {
				p.Stateful = append(p.Stateful, foreignKeyJoin(t, j))
			} else if n.Join.Left != nil {
				p.Stateful = append(p.Stateful, tableTableJoin(t, j))
			}
			if n.Join.Repartition {
				// An aggregate's table (no topic): as many partitions
				// as its repartition topic, the most of any source.
				j.Repartition = &InternalTopic{Name: RepartitionTopic(t.Name, n.Name), Purpose: "repartition",
					PartitionsOf: n.Join.Table.Topic, Configs: repartitionConfigs, Exact: true}
				j.Input = j.Repartition.Name
			}
			p.Joins = append(p.Joins, j)
		}
		if !n.Kind.Stateful() {
			continue
		}
		s := &StatefulStep{Node: n,
			Changelog: InternalTopic{Name: ChangelogTopic(t.Name, n.Name), Purpose: "changelog", Configs: changelogConfigs, Exact: true}}
		for _, i := range up.topics[n] {
			s.Feeds = append(s.Feeds, up.names[i])
		}
		if n.Repartitioned() {
			s.Repartition = &InternalTopic{Name: RepartitionTopic(t.Name, n.Name), Purpose: "repartition", Configs: repartitionConfigs, Exact: true}
			s.Input = s.Repartition.Name
			s.CoPartition = []string{s.Input}
		} else {
			// Grouping by the record key (one source upstream), or
			// deduplicating: the tasks are the partitions of the
			// first source upstream, and partition p of every other
			// source feeding the step is part of task p (a dedupe's
			// ids share a partition through their key in every topic
			// it reads). Without them in CoPartition, the records of
			// the other topics reached the step on whichever member
			// the balancer gave their partition, unpaused while the
			// task restored, and looked up a store that member did
			// not have.
			//
			// "Source" here is the topic the records are read from:
			// behind a step that regroups them through its
			// repartition topic (a dedupe after such an aggregate),
			// that topic, whose partition q holds the records of
			// task q.
			s.CoPartition = slices.Clone(tasks.ofInputs(n))
			if len(s.CoPartition) == 0 {
				s.CoPartition = []string{up.first[n]}
			}
			s.Input = s.CoPartition[0]
			s.Changelog.PartitionsOf = s.Input
		}
		p.Stateful = append(p.Stateful, s)
		tables[n] = s
	}
	// A join's table may be an aggregate step's store, which may come
	// after the join in processing order.
	for _, j := range p.Joins {
		if j.Table == nil && j.Global == nil {
			j.Table = tables[j.Node.Join.Table]
		}
	}
	if t.DeadLetterTopic != "" {
		p.DeadLetter = &InternalTopic{Name: t.DeadLetterTopic, Purpose: "dead letters", Configs: repartitionConfigs}
	}
	return p
}

// taskTopics tells, for each source and step, the topics its records are
// read from: the partition of their source record (record.src in the
// processor) is the task they belong to downstream.
type taskTopics map[*Node][]string

// taskTopicsOf works out t's taskTopics in processing order: a source's
// topic; for a step that regroups its records through its repartition
// topic (an aggregate not grouped by the key, a join with Repartition),
// that topic, which its output records come back from; for any other
// step, its inputs' topics.
func taskTopicsOf(t *Topology) taskTopics {
	m := taskTopics{}
	for _, n := range t.Sources {
		m[n] = []string{n.Topic}
	}
	for _, n := range t.Steps {
		if n.Repartitioned() {
			m[n] = []string{RepartitionTopic(t.Name, n.Name)}
			continue
		}
		m[n] = m.ofInputs(n)
	}
	return m
}

// ofInputs is the union of the topics of n's inputs, in input order.
func (m taskTopics) ofInputs(n *Node) []string {
	if len(n.Inputs) == 1 {
		return m[n.Inputs[0]]
	}
	var out []string
	for _, in := range n.Inputs {
		for _, topic := range m[in] {
			if !slices.Contains(out, topic) {
				out = append(out, topic)
			}
		}
	}
	return out
}

// upstream tells, for each source and step, the source topics whose
// records reach it. It is worked out once, in processing order, so
// planning a pipeline of many stateful steps does not walk the graph
// above each of them.
type upstream struct {
	names []string // sourceTopics
	// first is the first source topic reached depth first along Inputs;
	// a step grouping by the record key has only that one.
	first map[*Node]string
	// topics are the indices into names of every upstream topic,
	// ascending (file order). A node with one input shares its input's
	// slice.
	topics map[*Node][]int
}

func upstreamOf(t *Topology) *upstream {
	u := &upstream{names: sourceTopics(t), first: map[*Node]string{}, topics: map[*Node][]int{}}
	index := map[string]int{}
	for i, name := range u.names {
		index[name] = i
	}
	for _, n := range t.Sources {
		u.first[n], u.topics[n] = n.Topic, []int{index[n.Topic]}
	}
	for _, n := range t.Steps {
		if len(n.Inputs) == 0 {
			continue
		}
		u.first[n] = u.first[n.Inputs[0]]
		ts := u.topics[n.Inputs[0]]
		for _, in := range n.Inputs[1:] {
			ts = unionSorted(ts, u.topics[in])
		}
		u.topics[n] = ts
	}
	return u
}

// unionSorted merges two ascending lists without duplicates; it returns a
// itself when b adds nothing.
func unionSorted(a, b []int) []int {
	out := make([]int, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	if len(out) == len(a) {
		return a
	}
	return out
}
