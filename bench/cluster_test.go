package bench

import (
	"testing"

	"github.com/mqbench/mqbench/scenarios"
)

// The cluster rule: client k of the whole scenario (publishers, then
// subscribers) on address k mod M, whatever shard runs it; the shares count
// only the clients this instance runs.
func TestClusterPlan(t *testing.T) {
	sc := &scenarios.Scenario{
		Publishers:  []scenarios.Publisher{{ClientID: "pub-%d", Count: 3}},
		Subscribers: []scenarios.Subscriber{{ClientID: "sub", Count: 1}, {ClientID: "slow-%d", Count: 2}},
	}
	if newClusterPlan(sc, "tcp://127.0.0.1:1883") != nil {
		t.Fatal("a plan for one broker")
	}
	p := newClusterPlan(sc, "tcp://a:1,tcp://b:2")
	want := map[string]string{"pub-1": "tcp://a:1", "pub-2": "tcp://b:2", "pub-3": "tcp://a:1", "sub": "tcp://b:2", "slow-1": "tcp://a:1", "slow-2": "tcp://b:2"}
	for id, a := range want {
		if p.byID[id] != a {
			t.Errorf("%s on %s, want %s", id, p.byID[id], a)
		}
	}
	if p.shares[0] != (BrokerShare{Addr: "tcp://a:1", Publishers: 2, Subscribers: 1}) || p.shares[1] != (BrokerShare{Addr: "tcp://b:2", Publishers: 1, Subscribers: 2}) {
		t.Errorf("shares %+v", p.shares)
	}
	total := [2]BrokerShare{}
	for i := 1; i <= 2; i++ {
		s := *sc
		_ = s.SetShard(scenarios.Shard{Index: i, Count: 2})
		q := newClusterPlan(&s, "tcp://a:1,tcp://b:2")
		for id, a := range want {
			if q.byID[id] != a {
				t.Errorf("shard %d: %s on %s, want %s as unsharded", i, id, q.byID[id], a)
			}
		}
		for j := range total {
			total[j].Publishers += q.shares[j].Publishers
			total[j].Subscribers += q.shares[j].Subscribers
		}
	}
	if total[0].Publishers != 2 || total[0].Subscribers != 1 || total[1].Publishers != 1 || total[1].Subscribers != 2 {
		t.Errorf("shards' shares add up to %+v", total)
	}
}
