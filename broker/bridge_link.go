package broker

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	mqtopic "github.com/mqbench/mqbench/mqtt/topic"
)

// bridgeLinkTimeout bounds how long a CONNACK may take on either side.
const bridgeLinkTimeout = 20 * time.Second

// bridgePendingMax bounds what the local side may hand the link before the
// remote has accepted it (the local session's in-flight window plus QoS 0
// messages); beyond it the attempt is abandoned and the session keeps them.
const bridgePendingMax = 100000

// bridgeLink is one attempt's pair of connections: local (a pipe into this
// broker) and remote.
type bridgeLink struct {
	br     *bridge
	local  net.Conn
	lmu    sync.Mutex  // local writes
	lcodec remoteCodec // the local side's: MQTT 5 when the bridge speaks it

	rmu    sync.Mutex // remote writes and setRemote
	remote net.Conn
	rr     *bufio.Reader
	codec  remoteCodec
	proto  byte // the remote side's protocol: 3, 4 or 5

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
	connack   chan byte

	pmu     sync.Mutex
	ready   bool // the remote takes forwarded packets
	pending []packets.ControlPacket

	omu       sync.Mutex     // the own-publish bookkeeping below
	ownLocal  map[uint16]int // PUBACKs of the bridge's own local publishes
	ownRemote map[uint16]int // PUBACKs of its own remote publishes (mids of the local session, bridge.go)
	localMid  uint16         // the bridge's own packets to the local broker
	// dropped2 are QoS 2 messages too large for the remote, whose local flow
	// the bridge completes itself.
	dropped2 map[uint16]bool
}

func newBridgeLink(br *bridge, local net.Conn) *bridgeLink {
	l := &bridgeLink{br: br, local: local, closed: make(chan struct{}), connack: make(chan byte, 1),
		ownLocal: map[uint16]int{}, ownRemote: map[uint16]int{}, dropped2: map[uint16]bool{}, lcodec: v3Codec{}}
	if br.proto == 5 {
		// Mosquitto's bridge context is one client of both brokers, so a
		// v5 bridge is a v5 client of the local broker too: one copy per
		// matching out topic, and the messages' properties.
		l.lcodec = v5Codec{recvMax: uint16(br.b.cfg.MaxInflightMessages), sessionExpiry: sessionExpiryNever}
	}
	return l
}

func (l *bridgeLink) close() {
	l.closeOnce.Do(func() {
		close(l.closed)
		_ = l.local.Close()
		l.rmu.Lock()
		if l.remote != nil {
			_ = l.remote.Close()
		}
		l.rmu.Unlock()
	})
}

func (l *bridgeLink) wait() { l.wg.Wait() }

func (l *bridgeLink) setRemote(nc net.Conn) bool {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	select {
	case <-l.closed:
		_ = nc.Close()
		return false
	default:
	}
	l.remote, l.rr = nc, bufio.NewReader(nc)
	l.proto = l.br.proto
	l.codec = v3Codec{}
	if l.proto == 5 {
		l.codec = v5Codec{recvMax: uint16(l.br.b.cfg.MaxInflightMessages)}
	}
	return true
}

func next(m *uint16) uint16 {
	*m++
	if *m == 0 {
		*m = 1
	}
	return *m
}

func (l *bridgeLink) writeLocal(p packets.ControlPacket) {
	l.lmu.Lock()
	defer l.lmu.Unlock()
	if err := l.lcodec.write(l.local, p); err != nil {
		l.close()
	}
}

func (l *bridgeLink) writeRemote(p packets.ControlPacket) {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	if l.remote == nil {
		return
	}
	if err := l.codec.write(l.remote, p); err != nil {
		go l.close()
	}
}

// connectPacket is the CONNECT of either side: the 3.1, 3.1.1 or 5
// protocol with, when private (3.x only), the bridge bit Mosquitto's
// try_private sets.
func connectPacket(proto byte, private bool) *packets.ConnectPacket {
	p := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	p.ProtocolName, p.ProtocolVersion = "MQTT", 4
	switch proto {
	case 3:
		p.ProtocolName, p.ProtocolVersion = "MQIsdp", 3
	case 5:
		p.ProtocolVersion, private = 5, false
	}
	if private {
		p.ProtocolVersion |= 0x80
	}
	return p
}

// localConnect connects the bridge's local client (local_clientid,
// local_cleansession, the remote username as Mosquitto's bridge context
// carries it) and starts reading what the broker sends it.
func (l *bridgeLink) localConnect() error {
	bc := l.br.cfg
	p := connectPacket(l.br.proto, true)
	p.ClientIdentifier = bc.localID
	p.CleanSession = bc.cleanLocal
	if bc.hasUser {
		p.UsernameFlag, p.Username = true, bc.user
	}
	l.wg.Add(1)
	go l.localReader()
	l.writeLocal(p)
	select {
	case code := <-l.connack:
		if code != 0 {
			return fmt.Errorf("refused: %s", connackReason(code))
		}
		return nil
	case <-l.closed:
		return errors.New("closed")
	case <-time.After(bridgeLinkTimeout):
		return errors.New("no CONNACK")
	}
}

// localSubscribe subscribes the local client to every out topic: the
// subscription bridge__connect makes (No Local and Retain As Published come
// from the bridge bit of its CONNECT), which also queues the retained
// messages of those topics.
func (l *bridgeLink) localSubscribe() {
	for _, t := range l.br.cfg.topics {
		if !t.out() {
			continue
		}
		p := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
		l.omu.Lock()
		p.MessageID = next(&l.localMid)
		l.omu.Unlock()
		p.Topics, p.Qoss = []string{t.localTopic}, []byte{t.qos}
		l.br.b.log.printf(logDebug, "Bridge %s doing local SUBSCRIBE on topic %s", l.br.cfg.localID, t.localTopic)
		l.writeLocal(p)
	}
}

// dropStaleSubs unsubscribes the local client from filters its session
// holds that are no longer out topics (say, after the file changed):
// bridge__connect's sub__clean_session before it subscribes again.
func (l *bridgeLink) dropStaleSubs() {
	want := map[string]bool{}
	for _, t := range l.br.cfg.topics {
		if t.out() {
			want[t.localTopic] = true
		}
	}
	var stale []string
	id := l.br.cfg.localID
	l.br.b.onLoop(func(st *state) {
		if s := st.sessions[id]; s != nil {
			for _, f := range s.subOrder {
				if !want[f] {
					stale = append(stale, f)
				}
			}
		}
	})
	if len(stale) == 0 {
		return
	}
	p := packets.NewControlPacket(packets.Unsubscribe).(*packets.UnsubscribePacket)
	l.omu.Lock()
	p.MessageID = next(&l.localMid)
	l.omu.Unlock()
	p.Topics = stale
	l.writeLocal(p)
}

// localPublish is db__messages_easy_queue of a notification: retained, QoS 1,
// published as the bridge's local client.
func (l *bridgeLink) localPublish(topic string, payload byte) {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Qos, p.Retain, p.TopicName, p.Payload = 1, true, topic, []byte{payload}
	l.omu.Lock()
	p.MessageID = next(&l.localMid)
	l.ownLocal[p.MessageID]++
	l.omu.Unlock()
	l.writeLocal(p)
}

// remoteConnect sends the remote CONNECT (with the notification will) and
// reads its CONNACK.
func (l *bridgeLink) remoteConnect(private bool) (byte, error) {
	bc := l.br.cfg
	p := connectPacket(l.proto, private)
	p.ClientIdentifier = bc.remoteID
	p.CleanSession = bc.cleanRemote
	p.Keepalive = bc.keepalive
	if bc.hasUser {
		p.UsernameFlag, p.Username = true, bc.user
	}
	if bc.hasPass {
		p.PasswordFlag, p.Password = true, []byte(bc.pass)
	}
	if bc.notifications {
		p.WillFlag, p.WillQos, p.WillRetain = true, 1, true
		p.WillTopic, p.WillMessage = bc.notificationTopic(), []byte{'0'}
	}
	l.writeRemote(p)
	_ = l.remote.SetReadDeadline(time.Now().Add(bridgeLinkTimeout))
	pk, err := l.codec.read(l.rr)
	if err != nil {
		return 0, err
	}
	ca, ok := pk.(*packets.ConnackPacket)
	if !ok {
		return 0, fmt.Errorf("expected CONNACK, got %s", pk.String())
	}
	_ = l.remote.SetReadDeadline(time.Time{})
	return ca.ReturnCode, nil
}

// onConnect is bridge__on_connect: the notification "1" (remote unless
// notifications_local_only, and local), the remote SUBSCRIBEs of the in
// topics and UNSUBSCRIBEs of the others (bridge_attempt_unsubscribe), the
// retained messages of the out topics queued again; then the link runs.
func (l *bridgeLink) onConnect() {
	bc := l.br.cfg
	if bc.notifications {
		if !bc.notifLocalOnly {
			p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
			p.Qos, p.Retain, p.TopicName, p.Payload = 1, bc.outgoingRetain, bc.notificationTopic(), []byte{'1'}
			p.MessageID = l.br.b.sessionMid(bc.localID)
			l.omu.Lock()
			l.ownRemote[p.MessageID]++
			l.omu.Unlock()
			l.writeRemote(p)
		}
		l.localPublish(bc.notificationTopic(), '1')
	}
	for _, t := range bc.topics {
		if t.in() {
			p := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
			p.MessageID = l.br.b.sessionMid(bc.localID)
			p.Topics, p.Qoss = []string{t.remoteTopic}, []byte{t.qos}
			l.writeRemote(p)
		} else if bc.attemptUnsubscribe {
			p := packets.NewControlPacket(packets.Unsubscribe).(*packets.UnsubscribePacket)
			p.MessageID = l.br.b.sessionMid(bc.localID)
			p.Topics = []string{t.remoteTopic}
			l.writeRemote(p)
		}
	}
	l.localSubscribe()
	l.pmu.Lock()
	for _, p := range l.pending {
		l.writeRemote(p)
	}
	l.pending, l.ready = nil, true
	l.pmu.Unlock()
}

// run reads the remote side and keeps the link alive until it ends. Without
// round_robin, a link to any address but the first tries the first every 5 s
// (bridge_check's primary_retry) and, once it answers, drops this link so the
// next attempt goes back to it.
func (l *bridgeLink) run() {
	l.wg.Add(1)
	go l.remoteReader()
	var ping, primary <-chan time.Time
	if ka := time.Duration(l.br.cfg.keepalive) * time.Second; ka > 0 {
		t := time.NewTicker(ka)
		defer t.Stop()
		ping = t.C
	}
	if !l.br.cfg.roundRobin && l.br.cur != 0 {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		primary = t.C
	}
	for {
		select {
		case <-l.closed:
			return
		case <-ping:
			l.writeRemote(packets.NewControlPacket(packets.Pingreq))
		case <-primary:
			// The probe is the one connection 2.0.11 binds to
			// bridge_bind_address (net__try_connect in bridge_check).
			d := net.Dialer{Timeout: 5 * time.Second}
			if a := l.br.cfg.bindAddr; a != nil {
				d.LocalAddr = a
			}
			if nc, err := d.DialContext(l.br.ctx, "tcp", l.br.cfg.addrs[0]); err == nil {
				_ = nc.Close()
				l.br.b.log.printf(logNotice, "Bridge %s: the primary address %s is back; reconnecting to it.", l.br.cfg.name, l.br.cfg.addrs[0])
				l.br.cur = len(l.br.cfg.addrs) - 1 // run's step to the next address wraps to 0
				l.close()
				return
			}
		}
	}
}

// forward hands a packet from the local side to the remote, or holds it
// until the remote has accepted the link.
func (l *bridgeLink) forward(p packets.ControlPacket) {
	l.pmu.Lock()
	defer l.pmu.Unlock()
	if !l.ready {
		if len(l.pending) >= bridgePendingMax {
			go l.close()
			return
		}
		l.pending = append(l.pending, p)
		return
	}
	l.writeRemote(p)
}

// own swallows the acknowledgement of one of the bridge's own publishes.
func (l *bridgeLink) own(m map[uint16]int, mid uint16) bool {
	l.omu.Lock()
	defer l.omu.Unlock()
	if m[mid] == 0 {
		return false
	}
	if m[mid]--; m[mid] == 0 {
		delete(m, mid)
	}
	return true
}

func (l *bridgeLink) localReader() {
	defer l.wg.Done()
	defer l.close()
	r := bufio.NewReader(l.local)
	for {
		pk, err := l.lcodec.read(r)
		if err != nil {
			return
		}
		switch p := pk.(type) {
		case *packets.ConnackPacket:
			select {
			case l.connack <- p.ReturnCode:
			default:
			}
		case *packets.SubackPacket, *packets.UnsubackPacket, *packets.PingrespPacket:
		case *packets.PubackPacket:
			if !l.own(l.ownLocal, p.MessageID) {
				l.forward(p)
			}
		case *packets.PublishPacket:
			l.outPublish(p, p, 0)
		case *publish5:
			l.outPublish(p.PublishPacket, p, len(p.props))
		case *packets.PubrelPacket:
			if l.takeDropped(p.MessageID) {
				ack := packets.NewControlPacket(packets.Pubcomp).(*packets.PubcompPacket)
				ack.MessageID = p.MessageID
				l.writeLocal(ack)
				continue
			}
			l.forward(p)
		case *packets.PubrecPacket, *packets.PubcompPacket:
			l.forward(p)
		default:
			return
		}
	}
}

func (l *bridgeLink) remoteReader() {
	defer l.wg.Done()
	defer l.close()
	r := l.rr
	ka := time.Duration(l.br.cfg.keepalive) * time.Second
	for {
		if ka > 0 {
			// mosquitto__check_keepalive: nothing heard for 1.5 keepalives.
			_ = l.remote.SetReadDeadline(time.Now().Add(ka * 3 / 2))
		}
		pk, err := l.codec.read(r)
		if err != nil {
			select {
			case <-l.closed:
			default:
				l.br.b.log.printf(logNotice, "Bridge %s: connection lost: %v.", l.br.cfg.name, err)
			}
			return
		}
		switch p := pk.(type) {
		case *packets.PublishPacket:
			p.TopicName = l.br.cfg.remapIn(p.TopicName)
			l.writeLocal(p)
		case *publish5:
			p.TopicName = l.br.cfg.remapIn(p.TopicName)
			l.writeLocal(p)
		case *packets.PubackPacket:
			if !l.own(l.ownRemote, p.MessageID) {
				l.writeLocal(p)
			}
		case *packets.PubrecPacket, *packets.PubrelPacket, *packets.PubcompPacket:
			l.writeLocal(p)
		case *packets.SubackPacket, *packets.UnsubackPacket, *packets.PingrespPacket:
		case *packets.PingreqPacket:
			// Mosquitto's bridge context answers a PINGREQ like any
			// connection (handle__pingreq).
			l.writeRemote(packets.NewControlPacket(packets.Pingresp))
		case *packets.DisconnectPacket:
			return // an MQTT 5 remote's DISCONNECT
		default:
			l.br.b.log.printf(logNotice, "Bridge %s: protocol error: unexpected %s from the remote.", l.br.cfg.name, pk.String())
			return
		}
	}
}

// outPublish sends a local PUBLISH on to the remote (whole is p, or p with
// its property block of propLen bytes): remapped, retain cleared without
// bridge_outgoing_retain, dropped when over bridge_max_packet_size.
func (l *bridgeLink) outPublish(p *packets.PublishPacket, whole packets.ControlPacket, propLen int) {
	p.TopicName = l.br.cfg.remapOut(p.TopicName)
	if !l.br.cfg.outgoingRetain {
		p.Retain = false // retain_available false: send__publish clears it
	}
	if l.oversize(p, propLen) {
		l.dropOversize(p)
		return
	}
	l.forward(whole)
}

// oversize is packet__check_oversize for a PUBLISH to the remote: its
// remaining length and that length's own bytes (not the first byte) against
// bridge_max_packet_size.
func (l *bridgeLink) oversize(p *packets.PublishPacket, propLen int) bool {
	limit := l.br.cfg.maxPacket
	if limit == 0 {
		return false
	}
	rl := 2 + len(p.TopicName) + len(p.Payload)
	if p.Qos > 0 {
		rl += 2
	}
	if l.proto == 5 {
		rl += varintLen(propLen) + propLen // the property block
	}
	return uint32(rl+varintLen(rl)) > limit
}

// dropOversize removes a message too large for the remote from the local
// session, as db__message_write_inflight_out_single does on
// MOSQ_ERR_OVERSIZE_PACKET: the bridge completes its local flow itself.
func (l *bridgeLink) dropOversize(p *packets.PublishPacket) {
	l.br.b.log.printf(logDebug, "Bridge %s: dropped PUBLISH on %s (%d bytes) over bridge_max_packet_size.", l.br.cfg.name, p.TopicName, len(p.Payload))
	switch p.Qos {
	case 1:
		ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
		ack.MessageID = p.MessageID
		l.writeLocal(ack)
	case 2:
		l.omu.Lock()
		l.dropped2[p.MessageID] = true
		l.omu.Unlock()
		ack := packets.NewControlPacket(packets.Pubrec).(*packets.PubrecPacket)
		ack.MessageID = p.MessageID
		l.writeLocal(ack)
	}
}

func (l *bridgeLink) takeDropped(mid uint16) bool {
	l.omu.Lock()
	defer l.omu.Unlock()
	if !l.dropped2[mid] {
		return false
	}
	delete(l.dropped2, mid)
	return true
}

// remapOut is send__publish's mapping of a local topic for the remote: the
// first out topic with a prefix whose local filter matches swaps the local
// prefix for the remote one.
func (bc *bridgeConfig) remapOut(topic string) string {
	for _, t := range bc.topics {
		if !t.out() || (t.localPrefix == "" && t.remotePrefix == "") || !mqtopic.Match(t.localTopic, topic) {
			continue
		}
		return t.remotePrefix + strings.TrimPrefix(topic, t.localPrefix)
	}
	return topic
}

// remapIn is bridge__remap_topic_in, the same the other way.
func (bc *bridgeConfig) remapIn(topic string) string {
	for _, t := range bc.topics {
		if !t.in() || (t.localPrefix == "" && t.remotePrefix == "") || !mqtopic.Match(t.remoteTopic, topic) {
			continue
		}
		return t.localPrefix + strings.TrimPrefix(topic, t.remotePrefix)
	}
	return topic
}
