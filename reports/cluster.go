package reports

import (
	"fmt"
	"strings"

	"github.com/mqbench/mqbench/bench"
)

// clusterLine says how a cluster target's addresses shared the clients
// (bench's rule: client k of the scenario connects to address k mod M), ""
// for one broker.
func clusterLine(h *bench.Header) string {
	if len(h.Brokers) < 2 {
		return ""
	}
	parts := make([]string, len(h.Brokers))
	for i, b := range h.Brokers {
		parts[i] = fmt.Sprintf("`%s` %d %s, %d %s", b.Addr,
			b.Publishers, plural(int64(b.Publishers), "publisher", "publishers"),
			b.Subscribers, plural(int64(b.Subscribers), "subscriber", "subscribers"))
	}
	return fmt.Sprintf("Clients spread over %d brokers (client k of the scenario on address k mod %d): %s",
		len(h.Brokers), len(h.Brokers), strings.Join(parts, "; "))
}

// mergedLine says which shards a merged run was made of, and where they ran.
func mergedLine(h *bench.Header) string {
	if len(h.Merged) == 0 {
		return ""
	}
	hosts := map[string]int{}
	var order []string
	for _, m := range h.Merged {
		if hosts[m.Host] == 0 {
			order = append(order, m.Host)
		}
		hosts[m.Host]++
	}
	parts := make([]string, len(order))
	for i, host := range order {
		parts[i] = fmt.Sprintf("%s (%d)", host, hosts[host])
	}
	return fmt.Sprintf("Merged from %d shards (mqbench merge) recorded on %s", len(h.Merged), strings.Join(parts, ", "))
}

// shardLine says which shard of a distributed run this is, "" when unsharded.
func shardLine(h *bench.Header) string {
	sc, err := h.DecodeScenario()
	if err != nil || sc == nil || sc.Shard == nil || sc.Shard.Count < 2 {
		return ""
	}
	return fmt.Sprintf("Shard %s of a distributed run: this run holds only its share of the clients, so its counts judge only what it saw", sc.Shard)
}
