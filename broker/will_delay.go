package broker

// Will Delay Interval (MQTT 5), as Mosquitto 2.0.11's will_delay.c does it:
// a will whose connection ended abnormally waits out its delay, and goes
// unsent if the client reconnects first; a session with expiry 0 stays until
// then. When the session expires first, the will goes at once, with the
// session. At shutdown every waiting will is sent (will_delay__send_all).

// delayWill holds w for s until its Will Delay Interval has passed.
func (st *state) delayWill(s *session, w *will) {
	s.delayedWill = w
	s.willAt = st.now().Unix() + int64(w.delay)
	st.willWaiting[s] = struct{}{}
}

// cancelWill drops a waiting will: its client reconnected (Mosquitto's
// will_delay__remove and will__clear on CONNECT).
func (st *state) cancelWill(s *session) {
	if s == nil || s.delayedWill == nil {
		return
	}
	s.delayedWill = nil
	delete(st.willWaiting, s)
}

// sendDelayedWill publishes s's waiting will now.
func (st *state) sendDelayedWill(s *session) {
	w := s.delayedWill
	if w == nil {
		return
	}
	s.delayedWill = nil
	delete(st.willWaiting, s)
	st.publishWill(s, w)
}

// checkWills sends the wills whose delay has passed (will_delay__check: the
// delay is over once its end is before the current second) and removes the
// sessions with expiry 0 that were kept for them.
func (st *state) checkWills(now int64) {
	for s := range st.willWaiting {
		if s.willAt < now {
			st.sendDelayedWill(s)
			if s.expiry == 0 && s.conn == nil {
				st.removeSession(s)
			}
		}
	}
}

// sendAllWills is the shutdown's will_delay__send_all.
func (st *state) sendAllWills() {
	for _, s := range st.sortedSessions(false) {
		st.sendDelayedWill(s)
	}
}
