package broker

import (
	"time"

	"github.com/mqbench/mqbench/broker/persist"
)

// setExpiry starts a Message Expiry Interval of secs (0 = none) at now.
func (m *storedMsg) setExpiry(now time.Time, secs uint32) {
	if secs > 0 {
		m.expiry = now.Unix() + int64(secs)
	}
}

// propSizes are the value sizes of the fixed-size PUBLISH properties; -1 is a
// length-prefixed string or binary, -2 a string pair, 0 a varint.
var propSizes = map[byte]int{1: 1, 2: 4, 3: -1, 8: -1, 9: -1, 11: 0, 24: 4, 35: 2, 38: -2}

// storedProps is what Mosquitto's handle__publish keeps of a PUBLISH's
// properties for the stored message: all of them in the order received,
// less the Topic Alias, Message Expiry Interval and Subscription Identifier
// (and, for a will, the Will Delay Interval),
// with a varint length in front as the db format stores them; nil when none
// remain. raw was decoded already, so a walk that fails keeps nothing.
func storedProps(raw []byte) []byte {
	var keep []byte
	for i := 0; i < len(raw); {
		id, start := raw[i], i
		i++
		sz, ok := propSizes[id]
		if !ok {
			return nil
		}
		switch sz {
		case 0:
			for i < len(raw) && raw[i]&0x80 != 0 {
				i++
			}
			i++
		case -1, -2:
			for n := 0; n < -sz; n++ {
				if i+2 > len(raw) {
					return nil
				}
				i += 2 + (int(raw[i])<<8 | int(raw[i+1]))
			}
		default:
			i += sz
		}
		if i > len(raw) {
			return nil
		}
		if id != 2 && id != 11 && id != 24 && id != 35 {
			keep = append(keep, raw[start:i]...)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	return append(appendVarint(nil, uint32(len(keep))), keep...)
}

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
	// MQTT 5: rawProps are the publisher's properties as received (with
	// their varint length), forwarded and saved in MSG_STORE in that order as
	// Mosquitto does; expiry is the unix second the message expires at (0
	// never).
	rawProps []byte
	expiry   int64

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
	subIDs []uint32 // MQTT 5 Subscription Identifiers the delivery carries
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
