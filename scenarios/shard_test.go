package scenarios

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func shardScenario(pubCounts, subCounts []int) *Scenario {
	s := &Scenario{Name: "t"}
	for i, c := range pubCounts {
		id := fmt.Sprintf("p%d", i)
		if c > 1 {
			id += "-%d"
		}
		s.Publishers = append(s.Publishers, Publisher{ClientID: id, Count: c, Rate: 100, RateScope: "global"})
	}
	for i, c := range subCounts {
		id := fmt.Sprintf("s%d", i)
		if c > 1 {
			id += "-%d"
		}
		s.Subscribers = append(s.Subscribers, Subscriber{ClientID: id, Count: c})
	}
	return s
}

// Every client runs on exactly one of the N shards, with the id the unsharded
// run gives it, and a global rate adds up to the scenario's.
func TestShardsCoverEveryClientOnce(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 7, 16} {
		for _, counts := range [][]int{{1}, {2}, {5}, {16}, {17}, {1, 1, 1}, {3, 1000}} {
			base := shardScenario(counts, counts)
			seen := map[string]int{}
			rates := make([]float64, len(counts))
			for i := 1; i <= n; i++ {
				s := *base
				if err := s.SetShard(Shard{Index: i, Count: n}); err != nil {
					t.Fatal(err)
				}
				for g := range s.Publishers {
					for _, id := range s.LocalPublisherIDs(g) {
						seen[id]++
					}
					rates[g] += s.LocalRate(g)
				}
				for g := range s.Subscribers {
					for _, id := range s.LocalSubscriberIDs(g) {
						seen[id]++
					}
				}
			}
			var all []string
			for g := range base.Publishers {
				all = append(all, base.Publishers[g].IDs()...)
			}
			for g := range base.Subscribers {
				all = append(all, base.Subscribers[g].IDs()...)
			}
			if len(seen) != len(all) {
				t.Errorf("n=%d counts=%v: %d distinct clients ran, want %d", n, counts, len(seen), len(all))
			}
			for _, id := range all {
				if seen[id] != 1 {
					t.Errorf("n=%d counts=%v: client %s ran on %d shards", n, counts, id, seen[id])
				}
			}
			for g, r := range rates {
				if math.Abs(r-100) > 1e-9 {
					t.Errorf("n=%d counts=%v: group %d's global rate adds up to %g, want 100", n, counts, g, r)
				}
			}
		}
	}
}

// Single clients are spread over the shards rather than all put on shard 1:
// persist-3s's one publisher and one subscriber land on shards 1 and 2 of 4.
func TestShardSpreadsSingleClients(t *testing.T) {
	base := shardScenario([]int{1}, []int{1})
	where := map[string]int{}
	for i := 1; i <= 4; i++ {
		s := *base
		_ = s.SetShard(Shard{Index: i, Count: 4})
		for _, id := range s.LocalPublisherIDs(0) {
			where[id] = i
		}
		for _, id := range s.LocalSubscriberIDs(0) {
			where[id] = i
		}
	}
	if where["p0"] != 1 || where["s0"] != 2 {
		t.Fatalf("single clients placed %v, want p0 on 1 and s0 on 2", where)
	}
}

func TestShardActionsRunOnce(t *testing.T) {
	base := shardScenario([]int{1}, []int{3})
	base.Actions = []Action{{Do: "kill"}, {Do: "save"}, {Do: "disconnect", Target: "s0-2"}, {Do: "reconnect", Target: "s0-3"}}
	for _, a := range base.Actions {
		runs := 0
		for i := 1; i <= 3; i++ {
			s := *base
			_ = s.SetShard(Shard{Index: i, Count: 3})
			if s.RunsAction(a) {
				runs++
				if a.Target == "" && !s.RunsBrokerSide() {
					t.Errorf("broker action %s ran on shard %d, which does not own the broker side", a.Do, i)
				}
			}
		}
		if runs != 1 {
			t.Errorf("action %s %s ran on %d shards, want 1", a.Do, a.Target, runs)
		}
	}
}

func TestParseShard(t *testing.T) {
	for _, ok := range []string{"1/1", "2/4", " 4/4 ", "1000/1000"} {
		if _, err := ParseShard(ok); err != nil {
			t.Errorf("ParseShard(%q): %v", ok, err)
		}
	}
	for in, want := range map[string]string{
		"0/4": "index must be 1 to 4", "5/4": "index must be 1 to 4", "1/0": "must be 1 to 1000",
		"2": "want I/N", "a/4": "whole numbers", "1/1001": "must be 1 to 1000",
	} {
		if _, err := ParseShard(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseShard(%q) = %v, want an error with %q", in, err, want)
		}
	}
	sh, err := ShardFromIndex("0", 4)
	if err != nil || sh != (Shard{1, 4}) {
		t.Errorf("ShardFromIndex(0, 4) = %v, %v; want 1/4", sh, err)
	}
	if _, err := ShardFromIndex("4", 4); err == nil {
		t.Error("ShardFromIndex(4, 4) accepted: index 4 of a 4-pod job does not exist")
	}
}
