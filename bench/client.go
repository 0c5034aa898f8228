package bench

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqbench/mqbench/scenarios"
)

// Client timing. Every wait in a run is bounded by one of these, so a dead
// broker ends a run with a note instead of hanging it.
const (
	connectTimeout  = 10 * time.Second
	stallAfter      = 10 * time.Second // no acknowledgement progress for this long: a stalled publisher
	keepAlive       = 60 * time.Second // paho-mqtt (Python)'s default, as in the seed experiment
	reconnectMax    = time.Second
	disconnectQuiet = 100 // ms paho waits for DISCONNECT to be written
)

// clientOptions are the paho options every mqbench client shares, with the
// connection settings of its group (credentials, TLS, keepalive; the will
// when withWill).
func (e *engine) clientOptions(id string, clean bool, cs *connSettings, withWill bool) *mqtt.ClientOptions {
	return cs.apply(e.baseOptions(id, clean), withWill)
}

func (e *engine) baseOptions(id string, clean bool) *mqtt.ClientOptions {
	return mqtt.NewClientOptions().
		AddBroker(e.addrFor(id)).
		SetDialer(&net.Dialer{Timeout: connectTimeout, LocalAddr: e.localAddrOrNil(id)}).
		SetClientID(id).
		SetCleanSession(clean).
		SetProtocolVersion(4).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(connectTimeout).
		SetKeepAlive(keepAlive).
		SetPingTimeout(connectTimeout).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(reconnectMax).
		SetConnectRetry(false)
}

// pahoVersion is the paho.mqtt.golang protocol version of a group's level:
// 3 (MQTT 3.1) or 4 (3.1.1; also for an unset level).
func pahoVersion(level int) uint {
	if level == scenarios.Protocol31 {
		return 3
	}
	return 4
}

// waitToken waits for a paho token within limit; false on timeout or stop.
func (e *engine) waitToken(tok mqtt.Token, limit time.Duration) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("no answer within %s", limit)
	case <-e.stop:
		return fmt.Errorf("run stopped")
	}
}

// publisher sends one publisher's messages and records pub and ack events.
type publisher struct {
	e      *engine
	id     string
	cfg    scenarios.Publisher
	set    *connSettings // its group's connection settings
	gen    *payloadGen
	lim    *limiter
	client mqtt.Client // nil in connection-per-message mode and for the lean client
	lean   *leanClient // client: lean (see leanpub.go), else nil
	p5     *pub5       // client: paho with protocol 5 (see pub5.go), else nil

	// sends holds the send times of its recent messages (sendring.go): ack
	// events and the recv events of experiment payloads take their PubT from
	// it, and a failed publish its level. Written by the publishing goroutine, read by
	// subscribers.
	sends *sendRing

	sent, acked atomic.Int64
	finished    atomic.Bool // all publishes sent and every ack resolved (or stopped)
	errs        atomic.Int64
}

// nextPayload builds message seq's payload stamped with its send time t,
// which the caller passes on to recordPub.
func (p *publisher) nextPayload(seq int64) (payload []byte, t int64, err error) {
	t = p.e.rec.Since()
	payload, err = p.gen.make(seq, t, time.Now())
	return payload, t, err
}

// recordPub stamps seq's send time t (from nextPayload) and records its pub
// event. Every publish path (paho, connection per message, lean) calls it just
// before handing the message to its client, so all three count and time a
// publish alike and the pub event precedes the message's ack and recv events
// in the file.
func (p *publisher) recordPub(seq, t int64, size int) {
	p.sends.put(seq, t)
	p.e.emit(Event{T: t, Type: EvPub, Client: p.id, Seq: seq, QoS: p.cfg.QoS, Size: size})
	p.sent.Add(1)
	p.e.published.Add(1)
}

// recordAck counts the acknowledgement of seq, read at t, and records its ack event.
func (p *publisher) recordAck(seq, t int64) { p.recordAckReason(seq, t, "") }

// recordAckReason is recordAck with the acknowledgement's MQTT 5 reason code
// label ("puback 0x10"; "" for 3.1.1). The event carries the publish time, as
// a recv does, so the analysis gets ack latency without remembering every
// message's pub event.
func (p *publisher) recordAckReason(seq, t int64, reason string) {
	p.acked.Add(1)
	p.e.emit(Event{T: t, Type: EvAck, Client: p.id, Seq: seq, QoS: p.cfg.QoS, Reason: reason, PubT: p.sendTime(seq)})
}

// noteStall records that acknowledgements stopped for stallAfter (true) or
// came again (false); both clients detect stalls their own way and report here.
func (p *publisher) noteStall(stalled bool) {
	if !stalled {
		p.e.note(LevelInfo, fmt.Sprintf("publisher %s acknowledged again", p.id))
		return
	}
	p.e.note(p.e.levelFor(p.id), fmt.Sprintf("publisher %s stalled: no acknowledgement for %s (%d sent, %d acked)",
		p.id, stallAfter, p.sent.Load(), p.acked.Load()))
}

// noteErr records a failed publish or connect; only the first few per
// publisher, so a dead broker does not fill the event file with one note per message.
func (p *publisher) noteErr(level, msg string) {
	if p.errs.Add(1) <= 3 {
		p.e.note(level, msg)
	}
}

// useLean says whether this publisher runs on the lean client (leanpub.go):
// the default for one persistent connection; connection_per_message stays on
// paho, as the seed experiment used paho-mqtt's publish.single.
func (p *publisher) useLean() bool {
	return p.cfg.Client == scenarios.ClientLean && !p.cfg.ConnectionPerMessage
}

func (p *publisher) connect() error {
	if p.useLean() {
		return p.connectLean()
	}
	if p.cfg.V5() {
		return p.connectPaho5()
	}
	opts := p.e.clientOptions(p.id, p.cfg.Clean(), p.set, true).
		SetProtocolVersion(pahoVersion(p.cfg.Protocol)).
		SetMaxResumePubInFlight(p.cfg.Inflight).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { p.e.connLost("publisher", p.id, err, false) }).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) {})
	first := true
	var mu sync.Mutex
	opts.SetOnConnectHandler(func(mqtt.Client) {
		mu.Lock()
		defer mu.Unlock()
		if !first {
			p.e.note(LevelInfo, fmt.Sprintf("publisher %s reconnected", p.id))
		}
		first = false
	})
	p.client = mqtt.NewClient(opts)
	if err := p.e.waitToken(p.client.Connect(), connectTimeout); err != nil {
		return fmt.Errorf("connecting publisher %s: %w", p.id, err)
	}
	return nil
}

type pending struct {
	seq int64
	tok mqtt.Token
}

// run publishes every message, at most Inflight unacknowledged at once.
func (p *publisher) run(runStart time.Time) {
	if p.lean != nil {
		p.runLean(runStart)
		return
	}
	defer p.finished.Store(true)
	if !p.e.sleepUntil(runStart.Add(p.cfg.StartAt.D())) {
		return
	}
	if p.cfg.ConnectionPerMessage {
		p.runPerMessage()
		return
	}
	if p.p5 != nil {
		p.runPaho5()
		return
	}
	sem := make(chan struct{}, p.cfg.Inflight)
	queue := make(chan pending, p.cfg.Inflight)
	acksDone := make(chan struct{})
	go func() {
		defer close(acksDone)
		p.ackLoop(queue, sem)
	}()
	defer func() {
		close(queue)
		<-acksDone
	}()
	for seq := int64(1); seq <= int64(p.cfg.Messages); seq++ {
		if p.e.publishingOver() || !p.lim.wait(p.e.stopPublish) {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-p.e.stopPublish:
			return
		}
		payload, t, err := p.nextPayload(seq)
		if err != nil {
			p.e.note(LevelWarn, fmt.Sprintf("publisher %s: %v", p.id, err))
			return
		}
		p.recordPub(seq, t, len(payload))
		tok := p.client.Publish(p.cfg.Topic, p.cfg.QoS, p.cfg.Retain, payload)
		queue <- pending{seq, tok}
	}
}

// ackLoop resolves tokens in publish order (brokers acknowledge in order, so
// this costs nothing) and notes a stall when nothing is acknowledged for
// stallAfter. It gives up only when the run ends.
func (p *publisher) ackLoop(queue <-chan pending, sem <-chan struct{}) {
	timer := time.NewTimer(stallAfter)
	defer timer.Stop()
	stalled := false
	for pd := range queue {
		ok := true
		select {
		case <-pd.tok.Done():
		default:
			timer.Reset(stallAfter)
		wait:
			for {
				select {
				case <-pd.tok.Done():
					break wait
				case <-p.e.stop:
					ok = false
					break wait
				case <-timer.C:
					if !stalled {
						stalled = true
						p.noteStall(true)
					}
					timer.Reset(stallAfter)
				}
			}
		}
		<-sem
		if !ok {
			continue // run over: drain the queue without waiting
		}
		if err := pd.tok.Error(); err != nil {
			p.noteErr(p.e.pubErrLevel(p.id, p.sendTime(pd.seq)), fmt.Sprintf("publisher %s seq %d: %v", p.id, pd.seq, err))
			continue
		}
		if stalled {
			stalled = false
			p.noteStall(false)
		}
		p.recordAck(pd.seq, p.e.rec.Since())
	}
}

// runPerMessage is paho-mqtt's publish.single: connect, publish, wait for the
// flow to complete, disconnect, for every message.
func (p *publisher) runPerMessage() {
	opts := p.e.clientOptions(p.id, p.cfg.Clean(), p.set, true).SetAutoReconnect(false).SetProtocolVersion(pahoVersion(p.cfg.Protocol))
	for seq := int64(1); seq <= int64(p.cfg.Messages); seq++ {
		if p.e.publishingOver() || !p.lim.wait(p.e.stopPublish) {
			return
		}
		c := mqtt.NewClient(opts)
		if err := p.e.waitToken(c.Connect(), connectTimeout); err != nil {
			p.noteErr(p.e.levelFor(p.id), fmt.Sprintf("publisher %s connecting for seq %d: %v", p.id, seq, err))
			seq-- // retry the same message after a pause, as a user's script would
			if !p.e.sleepUntil(time.Now().Add(200 * time.Millisecond)) {
				return
			}
			continue
		}
		payload, t, err := p.nextPayload(seq)
		if err != nil {
			p.e.note(LevelWarn, fmt.Sprintf("publisher %s: %v", p.id, err))
			c.Disconnect(disconnectQuiet)
			return
		}
		p.recordPub(seq, t, len(payload))
		if err := p.e.waitToken(c.Publish(p.cfg.Topic, p.cfg.QoS, p.cfg.Retain, payload), stallAfter); err != nil {
			p.noteErr(p.e.levelFor(p.id), fmt.Sprintf("publisher %s seq %d: %v", p.id, seq, err))
		} else {
			p.recordAck(seq, p.e.rec.Since())
		}
		c.Disconnect(disconnectQuiet)
	}
}

// limiter paces publishes by schedule (the n-th message at start + n/rate), so
// the average rate is exact and there is no busy loop. One limiter serves one
// publisher, or all publishers of a group with rate_scope global.
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newLimiter(rate float64) *limiter {
	if rate <= 0 {
		return nil
	}
	return &limiter{interval: time.Duration(float64(time.Second) / rate)}
}

// wait blocks until the next slot; false if stop closed first.
func (l *limiter) wait(stop <-chan struct{}) bool {
	if l == nil {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.IsZero() || now.Sub(l.next) > time.Second {
		l.next = now // first call, or fell far behind: do not burst to catch up
	}
	slot := l.next
	l.next = l.next.Add(l.interval)
	l.mu.Unlock()
	d := time.Until(slot)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// subscriber consumes messages at its pace and records recv events.
type subscriber struct {
	e      *engine
	id     string
	cfg    scenarios.Subscriber
	set    *connSettings // its group's connection settings
	client mqtt.Client
	// connLim is its group's connect rate (connect_rate), nil for none.
	connLim *limiter

	queue chan queued // ack mode: received, not yet consumed
	// conn counts connections: messages received on an earlier connection of a
	// persistent session are not acknowledged on the new one (the broker resends them).
	conn         atomic.Int64
	expectedDown atomic.Bool // a disconnect action is in effect
	connected    atomic.Bool
	subscribed   chan error

	unique   atomic.Int64 // distinct messages consumed
	drained  atomic.Int64 // distinct messages consumed during the drain phase
	lastRecv atomic.Int64 // t_ns of the last consumption
	foreign  atomic.Int64
	seenMu   sync.Mutex
	seen     map[string]*SeqSet // publisher id -> seqs consumed (a bit each: exactly-once accounting)
	// noSendT counts this run's deliveries whose recv event carries no PubT
	// (older than their publisher's ring): noteUnknownSendTimes reports them.
	noSendT     atomic.Int64
	subscribeMu sync.Mutex
	firstConn   bool
	v5          *sub5    // MQTT 5 subscribers on paho.golang (sub5.go), else nil
	lean        *leanSub // client: lean (leansub.go), else nil
}

type queued struct {
	m    mqtt.Message
	conn int64
}

func (s *subscriber) handler(_ mqtt.Client, m mqtt.Message) {
	if s.cfg.PaceMode == "block" {
		s.consume(m)
		s.e.pause(s.cfg.Pace.D())
		return
	}
	select {
	case s.queue <- queued{m, s.conn.Load()}:
	case <-s.e.stop:
	}
}

// consumeLoop releases acknowledgements one per Pace (ack mode): the broker
// sees a healthy connection that takes a message per Pace.
func (s *subscriber) consumeLoop() {
	var next time.Time
	for {
		var q queued
		select {
		case q = <-s.queue:
		case <-s.e.stop:
			return
		}
		if !s.cfg.Clean() && q.conn != s.conn.Load() {
			continue
		}
		if d := time.Until(next); d > 0 && !s.e.draining() {
			s.e.pause(d)
		}
		if !s.cfg.Clean() && q.conn != s.conn.Load() {
			continue
		}
		s.consume(q.m)
		q.m.Ack()
		next = time.Now().Add(s.cfg.Pace.D())
	}
}

// consume records one consumption: the recv event and the unique count the
// drain phase waits on.
func (s *subscriber) consume(m mqtt.Message) {
	t := s.e.rec.Since()
	pub, seq, sendT, ok := parsePayload(m.Payload())
	if !ok {
		if s.foreign.Add(1) == 1 {
			s.e.note(LevelInfo, fmt.Sprintf("subscriber %s got a message mqbench did not send on %s", s.id, m.Topic()))
		}
		return
	}
	if pub == "" {
		pub = s.e.defaultPub
	}
	var pubT int64
	p := s.e.pubs[pub]
	if p != nil {
		pubT = p.deliveredSendTime(seq, sendT, t)
	}
	s.e.emit(Event{T: t, Type: EvRecv, Client: s.id, Pub: pub, Seq: seq, QoS: m.Qos(), Dup: m.Duplicate(), Size: len(m.Payload()), PubT: pubT})
	s.lastRecv.Store(t)
	s.e.delivered.Add(1)
	if p == nil || seq < 1 || seq > int64(p.cfg.Messages) {
		return
	}
	if pubT == 0 && p.sends.sent(seq) {
		s.noSendT.Add(1)
	}
	s.seenMu.Lock()
	seen := s.seen[pub]
	if seen == nil {
		seen = &SeqSet{}
		s.seen[pub] = seen
	}
	first := !seen.Add(seq)
	s.seenMu.Unlock()
	if first {
		s.unique.Add(1)
		if s.e.draining() {
			s.drained.Add(1)
		}
	}
}

func (s *subscriber) connect() error {
	if s.useLean() {
		return s.connectLean()
	}
	if s.v5 != nil {
		return s.connectV5()
	}
	s.subscribeMu.Lock()
	if s.client == nil {
		opts := s.e.clientOptions(s.id, s.cfg.Clean(), s.set, true).
			SetProtocolVersion(pahoVersion(s.cfg.Protocol)).
			SetAutoAckDisabled(s.cfg.PaceMode != "block").
			SetDefaultPublishHandler(s.handler).
			SetConnectionLostHandler(func(_ mqtt.Client, err error) {
				s.conn.Add(1)
				s.connected.Store(false)
				s.e.connLost("subscriber", s.id, err, s.expectedDown.Load())
			}).
			SetOnConnectHandler(func(c mqtt.Client) {
				s.connected.Store(true)
				s.subscribeMu.Lock()
				first := s.firstConn
				s.firstConn = false
				s.subscribeMu.Unlock()
				if !first {
					s.e.note(LevelInfo, fmt.Sprintf("subscriber %s reconnected", s.id))
				}
				err := s.e.waitToken(c.Subscribe(s.cfg.Filter, s.cfg.QoS, s.handler), connectTimeout)
				if err != nil {
					s.e.note(s.e.levelFor(s.id), fmt.Sprintf("subscriber %s subscribing to %s: %v", s.id, s.cfg.Filter, err))
				}
				select {
				case s.subscribed <- err:
				default:
				}
			})
		s.client = mqtt.NewClient(opts)
		s.firstConn = true
	}
	s.subscribeMu.Unlock()
	// Drop a stale subscribe result from an earlier connection.
	select {
	case <-s.subscribed:
	default:
	}
	if err := s.e.waitToken(s.client.Connect(), connectTimeout); err != nil {
		return fmt.Errorf("connecting subscriber %s: %w", s.id, err)
	}
	t := time.NewTimer(connectTimeout)
	defer t.Stop()
	select {
	case err := <-s.subscribed:
		if err != nil {
			return fmt.Errorf("subscriber %s subscribing to %s: %w", s.id, s.cfg.Filter, err)
		}
	case <-t.C:
		return fmt.Errorf("subscriber %s: no SUBACK within %s", s.id, connectTimeout)
	case <-s.e.stop:
		return fmt.Errorf("run stopped")
	}
	return nil
}

// disconnect is the disconnect action: a clean DISCONNECT, expected by the run.
func (s *subscriber) disconnect() {
	s.expectedDown.Store(true)
	s.conn.Add(1)
	s.connected.Store(false)
	if s.v5 != nil {
		s.closeV5()
	}
	if s.lean != nil {
		s.lean.closeLean()
	}
	if s.client != nil {
		s.client.Disconnect(disconnectQuiet)
	}
}

// reconnect is the reconnect action: the persistent session picks up where it was.
func (s *subscriber) reconnect() error {
	err := s.connect()
	if err == nil {
		s.expectedDown.Store(false)
	}
	return err
}
