package scenarios

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxShards bounds --shard I/N: beyond it every group of a shipped scenario
// would be empty on most shards, and a typo (--shard 1/10000000) should not
// plan ten million instances.
const MaxShards = 1000

// Shard is one instance's share of a scenario run by Count instances at once
// (`mqbench run --shard I/N`, e.g. one pod of a Kubernetes Indexed Job).
//
// A sharded scenario is still the whole scenario: every group keeps its full
// count, so client ids, the messages each subscriber must receive and a
// global rate mean what they mean unsharded; the shard only says which
// clients run here. N instances with the same scenario and Index 1..N
// together run every client exactly once, with the ids one instance would
// give them, which is what lets `mqbench merge` match a message published on
// one machine with its delivery on another.
type Shard struct {
	Index int `json:"index"` // 1-based
	Count int `json:"count"`
}

// String is the I/N form the flag takes.
func (sh Shard) String() string { return fmt.Sprintf("%d/%d", sh.Index, sh.Count) }

// ParseShard reads "I/N" with 1 <= I <= N <= MaxShards.
func ParseShard(v string) (Shard, error) {
	i, n, ok := strings.Cut(strings.TrimSpace(v), "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want I/N, e.g. 2/4", v)
	}
	idx, err1 := strconv.Atoi(i)
	cnt, err2 := strconv.Atoi(n)
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want I/N with whole numbers, e.g. 2/4", v)
	}
	sh := Shard{Index: idx, Count: cnt}
	return sh, sh.valid()
}

// ShardFromIndex turns a 0-based completion index (Kubernetes'
// JOB_COMPLETION_INDEX) into shard index+1 of n.
func ShardFromIndex(index string, n int) (Shard, error) {
	k, err := strconv.Atoi(strings.TrimSpace(index))
	if err != nil {
		return Shard{}, fmt.Errorf("completion index %q is not a whole number", index)
	}
	sh := Shard{Index: k + 1, Count: n}
	return sh, sh.valid()
}

func (sh Shard) valid() error {
	switch {
	case sh.Count < 1 || sh.Count > MaxShards:
		return fmt.Errorf("shard count %d: must be 1 to %d", sh.Count, MaxShards)
	case sh.Index < 1 || sh.Index > sh.Count:
		return fmt.Errorf("shard %d/%d: the index must be 1 to %d", sh.Index, sh.Count, sh.Count)
	}
	return nil
}

// SetShard makes s the share of shard sh. Setting it twice, or on an
// expanded sweep's parts differently, is the caller's business: the last
// call wins.
func (s *Scenario) SetShard(sh Shard) error {
	if err := sh.valid(); err != nil {
		return err
	}
	s.Shard = &sh
	return nil
}

// sharded reports the shard, or false for an unsharded run.
func (s *Scenario) sharded() (Shard, bool) {
	if s.Shard == nil || s.Shard.Count <= 1 {
		return Shard{}, false
	}
	return *s.Shard, true
}

// localRange is which clients of a group of count clients run on this shard:
// those with 0-based index first..first+n-1. The group's clients are cut into
// Count contiguous ranges, the first count%Count one client longer, and range r
// goes to shard (r+ordinal) mod Count + 1. The rotation by the group's ordinal
// (publishers first, then subscribers) spreads single clients over the
// shards instead of putting every one on shard 1.
func (s *Scenario) localRange(ordinal, count int) (first, n int) {
	sh, ok := s.sharded()
	if !ok {
		return 0, count
	}
	r := ((sh.Index-1-ordinal)%sh.Count + sh.Count) % sh.Count
	base, extra := count/sh.Count, count%sh.Count
	first = r*base + min(r, extra)
	n = base
	if r < extra {
		n++
	}
	return first, n
}

// LocalPublisherIDs are the ids of publisher group g's clients that run on
// this shard (all of them when unsharded), in the order IDs gives.
func (s *Scenario) LocalPublisherIDs(g int) []string {
	ids := s.Publishers[g].IDs()
	first, n := s.localRange(g, len(ids))
	return ids[first : first+n]
}

// LocalSubscriberIDs are the ids of subscriber group g's clients that run on
// this shard.
func (s *Scenario) LocalSubscriberIDs(g int) []string {
	ids := s.Subscribers[g].IDs()
	first, n := s.localRange(len(s.Publishers)+g, len(ids))
	return ids[first : first+n]
}

// LocalRate is the rate the publishers of group g that run here share when
// the group's rate is global: the group's rate in proportion to the clients
// this shard runs, so N shards together publish at the rate the scenario
// names. A per-publisher rate is the same everywhere.
func (s *Scenario) LocalRate(g int) float64 {
	p := s.Publishers[g]
	if p.RateScope != "global" {
		return p.Rate
	}
	ids := p.IDs()
	_, n := s.localRange(g, len(ids))
	return p.Rate * float64(n) / float64(len(ids))
}

// RunsBrokerSide reports whether this shard does what must happen once per
// run, not once per instance: broker actions (save, stop, kill, start) and
// sampling the broker ($SYS counters, the persistence file). Shard 1 does.
func (s *Scenario) RunsBrokerSide() bool {
	sh, ok := s.sharded()
	return !ok || sh.Index == 1
}

// RunsAction reports whether action a runs on this shard: a broker action on
// shard 1, a subscriber action where that subscriber runs.
func (s *Scenario) RunsAction(a Action) bool {
	if _, ok := s.sharded(); !ok {
		return true
	}
	switch a.Do {
	case DoDisconnect, DoReconnect:
		for g := range s.Subscribers {
			for _, id := range s.LocalSubscriberIDs(g) {
				if id == a.Target {
					return true
				}
			}
		}
		return false
	}
	return s.RunsBrokerSide()
}
