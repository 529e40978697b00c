package processor

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/metrics"
	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
)

// A task is partition p of one co-partition group: of every topic whose
// partition p must be processed together (a stateful step's input, and
// the table topics joined to it), with every store those partitions feed.
// It is the unit the member owns, restores and drops:
//
//   - the group balancer (package balance) gives partition p of every
//     topic of a group to one member;
//   - every store of a task is restored before any of its partitions is
//     fetched (they are paused from the assignment until then), so no
//     record is processed, and no table row looked up, against missing
//     state;
//   - a task losing any of its partitions loses its stores; partitions of
//     it still held wait, paused, until this member holds the whole task
//     again and has restored its stores.
//
// Topics of no group (stateless pipelines' sources) are no task's: they
// are fetched from the assignment on.
type taskID struct {
	group int // index in tasks.groups
	p     int32
}

// taskGroup is a co-partition group: its topics and the steps with a
// store per task.
type taskGroup struct {
	topics []string
	steps  []*aggregator
}

// tasks tracks the tasks this member owns and whether their stores are
// restored.
//
// The rebalance callbacks run on the client's goroutine while the run loop
// may be processing, so they only record what happened (under mu); the run
// loop opens, restores and drops stores (sync). A newly assigned partition
// is paused in the assign callback (which runs before fetching of it
// starts), and resumed only once its task is restored.
type tasks struct {
	g       *graph
	backend statestore.Backend
	list    []*aggregator // every stateful step, in processing order
	brokers []string
	log     *slog.Logger
	groups  []taskGroup
	groupOf map[string]int // topic -> its group
	stats   *Stats
	m       *metrics.Pipeline
	opts    []kgo.Opt // client options (TLS, SASL, hooks) of restore clients
	group   string    // the consumer group (tables of table-table joins restore to its offsets)

	mu struct {
		sync.Mutex
		// held: the partitions of each task this member holds.
		held map[taskID]map[string]bool
		// assigned: partitions to resume once their task is restored.
		assigned map[taskID][]string
		// revoked: tasks to drop.
		revoked map[taskID]bool
		// suspended: revoked by a rebalance, stores kept until the
		// assignment that ends it says whether they come back.
		suspended map[taskID]bool
	}
	restoring atomic.Int64 // partitions assigned and not yet restored

	// changelog holds the changelog records the open transaction's
	// flush produced; their offsets, known once it commits, are where
	// the stores checkpoint.
	changelog []*kgo.Record

	// plain: the changelogs are written without transactions
	// (at_least_once, at_most_once), so nothing but this member's own
	// care keeps another member's writes out of a changelog partition
	// it writes; ended checks (see diverged).
	plain bool
	// rebuild holds stores ended found diverged from their changelog and
	// wiped; sync restores them before the next batch. Run loop only.
	rebuild []taskStore
}

// taskStore names one store of a task: a step's, of task partition p.
type taskStore struct {
	a *aggregator
	p int32
}

// written is the span of changelog offsets a transaction or batch wrote to
// one changelog partition: from first up to (not including) next, n
// records.
type written struct {
	first, next int64
	n           int64
}

func (t *tasks) all() []*aggregator { return t.list }

// pending returns how many assigned partitions wait for their restore.
func (t *tasks) pending() int64 { return t.restoring.Load() }

func newTasks(g *graph, pl *topology.Plan, backend statestore.Backend, brokers []string, opts []kgo.Opt, log *slog.Logger, stats *Stats, m *metrics.Pipeline) *tasks {
	t := &tasks{g: g, backend: backend, brokers: brokers, opts: opts, log: log, stats: stats, m: m, list: g.aggs, groupOf: map[string]int{}}
	for _, topics := range pl.CoPartitionGroups() {
		t.addGroup(topics)
	}
	// The rest are groups of one: a stateful step reading a topic alone,
	// and a join's input (whose table, a global one, is no task's).
	for _, a := range g.aggs {
		t.addGroup([]string{a.input})
	}
	for _, j := range g.joins {
		t.addGroup([]string{j})
	}
	for _, a := range g.aggs {
		gi := t.groupOf[a.input]
		t.groups[gi].steps = append(t.groups[gi].steps, a)
	}
	t.mu.held = map[taskID]map[string]bool{}
	t.mu.assigned = map[taskID][]string{}
	t.mu.revoked = map[taskID]bool{}
	t.mu.suspended = map[taskID]bool{}
	return t
}

// addGroup adds a group of topics none of which has one yet.
func (t *tasks) addGroup(topics []string) {
	if slices.ContainsFunc(topics, func(s string) bool { _, ok := t.groupOf[s]; return ok }) {
		return
	}
	for _, s := range topics {
		t.groupOf[s] = len(t.groups)
	}
	t.groups = append(t.groups, taskGroup{topics: slices.Clone(topics)})
}

func (t *tasks) stateful() bool { return len(t.groups) > 0 }

// stores returns the stores of task id.
func (t *tasks) stores(id taskID) []taskStore {
	steps := t.groups[id.group].steps
	out := make([]taskStore, len(steps))
	for i, a := range steps {
		out[i] = taskStore{a, id.p}
	}
	return out
}

// onAssigned runs in the rebalance callback. A task the rebalance revoked
// and now gives back keeps its stores (the balancer revokes every
// partition before the member rejoins, so without this every rebalance
// would read every kept task's changelogs again). Its restore then reads
// each changelog from the store's checkpoint: nothing when nobody else
// owned the task in between, only what another owner wrote if one did (a
// member expelled while rejoining). Suspended tasks not given back are
// dropped. Every assigned partition of a task is paused until the run
// loop's sync has restored the task.
func (t *tasks) onAssigned(cl *kgo.Client, m map[string][]int32) {
	pause := map[string][]int32{}
	t.mu.Lock()
	for topic, parts := range m {
		gi, ok := t.groupOf[topic]
		if !ok {
			continue
		}
		pause[topic] = parts
		t.restoring.Add(int64(len(parts)))
		for _, p := range parts {
			id := taskID{gi, p}
			t.mu.assigned[id] = append(t.mu.assigned[id], topic)
			if t.mu.held[id] == nil {
				t.mu.held[id] = map[string]bool{}
			}
			t.mu.held[id][topic] = true
			delete(t.mu.suspended, id)
		}
	}
	for id := range t.mu.suspended {
		t.mu.revoked[id] = true
		delete(t.mu.held, id)
	}
	clear(t.mu.suspended)
	t.mu.Unlock()
	if len(pause) > 0 {
		cl.PauseFetchPartitions(pause)
	}
}

// onRevoked runs in the rebalance callback. Revoked tasks are suspended
// until the next assignment (see onAssigned); lost ones (the session
// expired, another member may own them already) are dropped, as is a task
// that keeps only some of its partitions.
func (t *tasks) onRevoked(m map[string][]int32, lost bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, parts := range m {
		gi, ok := t.groupOf[topic]
		if !ok {
			continue
		}
		for _, p := range parts {
			id := taskID{gi, p}
			delete(t.mu.held[id], topic)
			// Not restored yet: no longer to resume either (an
			// assignment giving it back queues it again).
			if i := slices.Index(t.mu.assigned[id], topic); i >= 0 {
				t.mu.assigned[id] = slices.Delete(t.mu.assigned[id], i, i+1)
				if len(t.mu.assigned[id]) == 0 {
					delete(t.mu.assigned, id)
				}
				t.restoring.Add(-1)
			}
			if lost {
				t.mu.revoked[id] = true
			} else {
				t.mu.suspended[id] = true
			}
		}
	}
}

// sync drops revoked tasks and restores newly assigned ones, then resumes
// fetching their partitions. It runs on the run loop between
// transactions.
func (t *tasks) sync(ctx context.Context, cl *kgo.Client) error {
	t.mu.Lock()
	assigned, revoked := t.mu.assigned, t.mu.revoked
	t.mu.assigned, t.mu.revoked = map[taskID][]string{}, map[taskID]bool{}
	// A dropped task's partitions still held (a task split by an
	// assignment) wait for its stores to be restored again.
	repause := map[string][]int32{}
	for id := range revoked {
		for topic := range t.mu.held[id] {
			if !slices.Contains(assigned[id], topic) {
				assigned[id] = append(assigned[id], topic)
				repause[topic] = append(repause[topic], id.p)
				t.restoring.Add(1)
			}
		}
	}
	// A task restores once this member holds every partition of it; until
	// then the ones it holds wait, paused (an assignment that splits a
	// group comes from a member without the co-partition balancer).
	for id, topics := range assigned {
		if len(t.mu.held[id]) < len(t.groups[id.group].topics) {
			t.mu.assigned[id] = append(t.mu.assigned[id], topics...)
			delete(assigned, id)
		}
	}
	t.mu.Unlock()
	if len(repause) > 0 {
		cl.PauseFetchPartitions(repause)
	}

	for id := range revoked {
		t.drop(id)
	}
	for _, ts := range t.rebuild {
		// Wiped by ended; a revoked one was just closed.
		if _, ok := ts.a.stores[ts.p]; ok {
			if err := t.restore(ctx, ts.a, ts.p); err != nil {
				return err
			}
		}
	}
	t.rebuild = t.rebuild[:0]
	resume := map[string][]int32{}
	for id, topics := range assigned {
		for _, s := range t.stores(id) {
			if err := t.restore(ctx, s.a, s.p); err != nil {
				return err
			}
		}
		t.restoring.Add(-int64(len(topics)))
		for _, topic := range topics {
			resume[topic] = append(resume[topic], id.p)
		}
	}
	// A rebalance during the restores may have revoked a task and
	// assigned it again (paused, queued to restore, maybe after another
	// member wrote to its changelogs): that one waits for the next sync.
	// Resuming it now would process its records against stores that do
	// not have the other member's writes.
	t.mu.Lock()
	for topic, parts := range resume {
		gi := t.groupOf[topic]
		resume[topic] = slices.DeleteFunc(parts, func(p int32) bool {
			id := taskID{gi, p}
			return len(t.mu.assigned[id]) > 0 || t.mu.suspended[id] || t.mu.revoked[id]
		})
	}
	t.mu.Unlock()
	if len(resume) > 0 {
		cl.ResumeFetchPartitions(resume)
	}
	return nil
}

// drop closes every store of task id, dropping uncommitted writes.
func (t *tasks) drop(id taskID) {
	part := strconv.Itoa(int(id.p))
	for _, s := range t.stores(id) {
		if err := s.a.dropTask(s.p); err != nil {
			t.log.Warn("closing store", "node", s.a.node.t.Name, "partition", s.p, "err", err)
		}
		t.m.StoreEntries.DeleteLabelValues(s.a.node.t.Name, part)
		t.m.StoreBytes.DeleteLabelValues(s.a.node.t.Name, part)
	}
}

// restore opens step a's store of task partition p if needed and reads its
// changelog, from the store's checkpoint to the end, read_committed (a
// table source read by table-table joins or other steps: to the group's
// committed offset, see restoreTable).
func (t *tasks) restore(ctx context.Context, a *aggregator, p int32) error {
	st, ok := a.stores[p]
	if !ok {
		var err error
		if st, err = t.backend.Open(a.node.t.Name, p); err != nil {
			return fmt.Errorf("opening store %s partition %d: %w", a.node.t.Name, p, err)
		}
		a.stores[p] = st
	}
	log := t.log.With("node", a.node.t.Name, "topic", a.changelog, "partition", p)
	began := time.Now()
	last, seen := began, int64(0)
	node, part := a.node.t.Name, strconv.Itoa(int(p))
	restored, remaining := t.m.RestoreRecords.WithLabelValues(node), t.m.RestoreRemaining.WithLabelValues(node, part)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(t.brokers...)}, t.opts...)...)
	if err != nil {
		return fmt.Errorf("creating restore client: %w", err)
	}
	defer cl.Close()
	restore := statestore.RestoreWith
	if len(t.g.tableJoins[a]) > 0 || a.table && len(changeReaders(a.node)) > 0 {
		// To the committed offset (ttjoin.go): the records after it
		// are processed again, each against the row it replaced.
		restore = t.restoreTable
	}
	stats, err := restore(ctx, cl, a.changelog, p, st, func(done, left int64) {
		t.stats.RestoreRecords.Add(done - seen)
		t.stats.RestoreRemaining.Store(left)
		restored.Add(float64(done - seen))
		remaining.Set(float64(left))
		seen = done
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			eta := time.Duration(0)
			if done > 0 {
				eta = time.Duration(float64(time.Since(began)) / float64(done) * float64(left)).Round(time.Second)
			}
			log.Info("restoring", "records", done, "remaining", left, "eta", eta)
		}
	})
	t.stats.RestoreRecords.Add(stats.Records - seen)
	t.stats.RestoreRemaining.Store(0)
	t.stats.RestoreNanos.Add(int64(stats.Duration))
	restored.Add(float64(stats.Records - seen))
	remaining.Set(0)
	t.m.RestoreDuration.WithLabelValues(node).Observe(stats.Duration.Seconds())
	t.updateSize(a, p, st)
	if err != nil {
		return fmt.Errorf("restoring %s partition %d: %w", a.changelog, p, err)
	}
	if a.table {
		a.restoredTo[p] = st.Checkpoint()
	}
	t.stats.Restores.Add(1)
	if stats.Rebuilt {
		t.stats.RestoresRebuilt.Add(1)
	}
	log.Info("restored", "records", stats.Records, "from", stats.StartOffset, "to", stats.EndOffset, "rebuilt", stats.Rebuilt, "duration", stats.Duration)
	return nil
}
