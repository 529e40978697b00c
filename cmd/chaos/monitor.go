package main

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// offsetMonitor samples the group's committed offsets on `in` every 100ms,
// keeping each change with its time, to measure how long the group took to
// make progress again after each kill.
type offsetMonitor struct {
	adm  *kadm.Client
	mu   sync.Mutex
	hist map[int32][]offsetPoint
}

type offsetPoint struct {
	at     time.Time
	offset int64
}

func (m *offsetMonitor) run(ctx context.Context) {
	m.hist = map[int32][]offsetPoint{}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := m.adm.FetchOffsets(fctx, pipelineName)
		cancel()
		now := time.Now()
		if err == nil {
			m.mu.Lock()
			resp.Each(func(o kadm.OffsetResponse) {
				if o.Topic != "in" || o.Err != nil {
					return
				}
				h := m.hist[o.Partition]
				if len(h) == 0 || h[len(h)-1].offset != o.At {
					m.hist[o.Partition] = append(h, offsetPoint{now, o.At})
				}
			})
			m.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recovery returns how long after at the group had committed progress on
// every partition that had work pending at that moment. A partition had
// work pending when its committed offset moved at some time after at: the
// run ends caught up, so a partition whose offset never moved again had
// nothing left to do. ok is false when no partition had work pending.
func (m *offsetMonitor) recovery(at time.Time) (d time.Duration, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range m.hist {
		before := int64(-1)
		i := sort.Search(len(h), func(i int) bool { return h[i].at.After(at) })
		if i > 0 {
			before = h[i-1].offset
		}
		for ; i < len(h); i++ {
			if h[i].offset > before {
				d = max(d, h[i].at.Sub(at))
				ok = true
				break
			}
		}
	}
	return d, ok
}

// resumed returns how long after at every partition of parts had committed
// an offset above its offset at from (from is at or a little after at);
// ok is false until all did.
func (m *offsetMonitor) resumed(at, from time.Time, parts []int32) (d time.Duration, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range parts {
		h := m.hist[p]
		before := int64(-1)
		i := sort.Search(len(h), func(i int) bool { return h[i].at.After(from) })
		if i > 0 {
			before = h[i-1].offset
		}
		moved := false
		for ; i < len(h); i++ {
			if h[i].offset > before {
				d = max(d, h[i].at.Sub(at))
				moved = true
				break
			}
		}
		if !moved {
			return 0, false
		}
	}
	return d, len(parts) > 0
}

// movedSince reports whether every partition of parts committed a new
// offset after since.
func (m *offsetMonitor) movedSince(parts []int32, since time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range parts {
		h := m.hist[p]
		if len(h) < 2 || !h[len(h)-1].at.After(since) {
			return false
		}
	}
	return true
}
