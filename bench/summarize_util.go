package bench

import (
	"fmt"
	"math"
	"sort"
	"strconv"
)

// Helpers of Summarize that know nothing of runs: apportioning and counter
// arithmetic.

// apportion splits total among buckets in proportion to their weights by the
// largest-remainder method, never giving a bucket more than its weight; what
// cannot be placed is returned as excess.
func apportion(total int64, weights []int64) (shares []int64, excess int64) {
	shares = make([]int64, len(weights))
	var sum int64
	for _, w := range weights {
		sum += w
	}
	if total <= 0 {
		return shares, 0
	}
	if total >= sum {
		copy(shares, weights)
		return shares, total - sum
	}
	type rem struct {
		i int
		r float64
	}
	rems := make([]rem, 0, len(weights))
	var given int64
	for i, w := range weights {
		exact := float64(total) * float64(w) / float64(sum)
		shares[i] = int64(math.Floor(exact))
		given += shares[i]
		rems = append(rems, rem{i, exact - float64(shares[i])})
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for j := 0; given < total && j < len(rems); j++ {
		if shares[rems[j].i] < weights[rems[j].i] {
			shares[rems[j].i]++
			given++
		}
	}
	return shares, 0
}

// counterTotal is the increase of a cumulative counter over the samples. A
// decrease means the counted process restarted from zero, so the new value is
// all increase. fromZero counts the first sample as increase too (a counter
// that started with the run).
func counterTotal(g []gaugePoint, fromZero bool) float64 {
	if len(g) == 0 {
		return 0
	}
	var total float64
	if fromZero {
		total = g[0].v
	}
	for i := 1; i < len(g); i++ {
		if d := g[i].v - g[i-1].v; d >= 0 {
			total += d
		} else {
			total += g[i].v
		}
	}
	return total
}

func maxOf(g []gaugePoint) float64 {
	var m float64
	for _, p := range g {
		m = math.Max(m, p.v)
	}
	return m
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

func capReasons(in []string) []string {
	if len(in) <= maxReasons {
		return in
	}
	out := append([]string(nil), in[:maxReasons]...)
	return append(out, fmt.Sprintf("... and %d more", len(in)-maxReasons))
}

func firstKey(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[0]
}

// fmtNS renders nanoseconds since start for notes.
func fmtNS(ns int64) string {
	return strconv.FormatFloat(float64(ns)/1e9, 'f', 3, 64) + "s"
}
