package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	packets5 "github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/mqbench/mqbench/scenarios"
)

// The MQTT 5 subscriber runs on paho.golang's paho client over the same
// dialing as the lean publisher (leanAddr: TCP, TLS, websockets), so TLS,
// credentials and wills behave as on 3.1.1. paho.golang's client serves one
// connection: a reconnect (after the broker came back, or the reconnect
// action) is a new client, as autopaho would make, but driven by the run
// engine's actions rather than on its own schedule. Deliveries go through
// the same queue, pacing and accounting as the 3.1.1 subscriber, wrapped as
// mqtt.Message (msg5). paho.golang writes from several goroutines (acks,
// pings), which a TLS or websocket stream does not survive interleaved: the
// connection is wrapped with packets.NewThreadSafeConn, as autopaho does.

// v5Reconnect is the MQTT 5 publisher's retry pace while the broker is away
// (the subscriber's is lostRetry's).
const v5Reconnect = 250 * time.Millisecond

// sub5 is a v5 subscriber's current connection.
type sub5 struct {
	mu           sync.Mutex
	cli          *paho.Client // nil while disconnected
	reconnecting bool
	// propsSeen: the first delivery's properties were noted; propsBad counts
	// deliveries whose properties differ from what their publisher sent.
	propsSeen bool
	propsBad  int64
}

// msg5 is a v5 delivery as the mqtt.Message the subscriber's queue holds.
type msg5 struct {
	p   *paho.Publish
	cli *paho.Client
}

func (m *msg5) Duplicate() bool   { return m.p.Duplicate() }
func (m *msg5) Qos() byte         { return m.p.QoS }
func (m *msg5) Retained() bool    { return m.p.Retain }
func (m *msg5) Topic() string     { return m.p.Topic }
func (m *msg5) MessageID() uint16 { return m.p.PacketID }
func (m *msg5) Payload() []byte   { return m.p.Payload }

// Ack releases the acknowledgement (manual acknowledgement: ack pace mode);
// an ack for a connection that is gone is dropped, the broker resends.
func (m *msg5) Ack() { _ = m.cli.Ack(m.p) }

// connectV5 connects, subscribes and records the CONNACK's and SUBACK's
// reason codes.
func (s *subscriber) connectV5() error {
	e := s.e
	tr, err := e.transportFor(s.id)
	if err != nil {
		return fmt.Errorf("connecting subscriber %s: %w", s.id, err)
	}
	nc, err := tr.open(s.set.tls, connectTimeout)
	if err != nil {
		return fmt.Errorf("connecting subscriber %s: dialing %s: %w", s.id, tr.hostport, err)
	}
	st := s.v5
	var cli *paho.Client
	var lostOnce sync.Once
	lost := func(err error) {
		lostOnce.Do(func() { s.lostV5(cli, err) })
	}
	cli = paho.NewClient(paho.ClientConfig{
		ClientID:                   s.id,
		Conn:                       packets5.NewThreadSafeConn(nc),
		EnableManualAcknowledgment: s.cfg.PaceMode != "block",
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			s.checkProps(pr.Packet)
			s.handler(nil, &msg5{p: pr.Packet, cli: pr.Client})
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) {
			e.emit(Event{T: e.rec.Since(), Type: EvReason, Client: s.id, Reason: ReasonLabel(rcDisconnect, d.ReasonCode)})
			lost(fmt.Errorf("broker sent DISCONNECT 0x%02X (%s)", d.ReasonCode, ReasonName(rcDisconnect, d.ReasonCode)))
		},
		OnClientError: func(err error) { lost(err) },
	})
	cp := &paho.Connect{
		ClientID: s.id, CleanStart: s.cfg.Clean(), KeepAlive: uint16(keepAlive / time.Second),
		Properties: &paho.ConnectProperties{},
	}
	if s.set.keepAlive > 0 {
		cp.KeepAlive = uint16(s.set.keepAlive / time.Second)
	}
	if x := s.cfg.SessionExpirySeconds(); x > 0 {
		cp.Properties.SessionExpiryInterval = &x
	}
	if rm := uint16(s.cfg.ReceiveMaximum); rm > 0 {
		cp.Properties.ReceiveMaximum = &rm
	}
	s.set.applyV5(cp)
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	ca, err := cli.Connect(ctx, cp)
	if ca != nil {
		e.emit(Event{T: e.rec.Since(), Type: EvReason, Client: s.id, Reason: ReasonLabel(rcConnack, ca.ReasonCode)})
	}
	if err != nil {
		nc.Close()
		return fmt.Errorf("connecting subscriber %s: %w", s.id, refusedV5(ca, err))
	}
	filter := s.cfg.SubscribeFilter()
	sa, err := cli.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: s.cfg.QoS, NoLocal: s.cfg.NoLocal}}})
	if sa != nil {
		for _, rc := range sa.Reasons {
			e.emit(Event{T: e.rec.Since(), Type: EvReason, Client: s.id, Reason: ReasonLabel(rcSuback, rc), Msg: filter})
		}
	}
	if err == nil && (sa == nil || len(sa.Reasons) != 1) {
		err = errors.New("SUBACK without one reason code")
	}
	if err == nil && sa.Reasons[0] >= 0x80 {
		err = fmt.Errorf("broker refused: SUBACK 0x%02X (%s)", sa.Reasons[0], ReasonName(rcSuback, sa.Reasons[0]))
	}
	if err != nil {
		_ = cli.Disconnect(&paho.Disconnect{})
		return fmt.Errorf("subscriber %s subscribing to %s: %w", s.id, filter, err)
	}
	st.mu.Lock()
	st.cli = cli
	st.mu.Unlock()
	s.connected.Store(true)
	s.subscribeMu.Lock()
	first := s.firstConn
	s.firstConn = false
	s.subscribeMu.Unlock()
	if !first {
		e.note(LevelInfo, fmt.Sprintf("subscriber %s reconnected", s.id))
	}
	return nil
}

// lostV5 handles the end of a v5 connection as paho.mqtt.golang's
// connection-lost handler and auto-reconnect do for 3.1.1 (see lostRetry).
func (s *subscriber) lostV5(cli *paho.Client, err error) {
	st := s.v5
	s.lostRetry(&st.mu, &st.reconnecting, func() bool {
		if st.cli != cli {
			return false // an earlier connection, or one never established
		}
		st.cli = nil
		return true
	}, err, s.connectV5)
}

// closeV5 sends DISCONNECT and closes the connection (disconnect action and
// the end of the run).
func (s *subscriber) closeV5() {
	st := s.v5
	st.mu.Lock()
	cli := st.cli
	st.cli = nil
	st.mu.Unlock()
	disconnectV5(cli)
}

// checkProps notes, once, the MQTT 5 properties the first delivery carried,
// and warns at the first whose content type or user properties differ from
// what its publisher group sent (a broker that drops them changes what an
// application receives).
func (s *subscriber) checkProps(p *paho.Publish) {
	pub, _, _, ok := parsePayload(p.Payload)
	if !ok {
		return
	}
	if pub == "" {
		pub = s.e.defaultPub
	}
	pp := s.e.pubs[pub]
	if pp == nil || !pp.cfg.V5() {
		return
	}
	got := describeProps(p.Properties)
	want := describeWant(pp.cfg)
	if got == want && pp.cfg.ContentType == "" && pp.cfg.ResponseTopic == "" && len(pp.cfg.UserProperties) == 0 {
		return // nothing was sent, nothing arrived: no news
	}
	st := s.v5
	st.mu.Lock()
	first := !st.propsSeen
	st.propsSeen = true
	bad := got != want
	if bad {
		st.propsBad++
	}
	n := st.propsBad
	st.mu.Unlock()
	if first && !bad {
		s.e.note(LevelInfo, fmt.Sprintf("subscriber %s: MQTT 5 properties arrived as published: %s", s.id, got))
	}
	if bad && n == 1 {
		s.e.note(LevelWarn, fmt.Sprintf("subscriber %s: a delivery from %s carried %s, its publisher sent %s", s.id, pub, got, want))
	}
}

// describeProps renders the properties mqbench checks: content type,
// response topic and user properties (sorted).
func describeProps(p *paho.PublishProperties) string {
	if p == nil {
		return describe("", "", nil)
	}
	var up [][2]string
	for _, u := range p.User {
		up = append(up, [2]string{u.Key, u.Value})
	}
	return describe(p.ContentType, p.ResponseTopic, up)
}

func describeWant(p scenarios.Publisher) string {
	var up [][2]string
	for k, v := range p.UserProperties {
		up = append(up, [2]string{k, v})
	}
	return describe(p.ContentType, p.ResponseTopic, up)
}

func describe(ct, rt string, up [][2]string) string {
	sort.Slice(up, func(i, j int) bool { return up[i][0] < up[j][0] })
	var b strings.Builder
	fmt.Fprintf(&b, "content_type %q, response_topic %q, user_properties {", ct, rt)
	for i, kv := range up {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %q", kv[0], kv[1])
	}
	b.WriteString("}")
	return b.String()
}

// refusedV5 words a refused MQTT 5 CONNECT the way the lean clients do
// ("broker refused: not authorized (CONNACK 0x87)"): paho.golang's own error
// carries only the server's optional reason string, often empty, so which
// client of a run fails first would otherwise decide whether the code shows.
func refusedV5(ca *paho.Connack, err error) error {
	if ca != nil && ca.ReasonCode >= 0x80 {
		return fmt.Errorf("broker refused: %s (CONNACK 0x%02X)", ReasonName(rcConnack, ca.ReasonCode), ca.ReasonCode)
	}
	return err
}
