package bench

import (
	mqtopic "github.com/mqbench/mqbench/mqtt/topic"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

// countReason counts one MQTT 5 reason code, and a refused publish.
func countReason(s *Summary, e *Event) {
	if s.ReasonCodes == nil {
		s.ReasonCodes = map[string]int64{}
	}
	s.ReasonCodes[e.Reason]++
	if e.Type == EvReason && e.Seq != 0 {
		if _, code, ok := ParseReason(e.Reason); ok && ReasonFailed(code) {
			s.Refused++
		}
	}
}

// addShare makes the subscribers of a shared group one entry of the
// accounting, named by the filter they subscribe ($share/GROUP/FILTER): the
// broker gives each message to one member, so the share, not each member,
// is expected to receive it. Groups naming the same share and filter join
// the same entry. Its reordered count stays 0: the members' deliveries
// interleave, and no order across them is promised.
func addShare(subs map[string]*subState, g scenarios.Subscriber, addSub func(id, filter string, known bool) *subState) {
	key := g.SubscribeFilter()
	st := subs[key]
	if st == nil {
		st = addSub(key, g.Filter, true)
		st.shared = true
	}
	for _, id := range g.IDs() {
		if _, dup := subs[id]; !dup {
			subs[id] = st
		}
	}
}

// messageExpiries maps each MQTT 5 publisher with a message expiry to that
// expiry as the broker applies it (whole seconds).
func messageExpiries(sc *scenarios.Scenario) map[string]int64 {
	if sc == nil {
		return nil
	}
	var m map[string]int64
	for _, p := range sc.Publishers {
		secs := p.MessageExpirySeconds()
		if !p.V5() || secs == 0 {
			continue
		}
		if m == nil {
			m = map[string]int64{}
		}
		for _, id := range p.IDs() {
			m[id] = int64(secs) * int64(time.Second)
		}
	}
	return m
}

// expiredCandidates counts the messages a subscriber expected and never got
// whose expiry had passed by the end of the run (acknowledged at least their
// expiry before the end: pubMsgs.expiring): the broker may have discarded
// them as expired.
func expiredCandidates(st *subState, msgs map[string]*pubMsgs, topicOf func(string) (string, bool)) int64 {
	if !st.known {
		return 0
	}
	var n int64
	for pub, pm := range msgs {
		if pm.expiry == 0 {
			continue
		}
		if topic, ok := topicOf(pub); !ok || !mqtopic.Match(st.filter, topic) {
			continue
		}
		n += pm.expiring.countAndNot(st.seen[pub])
	}
	return n
}
