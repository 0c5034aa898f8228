package merge

import (
	"container/heap"
	"fmt"
	"strings"
	"time"

	"github.com/mqbench/mqbench/bench"
)

// Footer statuses, worst first: the merged run is as good as its worst shard.
var statusRank = map[string]int{"error": 0, "incomplete": 1, "interrupted": 2, "ok": 3}

// summed are the gauges every shard's own process reports as a running total
// (CPU time, progress counters): the merged series is their sum over the
// shards, not N interleaved series that would read as resets.
var summed = map[string]bool{
	bench.GaugeBenchCPUSecs:   true,
	bench.GaugePublishedTotal: true,
	bench.GaugeDeliveredTotal: true,
}

// writeMerged is the second pass: every shard's events in time order, with
// deliveries given their publish time wherever it was recorded.
func writeMerged(rec *bench.Recorder, shards []*shard, sends sendTimes, res *Result) (bench.Footer, error) {
	pubShard := publishingShards(shards)
	// Every shard's run as it ended (footer, tail), filled as its stream ends.
	ended := make([]*bench.Run, len(shards))
	var h streams
	for _, s := range shards {
		rr, err := bench.OpenRun(s.dir)
		if err != nil {
			return bench.Footer{Status: "error", Error: err.Error()}, err
		}
		defer rr.Close()
		st := &stream{s: s, rr: rr}
		st.advance()
		if st.ok {
			h = append(h, st)
		} else {
			ended[s.index-1] = rr.Run()
		}
	}
	heap.Init(&h)
	if note := clockNote(shards); note != "" {
		rec.Emit(bench.Event{T: 0, Type: bench.EvNote, Level: bench.LevelInfo, Msg: note})
	}
	seenPhase := map[string]bool{}
	var doneT int64 = -1
	totals := map[string][]float64{}
	for h.Len() > 0 {
		st := h[0]
		e := st.next
		idx := st.s.index
		switch e.Type {
		case bench.EvPhase:
			if e.Msg == "done" {
				doneT = max(doneT, e.T)
				break
			}
			if !seenPhase[e.Msg] {
				seenPhase[e.Msg] = true
				rec.Emit(e)
				res.Events++
			}
		case bench.EvNote:
			e.Msg = fmt.Sprintf("shard %d/%d: %s", idx, len(shards), e.Msg)
			rec.Emit(e)
			res.Events++
		case bench.EvGauge:
			if summed[e.Name] {
				t := totals[e.Name]
				if t == nil {
					t = make([]float64, len(shards))
					totals[e.Name] = t
				}
				t[idx-1] = e.Value
				e.Value = 0
				for _, v := range t {
					e.Value += v
				}
			}
			rec.Emit(e)
			res.Events++
		case bench.EvRecv:
			e.PubT = 0
			if t := sends[e.Pub]; e.Seq >= 1 && int(e.Seq) <= len(t) && t[e.Seq-1] != 0 {
				e.PubT = t[e.Seq-1]
				if p := pubShard[e.Pub]; p != 0 && p != idx && shards[p-1].header.Host != st.s.header.Host {
					res.CrossHost++
				}
			}
			rec.Emit(e)
			res.Events++
		default:
			rec.Emit(e)
			res.Events++
		}
		st.advance()
		if st.ok {
			heap.Fix(&h, 0)
		} else {
			ended[idx-1] = st.rr.Run()
			heap.Pop(&h)
		}
	}
	f := bench.Footer{Status: "ok"}
	var errs []string
	for i, run := range ended {
		sf := run.Footer
		if sf == nil {
			sf = &bench.Footer{Status: "incomplete", Error: run.Tail}
		}
		if statusRank[sf.Status] < statusRank[f.Status] {
			f.Status = sf.Status
		}
		if sf.Error != "" {
			errs = append(errs, fmt.Sprintf("shard %d: %s", i+1, sf.Error))
		}
		if sf.Tainted {
			f.Tainted = true
			for _, r := range sf.Reasons {
				f.Reasons = append(f.Reasons, fmt.Sprintf("shard %d: %s", i+1, r))
			}
		}
		f.T = max(f.T, sf.T+shards[i].offset)
		if sf.End.After(f.End) {
			f.End = sf.End
		}
	}
	if doneT >= 0 {
		rec.Emit(bench.Event{T: doneT, Type: bench.EvPhase, Msg: "done"})
	}
	f.Error = strings.Join(errs, "; ")
	return f, nil
}

// publishingShards says which shard ran each publisher.
func publishingShards(shards []*shard) map[string]int {
	out := map[string]int{}
	for _, s := range shards {
		for g := range s.sc.Publishers {
			for _, id := range s.sc.LocalPublisherIDs(g) {
				out[id] = s.index
			}
		}
	}
	return out
}

// clockNote says what a latency between two of the shards' hosts may carry,
// from what each host's kernel said of its clock at the start; "" when every
// shard ran on one host (one clock).
func clockNote(shards []*shard) string {
	hosts := map[string]*bench.Clock{}
	for _, s := range shards {
		hosts[s.header.Host] = s.header.Clock
	}
	if len(hosts) < 2 {
		return ""
	}
	var worst []int64
	var unknown []string
	for host, c := range hosts {
		if c == nil || !c.Synced {
			unknown = append(unknown, host)
			continue
		}
		worst = append(worst, c.MaxErrorNs)
	}
	if len(unknown) > 0 {
		return fmt.Sprintf("the shards ran on %d hosts; the clock of %s is not known to be synchronised, so a latency from a publish on one host to a delivery on another may carry any clock offset", len(hosts), strings.Join(unknown, ", "))
	}
	// The two largest bounds: a cross-host latency is off by at most both.
	var a, b int64
	for _, w := range worst {
		if w > a {
			a, b = w, a
		} else if w > b {
			b = w
		}
	}
	return fmt.Sprintf("the shards ran on %d hosts with synchronised clocks; a latency from a publish on one host to a delivery on another may be off by up to %s (the kernels' maximum errors)", len(hosts), time.Duration(a+b))
}
