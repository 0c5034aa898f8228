package broker

import (
	"github.com/mqbench/mqbench/mqtt/topic"
	"strings"

	"github.com/mqbench/mqbench/broker/auth"
)

// Shared subscriptions ($share/GROUP/FILTER), for MQTT 5 and, as Mosquitto
// allows, 3.1/3.1.1 clients: each message matching FILTER goes to one member
// of the group, the members taking turns (Mosquitto's subs__shared_process
// sends to the first and moves it to the back). They are kept apart from the
// subscription tree because a match picks one member instead of all, and
// they are not saved: Mosquitto 2.0.11's persist__subs_save writes only the
// plain subscriptions of its tree, so a restart forgets them in both brokers.

// shareGroup is one GROUP on one FILTER; members are in turn order, with the
// subscription byte (QoS and options) each holds in its session's subs.
type shareGroup struct {
	filter  string
	members []*session
}

// splitShare splits a shared subscription into its group and filter; ok is
// false for a filter that is not one.
func splitShare(f string) (group, filter string, ok bool) {
	rest, found := strings.CutPrefix(f, "$share/")
	if !found {
		return "", "", false
	}
	group, filter, found = strings.Cut(rest, "/")
	return group, filter, found
}

// validShare reports a well-formed shared subscription: a group name without
// wildcards and a valid filter after it (sub__topic_tokenise's rule).
func validShare(f string) bool {
	group, filter, ok := splitShare(f)
	return ok && group != "" && !strings.ContainsAny(group, "+#") && validFilter(filter)
}

// addSub puts s's subscription f (QoS and options in sub) where routing
// finds it.
func (st *state) addSub(f string, s *session, sub byte) {
	if _, _, ok := splitShare(f); !ok {
		st.subs.add(f, s, sub)
		return
	}
	g := st.shared[f]
	if g == nil {
		_, filter, _ := splitShare(f)
		g = &shareGroup{filter: filter}
		st.shared[f] = g
	}
	for _, m := range g.members {
		if m == s {
			return
		}
	}
	g.members = append(g.members, s)
}

// removeSub undoes addSub.
func (st *state) removeSub(f string, s *session) {
	if _, _, ok := splitShare(f); !ok {
		st.subs.remove(f, s)
		return
	}
	g := st.shared[f]
	if g == nil {
		return
	}
	for i, m := range g.members {
		if m == s {
			g.members = append(g.members[:i], g.members[i+1:]...)
			break
		}
	}
	if len(g.members) == 0 {
		delete(st.shared, f)
	}
}

// routeShared hands m to one member of every group whose filter matches it
// and returns how many groups matched.
func (st *state) routeShared(m *storedMsg) int {
	n := 0
	for key, g := range st.shared {
		if !topic.Match(g.filter, m.topic) {
			continue
		}
		n++
		s := g.members[0]
		copy(g.members, g.members[1:])
		g.members[len(g.members)-1] = s
		if !s.allowed(m.topic, auth.Read) {
			continue
		}
		sub := s.subs[key]
		var ids []uint32
		if id := s.subIDs[key]; id != 0 {
			ids = []uint32{id}
		}
		st.deliver(s, m, st.outQoS(sub&3, m.qos), sub&subRetainAsPublished != 0 && m.retain, ids)
	}
	return n
}
