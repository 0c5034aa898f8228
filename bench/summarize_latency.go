package bench

import (
	"math"
	"math/big"
	"math/bits"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histograms. A run of millions of messages cannot keep every
// latency to sort it, so each latency goes into an HDR histogram
// (github.com/HdrHistogram/hdrhistogram-go, the maintained Go port of the
// reference implementation): fixed memory, and a percentile within its
// precision of the exact one. Count, maximum and mean need no histogram and
// stay exact.
const (
	// latencySigFigs is the histogram's precision: every value is kept within
	// 1 part in 1000 (buckets at most 1/1024 of their value wide), so
	// p50...p99.9 are within 0.1 % of the exact nearest-rank percentiles.
	latencySigFigs = 3
	// latencyHighest is the largest latency the histogram resolves, about 13
	// days: a subscriber paced at one message a minute behind a backlog of
	// 10,000 waits a week. A percentile that falls beyond it is given as the
	// maximum (exact), an over-estimate rather than a number too small.
	latencyHighest = int64(1) << 50
)

// latencyAcc accumulates one latency distribution.
type latencyAcc struct {
	h        *hdrhistogram.Histogram // nil until the first value
	n        int64
	sumHi    uint64 // 128-bit sum of the values, for an exact mean
	sumLo    uint64
	min, max int64
	bars     []hdrhistogram.Bar // Distribution of h, cached for barsN values
	barsN    int64
}

// add records one latency in nanoseconds. Negative values (clocks cannot
// produce them, but a file can hold them) count as 0 in the percentiles.
func (a *latencyAcc) add(v int64) {
	if a.h == nil {
		a.h = hdrhistogram.New(1, latencyHighest, latencySigFigs)
		a.min, a.max = v, v
	}
	a.n++
	a.min, a.max = min(a.min, v), max(a.max, v)
	var carry uint64
	a.sumLo, carry = bits.Add64(a.sumLo, uint64(v), 0)
	a.sumHi += carry
	if v < 0 {
		a.sumHi-- // sign extension of a negative addend
	}
	_ = a.h.RecordValue(min(max(v, 0), latencyHighest))
}

// latency returns the nearest-rank percentiles (the smallest value with at
// least p% of the samples at or below it), to the histogram's precision, and
// the exact count, maximum and mean.
func (a *latencyAcc) latency() Latency {
	if a.n == 0 {
		return Latency{}
	}
	rank := func(p float64) int64 {
		// The epsilon keeps 99.9% of 1000 at rank 999 despite binary fractions.
		return a.atRank(int64(math.Ceil(p*float64(a.n)/100 - 1e-9)))
	}
	return Latency{
		Count: a.n,
		P50:   rank(50),
		P90:   rank(90),
		P99:   rank(99),
		P999:  rank(99.9),
		Max:   a.max,
		Mean:  a.mean(),
	}
}

// atRank is the r-th smallest value (from 1, clamped to the count), to the
// histogram's precision.
func (a *latencyAcc) atRank(r int64) int64 {
	if a.n == 0 {
		return 0
	}
	r = min(max(r, 1), a.n)
	if a.bars == nil || a.barsN != a.n {
		a.bars, a.barsN = a.h.Distribution(), a.n
	}
	var cum int64
	for _, b := range a.bars {
		cum += b.Count
		if cum >= r {
			if b.To >= latencyHighest {
				return a.max // beyond the histogram: the largest seen
			}
			// The highest value equivalent to the bucket, but never
			// outside what was really recorded.
			return min(max(b.To, a.min), a.max)
		}
	}
	return a.max
}

// merge adds the values of b.
func (a *latencyAcc) merge(b *latencyAcc) {
	if b.n == 0 {
		return
	}
	if a.h == nil {
		a.h = hdrhistogram.New(1, latencyHighest, latencySigFigs)
		a.min, a.max = b.min, b.max
	}
	a.h.Merge(b.h)
	a.n += b.n
	a.min, a.max = min(a.min, b.min), max(a.max, b.max)
	var carry uint64
	a.sumLo, carry = bits.Add64(a.sumLo, b.sumLo, 0)
	a.sumHi += b.sumHi + carry
}

// Distribution is a latency distribution as the analysis keeps it, for plots
// of latency by percentile.
type Distribution struct{ acc latencyAcc }

// Add records one latency in nanoseconds.
func (d *Distribution) Add(v int64) { d.acc.add(v) }

// Count is the number of values.
func (d *Distribution) Count() int64 { return d.acc.n }

// Quantile is the nearest-rank value at p in [0, 1]: the smallest value with
// at least p of the values at or below it, to 0.1 %.
func (d *Distribution) Quantile(p float64) int64 {
	return d.acc.atRank(int64(math.Ceil(p * float64(d.acc.n))))
}

// Distributions returns, after Close, the publish-to-ack latencies and the
// publish-to-delivery latencies of every first consumption (observation
// window and drain together).
func (z *Summarizer) Distributions() (ack, delivery *Distribution) {
	ack, delivery = &Distribution{acc: z.ackLat}, &Distribution{}
	delivery.acc.merge(&z.dlvLat)
	delivery.acc.merge(&z.drainLat)
	return ack, delivery
}

// mean is the sum over the count, rounded half away from zero as
// math.Round does: in float64 while the sum is exact there (as it always was),
// else with 128-bit integers.
func (a *latencyAcc) mean() int64 {
	if a.sumHi == 0 && a.sumLo < 1<<53 {
		return int64(math.Round(float64(a.sumLo) / float64(a.n)))
	}
	sum := new(big.Int).SetUint64(a.sumHi)
	sum.Lsh(sum, 64).Or(sum, new(big.Int).SetUint64(a.sumLo))
	if a.sumHi>>63 == 1 { // negative: two's complement of 128 bits
		sum.Sub(sum, new(big.Int).Lsh(big.NewInt(1), 128))
	}
	n := big.NewInt(a.n)
	q, r := new(big.Int).QuoRem(sum, n, new(big.Int))
	if r.Abs(r).Lsh(r, 1).Cmp(n) >= 0 {
		q.Add(q, big.NewInt(int64(sum.Sign())))
	}
	return q.Int64()
}
