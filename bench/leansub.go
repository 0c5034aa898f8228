package bench

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	packets5 "github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// The lean subscriber exists for the reason the lean publisher does: paho's
// client hands every delivery through a router goroutine, a channel and a
// message store, and 500 of them at full speed fell behind the broker
// (mqbench grew to 637 MB, delivery latency p50 2.5 s). It reads with the
// lean publisher's codecs (paho.mqtt.golang's packets for 3.1/3.1.1,
// paho.golang's for MQTT 5) and dialing (leanAddr: TCP, TLS, websockets),
// records each delivery on the reader goroutine that read it (consume, the
// same accounting as the paho subscriber), and writes its acknowledgements
// into a small buffer flushed once the read buffer is empty, so a burst of
// deliveries costs one write. A connection is one reader goroutine; the
// subscriber has one more for keepalive and the end of the run.

// Lean subscriber sizes: small buffers, since a run may hold thousands.
const (
	leanSubReadBuf  = 16 << 10
	leanSubWriteBuf = 4 << 10
	leanSubPacketID = 1 // the SUBSCRIBE's packet id (one per connection)
)

// errLeanSubClosed is the cause recorded when the subscriber closes its own connection.
var errLeanSubClosed = errors.New("subscriber closed the connection")

// leanSub is a subscriber's lean client: the current connection and the
// goroutine that keeps it alive.
type leanSub struct {
	s         *subscriber
	v5        bool
	connectMu sync.Mutex // one connect at a time (reconnect loop and actions)
	mu        sync.Mutex
	cur       *leanSubConn // nil while disconnected
	retrying  bool
	started   bool // the keepalive goroutine runs

	// recMu guards rec: the packet ids of QoS 2 deliveries consumed and
	// answered with PUBREC whose PUBREL has not come. They belong to the
	// session, so they outlive a connection: a PUBLISH the broker sends
	// again (DUP, after a reconnect) with one of these ids is the same
	// message, answered and not consumed twice (MQTT 4.3.3, method B).
	recMu sync.Mutex
	rec   map[uint16]struct{}
}

// received reports whether the QoS 2 packet id awaits its PUBREL.
func (l *leanSub) received(id uint16) bool {
	l.recMu.Lock()
	defer l.recMu.Unlock()
	_, ok := l.rec[id]
	return ok
}

// markReceived records a consumed QoS 2 delivery's packet id.
func (l *leanSub) markReceived(id uint16) {
	l.recMu.Lock()
	defer l.recMu.Unlock()
	if l.rec == nil {
		l.rec = map[uint16]struct{}{}
	}
	l.rec[id] = struct{}{}
}

// released forgets a packet id at its PUBREL.
func (l *leanSub) released(id uint16) {
	l.recMu.Lock()
	defer l.recMu.Unlock()
	delete(l.rec, id)
}

// resetSession forgets the QoS 2 state when a connection starts a new session.
func (l *leanSub) resetSession() {
	l.recMu.Lock()
	defer l.recMu.Unlock()
	l.rec = nil
}

// leanSubConn is one connection; a reconnect makes a new one.
type leanSubConn struct {
	nc        net.Conn
	br        *bufio.Reader
	wmu       sync.Mutex // bw: the reader's acks, the consumer's (ack pace mode), PINGREQ, DISCONNECT
	bw        *bufio.Writer
	ack       *packets.PubackPacket
	rec       *packets.PubrecPacket
	comp      *packets.PubcompPacket
	suback    chan []byte // the SUBACK's return codes
	dead      chan struct{}
	failOnce  sync.Once
	err       error
	lastWrite atomic.Int64 // Since() of the last flush
	pingSent  atomic.Int64 // Since() of the outstanding PINGREQ, 0 if none
}

// useLean says whether the subscriber runs on the lean client.
func (s *subscriber) useLean() bool { return s.lean != nil }

// fail closes the connection once, keeping the first cause.
func (cn *leanSubConn) fail(err error) {
	cn.failOnce.Do(func() {
		cn.err = err
		close(cn.dead)
		cn.nc.Close()
	})
}

// write encodes p into the write buffer, flushing when flush is set.
func (cn *leanSubConn) write(p packets.ControlPacket, flush bool, since func() int64) error {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	if err := p.Write(cn.bw); err != nil {
		return err
	}
	if flush {
		return cn.flushLocked(since)
	}
	return nil
}

// flush writes out what the buffer holds, bounded by connectTimeout.
func (cn *leanSubConn) flush(since func() int64) error {
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	return cn.flushLocked(since)
}

func (cn *leanSubConn) flushLocked(since func() int64) error {
	if cn.bw.Buffered() == 0 {
		return nil
	}
	if err := cn.nc.SetWriteDeadline(time.Now().Add(connectTimeout)); err != nil {
		return err
	}
	if err := cn.bw.Flush(); err != nil {
		return err
	}
	cn.lastWrite.Store(since())
	return nil
}

// acknowledge sends the acknowledgement a delivery of qos with packet id
// asks for (PUBACK or PUBREC; nothing for QoS 0). Success with no
// properties is the same bytes in MQTT 5 as in 3.1.1 (MQTT 5 3.4.2.1,
// 3.5.2.1), so both use paho.mqtt.golang's codec.
func (cn *leanSubConn) acknowledge(qos byte, id uint16, flush bool, since func() int64) error {
	switch qos {
	case 1:
		cn.wmu.Lock()
		defer cn.wmu.Unlock()
		cn.ack.MessageID = id
		if err := cn.ack.Write(cn.bw); err != nil {
			return err
		}
	case 2:
		cn.wmu.Lock()
		defer cn.wmu.Unlock()
		cn.rec.MessageID = id
		if err := cn.rec.Write(cn.bw); err != nil {
			return err
		}
	default:
		return nil
	}
	if flush {
		return cn.flushLocked(since)
	}
	return nil
}

// connectLean connects the subscriber on the lean client and subscribes;
// deliveries may come before the SUBACK (a resumed session's backlog) and
// are recorded as they come.
func (s *subscriber) connectLean() error {
	l := s.lean
	l.connectMu.Lock()
	defer l.connectMu.Unlock()
	e := s.e
	tr, err := e.transportFor(s.id)
	if err != nil {
		return fmt.Errorf("connecting subscriber %s: %w", s.id, err)
	}
	nc, err := tr.open(s.set.tls, connectTimeout)
	if err != nil {
		return fmt.Errorf("connecting subscriber %s: dialing %s: %w", s.id, tr.hostport, err)
	}
	if err := nc.SetDeadline(time.Now().Add(connectTimeout)); err != nil {
		nc.Close()
		return fmt.Errorf("connecting subscriber %s: %w", s.id, err)
	}
	cn := &leanSubConn{
		nc: nc, br: bufio.NewReaderSize(nc, leanSubReadBuf), bw: bufio.NewWriterSize(nc, leanSubWriteBuf),
		ack:    packets.NewControlPacket(packets.Puback).(*packets.PubackPacket),
		rec:    packets.NewControlPacket(packets.Pubrec).(*packets.PubrecPacket),
		comp:   packets.NewControlPacket(packets.Pubcomp).(*packets.PubcompPacket),
		suback: make(chan []byte, 1),
		dead:   make(chan struct{}),
	}
	if s.cfg.Clean() {
		l.resetSession()
	}
	var r5 *leanSubReader5
	if l.v5 {
		r5 = &leanSubReader5{}
		err = s.leanConnect5(cn, r5)
	} else {
		err = s.leanConnect311(cn)
	}
	if err == nil {
		err = nc.SetDeadline(time.Time{})
	}
	if err != nil {
		nc.Close()
		return fmt.Errorf("connecting subscriber %s: %w", s.id, err)
	}
	cn.lastWrite.Store(e.rec.Since())
	e.wg.Add(1)
	go func() { defer e.wg.Done(); s.leanRead(cn, r5) }()
	if err := s.leanSubscribe(cn); err != nil {
		cn.fail(err)
		return fmt.Errorf("subscriber %s subscribing to %s: %w", s.id, s.cfg.SubscribeFilter(), err)
	}
	l.mu.Lock()
	l.cur = cn
	start := !l.started
	l.started = true
	l.mu.Unlock()
	s.connected.Store(true)
	if start {
		e.wg.Add(1)
		go func() { defer e.wg.Done(); l.keepalive() }()
	}
	s.subscribeMu.Lock()
	first := s.firstConn
	s.firstConn = false
	s.subscribeMu.Unlock()
	if !first {
		e.note(LevelInfo, fmt.Sprintf("subscriber %s reconnected", s.id))
	}
	// A connection lost between the reader's start and now was not current
	// yet: handle it as any loss.
	select {
	case <-cn.dead:
		s.leanLost(cn, cn.err)
	default:
	}
	return nil
}

// keepAliveOf is the keepalive the subscriber's CONNECT announces.
func (s *subscriber) keepAliveOf() time.Duration {
	if s.set != nil && s.set.keepAlive > 0 {
		return s.set.keepAlive
	}
	return keepAlive
}

// leanConnect311 sends the 3.1/3.1.1 CONNECT and checks the CONNACK.
func (s *subscriber) leanConnect311(cn *leanSubConn) error {
	o := leanOptions{ClientID: s.id, Clean: s.cfg.Clean(), KeepAlive: s.keepAliveOf(), Protocol: byte(s.cfg.Protocol)}
	if cs := s.set; cs != nil {
		o.Username, o.Password, o.HasPassword, o.Will = cs.username, cs.password, cs.hasPass, cs.will
	}
	c := &leanClient{o: o}
	return c.connect311(cn.nc, cn.br)
}

// leanConnect5 sends the MQTT 5 CONNECT (session expiry, receive maximum,
// credentials, will, as the paho.golang subscriber sends them) and records
// the CONNACK's reason code.
func (s *subscriber) leanConnect5(cn *leanSubConn, r5 *leanSubReader5) error {
	e := s.e
	cp := &paho.Connect{
		ClientID: s.id, CleanStart: s.cfg.Clean(), KeepAlive: uint16(s.keepAliveOf() / time.Second),
		Properties: &paho.ConnectProperties{},
	}
	if x := s.cfg.SessionExpirySeconds(); x > 0 {
		cp.Properties.SessionExpiryInterval = &x
	}
	if rm := uint16(s.cfg.ReceiveMaximum); rm > 0 {
		cp.Properties.ReceiveMaximum = &rm
	}
	if s.set != nil {
		s.set.applyV5(cp)
	}
	pk := cp.Packet() // paho.Client fills in the protocol; here it is ours to set
	pk.ProtocolName, pk.ProtocolVersion = "MQTT", 5
	ccp := packets5.NewControlPacket(packets5.CONNECT)
	ccp.Content = pk
	if _, err := ccp.WriteTo(cn.nc); err != nil {
		return fmt.Errorf("sending CONNECT: %w", err)
	}
	in, err := r5.read(cn.br)
	if err != nil {
		return fmt.Errorf("reading CONNACK: %w", err)
	}
	if in.kind != packets.Connack {
		return fmt.Errorf("expected CONNACK, got %s", in.name)
	}
	e.emit(Event{T: e.rec.Since(), Type: EvReason, Client: s.id, Reason: ReasonLabel(rcConnack, in.rc)})
	if in.rc >= 0x80 {
		return fmt.Errorf("broker refused: %s (CONNACK 0x%02X)", ReasonName(rcConnack, in.rc), in.rc)
	}
	return nil
}

// leanSubscribe sends SUBSCRIBE and waits for the reader to see the SUBACK.
func (s *subscriber) leanSubscribe(cn *leanSubConn) error {
	e := s.e
	filter := s.cfg.SubscribeFilter()
	var err error
	if s.lean.v5 {
		sp := (&paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: s.cfg.QoS, NoLocal: s.cfg.NoLocal}}}).Packet()
		sp.PacketID = leanSubPacketID
		csp := packets5.NewControlPacket(packets5.SUBSCRIBE)
		csp.Content = sp
		cn.wmu.Lock()
		_, err = csp.WriteTo(cn.bw)
		if err == nil {
			err = cn.flushLocked(e.rec.Since)
		}
		cn.wmu.Unlock()
	} else {
		sp := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
		sp.MessageID, sp.Topics, sp.Qoss = leanSubPacketID, []string{filter}, []byte{s.cfg.QoS}
		err = cn.write(sp, true, e.rec.Since)
	}
	if err != nil {
		return fmt.Errorf("sending SUBSCRIBE: %w", err)
	}
	t := time.NewTimer(connectTimeout)
	defer t.Stop()
	var codes []byte
	select {
	case codes = <-cn.suback:
	case <-cn.dead:
		return fmt.Errorf("connection closed before SUBACK: %v", cn.err)
	case <-t.C:
		return fmt.Errorf("no SUBACK within %s", connectTimeout)
	case <-e.stop:
		return errors.New("run stopped")
	}
	if s.lean.v5 {
		for _, rc := range codes {
			e.emit(Event{T: e.rec.Since(), Type: EvReason, Client: s.id, Reason: ReasonLabel(rcSuback, rc), Msg: filter})
		}
	}
	if len(codes) != 1 {
		return errors.New("SUBACK without one return code")
	}
	if codes[0] >= 0x80 {
		if s.lean.v5 {
			return fmt.Errorf("broker refused: SUBACK 0x%02X (%s)", codes[0], ReasonName(rcSuback, codes[0]))
		}
		return errors.New("broker refused the subscription (SUBACK 0x80)")
	}
	return nil
}

// leanLost handles the end of the current connection as paho's
// connection-lost handler and auto-reconnect do (see lostRetry).
func (s *subscriber) leanLost(cn *leanSubConn, err error) {
	l := s.lean
	s.lostRetry(&l.mu, &l.retrying, func() bool {
		if l.cur != cn {
			return false // an earlier connection, one not yet established, or closed by us
		}
		l.cur = nil
		return true
	}, err, s.connectLean)
}

// lostRetry is the connection loss of the subscribers that reconnect on their
// own (lean, and MQTT 5 on paho.golang), one loop for both: recorded, then
// connect retried every leanReconnectEvery until it works or the run ends,
// unless a disconnect action is in effect. It waits with waitUntil, not
// sleepUntil: a broker back during the drain still holds messages the drain
// waits for. drop, called under mu, clears the client's current connection
// and reports whether the lost one was it; retrying (guarded by mu) keeps one
// loop at a time.
func (s *subscriber) lostRetry(mu *sync.Mutex, retrying *bool, drop func() bool, err error, connect func() error) {
	mu.Lock()
	if !drop() {
		mu.Unlock()
		return
	}
	s.conn.Add(1)
	s.connected.Store(false)
	retry := !*retrying && !s.expectedDown.Load()
	if retry {
		*retrying = true
	}
	mu.Unlock()
	s.e.connLost("subscriber", s.id, err, s.expectedDown.Load())
	if !retry {
		return
	}
	s.e.wg.Add(1)
	go func() {
		defer s.e.wg.Done()
		defer func() { mu.Lock(); *retrying = false; mu.Unlock() }()
		for s.e.waitUntil(time.Now().Add(leanReconnectEvery)) && !s.expectedDown.Load() {
			if connect() == nil {
				return
			}
		}
	}()
}

// closeLean sends DISCONNECT and closes the connection (the disconnect
// action and the end of the run); the loss that follows is not retried.
func (l *leanSub) closeLean() {
	l.mu.Lock()
	cn := l.cur
	l.cur = nil
	l.mu.Unlock()
	if cn == nil {
		return
	}
	_ = cn.write(packets.NewControlPacket(packets.Disconnect), true, l.s.e.rec.Since)
	cn.fail(errLeanSubClosed)
}

// keepalive sends PINGREQ when nothing was written for half the keepalive,
// and closes the connection cleanly when the run ends.
func (l *leanSub) keepalive() {
	s := l.s
	ka := s.keepAliveOf()
	tick := time.NewTicker(min(ka/2, leanTick))
	defer tick.Stop()
	for {
		select {
		case <-s.e.stop:
			l.closeLean()
			return
		case <-tick.C:
		}
		l.mu.Lock()
		cn := l.cur
		l.mu.Unlock()
		if cn == nil {
			continue
		}
		now := s.e.rec.Since()
		if sent := cn.pingSent.Load(); sent != 0 {
			if time.Duration(now-sent) > connectTimeout {
				cn.fail(fmt.Errorf("no PINGRESP within %s", connectTimeout)) // as paho's ping timeout
			}
			continue
		}
		if time.Duration(now-cn.lastWrite.Load()) < ka/2 {
			continue
		}
		cn.pingSent.Store(now)
		if err := cn.write(packets.NewControlPacket(packets.Pingreq), true, s.e.rec.Since); err != nil {
			cn.fail(fmt.Errorf("writing to broker: %w", err))
		}
	}
}
