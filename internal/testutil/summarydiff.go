package testutil

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// LatencyRelTolerance is how far a latency percentile may move between the
// exact nearest-rank computation the golden summaries were written with and
// the HDR histograms the streaming analysis keeps: a histogram of 3
// significant digits keeps every value within 1 part in 1000 (its buckets are
// at most 1/1024 of their value wide), so a percentile is off by at most that.
const LatencyRelTolerance = 1e-3

// latencyPercentile names the summary fields a histogram answers within
// LatencyRelTolerance; count, max and mean are kept exactly and compared so.
var latencyPercentile = map[string]bool{"p50_ns": true, "p90_ns": true, "p99_ns": true, "p99_9_ns": true}

// SummaryDiff compares two summary.json documents and lists every difference
// by its JSON path. Every value must be equal, except latency percentiles
// (under a "latency" object), which may differ by LatencyRelTolerance of the
// golden value (at least 1 ns). It returns nil when they match.
func SummaryDiff(got, want []byte) ([]string, error) {
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return nil, fmt.Errorf("got: %w", err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		return nil, fmt.Errorf("want: %w", err)
	}
	var diffs []string
	diffJSON("", g, w, false, &diffs)
	return diffs, nil
}

func diffJSON(path string, g, w any, inLatency bool, diffs *[]string) {
	switch wv := w.(type) {
	case map[string]any:
		gv, ok := g.(map[string]any)
		if !ok {
			*diffs = append(*diffs, fmt.Sprintf("%s: got %v, want an object", path, g))
			return
		}
		keys := map[string]bool{}
		for k := range wv {
			keys[k] = true
		}
		for k := range gv {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			p := path + "." + k
			gk, gok := gv[k]
			wk, wok := wv[k]
			switch {
			case !gok:
				*diffs = append(*diffs, fmt.Sprintf("%s: missing, want %v", p, wk))
			case !wok:
				*diffs = append(*diffs, fmt.Sprintf("%s: got %v, not in the golden summary", p, gk))
			default:
				diffJSON(p, gk, wk, inLatency || k == "latency", diffs)
			}
		}
	case []any:
		gv, ok := g.([]any)
		if !ok || len(gv) != len(wv) {
			*diffs = append(*diffs, fmt.Sprintf("%s: got %v, want %v", path, g, w))
			return
		}
		for i := range wv {
			diffJSON(fmt.Sprintf("%s[%d]", path, i), gv[i], wv[i], inLatency, diffs)
		}
	case float64:
		gv, ok := g.(float64)
		if !ok {
			*diffs = append(*diffs, fmt.Sprintf("%s: got %v, want %v", path, g, w))
			return
		}
		key := path[strings.LastIndex(path, ".")+1:]
		if inLatency && latencyPercentile[key] {
			if math.Abs(gv-wv) > math.Max(1, math.Abs(wv)*LatencyRelTolerance) {
				*diffs = append(*diffs, fmt.Sprintf("%s: got %v, want %v within %g", path, gv, wv, LatencyRelTolerance))
			}
			return
		}
		if gv != wv {
			*diffs = append(*diffs, fmt.Sprintf("%s: got %v, want %v", path, gv, wv))
		}
	default:
		if fmt.Sprint(g) != fmt.Sprint(w) {
			*diffs = append(*diffs, fmt.Sprintf("%s: got %v, want %v", path, g, w))
		}
	}
}
