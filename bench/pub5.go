package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	packets5 "github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// The MQTT 5 paho publisher (client: paho, protocol: 5) is paho.golang's
// paho client, the library an application would use, for comparison with
// the lean publisher. paho.golang blocks each publish until its
// acknowledgement, so the window is Inflight publishes in flight at once,
// each waiting in its own goroutine. A publish whose connection is lost (a
// scheduled stop/kill) is sent again on the next one (publishPaho5), as
// paho.mqtt.golang resumes unacknowledged publishes for 3.1.1.
// paho.golang reports a QoS 2 publish's PUBCOMP code only, so a PUBREC 0x10
// is counted as "pubcomp 0x00" here (the lean publisher keeps it).

// pahoPacketTimeout bounds paho.golang's wait for one acknowledgement. The
// run's own stall detection and stop are the real bounds; a broker holding
// a backlog may take far longer than paho.golang's default 10 s.
const pahoPacketTimeout = time.Hour

// pub5 is a v5 paho publisher's connection state.
type pub5 struct {
	mu     sync.Mutex
	cli    *paho.Client
	gaveUp bool // lost outside a scheduled stop/kill: no reconnect will come
}

// current is the connected client, nil while disconnected.
func (s *pub5) current() *paho.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cli
}

// connectPaho5 connects the v5 paho publisher and records its CONNACK code.
func (p *publisher) connectPaho5() error {
	e := p.e
	if p.p5 == nil {
		p.p5 = &pub5{}
	}
	tr, err := e.transportFor(p.id)
	if err != nil {
		return fmt.Errorf("connecting publisher %s: %w", p.id, err)
	}
	nc, err := tr.open(p.set.tls, connectTimeout)
	if err != nil {
		return fmt.Errorf("connecting publisher %s: dialing %s: %w", p.id, tr.hostport, err)
	}
	var cli *paho.Client
	var once sync.Once
	lost := func(err error) { once.Do(func() { go p.lostPaho5(cli, err) }) }
	cli = paho.NewClient(paho.ClientConfig{
		ClientID: p.id, Conn: packets5.NewThreadSafeConn(nc), PacketTimeout: pahoPacketTimeout,
		OnServerDisconnect: func(d *paho.Disconnect) {
			e.emit(Event{T: e.rec.Since(), Type: EvReason, Client: p.id, Reason: ReasonLabel(rcDisconnect, d.ReasonCode)})
			lost(fmt.Errorf("broker sent DISCONNECT 0x%02X (%s)", d.ReasonCode, ReasonName(rcDisconnect, d.ReasonCode)))
		},
		OnClientError: func(err error) { lost(err) },
	})
	cp := &paho.Connect{ClientID: p.id, CleanStart: p.cfg.Clean(), KeepAlive: uint16(keepAlive / time.Second), Properties: &paho.ConnectProperties{}}
	if p.set.keepAlive > 0 {
		cp.KeepAlive = uint16(p.set.keepAlive / time.Second)
	}
	if !p.cfg.Clean() {
		never := ^uint32(0) // a persistent session, as 3.1.1's
		cp.Properties.SessionExpiryInterval = &never
	}
	p.set.applyV5(cp)
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	ca, err := cli.Connect(ctx, cp)
	if ca != nil {
		e.emit(Event{T: e.rec.Since(), Type: EvReason, Client: p.id, Reason: ReasonLabel(rcConnack, ca.ReasonCode)})
	}
	if err != nil {
		nc.Close()
		return fmt.Errorf("connecting publisher %s: %w", p.id, refusedV5(ca, err))
	}
	p.p5.mu.Lock()
	p.p5.cli = cli
	p.p5.mu.Unlock()
	return nil
}

// lostPaho5 handles a lost connection: during a scheduled stop/kill it
// reconnects every v5Reconnect until the broker is back or the run ends (as
// paho.mqtt.golang's auto-reconnect); otherwise the publisher stops.
func (p *publisher) lostPaho5(cli *paho.Client, err error) {
	e := p.e
	p.p5.mu.Lock()
	if p.p5.cli != cli {
		p.p5.mu.Unlock()
		return
	}
	p.p5.cli = nil
	p.p5.mu.Unlock()
	if e.stopping.Load() {
		return
	}
	e.connLost("publisher", p.id, err, false)
	if !e.downFor(p.id) {
		e.note(LevelWarn, fmt.Sprintf("publisher %s stopped: connection closed by the broker (no reconnect outside a scheduled stop/kill)", p.id))
		p.p5.giveUp()
		return
	}
	for e.sleepUntil(time.Now().Add(v5Reconnect)) && !e.stopped() {
		if p.connectPaho5() == nil {
			e.note(LevelInfo, fmt.Sprintf("publisher %s reconnected", p.id))
			return
		}
	}
	p.p5.giveUp()
}

func (s *pub5) giveUp() {
	s.mu.Lock()
	s.gaveUp = true
	s.mu.Unlock()
}

// runPaho5 is run() for the v5 paho publisher.
func (p *publisher) runPaho5() {
	e := p.e
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	props := &paho.PublishProperties{ContentType: p.cfg.ContentType, ResponseTopic: p.cfg.ResponseTopic}
	if s := p.cfg.MessageExpirySeconds(); s > 0 {
		props.MessageExpiry = &s
	}
	keys := make([]string, 0, len(p.cfg.UserProperties))
	for k := range p.cfg.UserProperties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		props.User.Add(k, p.cfg.UserProperties[k])
	}
	sem := make(chan struct{}, p.cfg.Inflight)
	wctx, wcancel := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); p.watchStall(wctx) }()
	defer func() { wcancel(); <-watched }() // after wg.Wait below: deferred calls run last first
	var wg sync.WaitGroup
	defer wg.Wait()
	for seq := int64(1); seq <= int64(p.cfg.Messages); seq++ {
		if e.publishingOver() || !p.lim.wait(e.stopPublish) {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-e.stopPublish:
			return
		}
		payload, t, err := p.nextPayload(seq)
		if err != nil {
			e.note(LevelWarn, fmt.Sprintf("publisher %s: %v", p.id, err))
			return
		}
		p.recordPub(seq, t, len(payload))
		wg.Add(1)
		go func(seq int64, payload []byte) {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := p.publishPaho5(ctx, &paho.Publish{QoS: p.cfg.QoS, Topic: p.cfg.Topic, Retain: p.cfg.Retain, Payload: payload, Properties: props})
			t := e.rec.Since()
			switch {
			case resp != nil && resp.ReasonCode >= 0x80:
				label := ReasonLabel(ackKindName(qosAck(p.cfg.QoS, resp)), resp.ReasonCode)
				e.emit(Event{T: t, Type: EvReason, Client: p.id, Seq: seq, QoS: p.cfg.QoS, Reason: label})
				p.noteErr(LevelInfo, fmt.Sprintf("publisher %s seq %d refused by the broker: %s", p.id, seq, label))
			case err != nil:
				p.noteErr(e.pubErrLevel(p.id, p.sendTime(seq)), fmt.Sprintf("publisher %s seq %d: %v", p.id, seq, err))
			case p.cfg.QoS == 0:
				p.recordAck(seq, t)
			default:
				p.recordAckReason(seq, t, ReasonLabel(ackKindName(qosAck(p.cfg.QoS, resp)), resp.ReasonCode))
			}
		}(seq, payload)
	}
}

// publishPaho5 publishes one message and waits for its acknowledgement. A
// publish the broker did not answer (its connection failed: a scheduled
// stop/kill) waits for the next connection and is published again, at
// least once, as paho.mqtt.golang resumes unacknowledged publishes for
// 3.1.1; it gives up when the run ends or the publisher stopped for good.
func (p *publisher) publishPaho5(ctx context.Context, pb *paho.Publish) (*paho.PublishResponse, error) {
	for {
		cli := p.p5.waitConnected(ctx, p.e)
		if cli == nil {
			return nil, errors.New("not connected")
		}
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-cli.Done():
				cancel()
			case <-cctx.Done():
			}
		}()
		resp, err := cli.PublishWithOptions(cctx, pb, paho.PublishOptions{})
		cancel()
		// No answer from the broker and the run goes on: the connection
		// failed under it (paho.golang may say so before its Done closes,
		// "no connection available"), so the next one gets it. Bad
		// arguments would fail again and are returned.
		if err == nil || resp != nil || ctx.Err() != nil || errors.Is(err, paho.ErrInvalidArguments) {
			return resp, err
		}
		// The dead client may not be cleared yet (lostPaho5): no busy loop.
		if !p.e.sleepUntil(time.Now().Add(20 * time.Millisecond)) {
			return nil, errors.New("run stopped")
		}
	}
}

// waitConnected returns the connected client, waiting while a reconnect may
// still come (the broker is down on purpose); nil when none will.
func (s *pub5) waitConnected(ctx context.Context, e *engine) *paho.Client {
	for {
		if cli := s.current(); cli != nil {
			return cli
		}
		s.mu.Lock()
		over := s.gaveUp
		s.mu.Unlock()
		if over || ctx.Err() != nil || !e.sleepUntil(time.Now().Add(20*time.Millisecond)) {
			return nil
		}
	}
}

// watchStall notes when acknowledgements stop for stallAfter while some are
// due, and when they resume, as the other publishers do (paho.golang blocks
// each publish, so nothing else would tell).
func (p *publisher) watchStall(ctx context.Context) {
	tk := time.NewTicker(leanTick)
	defer tk.Stop()
	last, since, stalled := p.acked.Load(), time.Now(), false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		a := p.acked.Load()
		switch {
		case a != last:
			last, since = a, time.Now()
			if stalled {
				stalled = false
				p.noteStall(false)
			}
		case p.sent.Load() <= a:
			since = time.Now() // nothing due
		case !stalled && time.Since(since) >= stallAfter:
			stalled = true
			p.noteStall(true)
		}
	}
}

// qosAck is the packet kind whose code paho.golang's response carries: the
// PUBACK for QoS 1; for QoS 2 the PUBCOMP, or the PUBREC when it refused.
func qosAck(qos byte, resp *paho.PublishResponse) byte {
	if qos == 1 {
		return packets.Puback
	}
	if resp.ReasonCode >= 0x80 {
		return packets.Pubrec
	}
	return packets.Pubcomp
}

// closePaho5 disconnects the v5 paho publisher at the end of the run.
func (p *publisher) closePaho5() {
	if p.p5 == nil {
		return
	}
	p.p5.mu.Lock()
	cli := p.p5.cli
	p.p5.cli = nil
	p.p5.mu.Unlock()
	disconnectV5(cli)
}

// disconnectV5 sends DISCONNECT and waits, briefly, for paho.golang to shut
// the connection, the same for the v5 publisher and subscriber; nil is fine.
func disconnectV5(cli *paho.Client) {
	if cli == nil {
		return
	}
	_ = cli.Disconnect(&paho.Disconnect{})
	t := time.NewTimer(disconnectQuiet * time.Millisecond)
	defer t.Stop()
	select {
	case <-cli.Done():
	case <-t.C:
	}
}

// applyV5 puts the credentials and will of a connection's settings into a
// paho.golang CONNECT, the same for the v5 publisher and subscriber.
func (cs *connSettings) applyV5(cp *paho.Connect) {
	if cs.username != "" {
		cp.UsernameFlag, cp.Username = true, cs.username
	}
	if cs.hasPass {
		cp.PasswordFlag, cp.Password = true, []byte(cs.password)
	}
	if w := cs.will; w != nil {
		cp.WillMessage = &paho.WillMessage{Topic: w.Topic, Payload: []byte(w.Payload), QoS: w.QoS, Retain: w.Retain}
		cp.WillProperties = &paho.WillProperties{}
	}
}
