package broker

// The outgoing window of an MQTT 3.1/3.1.1 client as Mosquitto 2.0.11 keeps
// it. Mosquitto admits a new delivery into flight while msgs_out.
// inflight_quota (max_inflight_messages, less one per QoS 1/2 delivery put
// in flight, plus one per PUBACK or PUBCOMP) is above zero; but when a
// PUBACK or PUBCOMP arrives, db__message_delete_outgoing moves queued
// deliveries into flight until the acknowledged message's position in the
// in-flight list, not the list's length, reaches max_inflight_messages. With
// acknowledgements in order (the acknowledged message is first) every one
// moves up to max_inflight_messages more: a backlog drains into flight, the
// client holds far more than max_inflight_messages unacknowledged, and a
// session saved then has them in flight, all of which are sent again on the
// next connect. That is what closes a Mosquitto bridge into a core whose
// quota they overrun (badMessage) after an outage.
//
// MQTT 3.1.1 has no window of its own, so this is invisible to a client but
// in timing and in the saved states; an MQTT 5 client's Receive Maximum is a
// limit the protocol requires the server to keep, and the bundled broker keeps
// it exactly (roomInFlight), where Mosquitto 2.0.11 would overrun it the same
// way.

// legacyWindow reports a session whose client speaks 3.1/3.1.1.
func legacyWindow(s *session) bool { return s.conn != nil && !s.conn.v5 }

// resetSendQuota is db__message_reconnect_reset_outgoing's quota: full, less
// one per QoS 1/2 delivery still in flight.
func (st *state) resetSendQuota(s *session) {
	s.sendQuota = st.cfg.MaxInflightMessages
	for cm := s.inflight.head; cm != nil; cm = cm.next {
		if cm.qos > 0 {
			st.sendQuotaDown(s)
		}
	}
}

func (st *state) sendQuotaDown(s *session) {
	if s.sendQuota > 0 {
		s.sendQuota--
	}
}

func (st *state) sendQuotaUp(s *session) {
	if s.sendQuota < st.cfg.MaxInflightMessages {
		s.sendQuota++
	}
}

// outAcked ends the flow of cm (nil for a packet id not in flight) on its
// PUBACK or PUBCOMP and moves queued deliveries into flight: for a 3.x client
// by Mosquitto's rule above, else while the window has room.
func (st *state) outAcked(s *session, cm *clientMsg) {
	if !legacyWindow(s) {
		if cm != nil {
			st.removeOut(s, cm)
			st.changed()
			st.promote(s)
		}
		return
	}
	st.sendQuotaUp(s) // handle__pubackcomp, before it looks the id up
	before := s.inflight.n
	if cm != nil {
		before = 0
		for x := s.inflight.head; x != nil && x != cm; x = x.next {
			before++
		}
		st.removeOut(s, cm)
	}
	st.changed() // db__message_delete_outgoing counts a change either way
	max := st.cfg.MaxInflightMessages
	for ; s.queued.n > 0 && (max == 0 || before < max); before++ {
		st.promoteFirst(s)
	}
}
