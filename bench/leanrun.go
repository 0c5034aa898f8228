package bench

import (
	"fmt"
	"time"
)

// connectLean opens the publisher's lean connection; events go to the engine
// exactly as the paho path records them.
func (p *publisher) connectLean() error {
	e := p.e
	c, err := dialLean(leanOptions{
		Addr: e.addrFor(p.id), Local: e.localAddr(p.id), ClientID: p.id, Clean: p.cfg.Clean(),
		TLS: p.set.tls, Username: p.set.username, Password: p.set.password, HasPassword: p.set.hasPass,
		Will: p.set.will, KeepAlive: p.set.keepAlive,
		QoS: p.cfg.QoS, Topic: p.cfg.Topic, Retain: p.cfg.Retain, Window: p.cfg.Inflight,
		Stop:    e.stop,
		Since:   e.rec.Since,
		OnAck:   p.recordAck,
		OnStall: p.noteStall,
		OnLost: func(err error) bool {
			if e.stopping.Load() {
				return false
			}
			e.connLost("publisher", p.id, err, false)
			if e.downFor(p.id) {
				return true // a scheduled stop/kill: come back with the broker, as paho does
			}
			e.note(LevelWarn, fmt.Sprintf("publisher %s stopped: connection closed by the broker with %d publishes unacknowledged (no reconnect outside a scheduled stop/kill)",
				p.id, p.sent.Load()-p.acked.Load()))
			return false
		},
		OnReconnect: func() { e.note(LevelInfo, fmt.Sprintf("publisher %s reconnected", p.id)) },
		Note:        e.note,
		Protocol:    byte(p.cfg.Protocol),
		V5:          p.leanV5(),
	})
	if err != nil {
		return fmt.Errorf("connecting publisher %s: %w", p.id, err)
	}
	p.lean = c
	return nil
}

// leanV5 is the publisher's MQTT 5 mode with its reason codes recorded, nil
// for a 3.1/3.1.1 publisher.
func (p *publisher) leanV5() *leanV5 {
	if !p.cfg.V5() {
		return nil
	}
	v := newLeanV5(p.cfg)
	v.OnAck = p.recordAckReason
	v.OnReason = func(t int64, reason, client string) {
		p.e.emit(Event{T: t, Type: EvReason, Client: client, Reason: reason})
	}
	v.OnRefused = func(seq, t int64, reason string) {
		p.e.emit(Event{T: t, Type: EvReason, Client: p.id, Seq: seq, QoS: p.cfg.QoS, Reason: reason})
		pkt, code, _ := ParseReason(reason)
		p.noteErr(LevelInfo, fmt.Sprintf("publisher %s seq %d refused by the broker: %s (%s)", p.id, seq, reason, ReasonName(pkt, code)))
	}
	return v
}

// runLean is run() for the lean publisher: the same pacing, window and events
// as the paho path, then the connection stays up (as paho's does) until the run ends.
func (p *publisher) runLean(runStart time.Time) {
	c := p.lean
	defer c.close()
	defer p.finished.Store(true)
	if !p.e.sleepUntil(runStart.Add(p.cfg.StartAt.D())) {
		return
	}
	for seq := int64(1); seq <= int64(p.cfg.Messages); seq++ {
		if p.e.publishingOver() || !p.lim.wait(p.e.stopPublish) {
			break
		}
		if !c.acquire(p.e.stopPublish) {
			break
		}
		payload, t, err := p.nextPayload(seq)
		if err != nil {
			c.release()
			p.e.note(LevelWarn, fmt.Sprintf("publisher %s: %v", p.id, err))
			break
		}
		p.recordPub(seq, t, len(payload))
		if !c.publish(seq, payload) {
			p.noteErr(p.e.levelFor(p.id), fmt.Sprintf("publisher %s seq %d: not connected", p.id, seq))
		}
		if p.lim != nil {
			c.flush() // paced: the next message is not coming soon
		}
	}
	c.waitIdle(p.e.stop)
	p.finished.Store(true)
	select {
	case <-p.e.stop:
	case <-c.down:
	}
}
