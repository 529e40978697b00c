package statestore

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// RestoreUpTo is RestoreWith reading only up to offset end (or the high
// watermark, if lower), for a store that must hold exactly the records a
// consumer group committed past: a table a table-table join reads, whose
// records after the group's committed offset still owe their joined
// output. An end below the log start reads nothing (the group's consumer
// resets to the log start too). A checkpoint above end is a store ahead
// of what the group committed: it is wiped and read again from the log
// start.
func RestoreUpTo(ctx context.Context, cl *kgo.Client, topic string, partition int32, st Store, end int64, progress Progress) (RestoreStats, error) {
	begin := time.Now()
	f := newFetcher(cl, topic, partition)
	logStart, hwm, err := f.offsets(ctx)
	if err != nil {
		return RestoreStats{}, err
	}
	end = max(min(end, hwm), logStart)
	stats := RestoreStats{EndOffset: end}
	from := st.Checkpoint()
	if from < 0 || from < logStart || from > end {
		if err := st.Wipe(); err != nil {
			return stats, err
		}
		from = logStart
		stats.Rebuilt = true
	}
	stats.StartOffset = from
	if err := f.read(ctx, from, end, st, progress, &stats); err != nil {
		stats.Duration = time.Since(begin)
		return stats, err
	}
	if err := st.FinishRestore(end); err != nil {
		return stats, err
	}
	if progress != nil {
		progress(stats.Records, 0)
	}
	stats.Duration = time.Since(begin)
	return stats, nil
}
