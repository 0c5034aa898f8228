package merge

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/scenarios"
)

// writeShards records n synthetic shards of one run: n publishers of msgs
// QoS 1 messages each (one per shard, as the split puts them) and one
// subscriber (on shard 2) that receives every message.
func writeShards(tb testing.TB, dir string, n, msgs int) []string {
	tb.Helper()
	sc := &scenarios.Scenario{
		Name:        "merge-bench",
		Publishers:  []scenarios.Publisher{{ClientID: "pub-%d", Count: n, Messages: msgs, QoS: 1, Topic: "t"}},
		Subscribers: []scenarios.Subscriber{{ClientID: "sub", Filter: "t", QoS: 1}},
		Duration:    scenarios.Duration(time.Minute),
	}
	sc.ApplyDefaults()
	start := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	var dirs []string
	for i := 1; i <= n; i++ {
		s := *sc
		if err := s.SetShard(scenarios.Shard{Index: i, Count: n}); err != nil {
			tb.Fatal(err)
		}
		b, err := json.Marshal(&s)
		if err != nil {
			tb.Fatal(err)
		}
		d := filepath.Join(dir, fmt.Sprintf("shard-%d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
		// Each shard started a few ms after the first, on its own clock.
		h := bench.Header{Schema: bench.EventSchema, RunID: fmt.Sprintf("s%d", i), ScenarioName: s.Name, Scenario: b,
			BrokerKind: "external", Host: fmt.Sprintf("host-%d", i), Start: start.Add(time.Duration(i) * time.Millisecond)}
		rec, err := bench.NewRecorder(filepath.Join(d, bench.EventsFile), h)
		if err != nil {
			tb.Fatal(err)
		}
		rec.Emit(bench.Event{T: 0, Type: bench.EvPhase, Msg: "connect"})
		rec.Emit(bench.Event{T: 1e6, Type: bench.EvPhase, Msg: "run"})
		pub := s.LocalPublisherIDs(0)
		for seq := 1; seq <= msgs; seq++ {
			t := int64(1e6 + seq*10_000)
			for _, p := range pub {
				rec.Emit(bench.Event{T: t, Type: bench.EvPub, Client: p, Seq: int64(seq), QoS: 1, Size: 150})
				rec.Emit(bench.Event{T: t + 200_000, Type: bench.EvAck, Client: p, Seq: int64(seq), QoS: 1})
			}
			if len(s.LocalSubscriberIDs(0)) == 1 {
				for p := 1; p <= n; p++ {
					// Published on shard p, whose clock starts p-i ms from this one's.
					rec.Emit(bench.Event{T: t + 500_000 + int64(p-i)*1e6, Type: bench.EvRecv, Client: "sub",
						Pub: fmt.Sprintf("pub-%d", p), Seq: int64(seq), QoS: 1, Size: 150})
				}
			}
		}
		end := int64(1e6 + (msgs+1)*10_000 + 1e9)
		rec.Emit(bench.Event{T: end, Type: bench.EvPhase, Msg: "done"})
		if err := rec.Close(bench.Footer{T: end, Status: "ok"}); err != nil {
			tb.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	return dirs
}

// peakRSS is the process's peak resident set since the last resetPeak.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// resetPeak starts peakRSS afresh (Linux: 5 > /proc/self/clear_refs).
func resetPeak() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// BenchmarkMerge merges 4 shards of MQBENCH_MERGE_MESSAGES (default 1,000,000)
// messages each and reports merge time, events per second and the peak RSS
// of the merge itself (the synthetic files are written first, then the peak is
// reset):
//
//	go test ./merge -run '^$' -bench BenchmarkMerge -benchtime 1x
func BenchmarkMerge(b *testing.B) {
	msgs := 1_000_000
	if v := os.Getenv("MQBENCH_MERGE_MESSAGES"); v != "" {
		var err error
		if msgs, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	dirs := writeShards(b, b.TempDir(), 4, msgs)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runtime.GC()
		resetPeak()
		t0 := time.Now()
		res, err := Merge(dirs, filepath.Join(b.TempDir(), "merged"))
		if err != nil {
			b.Fatal(err)
		}
		el := time.Since(t0)
		b.ReportMetric(float64(res.Events)/el.Seconds(), "events/s")
		b.ReportMetric(float64(peakRSS())/1e6, "peakRSS_MB")
		b.ReportMetric(float64(res.CrossHost), "cross_host")
	}
}

// A small synthetic run: every delivery gets its publish time from the
// publishing shard on the merged clock, and the cross-host count is every
// delivery whose publisher ran elsewhere.
func TestMergeSynthetic(t *testing.T) {
	dirs := writeShards(t, t.TempDir(), 4, 50)
	out := filepath.Join(t.TempDir(), "m")
	res, err := Merge(dirs, out)
	if err != nil {
		t.Fatal(err)
	}
	if res.CrossHost != 3*50 {
		t.Errorf("cross-host deliveries %d, want 150 (the subscriber's shard published 50 of 200)", res.CrossHost)
	}
	rr, err := bench.OpenRun(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	if h := rr.Run().Header; len(h.Merged) != 4 || !h.Start.Equal(time.Date(2026, 12, 1, 22, 0, 0, int(time.Millisecond), time.UTC)) {
		t.Errorf("merged header: %d shards, start %s", len(h.Merged), h.Start)
	}
	var recvs int
	for e := rr.Next(); e != nil; e = rr.Next() {
		switch e.Type {
		case bench.EvRecv:
			recvs++
			// The synthetic shards' events are out of order by up to 3 ms
			// (real files by far less), so a delivery may come before its
			// publish: check the latency, which needs no order.
			if e.T-e.PubT != 500_000 {
				t.Fatalf("recv %s/%d at %d: pub_t_ns %d, latency %d, want 500µs", e.Pub, e.Seq, e.T, e.PubT, e.T-e.PubT)
			}
		}
	}
	if recvs != 200 {
		t.Errorf("%d deliveries, want 200", recvs)
	}
	if f := rr.Run().Footer; f == nil || f.Status != "ok" {
		t.Errorf("footer %+v", f)
	}
}
