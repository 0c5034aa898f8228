package broker

import (
	"strings"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/mqbench/mqbench/broker/auth"
)

// PUBLISH handling and routing: Mosquitto's handle__publish and
// sub__messages_queue, apart from the state owner's bookkeeping so the
// reason codes an MQTT 5 publisher gets read next to the flow they end.

func (st *state) onPublish(c *conn, s *session, p *packets.PublishPacket, p5 *v5Publish) {
	if !validTopicName(p.TopicName) || tooDeep(p.TopicName) {
		st.handlerError(c, 0x82, "invalid topic in PUBLISH")
		return
	}
	if p.Qos > 0 && p.MessageID == 0 {
		st.handlerError(c, 0x82, "PUBLISH without packet identifier")
		return
	}
	// handle__publish: above maximum_qos (DISCONNECT 0x9B) or retained
	// without retain_available (0x9A) closes the connection.
	if p.Qos > c.maxQoS() || (p.Retain && st.cfg.RetainUnavailable) {
		reason := byte(0x9B)
		if p.Qos <= c.maxQoS() {
			reason = 0x9A
		}
		st.b.log.printf(logNotice, "Client %s disconnected: PUBLISH not supported by the configuration (%#x).", st.name(c), reason)
		st.sendDisconnect(c, reason)
		st.disconnect(c, true)
		return
	}
	// handle__publish checks the topic as sent, then prefixes the listener's
	// mount_point; the ACL, routing and the stored message see the result.
	// Deliveries are not stripped of it (Mosquitto 2.0.11 does not strip).
	p.TopicName = c.mountPoint() + p.TopicName
	if !s.allowed(p.TopicName, auth.Write) {
		// Mosquitto's process_bad_message: the flow completes, the message is
		// dropped; an MQTT 5 client is told 0x87, not authorized.
		st.b.log.printf(logDebug, "Denied PUBLISH from %s (d%d, q%d, r%d, m%d, '%s', ... (%d bytes))",
			s.id, b2i(p.Dup), p.Qos, b2i(p.Retain), p.MessageID, p.TopicName, len(p.Payload))
		var reason byte
		if c.v5 {
			reason = 0x87
		}
		st.badMessage(c, s, p.Qos, p.MessageID, reason)
		return
	}
	dup := p.Qos == 2 && s.inByMid[p.MessageID] != nil
	if p.Qos > 0 && !dup && !st.readyIn(s) {
		// The client may not have more incoming messages: 0x97, quota
		// exceeded (a 3.1.1 client gets the plain acknowledgement), and
		// the message is dropped.
		st.b.log.printf(logDebug, "Dropped PUBLISH from %s over its incoming quota (q%d, m%d, '%s').", s.id, p.Qos, p.MessageID, p.TopicName)
		var reason byte
		if c.v5 {
			reason = 0x97
		}
		st.badMessage(c, s, p.Qos, p.MessageID, reason)
		return
	}
	switch p.Qos {
	case 2:
		if dup {
			c.send(outPkt{kind: outPubrec, mid: p.MessageID})
		} else {
			st.acceptIn(c, s, st.newMsg(s, p, p5), p)
		}
	case 1:
		st.quotaDown(s)
		var reason byte
		if n := st.route(st.newMsg(s, p, p5)); c.v5 && n == 0 {
			reason = 0x10 // no matching subscribers
		}
		st.inAck(c, s, 1, p.MessageID, reason)
	default:
		st.route(st.newMsg(s, p, p5))
	}
}

func (st *state) newMsg(s *session, p *packets.PublishPacket, p5 *v5Publish) *storedMsg {
	st.lastID++
	m := &storedMsg{id: st.lastID, topic: p.TopicName, payload: p.Payload, qos: p.Qos, retain: p.Retain,
		sourceID: s.id, sourceUser: s.username, sourcePort: s.listenerPort, sourceMid: p.MessageID}
	if p5 != nil {
		m.setExpiry(st.now(), p5.props.MessageExpiryInterval)
		m.rawProps = storedProps(p5.raw)
	}
	return m
}

// collect records one matching subscription; sub is its QoS with the MQTT 5
// options No Local and Retain As Published in the bits the SUB chunk keeps
// them in (subNoLocal, subRetainAsPublished). A No Local subscription does
// not match its own client's messages, as in subs__process. A session found
// again is merged (highest QoS) and marked multi: route decides whether it
// gets one copy or one per subscription.
func (st *state) collect(s *session, sub byte) {
	if sub&subNoLocal != 0 && s.id == st.routeSource {
		return
	}
	qos, rap := sub&3, sub&subRetainAsPublished != 0
	if s.mark == st.matchGen {
		mt := &st.matches[s.markIdx]
		mt.qos = max(mt.qos, qos)
		mt.rap = mt.rap || rap
		mt.multi = true
		return
	}
	s.mark = st.matchGen
	s.markIdx = len(st.matches)
	st.matches = append(st.matches, match{s: s, qos: qos, rap: rap})
}

// route delivers m to every matching session and updates the retained
// message. A session whose client spoke MQTT 5 gets one copy per matching
// subscription, each with that subscription's QoS, Retain As Published and
// identifier, as Mosquitto 2.0.11's db__message_insert skips its duplicate
// check for MQTT 5; any other session (3.1/3.1.1, or restored and not yet
// reconnected, whose protocol Mosquitto does not know) gets it once, at the
// highest QoS any of its matching subscriptions granted.
func (st *state) route(m *storedMsg) int {
	st.matchGen++
	st.matches = st.matches[:0]
	st.routeSource = m.sourceID
	if m.sys {
		st.routeSource = ""
	}
	n := st.routeShared(m)
	n += st.subs.match(strings.Split(m.topic, "/"), 0, st.collectFn)
	for i := range st.matches {
		mt := st.matches[i]
		st.matches[i].s = nil
		if !mt.s.allowed(m.topic, auth.Read) {
			continue
		}
		if mt.s.proto == 5 && (mt.multi || len(mt.s.subIDs) > 0) {
			for _, f := range mt.s.matchingFilters(m.topic, st.routeSource) {
				sub := mt.s.subs[f]
				var ids []uint32
				if id := mt.s.subIDs[f]; id != 0 {
					ids = []uint32{id}
				}
				st.deliver(mt.s, m, st.outQoS(sub&3, m.qos), sub&subRetainAsPublished != 0 && m.retain, ids)
			}
			continue
		}
		// A live delivery goes out with retain cleared unless a matching
		// subscription asked for Retain As Published. Its identifier (kept,
		// and saved, though a 3.x client is never sent it) is the first
		// match's, the one Mosquitto's duplicate check lets through.
		var ids []uint32
		if len(mt.s.subIDs) > 0 {
			if fs := mt.s.matchingFilters(m.topic, st.routeSource); len(fs) > 0 && mt.s.subIDs[fs[0]] != 0 {
				ids = []uint32{mt.s.subIDs[fs[0]]}
			}
		}
		st.deliver(mt.s, m, st.outQoS(mt.qos, m.qos), mt.rap && m.retain, ids)
	}
	if m.retain {
		st.setRetained(m)
	}
	return n
}

func (st *state) setRetained(m *storedMsg) {
	old := st.retained[m.topic]
	if len(m.payload) == 0 {
		if old != nil {
			delete(st.retained, m.topic)
			old.retained = false
			st.unref(old)
			if !m.sys {
				st.changed()
			}
		}
		return
	}
	if old != nil {
		old.retained = false
		st.unref(old)
	}
	st.retained[m.topic] = m
	m.retained = true
	st.ref(m)
	if !m.sys {
		st.changed()
	}
}

// outQoS is the QoS a delivery goes out at: the lower of the subscription's
// and the message's, or the subscription's with upgrade_outgoing_qos.
func (st *state) outQoS(sub, msg byte) byte {
	if st.upgradeQoS {
		return sub
	}
	return min(sub, msg)
}
