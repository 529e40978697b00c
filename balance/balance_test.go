package balance

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// member is one group member and the assignment it was last given.
type member struct {
	cl  *kgo.Client
	mu  sync.Mutex
	has map[string][]int32
}

func (m *member) assigned() map[string][]int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]int32, len(m.has))
	for t, ps := range m.has {
		out[t] = slices.Clone(ps)
	}
	return out
}

func join(t *testing.T, brokers []string, groups [][]string, topics ...string) *member {
	t.Helper()
	m := &member{has: map[string][]int32{}}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup("g"),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(New(groups)),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(200*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for t, ps := range a {
				m.has[t] = append(m.has[t], ps...)
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for t, ps := range r {
				m.has[t] = slices.DeleteFunc(m.has[t], func(p int32) bool { return slices.Contains(ps, p) })
			}
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	// Poll in the background: the group joins and rebalances as the
	// member polls.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

// check waits until the members' assignments cover every partition of
// every topic once with the tasks (a partition of solo, or partition p of
// left and right) spread evenly, then checks that each member has the
// same partitions of left and right.
func check(t *testing.T, ms []*member, parts map[string]int32) {
	t.Helper()
	var last string
	for range 300 {
		last = settled(ms, parts)
		if last == "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last != "" {
		t.Fatalf("assignment never settled: %s", last)
	}
	for i, m := range ms {
		a := m.assigned()
		l, r := slices.Sorted(slices.Values(a["left"])), slices.Sorted(slices.Values(a["right"]))
		if !slices.Equal(l, r) {
			t.Errorf("member %d has left %v and right %v: partition p of both must go to one member", i, l, r)
		}
	}
}

// settled describes what is wrong with the union of the assignments, ""
// when every partition is assigned exactly once.
func settled(ms []*member, parts map[string]int32) string {
	seen := map[string]int{}
	for _, m := range ms {
		for topic, ps := range m.assigned() {
			for _, p := range ps {
				seen[fmt.Sprintf("%s/%d", topic, p)]++
			}
		}
	}
	for topic, n := range parts {
		for p := range n {
			if c := seen[fmt.Sprintf("%s/%d", topic, p)]; c != 1 {
				return fmt.Sprintf("%s/%d assigned %d times", topic, p, c)
			}
		}
	}
	lo, hi := 1<<30, 0
	for _, m := range ms {
		a := m.assigned()
		n := len(a["left"]) + len(a["solo"])
		lo, hi = min(lo, n), max(hi, n)
	}
	if hi-lo > 1 {
		return fmt.Sprintf("tasks per member from %d to %d", lo, hi)
	}
	return ""
}

// Two topics with one partition count, read together, stay together on
// every member through joins and leaves; a third topic is balanced as
// usual.
func TestCoPartitionedAcrossMembersAndRebalances(t *testing.T) {
	parts := map[string]int32{"left": 6, "right": 6, "solo": 4}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "left", "right"), kfake.SeedTopics(4, "solo"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	groups := [][]string{{"left", "right"}}
	topics := []string{"left", "right", "solo"}
	var ms []*member
	for range 3 {
		ms = append(ms, join(t, c.ListenAddrs(), groups, topics...))
		check(t, ms, parts)
	}
	// One leaves: the others take its tasks, together.
	ms[1].cl.Close()
	ms = slices.Delete(ms, 1, 2)
	check(t, ms, parts)
	// One comes.
	ms = append(ms, join(t, c.ListenAddrs(), groups, topics...))
	check(t, ms, parts)
}

// Without groups the balancer is kgo's sticky one, so a group of existing
// pipelines keeps its protocol.
func TestNoGroupsIsSticky(t *testing.T) {
	if got := New(nil).ProtocolName(); got != "sticky" {
		t.Errorf("New(nil).ProtocolName() = %q, want sticky", got)
	}
	if got := New([][]string{{"a", "b"}}).ProtocolName(); got != Protocol {
		t.Errorf("ProtocolName = %q, want %q", got, Protocol)
	}
}

// Unequal partition counts are refused by the leader rather than leaving a
// partition without its partner.
func TestUnequalCountsRefused(t *testing.T) {
	b := New([][]string{{"left", "right"}}).(*balancer)
	mb := &memberBalancer{b: b}
	if _, err := mb.BalanceOrError(map[string]int32{"left": 3, "right": 4}); err == nil {
		t.Error("BalanceOrError accepted left with 3 partitions and right with 4")
	}
}
