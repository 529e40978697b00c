package metrics

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CommitQuantiles estimates quantiles of the transaction commit time from
// the exactly_txn_commit_duration_seconds histogram g gathers,
// interpolating linearly within a bucket as Prometheus's
// histogram_quantile does. It also returns how many commits the histogram
// holds; with none, the quantiles are nil. `exactly run --until-caught-up`
// logs them, and the bench reads them there.
func CommitQuantiles(g prometheus.Gatherer, qs ...float64) (out []time.Duration, n uint64) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, 0
	}
	for _, mf := range mfs {
		if mf.GetName() != Namespace+"_txn_commit_duration_seconds" || len(mf.GetMetric()) == 0 {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if n = h.GetSampleCount(); n == 0 {
			return nil, 0
		}
		var bounds []float64
		var cum []uint64
		for _, b := range h.GetBucket() {
			bounds = append(bounds, b.GetUpperBound())
			cum = append(cum, b.GetCumulativeCount())
		}
		for _, q := range qs {
			out = append(out, time.Duration(bucketQuantile(q, bounds, cum, n)*float64(time.Second)))
		}
		return out, n
	}
	return nil, 0
}

// bucketQuantile is histogram_quantile over cumulative bucket counts cum
// with upper bounds bounds and n observations: the rank q*n falls in a
// bucket, and the value is interpolated between that bucket's bounds (the
// first bucket's lower bound is 0). A rank past the last bound returns
// that bound: the histogram knows nothing beyond it.
func bucketQuantile(q float64, bounds []float64, cum []uint64, n uint64) float64 {
	if len(bounds) == 0 {
		return math.NaN()
	}
	rank := q * float64(n)
	lower, below := 0.0, uint64(0)
	for i, ub := range bounds {
		if float64(cum[i]) >= rank {
			if cum[i] == below {
				return ub
			}
			return lower + (ub-lower)*(rank-float64(below))/float64(cum[i]-below)
		}
		lower, below = ub, cum[i]
	}
	return bounds[len(bounds)-1]
}
