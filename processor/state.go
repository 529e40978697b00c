package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/internal/kafkaerr"
	"github.com/exactly-dev/exactly/statestore"
	"github.com/exactly-dev/exactly/topology"
)

// The state of a transaction lives in three layers, each with one job:
//
//   - Per record, graph.undo reverts what a record that fails changed
//     (rows, on_commit rows, store writes), so a bad record is dead-
//     lettered or skipped as a unit.
//   - Per transaction, each aggregator holds what the transaction changed
//     and has not written yet: decoded rows (rows), encoded entries of
//     windows and dedupe (dirty), rows emit: on_commit owes (pending).
//     flush writes them (changelog records, on_commit rows) as the
//     transaction ends.
//   - Per store, an overlay holds every write since the last commit:
//     ended applies it at the offset after the transaction's changelog
//     records when the transaction committed, and drops it otherwise.
//
// flush and ended are the whole of it for the run loop: flush before the
// transaction ends, ended once its outcome is known.

// flush writes what the open transaction changed in every stateful step:
// changelog records (produce) and the rows emit: on_commit owes (emit). It
// keeps the changelog records to learn their offsets once the transaction
// commits (ended).
func (t *tasks) flush(emit emitFunc, produce func(*kgo.Record)) error {
	t.changelog = t.changelog[:0]
	for _, a := range t.list {
		err := t.g.flush(a, emit, func(r *kgo.Record) {
			t.changelog = append(t.changelog, r)
			produce(r)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ended applies (committed) or discards the overlays of the transaction
// that just ended: a committed store checkpoints at the offset after the
// last changelog record the transaction wrote to its partition.
func (t *tasks) ended(committed bool) error {
	spans := map[string]map[int32]written{}
	if committed {
		for _, r := range t.changelog {
			if spans[r.Topic] == nil {
				spans[r.Topic] = map[int32]written{}
			}
			w, ok := spans[r.Topic][r.Partition]
			if !ok {
				w.first = r.Offset
			}
			w.first, w.next, w.n = min(w.first, r.Offset), max(w.next, r.Offset+1), w.n+1
			spans[r.Topic][r.Partition] = w
		}
	}
	t.changelog = t.changelog[:0]
	var errs []error
	for _, a := range t.list {
		for p, st := range a.stores {
			if !committed {
				st.Abort()
				continue
			}
			checkpoint := st.Checkpoint()
			next := checkpoint
			w, wrote := spans[a.changelog][p]
			if wrote {
				next = w.next
			}
			if o, ok := a.next[p]; ok {
				next = max(next, o) // a table: the topic is its changelog
			}
			diverged := wrote && t.diverged(checkpoint, w)
			if err := st.Commit(next); err != nil {
				errs = append(errs, fmt.Errorf("committing store %s partition %d: %w", a.node.t.Name, p, err))
			}
			if diverged {
				t.log.Warn("a changelog partition holds records this member did not write, between its store's checkpoint and its own writes; restoring the store from the changelog",
					"node", a.node.t.Name, "topic", a.changelog, "partition", p, "checkpoint", checkpoint, "first_written", w.first, "written", w.n)
				if err := st.Wipe(); err != nil {
					errs = append(errs, fmt.Errorf("wiping store %s partition %d: %w", a.node.t.Name, p, err))
				}
				t.rebuild = append(t.rebuild, taskStore{a, p})
			}
			if a.changedTask(p) {
				t.updateSize(a, p, st)
			}
		}
		a.reset()
	}
	return errors.Join(errs...)
}

// diverged reports whether a batch that wrote w to a changelog partition
// leaves the store, whose checkpoint was checkpoint, unlike a restore from
// that changelog. Only without transactions (plain): a transactional
// changelog has commit markers between transactions, and fencing keeps
// every other writer out.
//
// Without transactions a store equals its changelog up to its checkpoint
// only while this member is the partition's only writer: its records then
// start at the checkpoint and follow each other with no gap. A gap holds
// records of another writer: a member that took the partition over while
// this one was cut off (so this member's store misses them, and its
// checkpoint now passes them), or a paused member whose late writes
// landed after this one's. A restore would apply them, so the store no
// longer shows what a restore would give, and keeping it across a
// rebalance (or handing its checkpoint to the next restore) would carry
// the difference on. Restoring it makes it equal again.
func (t *tasks) diverged(checkpoint int64, w written) bool {
	return t.plain && (w.first != checkpoint || w.next-w.first != w.n)
}

func (t *tasks) updateSize(a *aggregator, p int32, st statestore.Store) {
	part := strconv.Itoa(int(p))
	t.m.StoreEntries.WithLabelValues(a.node.t.Name, part).Set(float64(st.Len()))
	t.m.StoreBytes.WithLabelValues(a.node.t.Name, part).Set(float64(st.SizeBytes()))
}

// dropAll closes every store: after a rebuild the new member is assigned
// its partitions afresh, and restores them.
func (t *tasks) dropAll() {
	for _, a := range t.list {
		for p := range a.stores {
			a.dropTask(p)
		}
		a.reset()
	}
	t.changelog = t.changelog[:0]
	t.rebuild = t.rebuild[:0]
	t.mu.Lock()
	clear(t.mu.held)
	clear(t.mu.assigned)
	clear(t.mu.revoked)
	clear(t.mu.suspended)
	t.restoring.Store(0)
	t.mu.Unlock()
}

// ensureTopics creates the internal topics of the plan (changelog,
// repartition and dead-letter topics) with the partition counts it asks
// for, checks existing ones, and checks that the topics each task reads
// together have one partition count. It tells each watermarked aggregate
// its upstream partitions.
func ensureTopics(ctx context.Context, adm *kadm.Client, g *graph, pl *topology.Plan) error {
	if len(pl.Stateful) == 0 && pl.DeadLetter == nil && len(pl.Globals) == 0 {
		return nil
	}
	globals := make([]string, len(pl.Globals))
	for i, n := range pl.Globals {
		globals[i] = n.Topic
	}
	var details kadm.TopicDetails
	err := retried(ctx, func() (err error) {
		details, err = adm.ListTopics(ctx, slices.Concat(pl.Sources, globals)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("describing source topics: %w", err)
	}
	var maxParts int32
	sources := map[string]int32{}
	for _, s := range pl.Sources {
		d, ok := details[s]
		if !ok || d.Err != nil {
			return fmt.Errorf("source topic %s does not exist: create it first", s)
		}
		sources[s] = int32(len(d.Partitions))
		maxParts = max(maxParts, sources[s])
	}
	for _, s := range globals {
		if d, ok := details[s]; !ok || d.Err != nil {
			return fmt.Errorf("global table topic %s does not exist: create it first", s)
		}
	}
	// Checked before any topic is created: a pipeline that cannot run
	// leaves nothing behind.
	parts := pl.Partitions(sources)
	if err := pl.CheckCoPartitioned(parts); err != nil {
		return err
	}
	for _, it := range pl.Topics() {
		n := parts[it.Name]
		var err error
		if it.Purpose == "changelog" {
			err = statestore.EnsureChangelog(ctx, adm, it.Name, n)
		} else {
			err = ensureTopic(ctx, adm, it.Name, n, it.Exact, configPtrs(it.Configs))
		}
		if err != nil {
			return err
		}
	}
	for _, a := range g.aggs {
		a.setWriters(pl.Sources, parts, maxParts)
	}
	return nil
}

// retried runs a start-up request again while it fails as a request (a
// broker down or a leader moving, as when one node of a cluster restarts
// while an instance starts), until ctx ends: the start's own give-up
// (startGiveUp) and the connection watch, which ends the start at once
// on a failure retrying cannot fix (authentication, TLS), bound it.
func retried(ctx context.Context, f func() error) error {
	backoff := 250 * time.Millisecond
	for {
		err := f()
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// configPtrs is configs as kadm takes them.
func configPtrs(configs map[string]string) map[string]*string {
	m := make(map[string]*string, len(configs))
	for k, v := range configs {
		m[k] = kadm.StringPtr(v)
	}
	return m
}

// checkSinks fails when a sink topic does not exist: every transaction
// would fail to produce to it and abort, forever, while the broker
// answers only UNKNOWN_TOPIC_OR_PARTITION at debug level. (The dead-letter
// topic is created when missing, by ensureTopics.)
func checkSinks(ctx context.Context, adm *kadm.Client, sinks []string, deadLetter string) error {
	sinks = slices.DeleteFunc(slices.Clone(sinks), func(t string) bool { return t == deadLetter })
	if len(sinks) == 0 {
		return nil
	}
	var details kadm.TopicDetails
	err := retried(ctx, func() (err error) {
		details, err = adm.ListTopics(ctx, sinks...)
		return err
	})
	if err != nil {
		return fmt.Errorf("describing sink topics: %w", err)
	}
	var errs []error
	for _, s := range sinks {
		if d, ok := details[s]; !ok || d.Err != nil {
			errs = append(errs, fmt.Errorf("sink topic %s does not exist: create it first (exactly creates only its own changelog, repartition and dead-letter topics)", s))
		}
	}
	return errors.Join(errs...)
}

// ensureTopic creates topic with partitions if it does not exist; with
// exact set, an existing topic with another partition count is an error.
// Replicas starting together race to create it: the losers, told it
// already exists, check the winner's topic like any existing one, once
// metadata shows it (for a moment after its creation it may not).
func ensureTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, exact bool, configs map[string]*string) error {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		lctx := ctx
		if attempt > 0 {
			// kadm answers from its metadata cache, filled before the
			// topic existed; asking for authorized operations makes it
			// send a Metadata request (as statestore does).
			lctx = kadm.WithAuthorizedOps(ctx)
		}
		details, err := adm.ListTopics(lctx, topic)
		if err != nil {
			return fmt.Errorf("describing %s: %w", topic, err)
		}
		if d, ok := details[topic]; ok && d.Err == nil {
			if got := int32(len(d.Partitions)); exact && got != partitions {
				return fmt.Errorf("repartition topic %s has %d partitions, the pipeline needs %d: delete it (it holds only in-flight records) or restore the source's partition count", topic, got, partitions)
			}
			return nil
		}
		resp, err := adm.CreateTopic(ctx, partitions, -1, configs, topic)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
			return nil
		case kafkaerr.TopicExists(err) && attempt < 50:
			continue // created by another replica meanwhile: check it
		}
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
}

// partitioner writes changelog records to the partition the record names
// (its task's), and everything else by key with Kafka's murmur2, as the
// Java client does; in a repartition topic, a watermark (the only record
// without a key) goes to the partition it names.
type partitioner struct {
	manual      map[string]bool
	repartition map[string]bool
	byKey       kgo.Partitioner
	explicit    kgo.Partitioner
}

func newPartitioner(g *graph) kgo.Partitioner {
	p := &partitioner{manual: map[string]bool{}, repartition: map[string]bool{}, byKey: kgo.StickyKeyPartitioner(nil), explicit: kgo.ManualPartitioner()}
	for _, a := range g.aggs {
		p.manual[a.changelog] = true
		if a.repartition != "" {
			p.repartition[a.repartition] = true
		}
	}
	return p
}

func (p *partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.manual[topic] {
		return p.explicit.ForTopic(topic)
	}
	if p.repartition[topic] {
		return watermarkPartitioner{p.byKey.ForTopic(topic)}
	}
	return p.byKey.ForTopic(topic)
}

// watermarkPartitioner sends keyless records (watermarks) to the
// partition they name, and the rest by key.
type watermarkPartitioner struct{ byKey kgo.TopicPartitioner }

func (w watermarkPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (w watermarkPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Key == nil {
		return int(r.Partition)
	}
	return w.byKey.Partition(r, n)
}
