package broker

import (
	mqtopic "github.com/mqbench/mqbench/mqtt/topic"
	"slices"
	"strings"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/mqbench/mqbench/broker/conf"
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

// maxTopicAlias is the most incoming topic aliases an MQTT 5 client of c's
// listener may set up: max_topic_alias, Mosquitto's default 10.
func (c *conn) maxTopicAlias() uint16 {
	if l := c.lis.cfg; l != nil && listenerSet(l, l.MaxTopicAlias, "max_topic_alias") {
		return uint16(l.MaxTopicAlias)
	}
	return 10
}

// maxQoS is c's listener's maximum_qos (2 unless set).
func (c *conn) maxQoS() byte {
	if l := c.lis.cfg; l != nil && listenerSet(l, l.MaxQoS, "max_qos", "maximum_qos") {
		return byte(l.MaxQoS)
	}
	return 2
}

// listenerSet reports whether a listener limit v was configured: conf marks
// an unset one -1, but a Listener built in code leaves it 0, so a 0 counts
// only when a config line set it.
func listenerSet(l *conf.Listener, v int, keys ...string) bool {
	if v > 0 {
		return true
	}
	for _, k := range keys {
		if _, ok := l.Places[k]; ok && v == 0 {
			return true
		}
	}
	return false
}

// serverKeepAlive is the keep alive an MQTT 5 client gets under
// max_keepalive: the limit when it asked for more or for none (0 = as asked).
func serverKeepAlive(max int, asked uint16) uint16 {
	if max > 0 && (int(asked) > max || asked == 0) {
		return uint16(max)
	}
	return 0
}

// connackProps is the CONNACK property block Mosquitto 2.0.11 sends with the
// configuration the bundled broker honours, in its order (connect's
// properties first, then send__connack's).
func (st *state) connackProps(c *conn, id string, assigned bool, keepalive uint16) []byte {
	var b []byte
	if n := c.maxTopicAlias(); n > 0 {
		b = append(b, 0x22, byte(n>>8), byte(n)) // topic alias maximum
	}
	if ka := serverKeepAlive(st.cfg.MaxKeepalive, keepalive); ka > 0 {
		b = append(b, 0x13, byte(ka>>8), byte(ka)) // server keep alive
	}
	if assigned {
		b = append(b, 0x12, byte(len(id)>>8), byte(len(id)))
		b = append(b, id...)
	}
	if st.cfg.RetainUnavailable {
		b = append(b, 0x25, 0) // retain available
	}
	if n := st.cfg.MaxPacketSize; n > 0 {
		b = append(b, 0x27, byte(n>>24), byte(n>>16), byte(n>>8), byte(n)) // maximum packet size
	}
	if n := st.cfg.MaxInflightMessages; n > 0 {
		b = append(b, 0x21, byte(n>>8), byte(n)) // receive maximum
	}
	if q := c.maxQoS(); q != 2 {
		b = append(b, 0x24, q) // maximum QoS
	}
	return b
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
	if left := st.expiryFor(s); left > 0 {
		s.expireAt = st.now().Unix() + left
		st.expiring[s] = struct{}{}
	}
}

// expiryFor is how long s may stay offline, in seconds (0 = for ever):
// session_expiry__add's rule, the lower of its interval and
// persistent_client_expiration, a never-expiring session getting the latter.
func (st *state) expiryFor(s *session) int64 {
	pce := int64(st.cfg.PersistentClientExpiration / time.Second)
	if s.expiry == 0 {
		return 0
	}
	if s.expiry == sessionExpiryNever {
		return pce
	}
	if pce > 0 && pce < int64(s.expiry) {
		return pce
	}
	return int64(s.expiry)
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
	if a == 0 || a > c.maxTopicAlias() {
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

// matchingFilters are s's plain (not shared) subscriptions that match topic
// and are not No Local for a message from source, in the order Mosquitto
// 2.0.11's sub__search reaches them (which orders the copies an MQTT 5
// client gets, and their packet ids).
func (s *session) matchingFilters(topic, source string) []string {
	var fs []string
	for _, f := range s.subOrder {
		if _, _, shared := splitShare(f); shared || !mqtopic.Match(f, topic) {
			continue
		}
		if s.subs[f]&subNoLocal != 0 && s.id == source {
			continue
		}
		fs = append(fs, f)
	}
	slices.SortStableFunc(fs, searchOrder)
	return fs
}

// searchOrder compares two filters matching the same topic in the order
// sub__search visits them: level by level a literal level before '+',
// '+' before '#', and where the topic ends, a trailing "/#" before the
// filter that ends there.
func searchOrder(a, b string) int {
	la, lb := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; ; i++ {
		if ra, rb := levelRank(la, i), levelRank(lb, i); ra != rb || ra == 3 {
			return ra - rb
		}
	}
}

// levelRank is filter level i's place in sub__search's order; 3 is past
// the filter's end.
func levelRank(levels []string, i int) int {
	switch {
	case i >= len(levels):
		return 3
	case levels[i] == "#":
		return 2
	case levels[i] == "+":
		return 1
	}
	return 0
}
