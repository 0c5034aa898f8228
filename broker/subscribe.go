package broker

import (
	mqtopic "github.com/mqbench/mqbench/mqtt/topic"
	"strings"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/mqbench/mqbench/broker/auth"
)

// SUBSCRIBE and UNSUBSCRIBE: Mosquitto's handle__subscribe and
// handle__unsubscribe, with retained messages sent after the SUBACK.

func (st *state) onSubscribe(c *conn, s *session, p *packets.SubscribePacket, p5 *v5Subscribe) {
	if len(p.Topics) == 0 || p.MessageID == 0 {
		st.handlerError(c, 0x81, "empty SUBSCRIBE")
		return
	}
	codes := make([]byte, len(p.Topics))
	denied := make([]bool, len(p.Topics))
	filters := make([]string, len(p.Topics))
	existed := make([]bool, len(p.Topics))
	var id uint32
	if p5 != nil && p5.subID {
		id = uint32(p5.subs[0].Identifier)
		if id == 0 {
			st.handlerError(c, 0x81, "subscription identifier 0")
			return
		}
	}
	for i, f := range p.Topics {
		q := p.Qoss[i]
		opts := byte(0)
		if p5 == nil && c.isBridge {
			// handle__subscribe: a 3.x bridge's subscriptions are No Local
			// and Retain As Published, so messages do not loop back.
			opts = subNoLocal | subRetainAsPublished
		}
		if p5 != nil {
			o := p5.subs[i]
			if o.RetainHandling == 3 {
				st.handlerError(c, 0x81, "retain handling 3")
				return
			}
			if o.NoLocal {
				opts |= subNoLocal
			}
			if o.RetainAsPublished {
				opts |= subRetainAsPublished
			}
		}
		if q > 2 {
			st.handlerError(c, 0x81, "invalid QoS in SUBSCRIBE")
			return
		}
		q = min(q, c.maxQoS()) // handle__subscribe grants at most maximum_qos
		if !validFilter(f) || tooDeep(f) {
			// handle__subscribe: an empty, malformed or invalid filter
			// closes the connection.
			st.handlerError(c, 0x81, "invalid subscription filter")
			return
		}
		if strings.HasPrefix(f, "$share/") && !validShare(f) {
			// sub__add fails: Mosquitto closes the connection, with no
			// DISCONNECT even for MQTT 5.
			st.b.log.printf(logNotice, "Client %s disconnected: invalid shared subscription %q.", st.name(c), f)
			st.disconnect(c, true)
			return
		}
		// The listener's mount_point is prefixed after the checks and
		// before the ACL, as handle__subscribe does.
		f = c.mountPoint() + f
		filters[i] = f
		if !s.allowed(f, auth.Subscribe) {
			// 3.1.1 gets the failure code (MQTT 5: 0x87, not authorized);
			// 3.1 has none and is granted nothing, as in Mosquitto's
			// handle_subscribe.
			if s.proto == 5 {
				codes[i] = 0x87
			} else if s.proto == 4 {
				codes[i] = 0x80
			} else {
				codes[i] = q
			}
			denied[i] = true
			continue
		}
		if _, ok := s.subs[f]; !ok {
			st.nsubs++
			s.subOrder = append(s.subOrder, f)
		} else {
			existed[i] = true
		}
		s.subs[f] = q | opts
		st.addSub(f, s, q|opts)
		if id != 0 {
			if s.subIDs == nil {
				s.subIDs = make(map[string]uint32)
			}
			s.subIDs[f] = id
		} else {
			delete(s.subIDs, f)
		}
		codes[i] = q
		st.b.log.printf(logSubscribe, "%s %d %s", s.id, q, f)
	}
	st.changed()
	c.send(outPkt{kind: outSuback, mid: p.MessageID, codes: codes, v5: c.v5})
	for i, f := range filters {
		// Retain Handling: 0 sends retained messages, 1 only for a new
		// subscription, 2 never.
		if denied[i] || (p5 != nil && (p5.subs[i].RetainHandling == 2 || (p5.subs[i].RetainHandling == 1 && existed[i]))) {
			continue
		}
		var ids []uint32
		if id != 0 {
			ids = []uint32{id}
		}
		if _, filter, shared := splitShare(f); shared {
			f = filter // retain__queue strips $share/GROUP/
		}
		for topic, m := range st.retained {
			if mqtopic.Match(f, topic) && s.allowed(topic, auth.Read) && st.retainSourceAllowed(m) {
				st.deliver(s, m, st.outQoS(codes[i], m.qos), true, ids)
			}
		}
	}
}

// retainSourceAllowed is check_retain_source (Mosquitto's retain__process): a
// retained message a client published goes to a new subscriber only while
// that publisher, as stored with the message (client id, username, listener
// port), may still write its topic under the ACLs loaded now, so revoking
// write access also withdraws what the client retained before, across a
// restart too (CVE-2018-12546). The broker's own $SYS messages are not
// checked. With per_listener_settings a publisher whose listener no longer
// exists finds no ACLs, and Mosquitto skips the message.
func (st *state) retainSourceAllowed(m *storedMsg) bool {
	if !st.checkRetainSource || m.sys {
		return true
	}
	sec := st.b.securityForPort(int(m.sourcePort))
	if sec == nil {
		return false
	}
	return sec.acl.Check(m.sourceID, m.sourceUser, m.sourceUser != "", m.topic, auth.Write)
}

// onUnsubscribe does not prefix the listener's mount_point: Mosquitto 2.0.11's
// handle__unsubscribe does not either, so on a mounted listener an
// UNSUBSCRIBE names a filter the client never holds and removes nothing.
func (st *state) onUnsubscribe(c *conn, s *session, p *packets.UnsubscribePacket) {
	if len(p.Topics) == 0 || p.MessageID == 0 {
		st.handlerError(c, 0x81, "empty UNSUBSCRIBE")
		return
	}
	for _, f := range p.Topics {
		if !validFilter(f) || tooDeep(f) {
			st.handlerError(c, 0x81, "invalid unsubscription filter")
			return
		}
	}
	codes := make([]byte, len(p.Topics))
	for i, f := range p.Topics {
		if _, ok := s.subs[f]; !ok {
			codes[i] = 0x11 // MQTT 5: no subscription existed
			continue
		}
		delete(s.subs, f)
		delete(s.subIDs, f)
		for i, g := range s.subOrder {
			if g == f {
				s.subOrder = append(s.subOrder[:i], s.subOrder[i+1:]...)
				break
			}
		}
		st.removeSub(f, s)
		st.nsubs--
		st.b.log.printf(logUnsubscribe, "%s %s", s.id, f)
	}
	st.changed()
	if !c.v5 {
		codes = nil
	}
	c.send(outPkt{kind: outUnsuback, mid: p.MessageID, codes: codes, v5: c.v5})
}
