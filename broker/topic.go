package broker

import (
	"github.com/mqbench/mqbench/mqtt/topic"
	"slices"
	"strings"
)

// validTopicName reports a topic a client may publish to: a non-empty MQTT
// string without wildcards.
func validTopicName(t string) bool {
	return validMQTTString(t) && topic.ValidName(t) == nil
}

// validFilter reports a subscription filter: '+' and '#' only as whole levels,
// '#' only last.
func validFilter(f string) bool {
	return validMQTTString(f) && topic.ValidFilter(f) == nil
}

// topicHierarchyLimit is Mosquitto's TOPIC_HIERARCHY_LIMIT: its topic checks
// (mosquitto_pub_topic_check, mosquitto_sub_topic_check) refuse a topic or
// filter with more than 200 '/' separators from a client, so a deep topic is
// a protocol error there and must be one here. Restored subscriptions are not
// checked against it, as Mosquitto's restore does not check them either.
const topicHierarchyLimit = 200

// tooDeep reports a topic or filter beyond topicHierarchyLimit.
func tooDeep(t string) bool { return strings.Count(t, "/") > topicHierarchyLimit }

// subNode is one level of the subscription tree. The tree makes routing cost
// depend on the topic's depth, not on the number of subscriptions.
// A node's subscribers are a slice in subscription order, as Mosquitto's
// leaf list is (a re-subscription keeps its place): the order its
// subs__process delivers in, and for the usual node of one or a few
// subscribers far smaller than a map, which an idle subscribed connection
// pays for (issue #10).
type subNode struct {
	children map[string]*subNode
	subs     []subLeaf
}

// subLeaf is one session's subscription at a node: QoS and options.
type subLeaf struct {
	s   *session
	sub byte
}

func (n *subNode) add(filter string, s *session, qos byte) {
	for _, l := range strings.Split(filter, "/") {
		if n.children == nil {
			n.children = make(map[string]*subNode)
		}
		c := n.children[l]
		if c == nil {
			c = &subNode{}
			n.children[l] = c
		}
		n = c
	}
	for i := range n.subs {
		if n.subs[i].s == s {
			n.subs[i].sub = qos
			return
		}
	}
	n.subs = append(n.subs, subLeaf{s, qos})
}

func (n *subNode) remove(filter string, s *session) {
	n.removeLevels(strings.Split(filter, "/"), s)
}

// removeLevels deletes s under levels and prunes empty nodes; it reports whether
// n is now empty.
func (n *subNode) removeLevels(levels []string, s *session) bool {
	if len(levels) == 0 {
		for i := range n.subs {
			if n.subs[i].s == s {
				n.subs = slices.Delete(n.subs, i, i+1)
				break
			}
		}
		if len(n.subs) == 0 {
			n.subs = nil
		}
	} else if c := n.children[levels[0]]; c != nil {
		if c.removeLevels(levels[1:], s) {
			delete(n.children, levels[0])
		}
	}
	return len(n.subs) == 0 && len(n.children) == 0
}

// match calls fn for every subscription matching the topic levels and
// returns how many it found (before No Local or the ACL rule any out), which
// is what decides an MQTT 5 PUBACK's "no matching subscribers".
func (n *subNode) match(levels []string, i int, fn func(*session, byte)) int {
	found := 0
	if i == len(levels) {
		for _, l := range n.subs {
			fn(l.s, l.sub)
		}
		found += len(n.subs)
		if h := n.children["#"]; h != nil {
			for _, l := range h.subs {
				fn(l.s, l.sub)
			}
			found += len(h.subs)
		}
		return found
	}
	if c := n.children[levels[i]]; c != nil {
		found += c.match(levels, i+1, fn)
	}
	if i == 0 && strings.HasPrefix(levels[0], "$") {
		return found
	}
	if c := n.children["+"]; c != nil {
		found += c.match(levels, i+1, fn)
	}
	if h := n.children["#"]; h != nil {
		for _, l := range h.subs {
			fn(l.s, l.sub)
		}
		found += len(h.subs)
	}
	return found
}
