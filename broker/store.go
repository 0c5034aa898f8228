package broker

import "github.com/mqbench/mqbench/broker/persist"

// storedMsg is one message in the store, shared by every delivery of it (as in
// Mosquitto: one MSG_STORE, many CLIENT_MSGs). The payload and topic are never
// modified after creation, which is what lets a snapshot reference them without
// copying while the loop keeps running.
type storedMsg struct {
	id         uint64
	topic      string
	payload    []byte
	qos        byte
	retain     bool
	sourceID   string
	sourceUser string
	sourcePort uint16
	sourceMid  uint16

	refs     int32 // deliveries, incoming QoS 2 records and the retained map
	inStore  bool
	sys      bool // a $SYS message published by the broker itself
	retained bool // currently the retained message of its topic
	prev     *storedMsg
	next     *storedMsg
}

// clientMsg is one delivery held for a session: outgoing (in flight or queued)
// or incoming (QoS 2 received, waiting for PUBREL).
type clientMsg struct {
	msg    *storedMsg
	mid    uint16
	qos    byte
	state  uint8 // persist.State* values, as Mosquitto numbers them
	retain bool
	dup    bool
	prev   *clientMsg
	next   *clientMsg
}

// msgList is an intrusive FIFO of deliveries: O(1) append, pop and removal from
// the middle (acknowledgements may come out of order).
type msgList struct {
	head, tail *clientMsg
	n          int
}

func (l *msgList) push(m *clientMsg) {
	m.prev, m.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = m
	} else {
		l.head = m
	}
	l.tail = m
	l.n++
}

func (l *msgList) remove(m *clientMsg) {
	if m.prev != nil {
		m.prev.next = m.next
	} else {
		l.head = m.next
	}
	if m.next != nil {
		m.next.prev = m.prev
	} else {
		l.tail = m.prev
	}
	m.prev, m.next = nil, nil
	l.n--
}

func (l *msgList) popFront() *clientMsg {
	m := l.head
	if m != nil {
		l.remove(m)
	}
	return m
}

// ref takes a reference, putting the message in the store on the first one:
// a message nobody holds is never stored.
func (st *state) ref(m *storedMsg) {
	if !m.inStore {
		m.inStore = true
		m.prev, m.next = st.storeTail, nil
		if st.storeTail != nil {
			st.storeTail.next = m
		} else {
			st.storeHead = m
		}
		st.storeTail = m
		st.storeCount++
		st.storeBytes += int64(len(m.payload))
		if m.sys {
			st.sysStored++
		}
	}
	m.refs++
}

// unref drops a reference and frees the store entry with the last one.
func (st *state) unref(m *storedMsg) {
	m.refs--
	if m.refs > 0 || !m.inStore {
		return
	}
	m.inStore = false
	if m.prev != nil {
		m.prev.next = m.next
	} else {
		st.storeHead = m.next
	}
	if m.next != nil {
		m.next.prev = m.prev
	} else {
		st.storeTail = m.prev
	}
	m.prev, m.next = nil, nil
	st.storeCount--
	st.storeBytes -= int64(len(m.payload))
	if m.sys {
		st.sysStored--
	}
}

// inflightState is the state of an outgoing delivery once its PUBLISH is sent.
func inflightState(qos byte) uint8 {
	if qos == 1 {
		return persist.StateWaitForPuback
	}
	return persist.StateWaitForPubrec
}
