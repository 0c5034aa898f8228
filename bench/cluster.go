package bench

import (
	"github.com/mqbench/mqbench/runfile"
	"strings"

	"github.com/mqbench/mqbench/scenarios"
)

// A cluster target is several broker addresses in one (--broker
// tcp://a:1883,tcp://b:1883): the nodes of a broker cluster, or brokers behind
// no load balancer. Clients are spread over them by one stated rule, the same
// on every machine of a sharded run: client k, counted over the whole
// scenario (every publisher group's ids, then every subscriber group's),
// connects to address k mod M. A client keeps its address across reconnects,
// so a persistent session stays with the node that holds it.

// BrokerShare is how many of this run's clients one address of a cluster
// target got (runfile.BrokerShare).
type BrokerShare = runfile.BrokerShare

// splitAddrs turns a target address into its addresses (one for a single broker).
func splitAddrs(addr string) []string {
	var out []string
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// clusterPlan maps every client id of the scenario to its address, and counts
// the clients this instance runs per address. It is nil for one address.
type clusterPlan struct {
	addrs  []string
	byID   map[string]string
	shares []BrokerShare
}

func newClusterPlan(sc *scenarios.Scenario, addr string) *clusterPlan {
	addrs := splitAddrs(addr)
	if len(addrs) < 2 {
		return nil
	}
	p := &clusterPlan{addrs: addrs, byID: map[string]string{}, shares: make([]BrokerShare, len(addrs))}
	k := 0
	for g := range sc.Publishers {
		for _, id := range sc.Publishers[g].IDs() {
			p.byID[id] = addrs[k%len(addrs)]
			k++
		}
	}
	for g := range sc.Subscribers {
		for _, id := range sc.Subscribers[g].IDs() {
			p.byID[id] = addrs[k%len(addrs)]
			k++
		}
	}
	index := map[string]int{}
	for i, a := range addrs {
		p.shares[i].Addr = a
		index[a] = i
	}
	for g := range sc.Publishers {
		for _, id := range sc.LocalPublisherIDs(g) {
			p.shares[index[p.byID[id]]].Publishers++
		}
	}
	for g := range sc.Subscribers {
		for _, id := range sc.LocalSubscriberIDs(g) {
			p.shares[index[p.byID[id]]].Subscribers++
		}
	}
	return p
}

// addrFor is the address client id connects to: its node of a cluster
// target, its group's broker in a run of several, else the one broker.
func (e *engine) addrFor(id string) string {
	if e.cluster != nil {
		if a, ok := e.cluster.byID[id]; ok {
			return a
		}
		return e.cluster.addrs[0]
	}
	if len(e.brokers) > 1 {
		return e.brokerOf(id).addr
	}
	return e.addr
}
