package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/bench"
)

const mergeScenario = `name: merge-check
publishers:
  - client_id: pub-%d
    count: 4
    messages: 250
    qos: 1
    topic: m/a
    inflight: 10
    rate: 2000
    rate_scope: global
subscribers:
  - client_id: sub-%d
    count: 3
    filter: m/#
    qos: 1
duration: 3s
drain_timeout: 10s
`

// The same scenario run once whole and as 4 shard processes started together
// against one broker, then merged: the merged run's counts are the whole
// run's, and its delivery latencies are the ones the shards' raw events give
// (publish on one shard's clock, delivery on another's), within the
// histograms' precision.
func TestMergedShardsMatchOneRun(t *testing.T) {
	dir := t.TempDir()
	addr := startPlainBundled(t, dir)
	sc := filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(sc, []byte(mergeScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	whole := filepath.Join(dir, "whole")
	if res := runCLI(t, cliOpts{}, "run", sc, "--broker", addr, "--no-progress", "--out", whole); res.code != 0 {
		t.Fatalf("whole run:\n%s", res)
	}
	const n = 4
	runShards(t, sc, addr, n, time.Now().Add(5*time.Second).Truncate(time.Second), dir)
	var shardDirs []string
	for i := 1; i <= n; i++ {
		shardDirs = append(shardDirs, shardDir(dir, i))
	}
	merged := filepath.Join(dir, "merged")
	// Shards in any order.
	args := append([]string{"merge", "--out", merged}, shardDirs[2], shardDirs[0], shardDirs[3], shardDirs[1])
	if res := runCLI(t, cliOpts{}, args...); res.code != 0 {
		t.Fatalf("merge:\n%s", res)
	}
	w, m := readSummary(t, whole), readSummary(t, merged)
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"published", m.Published, w.Published}, {"acked", m.Acked, w.Acked}, {"delivered", m.Delivered, w.Delivered},
		{"held_at_end", m.HeldAtEnd, w.HeldAtEnd}, {"lost", m.Lost, w.Lost}, {"duplicates", m.Duplicates, w.Duplicates},
	} {
		if c.got != c.want {
			t.Errorf("%s: merged %d, one run %d", c.name, c.got, c.want)
		}
	}
	if w.Published != 1000 || w.Delivered != 3000 || m.Lost != 0 {
		t.Errorf("one run published %d delivered %d, merged lost %d: want 1000, 3000, 0", w.Published, w.Delivered, m.Lost)
	}

	// Ground truth: every first delivery's latency from the raw shard files.
	type key struct {
		pub string
		seq int64
	}
	sent := map[key]time.Time{}
	var lat []int64
	runs := make([]*bench.Run, n)
	for i, d := range shardDirs {
		runs[i] = readRun(t, d)
		for _, ev := range runs[i].Events {
			if ev.Type == bench.EvPub {
				k := key{ev.Client, ev.Seq}
				if _, ok := sent[k]; !ok {
					sent[k] = runs[i].Header.Start.Add(time.Duration(ev.T))
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, r := range runs {
		for _, ev := range r.Events {
			if ev.Type != bench.EvRecv {
				continue
			}
			id := fmt.Sprintf("%s/%s/%d", ev.Client, ev.Pub, ev.Seq)
			if seen[id] {
				continue
			}
			seen[id] = true
			lat = append(lat, r.Header.Start.Add(time.Duration(ev.T)).Sub(sent[key{ev.Pub, ev.Seq}]).Nanoseconds())
		}
	}
	slices.Sort(lat)
	p50 := lat[(len(lat)-1)/2]
	got := m.Latency.PublishToDelivery
	if got.Count != int64(len(lat)) {
		t.Errorf("merged delivery latency over %d deliveries, the shards have %d", got.Count, len(lat))
	}
	// 3 significant digits, and the rank rule may pick a neighbour.
	if d := math.Abs(float64(got.P50-p50)) / float64(p50); d > 0.01 {
		t.Errorf("merged p50 %d ns, raw events give %d ns (%.2f%% apart)", got.P50, p50, 100*d)
	}
	if got.Max < lat[len(lat)-1]*99/100 || got.Max > lat[len(lat)-1]*101/100 {
		t.Errorf("merged max %d ns, raw events give %d ns", got.Max, lat[len(lat)-1])
	}

	// What merge refuses, naming the problem.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{shardDirs[0], shardDirs[1]}, "missing 3/4, 4/4"},
		{[]string{shardDirs[0], shardDirs[0], shardDirs[2], shardDirs[3]}, "are both shard 1/4"},
		{[]string{whole}, "not a shard"},
		{shardDirs, "--out DIR is required"},
	} {
		a := append([]string{"merge"}, tc.args...)
		if tc.want != "--out DIR is required" {
			a = append(a, "--out", filepath.Join(t.TempDir(), "x"))
		}
		res := runCLI(t, cliOpts{}, a...)
		if res.code == 0 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("mqbench %s: want an error with %q\n%s", strings.Join(a, " "), tc.want, res)
		}
	}
	if res := runCLI(t, cliOpts{}, append([]string{"merge", "--out", merged}, shardDirs...)...); res.code == 0 || !strings.Contains(res.stderr, "already exists") {
		t.Errorf("merging into a directory holding a run: want a refusal\n%s", res)
	}
}
