package broker

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	mp "github.com/mochi-mqtt/server/v2/packets"
	"github.com/mqbench/mqbench/broker/auth"
	"github.com/mqbench/mqbench/broker/conf"
	"github.com/mqbench/mqbench/broker/persist"
)

// will is a client's last will, published when its connection ends abnormally.
type will struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
	props   *mp.Properties // MQTT 5 will properties a PUBLISH carries
	delay   uint32         // MQTT 5 Will Delay Interval, seconds
	raw     []byte         // its stored property block (see storedProps)
}

// session is a client's state: subscriptions and held deliveries. Persistent
// sessions (clean session off) outlive their connection.
type session struct {
	id       string
	username string
	hasUser  bool      // a username was given (Mosquitto's username != NULL)
	sec      *security // the security options of the listener it connected on
	clean    bool      // Clean Session (3.1.1) or Clean Start (5): not saved
	expiry   uint32    // Session Expiry Interval: 0 ends with the connection, sessionExpiryNever never
	expireAt int64     // unix seconds an offline session expires at, 0 = not counting
	proto    byte
	// recvMax and maxPacket are an MQTT 5 client's Receive Maximum and
	// Maximum Packet Size (0 = not sent).
	recvMax   int
	maxPacket uint32
	conn      *conn
	seq       uint64 // creation order, the order sessions are saved in

	subs     map[string]byte   // filter: QoS | subNoLocal | subRetainAsPublished
	subIDs   map[string]uint32 // filter: MQTT 5 Subscription Identifier, when it has one
	subOrder []string

	lastMid  uint16
	inflight msgList               // outgoing, sent and not yet completed
	queued   msgList               // outgoing, state queued
	byMid    map[uint16]*clientMsg // nil until the first delivery in flight
	incoming msgList               // incoming QoS 2, waiting for PUBREL
	inByMid  map[uint16]*clientMsg
	// inQuota and inBytes12 are Mosquitto's msgs_in.inflight_quota and
	// msg_bytes12 (the incoming QoS 2 payload held), see incoming.go.
	inQuota   int
	inBytes12 int64
	// sendQuota is msgs_out.inflight_quota for a 3.1/3.1.1 client (see
	// sendquota.go).
	sendQuota int

	held12    int   // outgoing QoS 1/2 deliveries held (Mosquitto's msg_count12)
	heldBytes int64 // their payload bytes (msg_bytes12)

	listenerPort uint16
	will         *will
	delayedWill  *will // waiting out its Will Delay Interval (offline only)
	willAt       int64 // unix second the delayed will is due after
	dropping     bool  // a drop notice was logged for the current episode

	mark    uint64 // routing dedup generation
	markIdx int
}

func (s *session) nextMid() uint16 {
	s.lastMid++
	if s.lastMid == 0 {
		s.lastMid = 1
	}
	return s.lastMid
}

type match struct {
	s   *session
	qos byte
	rap bool // a matching subscription has Retain As Published
	// multi: more than one of the session's subscriptions matched (an MQTT
	// 5 session then gets a copy per subscription).
	multi bool
}

type saveResult struct {
	err     error
	dur     time.Duration
	size    int64
	waiters []chan error
}

// state is everything the state owner goroutine owns. Only loop (and, before
// Start, New's restore) touches it.
type state struct {
	b   *Broker
	cfg *conf.Config
	now func() time.Time

	sessions    map[string]*session
	expiring    map[*session]struct{}  // offline sessions with a finite expiry interval
	shared      map[string]*shareGroup // shared subscriptions by their whole filter
	willWaiting map[*session]struct{}  // sessions with a delayed will
	seq         uint64
	subs        subNode
	nsubs       int64
	retained    map[string]*storedMsg

	storeHead, storeTail            *storedMsg
	storeCount, storeBytes          int64
	sysStored                       int64
	lastID                          uint64
	held, queued, inflight          int64
	dropped                         int64
	connected                       int64
	matches                         []match
	matchGen                        uint64
	collectFn                       func(*session, byte)
	routeSource                     string // client id of the message being routed (No Local)
	changes                         int
	lastSaveS                       int64
	saving, savePending             bool
	waiters                         []chan error
	saves, saveErrors, savesStarted int64
	lastSaveDur                     time.Duration
	lastSaveBytes                   int64
	sysLast                         map[string]string
	lastSys                         time.Time
	sysVersionDone                  bool
	autosaveTimer, autosaveChanges  bool
	upgradeQoS                      bool // upgrade_outgoing_qos
	checkRetainSource               bool // check_retain_source
}

func newState(b *Broker) *state {
	st := &state{
		b:           b,
		cfg:         b.cfg,
		now:         time.Now,
		sessions:    make(map[string]*session),
		expiring:    make(map[*session]struct{}),
		shared:      make(map[string]*shareGroup),
		willWaiting: make(map[*session]struct{}),
		retained:    make(map[string]*storedMsg),
		sysLast:     make(map[string]string),
	}
	st.collectFn = st.collect
	cfg := b.cfg
	st.upgradeQoS = cfg.UpgradeOutgoingQoS
	st.checkRetainSource = checkRetainSource(cfg)
	st.autosaveTimer = cfg.Persistence && !cfg.AutosaveOnChanges && cfg.AutosaveInterval > 0
	st.autosaveChanges = cfg.Persistence && cfg.AutosaveOnChanges && cfg.AutosaveInterval > 0 && cfg.AutosaveChanges > 0
	return st
}

func (st *state) loop() {
	b := st.b
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var frac <-chan time.Time
	if st.autosaveTimer && st.cfg.AutosaveInterval%time.Second != 0 {
		t := time.NewTicker(st.cfg.AutosaveInterval)
		defer t.Stop()
		frac = t.C
	}
	st.lastSaveS = st.now().Unix()
	st.publishSys(st.now())
	for {
		select {
		case ev := <-b.inbox:
			st.takeReload()
			st.handle(ev)
			// Take what else is ready before looking at timers again.
			for i := 0; i < 64; i++ {
				select {
				case ev := <-b.inbox:
					st.takeReload()
					st.handle(ev)
					continue
				default:
				}
				break
			}
		case now := <-tick.C:
			st.publishSys(now)
			st.expireSessions(now)
			st.checkWills(now.Unix())
			if frac == nil && st.timerDue(now) {
				st.requestSave(nil)
			}
		case <-frac:
			st.requestSave(nil)
		case r := <-b.saveReq:
			st.requestSave(r)
		case r := <-b.reloadReq:
			r.reply <- st.reload(r)
		case r := <-b.statsReq:
			r <- st.stats()
		case fn := <-b.bridgeOps:
			fn(st)
		case res := <-b.saveDone:
			st.saveFinished(res)
		case r := <-b.closeReq:
			err := st.shutdown()
			b.loopStopped(st.stats())
			close(b.loopDone)
			r <- err
			return
		case <-b.abortReq:
			st.finishRunningSave()
			for _, w := range st.waiters {
				w <- errors.New("saving: broker aborted")
			}
			st.waiters = nil
			b.loopStopped(st.stats())
			close(b.loopDone)
			return
		}
	}
}

// timerDue is Mosquitto 2.0's autosave timer: save when last_save + N < now on a
// whole-second clock (checked every 100 ms), so the real period is N+1 seconds.
func (st *state) timerDue(now time.Time) bool {
	if !st.autosaveTimer || st.cfg.AutosaveInterval%time.Second != 0 {
		return false
	}
	n := int64(st.cfg.AutosaveInterval / time.Second)
	s := now.Unix()
	if st.lastSaveS+n < s {
		st.lastSaveS = s
		return true
	}
	return false
}

// changed counts one persistence change (autosave_on_changes) and saves when the
// count is reached.
func (st *state) changed() {
	st.changes++
	if st.autosaveChanges && st.changes >= st.cfg.AutosaveChanges {
		st.changes = 0
		st.requestSave(nil)
	}
}

func (st *state) stats() Stats {
	b := st.b
	return Stats{
		ClientsConnected: st.connected,
		ClientsTotal:     int64(len(st.sessions)),
		Subscriptions:    st.nsubs,
		Retained:         int64(len(st.retained)),
		MessagesReceived: b.msgsRecv.Load(),
		MessagesSent:     b.msgsSent.Load(),
		BytesReceived:    b.bytesRecv.Load(),
		BytesSent:        b.bytesSent.Load(),
		PublishReceived:  b.pubRecv.Load(),
		PublishSent:      b.pubSent.Load(),
		Dropped:          st.dropped,
		StoreCount:       st.storeCount,
		StoreBytes:       st.storeBytes,
		Held:             st.held,
		Queued:           st.queued,
		Inflight:         st.inflight,
		Saves:            st.saves,
		LastSaveDuration: st.lastSaveDur,
		LastSaveBytes:    st.lastSaveBytes,
		SysStored:        st.sysStored,
		SaveErrors:       st.saveErrors,
		SavesStarted:     st.savesStarted,
	}
}

func (st *state) handle(ev event) {
	c := ev.c
	if ev.takeover {
		st.resumeTakeover(c)
		return
	}
	for _, p := range ev.pkts {
		if c.detached {
			break
		}
		st.packet(c, p)
	}
	if ev.closed {
		st.connClosed(c, ev.graceful, ev.err, ev.disc)
	}
	if c.detached && len(c.takeovers) > 0 {
		// Everything the old connection sent has been handled: the
		// CONNECTs waiting for it go on at once.
		waiting := c.takeovers
		c.takeovers = nil
		for _, n := range waiting {
			st.resumeTakeover(n)
		}
	}
}

func (st *state) packet(c *conn, p packets.ControlPacket) {
	switch cp := p.(type) {
	case *packets.ConnectPacket:
		st.connect(c, cp, nil)
		return
	case *v5Connect:
		st.connect(c, cp.ConnectPacket, cp)
		return
	}
	s := c.sess
	if s == nil {
		st.protocolError(c, "packet before CONNECT was accepted")
		return
	}
	if a, ok := p.(*v5Ack); ok {
		if r, ok := a.ControlPacket.(*packets.PubrecPacket); ok && a.reason >= 0x80 {
			// A failed PUBREC ends the flow: no PUBREL follows.
			if cm := s.byMid[r.MessageID]; cm != nil && cm.qos == 2 {
				st.removeOut(s, cm)
				st.changed()
				st.promote(s)
			}
			return
		}
		p = a.ControlPacket
	}
	switch p := p.(type) {
	case *packets.PublishPacket:
		st.onPublish(c, s, p, nil)
	case *v5Publish:
		if ok, reason := c.resolveAlias(p); !ok {
			st.b.log.printf(logNotice, "Client %s disconnected due to invalid topic alias.", st.name(c))
			st.sendDisconnect(c, reason)
			st.disconnect(c, true)
			return
		}
		st.onPublish(c, s, p.PublishPacket, p)
	case *v5Subscribe:
		st.onSubscribe(c, s, p.SubscribePacket, p)
	case *v5Unsubscribe:
		st.onUnsubscribe(c, s, p.UnsubscribePacket)
	case *oversizePublish:
		// handle__publish: dropped, its flow completed, the client kept.
		st.b.log.printf(logDebug, "Dropped too large PUBLISH from %s (q%d, m%d, '%s').", s.id, p.Qos, p.MessageID, p.TopicName)
		var reason byte
		if c.v5 {
			reason = 0x95 // packet too large
		}
		st.badMessage(c, s, p.Qos, p.MessageID, reason)
	case *packets.PubackPacket:
		// db__message_delete_outgoing: an acknowledgement of the wrong kind
		// for a packet id in flight is a protocol error; an unknown id is not.
		cm := s.byMid[p.MessageID]
		if p.MessageID == 0 || (cm != nil && cm.qos != 1) {
			st.protocolError(c, "PUBACK for a message that is not QoS 1")
			return
		}
		st.outAcked(s, cm)
	case *packets.PubrecPacket:
		cm := s.byMid[p.MessageID]
		if p.MessageID == 0 || (cm != nil && cm.qos != 2) {
			st.protocolError(c, "PUBREC for a message that is not QoS 2")
			return
		}
		if cm != nil {
			cm.state = persist.StateWaitForPubcomp
		}
		c.send(outPkt{kind: outPubrel, mid: p.MessageID})
	case *packets.PubrelPacket:
		st.releaseIn(c, s, p.MessageID)
	case *packets.PubcompPacket:
		cm := s.byMid[p.MessageID]
		if p.MessageID == 0 || (cm != nil && (cm.qos != 2 || cm.state != persist.StateWaitForPubcomp)) {
			st.protocolError(c, "PUBCOMP for a message not waiting for it")
			return
		}
		st.outAcked(s, cm)
	case *packets.SubscribePacket:
		st.onSubscribe(c, s, p, nil)
	case *packets.UnsubscribePacket:
		st.onUnsubscribe(c, s, p)
	case *packets.PingreqPacket:
		c.send(outPkt{kind: outPingresp})
	case *ignoredPacket:
		// A client's PINGRESP, SUBACK or UNSUBACK: ignored, as by Mosquitto.
	default:
		st.protocolError(c, "unexpected packet")
	}
}

func (st *state) protocolError(c *conn, why string) {
	st.b.log.printf(logNotice, "Client %s disconnected due to protocol error: %s.", st.name(c), why)
	st.disconnect(c, true)
}

// handlerError closes the connection for a protocol error (reason 0x82) or
// malformed packet (0x81) found while handling a PUBLISH, SUBSCRIBE or
// UNSUBSCRIBE: the only packets after which Mosquitto 2.0.11's
// handle__packet tells an MQTT 5 client why with a DISCONNECT; for the
// others it just closes.
func (st *state) handlerError(c *conn, reason byte, why string) {
	kind := "protocol error"
	if reason == 0x81 {
		kind = "malformed packet"
	}
	st.b.log.printf(logNotice, "Client %s disconnected due to %s: %s.", st.name(c), kind, why)
	st.sendDisconnect(c, reason)
	st.disconnect(c, true)
}

func (st *state) name(c *conn) string {
	if c.clientID != "" {
		return c.clientID
	}
	return "<unknown>"
}

func (st *state) connClosed(c *conn, graceful bool, err error, disc *v5Disconnect) {
	if c.detached || c.sess == nil {
		c.detached = true
		c.finish()
		return
	}
	name := st.name(c)
	var ne net.Error
	var me *malformedError
	var oe *oversizeError
	switch {
	case graceful:
		st.b.log.conn("Client %s disconnected.", name)
	case errors.As(err, &ne) && ne.Timeout():
		st.b.log.conn("Client %s has exceeded timeout, disconnecting.", name)
	case errors.Is(err, io.EOF):
		st.b.log.conn("Client %s closed its connection.", name)
	case errors.As(err, &me):
		kind, reason := "malformed packet", byte(0x81)
		if me.protocol {
			kind, reason = "protocol error", 0x82
		}
		st.b.log.printf(logNotice, "Client %s disconnected due to %s (%s).", name, kind, me.msg)
		if me.tell {
			st.sendDisconnect(c, reason)
		}
	case errors.As(err, &oe):
		st.b.log.printf(logNotice, "Client %s disconnected due to oversize packet.", name)
		if oe.tell {
			st.sendDisconnect(c, 0x95)
		}
	default:
		st.b.log.conn("Socket error on client %s, disconnecting.", name)
	}
	sendWill := !graceful
	if disc != nil {
		// handle__disconnect: 0x04 asks for the will; a Session Expiry
		// Interval may be changed, but not from 0 to more.
		sendWill = disc.reason == 0x04
		if disc.props.SessionExpiryIntervalFlag {
			if c.sess.expiry == 0 && disc.props.SessionExpiryInterval != 0 {
				st.b.log.printf(logNotice, "Client %s disconnected due to protocol error: session expiry set on DISCONNECT.", name)
				st.sendDisconnect(c, 0x82)
				sendWill = true
			} else {
				c.sess.expiry = disc.props.SessionExpiryInterval
			}
		}
	}
	st.disconnect(c, sendWill)
}

// disconnect detaches c from its session, publishes the will when the end was
// abnormal, drops a clean session, and closes the connection.
func (st *state) disconnect(c *conn, sendWill bool) {
	if c.detached {
		return
	}
	c.detached = true
	s := c.sess
	if s != nil && s.conn == c {
		s.conn = nil
		st.connected--
		w := s.will
		s.will = nil
		delayed := false
		if sendWill && w != nil {
			if w.delay > 0 {
				st.delayWill(s, w)
				delayed = true
			} else {
				st.publishWill(s, w)
			}
		}
		switch {
		case s.expiry != 0:
			st.startExpiry(s)
		case !delayed:
			st.removeSession(s)
		}
	}
	c.finish()
}

func (st *state) publishWill(s *session, w *will) {
	if !s.allowed(w.topic, auth.Write) {
		return
	}
	st.lastID++
	m := &storedMsg{id: st.lastID, topic: w.topic, payload: w.payload, qos: w.qos, retain: w.retain,
		sourceID: s.id, sourceUser: s.username, sourcePort: s.listenerPort}
	if w.props != nil {
		m.setExpiry(st.now(), w.props.MessageExpiryInterval)
		m.rawProps = w.raw
	}
	st.route(m)
}

// removeSession frees everything a session holds.
func (st *state) removeSession(s *session) {
	for _, f := range s.subOrder {
		st.removeSub(f, s)
	}
	st.nsubs -= int64(len(s.subs))
	s.subs, s.subOrder, s.subIDs = nil, nil, nil
	for cm := s.inflight.head; cm != nil; {
		next := cm.next
		st.removeOut(s, cm)
		cm = next
	}
	for cm := s.queued.head; cm != nil; {
		next := cm.next
		st.removeOut(s, cm)
		cm = next
	}
	for cm := s.incoming.head; cm != nil; cm = cm.next {
		st.unref(cm.msg)
	}
	s.incoming = msgList{}
	s.inByMid = nil
	s.inBytes12 = 0
	delete(st.sessions, s.id)
	delete(st.expiring, s)
	delete(st.willWaiting, s)
	s.delayedWill = nil
}
