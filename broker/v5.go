package broker

import (
	"bytes"
	"time"

	mp "github.com/mochi-mqtt/server/v2/packets"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// MQTT 5 in the state owner: what an MQTT 5 session adds to the 3.1.1 flows
// (properties, reason codes, session expiry). Features not implemented yet are
// refused with a reason code rather than quietly doing less than the client
// asked: a Will Delay Interval.

// v5Refusal maps a 3.1.1 CONNACK return code onto the MQTT 5 reason code
// Mosquitto 2.0.11 sends for the same refusal.
func v5Refusal(code byte) byte {
	switch code {
	case packets.ErrRefusedBadProtocolVersion:
		return 0x84
	case packets.ErrRefusedIDRejected:
		return 0x85
	case packets.ErrRefusedServerUnavailable:
		return 0x88
	case packets.ErrRefusedBadUsernameOrPassword:
		return 0x86
	case packets.ErrRefusedNotAuthorised:
		return 0x87
	}
	return code
}

// maxTopicAlias is Mosquitto's default max_topic_alias, the most incoming
// topic aliases an MQTT 5 client may set up.
const maxTopicAlias = 10

// connackProps is the CONNACK property block Mosquitto 2.0.11 sends with the
// configuration the bundled broker honours, in its order (connect's
// properties first, then send__connack's).
func (st *state) connackProps(id string, assigned bool) []byte {
	var b []byte
	b = append(b, 0x22, 0, maxTopicAlias) // topic alias maximum
	if assigned {
		b = append(b, 0x12, byte(len(id)>>8), byte(len(id)))
		b = append(b, id...)
	}
	if n := st.cfg.MaxInflightMessages; n > 0 {
		b = append(b, 0x21, byte(n>>8), byte(n)) // receive maximum
	}
	return b
}

// willStoredProps are the will properties a will message keeps: those a
// PUBLISH may carry (mochi's order, as the will's bytes are not kept).
func willStoredProps(w *mp.Properties) []byte {
	p := &mp.Properties{PayloadFormat: w.PayloadFormat, PayloadFormatFlag: w.PayloadFormatFlag,
		ContentType: w.ContentType, ResponseTopic: w.ResponseTopic, CorrelationData: w.CorrelationData, User: w.User}
	var buf bytes.Buffer
	p.Encode(mp.Publish, mp.Mods{AllowResponseInfo: true}, &buf, 0)
	if buf.Len() <= 1 {
		return nil
	}
	return buf.Bytes()
}

// outProps is the property block of one delivery of m now, in the order
// Mosquitto's send__real_publish writes it: the delivery's Subscription
// Identifiers, the stored properties, then the time the message has left.
func (st *state) outProps(m *storedMsg, ids []uint32) []byte {
	var b []byte
	for _, id := range ids {
		b = append(b, 0x0B)
		b = appendVarint(b, id)
	}
	b = append(b, propsBody(m.rawProps)...)
	if m.expiry != 0 {
		left := max(m.expiry-st.now().Unix(), 1)
		b = append(b, 0x02, byte(left>>24), byte(left>>16), byte(left>>8), byte(left))
	}
	return b
}

// propsBody strips the varint length from a stored property block.
func propsBody(raw []byte) []byte {
	for i := 0; i < len(raw) && i < 4; i++ {
		if raw[i]&0x80 == 0 {
			return raw[i+1:]
		}
	}
	return nil
}

// expired reports whether m's Message Expiry Interval has passed.
func (st *state) expired(m *storedMsg) bool {
	return m.expiry != 0 && st.now().Unix() > m.expiry
}

// unexpire stops the expiry clock of an offline session its client is
// reconnecting to.
func (st *state) unexpire(s *session) {
	if s == nil {
		return
	}
	delete(st.expiring, s)
	s.expireAt = 0
}

// startExpiry starts an offline session's Session Expiry Interval.
func (st *state) startExpiry(s *session) {
	if s.expiry == 0 || s.expiry == sessionExpiryNever {
		return
	}
	s.expireAt = st.now().Unix() + int64(s.expiry)
	st.expiring[s] = struct{}{}
}

// expireSessions removes offline sessions whose expiry interval has passed,
// with everything queued for them (Mosquitto's session_expiry__check: the
// interval is over once its end is before the current second).
func (st *state) expireSessions(now time.Time) {
	for s := range st.expiring {
		if s.conn == nil && s.expireAt != 0 && s.expireAt < now.Unix() {
			delete(st.expiring, s)
			st.b.log.printf(logNotice, "Expiring client %s due to timeout.", s.id)
			st.sendDelayedWill(s) // the session ends first: its will goes now
			st.removeSession(s)
			st.changed()
		}
	}
}

// sendDisconnect tells an MQTT 5 client why the server closes its connection.
func (st *state) sendDisconnect(c *conn, reason byte) {
	if c.v5 {
		c.send(outPkt{kind: outDisconnect, code: reason, v5: true})
	}
}

// ack sends a PUBACK or PUBREC (by qos) with an MQTT 5 reason code.
func (c *conn) ack(qos byte, mid uint16, reason byte) {
	kind := outPuback
	if qos == 2 {
		kind = outPubrec
	}
	if qos > 0 {
		c.send(outPkt{kind: kind, mid: mid, code: reason, v5: c.v5})
	}
}

// resolveAlias applies an incoming Topic Alias (handle__publish's alias__add
// and alias__find): false is a protocol error the caller disconnects for.
func (c *conn) resolveAlias(p *v5Publish) (ok bool, reason byte) {
	if !p.props.TopicAliasFlag {
		return true, 0
	}
	a := p.props.TopicAlias
	if a == 0 || a > maxTopicAlias {
		return false, 0x94
	}
	if p.TopicName != "" {
		if c.aliases == nil {
			c.aliases = make(map[uint16]string)
		}
		c.aliases[a] = p.TopicName
		return true, 0
	}
	t, found := c.aliases[a]
	if !found {
		return false, 0x82
	}
	p.TopicName = t
	return true, 0
}

// The MQTT 5 subscription options kept with a subscription, in the bits of
// the SUB chunk's options byte (beside the QoS in the low two bits).
const (
	subNoLocal           = 0x04
	subRetainAsPublished = 0x08
)

// matchingIDs are the Subscription Identifiers of s's subscriptions that
// match topic, in the order they were made.
func (s *session) matchingIDs(topic string) []uint32 {
	if len(s.subIDs) == 0 {
		return nil
	}
	var ids []uint32
	for _, f := range s.subOrder {
		if id := s.subIDs[f]; id != 0 && topicMatch(f, topic) {
			ids = append(ids, id)
		}
	}
	return ids
}
