package broker

import (
	"github.com/mqbench/mqbench/broker/auth"
	"github.com/mqbench/mqbench/broker/persist"
)

// Outgoing deliveries: Mosquitto 2.0's in-flight window and queue limits
// (db__ready_for_flight, db__ready_for_queue), in one file because the
// persistence snapshot and the drop counters depend on these exact rules.

// dropDenied is Mosquitto's connection_check_acl: when a persistent session
// reconnects (perhaps under another username), outgoing messages it may no
// longer read are removed before anything is resent.
func (st *state) dropDenied(s *session) {
	for _, l := range []*msgList{&s.inflight, &s.queued} {
		for cm := l.head; cm != nil; {
			next := cm.next
			if !s.allowed(cm.msg.topic, auth.Read) {
				st.removeOut(s, cm)
			}
			cm = next
		}
	}
}

func (st *state) roomInFlight(s *session) bool {
	max := st.inflightMax(s)
	if legacyWindow(s) {
		return max == 0 || s.sendQuota > 0
	}
	return max == 0 || s.inflight.n < max
}

// inflightMax is the session's outgoing window: max_inflight_messages, or
// what an MQTT 5 client's Receive Maximum set it to (as Mosquitto sets
// msgs_out.inflight_maximum from it).
func (st *state) inflightMax(s *session) int {
	if s.recvMax > 0 && s.conn != nil {
		return s.recvMax
	}
	return st.cfg.MaxInflightMessages
}

// publishPkt is the PUBLISH of one delivery of m to s, with MQTT 5
// properties when s's client speaks MQTT 5.
func (st *state) publishPkt(s *session, m *storedMsg, qos byte, dup, retain bool, mid uint16, ids []uint32) outPkt {
	p := outPkt{kind: outPublish, qos: qos, dup: dup, retain: retain, mid: mid, topic: m.topic, payload: m.payload}
	if s.conn != nil && s.conn.v5 {
		p.v5, p.raw = true, st.outProps(m, ids)
	}
	return p
}

// tooLarge reports a delivery over the Maximum Packet Size the client set,
// counting the packet as it would go out: Mosquitto does not send it (and
// drops it from the window).
func (st *state) tooLarge(s *session, m *storedMsg, qos byte, ids []uint32) bool {
	if s.maxPacket == 0 || s.conn == nil || !s.conn.v5 {
		return false
	}
	props := len(st.outProps(m, ids))
	rl := 2 + len(m.topic) + varintLen(props) + props + len(m.payload)
	if qos > 0 {
		rl += 2
	}
	return uint32(varintLen(rl)+rl) > s.maxPacket // packet__check_oversize leaves out the first byte
}

// readyForFlight is Mosquitto 2.0.11's db__ready_for_flight for a new
// delivery to a connected client. Without max_inflight_messages and
// max_inflight_bytes nothing is held back at all. A QoS 1/2 delivery goes
// into the window while the window has room (and, without
// max_inflight_bytes, nothing waits in the queue before it) and, with
// max_inflight_bytes, while the QoS 1/2 payload the client holds
// (msg_bytes12, queued included) is below it. A QoS 0 delivery is sent
// unless the client's packets waiting to be written reach
// max_queued_messages, or the payload it holds, QoS 0 included
// (msg_bytes), less max_inflight_bytes, reaches max_queued_bytes; it is
// never queued, so otherwise it is dropped.
func (st *state) readyForFlight(s *session, qos byte) bool {
	return st.readyOut(s, qos, s.heldBytes, st.roomInFlight(s) && (st.cfg.MaxInflightBytes > 0 || s.queued.n == 0))
}

// readyOut is db__ready_for_flight with the client's QoS 1/2 payload bytes12
// and whether its send quota has room (quota) given.
func (st *state) readyOut(s *session, qos byte, bytes12 int64, quota bool) bool {
	maxIB := int64(st.cfg.MaxInflightBytes)
	if st.inflightMax(s) == 0 && maxIB == 0 {
		return true
	}
	if qos > 0 {
		validBytes := bytes12 < maxIB
		switch {
		case st.inflightMax(s) == 0:
			return validBytes
		case maxIB == 0:
			return quota
		}
		return validBytes && quota
	}
	maxQ, maxQB := st.cfg.MaxQueuedMessages, st.cfg.MaxQueuedBytes
	if maxQ == 0 && maxIB == 0 {
		return true
	}
	validBytes := bytes12+st.queuedQoS0Bytes(s)-maxIB < maxQB
	validCount := s.conn.queueLen() < maxQ
	switch {
	case maxQ == 0:
		return validBytes
	case maxQB == 0:
		return validCount
	}
	return validCount && validBytes
}

// queuedQoS0Bytes is the payload of the QoS 0 deliveries held in s's queue
// (queue_qos0_messages, while the client was away), the part of Mosquitto's
// msg_bytes that msg_bytes12 leaves out. Without queue_qos0_messages there
// are none, and the queue is not walked.
func (st *state) queuedQoS0Bytes(s *session) int64 {
	if _, lazy := st.b.lazyBridge(s); !st.cfg.QueueQoS0Messages && !lazy {
		return 0
	}
	var n int64
	for cm := s.queued.head; cm != nil; cm = cm.next {
		if cm.qos == 0 {
			n += int64(len(cm.msg.payload))
		}
	}
	return n
}

// readyForQueue is Mosquitto 2.0's db__ready_for_queue: a connected client may
// hold max_inflight + max_queued QoS 1/2 deliveries (max_inflight_bytes +
// max_queued_bytes of payload), an offline one max_queued.
func (st *state) readyForQueue(s *session, qos byte) bool {
	maxQ, maxB := st.cfg.MaxQueuedMessages, st.cfg.MaxQueuedBytes
	if maxQ == 0 && maxB == 0 {
		return true
	}
	if qos == 0 && !st.cfg.QueueQoS0Messages {
		return false
	}
	adjust, adjustBytes := 0, int64(0)
	if s.conn != nil {
		adjust, adjustBytes = st.inflightMax(s), int64(st.cfg.MaxInflightBytes)
	}
	validCount := s.held12-adjust < maxQ
	validBytes := s.heldBytes-adjustBytes < maxB
	switch {
	case maxB == 0:
		return validCount
	case maxQ == 0:
		return validBytes
	}
	return validCount && validBytes
}

func (st *state) drop(s *session) {
	st.dropped++
	if !s.dropping {
		s.dropping = true
		st.b.log.printf(logNotice, "Outgoing messages are being dropped for client %s.", s.id)
	}
}

// deliver hands m to one session: straight into the in-flight window when the
// client is connected and there is room, else into its queue, else dropped and
// counted. QoS 0 is sent at once to a connected client and is not held.
func (st *state) deliver(s *session, m *storedMsg, qos byte, retain bool, ids []uint32) {
	if st.expired(m) {
		return
	}
	big := st.tooLarge(s, m, qos, ids)
	if qos == 0 && big {
		return
	}
	if qos == 0 {
		if c := s.conn; c != nil {
			if !st.readyForFlight(s, 0) {
				st.drop(s)
				return
			}
			c.send(st.publishPkt(s, m, 0, false, retain, 0, ids))
			return
		}
		if _, lazy := st.b.lazyBridge(s); !st.cfg.QueueQoS0Messages && !lazy {
			// A lazy bridge's session queues QoS 0 while its link is
			// down (db__message_insert), as if queue_qos0_messages.
			return
		}
	}
	cm := &clientMsg{msg: m, qos: qos, retain: retain, mid: s.nextMid(), subIDs: ids}
	if big {
		return // Mosquitto spends the packet id, then cannot send the PUBLISH
	}
	if s.conn != nil && st.readyForFlight(s, qos) {
		st.addInflight(s, cm)
		return
	}
	if !st.readyForQueue(s, qos) {
		st.drop(s)
		return
	}
	cm.state = persist.StateQueued
	s.queued.push(cm)
	st.ref(m)
	st.held++
	st.queued++
	if qos > 0 {
		s.held12++
		s.heldBytes += int64(len(m.payload))
	}
	s.dropping = false
	st.changed()
	st.lazyQueued(s)
}

// addInflight takes a reference for a new delivery and puts it in the window.
func (st *state) addInflight(s *session, cm *clientMsg) {
	st.ref(cm.msg)
	st.held++
	s.held12++
	s.heldBytes += int64(len(cm.msg.payload))
	st.putInflight(s, cm)
}

// putInflight moves a counted delivery into the window and sends its PUBLISH.
func (st *state) putInflight(s *session, cm *clientMsg) {
	if cm.qos > 0 && legacyWindow(s) {
		st.sendQuotaDown(s)
	}
	for s.byMid[cm.mid] != nil {
		cm.mid = s.nextMid()
	}
	cm.state = inflightState(cm.qos)
	s.inflight.push(cm)
	if s.byMid == nil {
		s.byMid = make(map[uint16]*clientMsg) // made when first needed: an idle session has none
	}
	s.byMid[cm.mid] = cm
	st.inflight++
	s.conn.send(st.publishPkt(s, cm.msg, cm.qos, cm.dup, cm.retain, cm.mid, cm.subIDs))
	// Like Mosquitto 2.0.11, a delivery once sent is marked dup (and saved so):
	// any later send of it is a re-send.
	cm.dup = true
}

// removeOut forgets an outgoing delivery (completed, or its session ended).
func (st *state) removeOut(s *session, cm *clientMsg) {
	if cm.state == persist.StateQueued {
		s.queued.remove(cm)
		st.queued--
	} else {
		s.inflight.remove(cm)
		delete(s.byMid, cm.mid)
		st.inflight--
	}
	st.held--
	if cm.qos > 0 {
		s.held12--
		s.heldBytes -= int64(len(cm.msg.payload))
	}
	st.unref(cm.msg)
}

// promote moves queued deliveries into the window while there is room.
func (st *state) promote(s *session) {
	for s.conn != nil && s.queued.n > 0 && st.roomInFlight(s) {
		st.promoteFirst(s)
	}
}

// promoteFirst moves the first queued delivery into the window (sent), or
// drops it when it expired or is too large for the client.
func (st *state) promoteFirst(s *session) {
	{
		cm := s.queued.popFront()
		st.queued--
		if st.expired(cm.msg) || st.tooLarge(s, cm.msg, cm.qos, cm.subIDs) {
			// Mosquitto drops expired queued messages as it moves them on.
			st.held--
			if cm.qos > 0 {
				s.held12--
				s.heldBytes -= int64(len(cm.msg.payload))
			}
			st.unref(cm.msg)
			st.changed()
			return
		}
		if cm.qos == 0 {
			st.held--
			s.conn.send(st.publishPkt(s, cm.msg, 0, false, cm.retain, 0, cm.subIDs))
			st.unref(cm.msg)
			return
		}
		st.putInflight(s, cm)
	}
}
