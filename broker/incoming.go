package broker

import (
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/mqbench/mqbench/broker/persist"
)

// Incoming QoS 1/2 flow control: Mosquitto's msgs_in receive quota, as the
// Mosquitto 2.0.11 the bundled broker is tested against behaves (Debian's
// 2.0.11-1.2+deb12u2, whose CVE-2023-28366 fix changes what the upstream
// 2.0.11 source does: measured side by side in v5limits_test.go).
//
// The quota starts at max_inflight_messages (the Receive Maximum the CONNACK
// announces). An incoming QoS 2 message takes one until its PUBCOMP is sent; a
// QoS 1 message takes one and its PUBACK gives it back at once. A QoS 1/2
// PUBLISH while the quota is spent or, with max_inflight_bytes, while the
// QoS 2 payload waiting for PUBREL has reached it, is answered 0x97 (quota
// exceeded; a 3.1.1 client gets the plain acknowledgement) and dropped:
// nothing is queued. That answer gives a quota back too (send__puback, and
// send__pubrec with a failure to an MQTT 5 client, do), so a publisher that
// overruns the Receive Maximum sees every other message refused.

// inMax is msgs_in.inflight_maximum: max_inflight_messages.
func (st *state) inMax() int { return st.cfg.MaxInflightMessages }

// readyIn is db__ready_for_flight(mosq_md_in) for a QoS 1/2 message.
func (st *state) readyIn(s *session) bool {
	max, mib := st.inMax(), int64(st.cfg.MaxInflightBytes)
	if max == 0 && mib == 0 {
		return true
	}
	validBytes, validCount := s.inBytes12 < mib, s.inQuota > 0
	switch {
	case max == 0:
		return validBytes
	case mib == 0:
		return validCount
	}
	return validBytes && validCount
}

// quotaDown and quotaUp are util__decrement_receive_quota and
// util__increment_receive_quota.
func (st *state) quotaDown(s *session) {
	if s.inQuota > 0 {
		s.inQuota--
	}
}

func (st *state) quotaUp(s *session) {
	if s.inQuota < st.inMax() {
		s.inQuota++
	}
}

// inAck sends a PUBACK (QoS 1) or PUBREC (QoS 2) answering an incoming
// PUBLISH, giving the receive quota back where Mosquitto's send functions do.
func (st *state) inAck(c *conn, s *session, qos byte, mid uint16, reason byte) {
	c.ack(qos, mid, reason)
	if qos == 1 || (qos == 2 && reason >= 0x80 && c.v5) {
		st.quotaUp(s)
	}
}

// badMessage is handle__publish's process_bad_message for a PUBLISH the
// broker will not take (denied by the ACL, over message_size_limit, over the
// incoming quota): the flow is completed with reason (ignored for 3.1.1),
// the message dropped, and then, as Debian's 2.0.11 does (a check its
// CVE-2023-28366 fix added, measured in badmessage_test.go), the connection
// is closed, will and all, when the client already has max_queued_messages
// packets waiting to be written to it; with max_queued_messages 0 that is
// always, so there every refused PUBLISH costs the connection.
func (st *state) badMessage(c *conn, s *session, qos byte, mid uint16, reason byte) {
	pending := c.queueLen()
	if qos > 0 {
		st.inAck(c, s, qos, mid, reason)
	}
	if pending >= st.cfg.MaxQueuedMessages {
		// mosquitto_strerror has no text for the 0x97 it returns.
		st.b.log.printf(logNotice, "Bad socket read/write on client %s: Unknown error.", st.name(c))
		st.disconnect(c, true)
	}
}

// acceptIn stores a new incoming QoS 2 message until its PUBREL.
func (st *state) acceptIn(c *conn, s *session, m *storedMsg, p *packets.PublishPacket) {
	cm := &clientMsg{msg: m, mid: p.MessageID, qos: 2, state: persist.StateWaitForPubrel, retain: p.Retain, dup: p.Dup}
	st.ref(m)
	s.incoming.push(cm)
	if s.inByMid == nil {
		s.inByMid = make(map[uint16]*clientMsg) // made when first needed: an idle session has none
	}
	s.inByMid[p.MessageID] = cm
	s.inBytes12 += int64(len(m.payload))
	st.quotaDown(s)
	c.send(outPkt{kind: outPubrec, mid: p.MessageID})
}

// releaseIn routes the incoming message a PUBREL releases and completes the
// flow (a PUBREL for a message not held is completed all the same).
func (st *state) releaseIn(c *conn, s *session, mid uint16) {
	if cm := s.inByMid[mid]; cm != nil {
		delete(s.inByMid, mid)
		s.incoming.remove(cm)
		s.inBytes12 -= int64(len(cm.msg.payload))
		st.route(cm.msg)
		st.unref(cm.msg)
	}
	c.send(outPkt{kind: outPubcomp, mid: mid})
	st.quotaUp(s)
}

// resetIn is db__message_reconnect_reset_incoming, for a session a client
// connects to: the quota starts full less the QoS 2 messages it holds.
func (st *state) resetIn(s *session) {
	s.inQuota = st.inMax()
	for cm := s.incoming.head; cm != nil; cm = cm.next {
		st.quotaDown(s)
	}
}
