package processortest

import "math/rand/v2"

// pipeBatches pipes events in order, in transactions of 1 to most events
// (sizes drawn from rng): each ends in a commit or, one time in ten each,
// an abort or a crash, after which its events are piped again (an aborted
// or lost transaction is read again, as a consumer rewound to the
// committed offsets would). committed, if not nil, runs after each commit.
// The differential tests against SQLite use it, so their seeds give the
// same runs as long as nothing else draws from rng in between.
func pipeBatches[E any](d *Driver, rng *rand.Rand, events []E, most int, pipe func(E), committed func()) {
	for i := 0; i < len(events); {
		n := min(1+rng.IntN(most), len(events)-i)
		for _, e := range events[i : i+n] {
			pipe(e)
		}
		switch rng.IntN(10) {
		case 0:
			d.Abort()
			continue
		case 1:
			d.Crash()
			continue
		}
		d.Commit()
		i += n
		if committed != nil {
			committed()
		}
	}
}
