// Package merge joins the run directories of one scenario run as N shards
// (`mqbench run --shard I/N`, on one machine or many) into one run directory
// that report, compare and check read like any other: one event file whose
// header is the whole scenario's and whose events are every shard's, on one
// clock.
//
// Memory does not hold the events: the shards' event files are read twice,
// one event at a time. The first pass keeps, per message, only when it was
// published (8 bytes, as the publishing instance itself kept it), because a
// delivery recorded on one machine of a message published on another needs
// that time and nothing else; the second pass merges the streams in time
// order and writes them out.
package merge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/scenarios"
)

// shard is one input run directory.
type shard struct {
	dir    string
	header bench.Header
	sc     scenarios.Scenario
	index  int   // 1-based shard index
	offset int64 // ns to add to this shard's t_ns to put it on the merged clock
}

// Result is what Merge wrote.
type Result struct {
	Dir    string
	Shards int
	Events int64
	// CrossHost is how many deliveries were recorded on another host than
	// their publish: their latency carries both clocks' error.
	CrossHost int64
}

// Merge reads the shard run directories in dirs and writes the merged run
// into out (created; an existing event file there is never overwritten).
func Merge(dirs []string, out string) (*Result, error) {
	shards, err := openShards(dirs)
	if err != nil {
		return nil, err
	}
	zero := shards[0].header.Start
	for _, s := range shards[1:] {
		if s.header.Start.Before(zero) {
			zero = s.header.Start
		}
	}
	for _, s := range shards {
		s.offset = s.header.Start.Sub(zero).Nanoseconds()
	}
	whole := shards[0].sc
	whole.Shard = nil
	sends, err := readSends(shards, &whole)
	if err != nil {
		return nil, err
	}
	h, err := mergedHeader(shards, &whole, zero)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", out, err)
	}
	path := filepath.Join(out, bench.EventsFile)
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("%s already exists: refusing to overwrite a recorded run", path)
	}
	rec, err := bench.NewRecorder(path, h)
	if err != nil {
		return nil, err
	}
	res := &Result{Dir: out, Shards: len(shards)}
	footer, werr := writeMerged(rec, shards, sends, res)
	if err := rec.Close(footer); err != nil && werr == nil {
		werr = fmt.Errorf("writing %s: %w", path, err)
	}
	return res, werr
}

// openShards reads every header and checks that the directories are the N
// shards of one run of one scenario, each exactly once, sorted by index.
func openShards(dirs []string) ([]*shard, error) {
	if len(dirs) == 0 {
		return nil, errors.New("merge: no run directories")
	}
	var shards []*shard
	var ref []byte
	for _, d := range dirs {
		rr, err := bench.OpenRun(d)
		if err != nil {
			return nil, err
		}
		h := rr.Run().Header
		rr.Close()
		s := &shard{dir: d, header: h}
		sc, err := h.DecodeScenario()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d, err)
		}
		if sc == nil || sc.Shard == nil {
			return nil, fmt.Errorf("%s: not a shard (recorded without --shard): nothing to merge it with", d)
		}
		s.sc = *sc
		s.index = s.sc.Shard.Index
		// The shards must have run the same scenario: compare it with the
		// shard left out.
		c := s.sc
		c.Shard = nil
		b, err := json.Marshal(&c)
		if err != nil {
			return nil, err
		}
		if ref == nil {
			ref = b
		} else if !bytes.Equal(ref, b) {
			return nil, fmt.Errorf("%s ran a different scenario (or other --set values) than %s: shards of one run share it", d, shards[0].dir)
		}
		shards = append(shards, s)
	}
	n := shards[0].sc.Shard.Count
	byIndex := map[int]string{}
	for _, s := range shards {
		if s.sc.Shard.Count != n {
			return nil, fmt.Errorf("%s is shard %s but %s is one of %d: not the same run", s.dir, s.sc.Shard, shards[0].dir, n)
		}
		if prev, ok := byIndex[s.index]; ok {
			return nil, fmt.Errorf("%s and %s are both shard %s", prev, s.dir, s.sc.Shard)
		}
		byIndex[s.index] = s.dir
	}
	if len(shards) != n {
		var missing []string
		for i := 1; i <= n; i++ {
			if _, ok := byIndex[i]; !ok {
				missing = append(missing, fmt.Sprintf("%d/%d", i, n))
			}
		}
		return nil, fmt.Errorf("merge: %d of %d shards given; missing %s", len(shards), n, strings.Join(missing, ", "))
	}
	slices.SortFunc(shards, func(a, b *shard) int { return a.index - b.index })
	return shards, nil
}

// sendTimes holds when each message was published, on the merged clock: the
// one fact a delivery on another machine needs from the publishing one.
type sendTimes map[string][]int64 // publisher id -> t_ns by seq-1; 0 = not published

// readSends is the first pass: the pub events of every shard.
func readSends(shards []*shard, whole *scenarios.Scenario) (sendTimes, error) {
	st := sendTimes{}
	sizes := map[string]int{}
	for _, g := range whole.Publishers {
		for _, id := range g.IDs() {
			sizes[id] = g.Messages
		}
	}
	for _, s := range shards {
		rr, err := bench.OpenRun(s.dir)
		if err != nil {
			return nil, err
		}
		for e := rr.Next(); e != nil; e = rr.Next() {
			if e.Type != bench.EvPub || e.Seq < 1 || int(e.Seq) > sizes[e.Client] {
				continue
			}
			t := st[e.Client]
			if t == nil {
				t = make([]int64, sizes[e.Client])
				st[e.Client] = t
			}
			// The first send counts, as the publisher's own record does: a
			// resend after a reconnect is not a new publish.
			if t[e.Seq-1] == 0 {
				t[e.Seq-1] = e.T + s.offset
			}
		}
		rr.Close()
	}
	return st, nil
}

// mergedHeader is the whole scenario's header: shard 1's broker facts (it
// sampled the broker), the earliest start, every shard's host and clock.
func mergedHeader(shards []*shard, whole *scenarios.Scenario, zero time.Time) (bench.Header, error) {
	h := shards[0].header
	b, err := json.Marshal(whole)
	if err != nil {
		return h, err
	}
	h.Scenario = b
	h.Start = zero
	h.RunID = fmt.Sprintf("%s-merged-%d", shards[0].header.RunID, len(shards))
	var hosts []string
	h.Merged = make([]bench.MergedShard, len(shards))
	for i, s := range shards {
		hosts = append(hosts, s.header.Host)
		h.Merged[i] = bench.MergedShard{
			Index: s.index, Count: len(shards), Dir: s.dir, RunID: s.header.RunID,
			Host: s.header.Host, Start: s.header.Start, Clock: s.header.Clock,
		}
	}
	h.Host = strings.Join(slices.Compact(slices.Sorted(slices.Values(hosts))), ",")
	h.Clock = nil
	return h, nil
}

// stream is one shard's second-pass reader with its next event.
type stream struct {
	s    *shard
	rr   *bench.RunReader
	next bench.Event
	ok   bool
}

func (st *stream) advance() {
	e := st.rr.Next()
	if e == nil {
		st.ok = false
		return
	}
	st.next = *e
	st.next.T += st.s.offset
	st.ok = true
}

// streams orders the shards' next events by time (container/heap).
type streams []*stream

func (h streams) Len() int { return len(h) }
func (h streams) Less(i, j int) bool {
	if h[i].next.T != h[j].next.T {
		return h[i].next.T < h[j].next.T
	}
	return h[i].s.index < h[j].s.index
}
func (h streams) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *streams) Push(x any)   { *h = append(*h, x.(*stream)) }
func (h *streams) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
