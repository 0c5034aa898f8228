package broker

import (
	"net"
	"strings"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/mqbench/mqbench/broker/persist"
)

// CONNECT handling: Mosquitto's handle__connect and connect__on_authorised,
// kept apart from the rest of the state owner so the order of its checks
// (which decides CONNACK codes and silent closes) reads top to bottom.

// refuse answers CONNECT with a non-zero return code and closes the connection.
func (st *state) refuse(c *conn, code byte, why string) {
	st.b.log.printf(logNotice, "Client %s refused: %s.", c.remote, why)
	if c.v5 {
		code = v5Refusal(code)
	}
	c.send(outPkt{kind: outConnack, code: code, v5: c.v5})
	c.detached = true
	c.finish()
}

func (st *state) connect(c *conn, p *packets.ConnectPacket, p5 *v5Connect) {
	if c.sess != nil || c.detached {
		st.protocolError(c, "second CONNECT")
		return
	}
	c.v5 = p5 != nil
	if v := p.ProtocolVersion; p5 == nil && (v == 0x83 || v == 0x84) {
		c.isBridge, p.ProtocolVersion = true, v&0x7F // handle__connect's is_bridge (try_private)
	}
	if !supportedVersion(p.ProtocolName, p.ProtocolVersion) {
		st.refuse(c, packets.ErrRefusedBadProtocolVersion, "unsupported protocol version")
		return
	}
	if p.ProtocolName != "MQTT" && p.ProtocolName != "MQIsdp" {
		st.protocolError(c, "invalid protocol "+p.ProtocolName)
		return
	}
	if p.ReservedBit != 0 || (!p.WillFlag && (p.WillQos != 0 || p.WillRetain)) ||
		(p.WillFlag && (p.WillQos > 2 || !validWillTopic(c.mountPoint(), p.WillTopic))) ||
		(p.PasswordFlag && !p.UsernameFlag) {
		st.protocolError(c, "invalid CONNECT flags")
		return
	}
	// handle__connect: a retained will without retain_available, or a will
	// above the listener's maximum_qos, is refused (MQTT 5: CONNACK 0x9A or
	// 0x9B; 3.1/3.1.1: closed without CONNACK).
	if p.WillFlag && ((p.WillRetain && st.cfg.RetainUnavailable) || p.WillQos > c.maxQoS()) {
		why, code := "retained will without retain_available", byte(0x9A)
		if !p.WillRetain || !st.cfg.RetainUnavailable {
			why, code = "will QoS above maximum_qos", 0x9B
		}
		if c.v5 {
			st.refuse(c, code, why)
		} else {
			st.b.log.printf(logNotice, "Client %s refused: %s.", c.remote, why)
			c.detached = true
			c.finish()
		}
		return
	}
	id := p.ClientIdentifier
	assigned := false
	v31 := p.ProtocolVersion == 3
	sec := c.lis.sec
	if id == "" {
		if c.v5 && !sec.allowZeroLength {
			// handle__connect answers an MQTT 5 client "unspecified error".
			st.refuse(c, 0x80, "empty client id")
			return
		}
		if !c.v5 && (v31 || !p.CleanSession || !sec.allowZeroLength) {
			st.refuse(c, packets.ErrRefusedIDRejected, "empty client id")
			return
		}
		id = newClientID(sec.autoIDPrefix)
		assigned = true
	}
	// Mosquitto reads every string with packet__read_string, which closes the
	// connection on anything mosquitto_validate_utf8 refuses (no CONNACK), and
	// sets no length limit on a 3.1 client id.
	if !validMQTTString(id) {
		st.protocolError(c, "malformed UTF-8 in client id")
		return
	}
	if p.UsernameFlag && !validMQTTString(p.Username) {
		st.protocolError(c, "malformed UTF-8 in username")
		return
	}
	if lim := st.cfg.MessageSizeLimit; p.WillFlag && lim > 0 && len(p.WillMessage) > lim {
		// will__read: an oversize will is refused as not authorised (MQTT
		// 5: 0x95, packet too large).
		code := byte(packets.ErrRefusedNotAuthorised)
		if c.v5 {
			code = 0x95
		}
		st.refuse(c, code, "will exceeds message_size_limit")
		return
	}
	if pre := st.cfg.ClientIDPrefixes; pre != "" && !strings.HasPrefix(id, pre) {
		st.refuse(c, packets.ErrRefusedNotAuthorised, "client id does not start with clientid_prefixes")
		return
	}
	username, hasUser := p.Username, p.UsernameFlag
	certAuth := false
	if c.certAuth() {
		name, ok := c.certUsername()
		if !ok {
			st.refuse(c, packets.ErrRefusedBadUsernameOrPassword, "no usable client certificate for use_identity_as_username")
			return
		}
		username, hasUser, certAuth = name, true, true
	}
	if l := c.lis.cfg; l != nil && l.UseUsernameAsClientID {
		if !hasUser {
			st.refuse(c, packets.ErrRefusedNotAuthorised, "use_username_as_clientid and no username")
			return
		}
		id = username
	}
	if p5 != nil && p5.props.AuthenticationMethod != "" {
		// No plugin offers extended authentication.
		st.refuse(c, 0x8C, "unsupported authentication method")
		return
	}
	if !certAuth && !sec.checkLogin(p) {
		st.refuse(c, packets.ErrRefusedNotAuthorised, "not authorised")
		return
	}
	s := st.sessions[id]
	if s != nil && s.conn != nil && !c.waited {
		st.parkTakeover(s.conn, c, p, p5)
		return
	}
	clean, expiry := p.CleanSession, uint32(0)
	if !clean {
		expiry = sessionExpiryNever
	}
	if p5 != nil {
		expiry = p5.props.SessionExpiryInterval
	}
	var takenOver *will
	if s != nil && s.conn != nil {
		old := s.conn
		st.b.log.printf(logInfo, "Client %s already connected, closing old connection.", id)
		old.detached = true
		// Mosquitto 2.0.11 sends the old MQTT 5 connection no DISCONNECT
		// (no 0x8E, session taken over): it closes it.
		s.conn = nil
		// Mosquitto's connect__on_authorised sends the old connection's will
		// when either side has a clean session (MQTT-3.1.2-8); a persistent
		// session taken over by a persistent connection keeps quiet.
		// A will with a Will Delay Interval is dropped instead: Mosquitto
		// queues it for later and cancels it with the old connection.
		if (s.expiry == 0 || clean) && (s.will == nil || s.will.delay == 0) {
			takenOver = s.will
		}
		s.will = nil
		st.connected--
		old.finish()
	}
	st.unexpire(s)
	st.cancelWill(s)
	if s != nil && (clean || s.expiry == 0) {
		st.removeSession(s)
		if takenOver != nil {
			st.publishWill(s, takenOver)
		}
		s = nil
	}
	present := s != nil
	if s == nil {
		st.seq++
		s = &session{id: id, seq: st.seq, subs: make(map[string]byte)}
		st.sessions[id] = s
	}
	s.clean = clean
	s.expiry = expiry
	s.proto = p.ProtocolVersion
	s.recvMax, s.maxPacket = 0, 0
	c.aliases = nil
	if p5 != nil {
		s.recvMax, s.maxPacket = int(p5.props.ReceiveMaximum), p5.props.MaximumPacketSize
	}
	st.resetIn(s)
	s.username, s.hasUser = username, hasUser
	s.sec = sec
	s.conn = c
	s.listenerPort = uint16(c.lis.port)
	s.dropping = false
	s.will = nil
	if p.WillFlag {
		s.will = &will{topic: c.mountPoint() + p.WillTopic, payload: p.WillMessage, qos: p.WillQos, retain: p.WillRetain}
		if p5 != nil {
			s.will.props = &p5.willProps
			s.will.raw = storedProps(p5.willRaw)
			s.will.delay = p5.willProps.WillDelayInterval
		}
	}
	c.sess = s
	c.clientID = id
	c.loginUser, c.loginPass = credentials(p)
	st.connected++
	c.authorised()
	if p5 != nil {
		raw := st.connackProps(c, id, assigned, p.Keepalive)
		if rl := 2 + varintLen(len(raw)) + len(raw); s.maxPacket > 0 && uint32(rl+varintLen(rl)) > s.maxPacket {
			// The CONNACK itself is over the client's Maximum Packet
			// Size: Mosquitto cannot send it and closes the connection.
			st.b.log.printf(logNotice, "Client %s disconnected: CONNACK larger than its maximum packet size.", id)
			st.disconnect(c, false)
			return
		}
		c.send(outPkt{kind: outConnack, flag: present, v5: true, raw: raw})
	} else {
		c.send(outPkt{kind: outConnack, flag: present && !v31})
	}
	if host, port, err := net.SplitHostPort(c.remote); err == nil {
		proto := 2
		if v31 {
			proto = 1
		} else if c.v5 {
			proto = 5
		}
		st.b.log.conn("New client connected from %s:%s as %s (p%d, c%d, k%d%s).", host, port, id, proto, b2i(p.CleanSession), p.Keepalive, userSuffix(p))
	}
	if !s.clean {
		st.changed()
	}
	if present {
		st.dropDenied(s)
	}
	if legacyWindow(s) {
		st.resetSendQuota(s)
	}
	if present {
		st.resume(s)
	}
}

func userSuffix(p *packets.ConnectPacket) string {
	if p.UsernameFlag {
		return ", u'" + p.Username + "'"
	}
	return ""
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// resume re-sends what was in flight when a persistent session reconnects, in
// order and with DUP set (PUBREL for those waiting for PUBCOMP), then moves queued
// deliveries into the window.
func (st *state) resume(s *session) {
	c := s.conn
	for cm := s.inflight.head; cm != nil; cm = cm.next {
		switch cm.state {
		case persist.StateWaitForPubcomp, persist.StateResendPubrel:
			cm.state = persist.StateWaitForPubcomp
			c.send(outPkt{kind: outPubrel, mid: cm.mid})
		default:
			cm.state = inflightState(cm.qos)
			cm.dup = true
			c.send(st.publishPkt(s, cm.msg, cm.qos, true, cm.retain, cm.mid, cm.subIDs))
		}
	}
	st.promote(s)
}

// validWillTopic is will__read's check: the will topic must be a non-empty
// MQTT string as sent, and a valid publish topic (no wildcards, at most
// 65,535 bytes and 200 levels) once the listener's mount_point is prefixed.
func validWillTopic(mount, topic string) bool {
	if topic == "" || !validMQTTString(topic) {
		return false
	}
	t := mount + topic
	return validTopicName(t) && !tooDeep(t)
}

// mountPoint is the mount_point of the listener c came in on ("" in
// local-only mode or without one).
func (c *conn) mountPoint() string {
	if l := c.lis.cfg; l != nil {
		return l.MountPoint
	}
	return ""
}

// takeoverGrace is how long a CONNECT that takes over a connected client id
// waits for the old connection's reader before the old connection is closed.
const takeoverGrace = 25 * time.Millisecond

// parkTakeover holds back a CONNECT that would take over old, until old's
// reader has handed over what it read (it reaches the end of its stream) or
// takeoverGrace has passed. Mosquitto reads its sockets in the order they
// became readable, so what a client sent on its old connection before
// reconnecting with the same client id (a PUBLISH, then closing the socket)
// is handled before the new CONNECT: the message is routed and an abnormal
// close sends the will. Here the two connections have their own reader
// goroutines, and the new one can win the race to the state owner, which
// would drop the old connection's last packets. The new connection's reader
// waits at its gate meanwhile, so nothing else is read from it.
func (st *state) parkTakeover(old, c *conn, p *packets.ConnectPacket, p5 *v5Connect) {
	c.waited = true
	c.parked, c.parked5, c.parkedOn = p, p5, old
	old.takeovers = append(old.takeovers, c)
	b := st.b
	time.AfterFunc(takeoverGrace, func() {
		select {
		case b.inbox <- event{c: c, takeover: true}:
		case <-b.loopDone:
		}
	})
}

// resumeTakeover runs a parked CONNECT, once: when its grace is up or when
// the connection it waited for is gone, whichever is first.
func (st *state) resumeTakeover(c *conn) {
	p, p5, old := c.parked, c.parked5, c.parkedOn
	if p == nil {
		return
	}
	c.parked, c.parked5, c.parkedOn = nil, nil, nil
	if old != nil {
		for i, n := range old.takeovers {
			if n == c {
				old.takeovers = append(old.takeovers[:i], old.takeovers[i+1:]...)
				break
			}
		}
	}
	if c.detached {
		return // closed while it waited: nothing to accept
	}
	st.connect(c, p, p5)
}
