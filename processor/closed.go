package processor

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/topology"
)

// emitOwn runs f, which emits a row that belongs to a record held in
// state (a window's final row, a stream-stream join's unmatched row)
// rather than to the record being processed, and handles the row's
// failure there, as that held record's own bad record.
//
// Why: such a row is emitted when time passes, while some other record
// (the one whose event time closed the window) is processed. Were its
// failure that record's, the per-record undo (run) would put the window
// back, the next record would close it again and fail again, and under
// skip or dead_letter the task would drop all its input while its state
// never moved. So the error policy applies to the row itself: stop
// returns its error; skip and dead_letter undo what the row did
// downstream (state, counts, outputs) and go on, dead_letter writing
// src(re), the record that stands for the row, to the dead-letter topic
// (src may also rename re after that row).
// Both count in the run's stats as the processor's own bad records do.
func (g *graph) emitOwn(f func(emitFunc) error, src func(*RecordError) *kgo.Record, emit emitFunc) error {
	mark := len(g.undo)
	counts := make([][2]counter, len(g.list))
	for i, n := range g.list {
		counts[i] = [2]counter{n.in, n.out}
	}
	var outs []*kgo.Record
	err := f(func(o *kgo.Record) { outs = append(outs, o) })
	if err == nil {
		for _, o := range outs {
			emit(o)
		}
		return nil
	}
	var re *RecordError
	if !errors.As(err, &re) {
		return err
	}
	in := src(re) // also for stop: it may name the row in re
	if g.onError == topology.OnErrorStop {
		return err
	}
	for i := len(g.undo) - 1; i >= mark; i-- {
		g.undo[i].revert()
	}
	g.undo = g.undo[:mark]
	for i, n := range g.list {
		n.in, n.out = counts[i][0], counts[i][1]
	}
	if g.onError == topology.OnErrorDeadLetter {
		emit(deadLetter(g.deadLetterTopic, g.pipeline, in, re, g.maxOut[g.deadLetterTopic]))
		g.m.DeadLettered.WithLabelValues(re.Node, string(re.Phase)).Inc()
		if g.stats != nil {
			g.stats.DeadLettered.Add(1)
		}
		return nil
	}
	if g.stats != nil {
		g.stats.Skipped.Add(1)
	}
	if g.log != nil { // nil in the harness
		g.log.Warn("skipped a bad record", "err", re)
	}
	return nil
}
