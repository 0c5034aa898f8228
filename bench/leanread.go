package bench

import (
	"fmt"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// reader completes the acknowledgement flows; when the connection ends it
// decides, through OnLost, between reconnecting and giving up.
func (c *leanClient) reader(cn *leanConn) {
	unexpected := 0
	// What was read is handled as one batch: PUBRELs flushed and the window
	// reopened once the read buffer is empty, so the publisher wakes once per
	// batch of acks and fills every freed slot, instead of once per ack.
	rels, freed := false, false
	for {
		if cn.br.Buffered() == 0 {
			if rels {
				if c.wantFlush(cn, true) {
					cn.requestFlush()
				}
				rels = false
			}
			if freed {
				c.signal()
				freed = false
			}
		}
		in, err := c.readIn(cn.br)
		if err != nil {
			cn.fail(fmt.Errorf("reading from broker: %w", err))
			break
		}
		t := c.o.Since()
		var want byte
		id := in.id
		switch in.kind {
		case packets.Puback:
			want = 1
		case packets.Pubcomp:
			want = 2
		case packets.Pubrec:
			if in.rc >= 0x80 {
				want = 2 // refused: the flow ends here
				break
			}
			c.mu.Lock()
			if m := c.msgs[in.id]; m != nil {
				m.rec, m.recRC = true, in.rc
			}
			c.mu.Unlock()
			if cn.trySend(leanItem{kind: packets.Pubrel, id: in.id}) {
				cn.unflushed.Add(1)
			} else if c.overflow.Add(1) == 1 {
				c.note(LevelWarn, fmt.Sprintf("publisher %s: writer queue full, PUBREL %d not sent", c.o.ClientID, in.id))
			}
			rels = true
			continue
		case packets.Pingresp:
			cn.pingSent.Store(0)
			continue
		case packets.Disconnect:
			label := ReasonLabel(rcDisconnect, in.rc)
			if c.o.V5.OnReason != nil {
				c.o.V5.OnReason(t, label, c.o.ClientID)
			}
			cn.fail(fmt.Errorf("broker sent DISCONNECT 0x%02X (%s)", in.rc, ReasonName(rcDisconnect, in.rc)))
			continue
		default:
			if unexpected++; unexpected == 1 {
				c.note(LevelInfo, fmt.Sprintf("publisher %s ignored an unexpected %s from the broker", c.o.ClientID, in.name))
			}
			continue
		}
		c.mu.Lock()
		m := c.msgs[id]
		if m == nil || c.o.QoS != want {
			c.mu.Unlock()
			if unexpected++; unexpected == 1 {
				c.note(LevelInfo, fmt.Sprintf("publisher %s: acknowledgement for packet id %d that is not in flight", c.o.ClientID, id))
			}
			continue
		}
		c.msgs[id] = nil
		if in.rc >= 0x80 && c.o.V5 != nil && in.kind != packets.Pubcomp {
			// Refused: not acknowledged, and resending would be refused again.
			if c.o.V5.OnRefused != nil {
				c.o.V5.OnRefused(m.seq, t, ReasonLabel(ackKindName(in.kind), in.rc))
			}
		} else {
			c.ack(m.seq, t, c.ackReason(in, m)) // under mu: recorded before its slot can be reused
		}
		c.inflight--
		c.mu.Unlock()
		freed = true
	}
	c.lost(cn)
}

// ackKindName names an acknowledgement kind for reason labels.
func ackKindName(kind byte) string {
	switch kind {
	case packets.Puback:
		return rcPuback
	case packets.Pubrec:
		return rcPubrec
	}
	return rcPubcomp
}

// ackReason is the reason label an acknowledgement records: "" for 3.1.1;
// for QoS 2 the PUBREC's code when it says more than success (0x10: no
// matching subscribers), else the PUBCOMP's.
func (c *leanClient) ackReason(in leanIn, m *leanMsg) string {
	if c.o.V5 == nil {
		return ""
	}
	if in.kind == packets.Pubcomp && in.rc == 0 && m.recRC != 0 {
		return ReasonLabel(rcPubrec, m.recRC)
	}
	return ReasonLabel(ackKindName(in.kind), in.rc)
}
