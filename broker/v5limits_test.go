package broker_test

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	p5 "github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/broker/conf"
)

// expectClosed5 asserts the broker closes the connection, optionally after
// a DISCONNECT with reason want (0 = nothing may arrive before the close).
func (c *v5Client) expectClosed5(want byte) {
	c.t.Helper()
	p, err := c.readErr(5 * time.Second)
	if err == nil {
		d, ok := p.Content.(*p5.Disconnect)
		if want == 0 || !ok || d.ReasonCode != want {
			c.t.Fatalf("got %v, want the connection closed (DISCONNECT %#x)", p, want)
		}
		p, err = c.readErr(5 * time.Second)
		if err == nil {
			c.t.Fatalf("got %v after DISCONNECT, want the connection closed", p)
		}
	} else if want != 0 {
		c.t.Fatalf("connection ended (%v) without DISCONNECT %#x", err, want)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection still open after 5 s")
	}
}

// TestMaxPacketSize: max_packet_size is announced in an MQTT 5 CONNACK and
// refuses a packet whose first byte and body exceed it (packet__read leaves
// the remaining length's own bytes out): an MQTT 5 client hears DISCONNECT
// 0x95, a 3.1.1 client is just closed, and an oversize CONNECT is closed
// before the protocol is known, so without a word.
func TestMaxPacketSize(t *testing.T) {
	const limit = 40
	// A v5 QoS 1 PUBLISH to "t": remaining length 2+1+2+1 (no properties) +
	// payload, so 33 bytes of payload is exactly at the limit.
	const v5Fit = limit - 1 - 6
	// A 3.1.1 QoS 1 PUBLISH to "t" has no property length byte.
	const v3Fit = limit - 1 - 5
	lines := []string{"max_packet_size 40"}
	bothBrokers(t, lines, func(c *conf.Config) { c.MaxPacketSize = limit }, func(t *testing.T, addr string) {
		t.Run("v5", func(t *testing.T) {
			c, ack := connected5(t, addr, "mps5", true, nil)
			if mp := ack.Properties.MaximumPacketSize; mp == nil || *mp != limit {
				t.Fatalf("CONNACK Maximum Packet Size %v, want %d", mp, limit)
			}
			c.send(publish5("t", 1, 1, make([]byte, v5Fit), nil))
			if a, ok := c.read().Content.(*p5.Puback); !ok || a.PacketID != 1 {
				t.Fatalf("got %v, want PUBACK 1 for a packet at the limit", a)
			}
			c.send(publish5("t", 1, 2, make([]byte, v5Fit+1), nil))
			c.expectClosed5(0x95)
		})
		t.Run("v3", func(t *testing.T) {
			c := connected(t, addr, "mps3", true)
			c.send(publishPacket("t", 1, 1, make([]byte, v3Fit), false))
			if a, ok := c.read().(*packets.PubackPacket); !ok || a.MessageID != 1 {
				t.Fatalf("got %v, want PUBACK 1 for a packet at the limit", a)
			}
			c.send(publishPacket("t", 1, 2, make([]byte, v3Fit+1), false))
			if p, err := c.readErr(5 * time.Second); err == nil {
				t.Fatalf("got %v, want the connection closed", p)
			}
		})
		t.Run("connect", func(t *testing.T) {
			c := dial5(t, addr)
			c.send(connect5("a-client-id-long-enough-to-exceed-forty-bytes", true, nil))
			c.expectClosed5(0)
		})
	})
}

// expectAck5 reads the next packet: a PUBACK or PUBREC for mid with reason.
func (c *v5Client) expectAck5(kind byte, mid uint16, reason byte) {
	c.t.Helper()
	p := c.read()
	var gotMid uint16
	var gotReason byte
	switch a := p.Content.(type) {
	case *p5.Puback:
		if kind != p5.PUBACK {
			break
		}
		gotMid, gotReason = a.PacketID, a.ReasonCode
	case *p5.Pubrec:
		if kind != p5.PUBREC {
			break
		}
		gotMid, gotReason = a.PacketID, a.ReasonCode
	case *p5.Pubcomp:
		if kind != p5.PUBCOMP {
			break
		}
		gotMid, gotReason = a.PacketID, a.ReasonCode
	}
	if gotMid != mid || gotReason != reason {
		c.t.Fatalf("got %v, want %s %d reason %#x", p, p5.NewControlPacket(kind), mid, reason)
	}
}

func pubrel5(mid uint16) *p5.ControlPacket {
	cp := p5.NewControlPacket(p5.PUBREL)
	cp.Content.(*p5.Pubrel).PacketID = mid
	return cp
}

// TestReceiveMaximum: the broker's Receive Maximum (max_inflight_messages)
// is a quota of incoming QoS 2 messages waiting for PUBREL. Over it a QoS
// 1/2 PUBLISH is answered 0x97 (quota exceeded) and dropped, and that answer
// gives a quota back, so the next one gets in; a PUBCOMP gives one back.
// A 3.1.1 client gets plain acknowledgements, its refused message dropped.
func TestReceiveMaximum(t *testing.T) {
	lines := []string{"max_inflight_messages 2"}
	bothBrokers(t, lines, func(c *conf.Config) { c.MaxInflightMessages = 2 }, func(t *testing.T, addr string) {
		sub := connected(t, addr, "rm-sub", true)
		sub.subscribe(1, "rm/#", 0)
		t.Run("v5", func(t *testing.T) {
			c, ack := connected5(t, addr, "rm", true, nil)
			if rm := ack.Properties.ReceiveMaximum; rm == nil || *rm != 2 {
				t.Fatalf("CONNACK Receive Maximum %v, want 2", rm)
			}
			want := []byte{0, 0, 0x97, 0}
			for i, reason := range want {
				mid := uint16(i + 1)
				c.send(publish5("rm/5", 2, mid, []byte{byte('0' + mid)}, nil))
				c.expectAck5(p5.PUBREC, mid, reason)
			}
			c.send(publish5("rm/5", 1, 5, []byte("5"), nil))
			c.expectAck5(p5.PUBACK, 5, 0x97)
			c.send(pubrel5(1))
			c.expectAck5(p5.PUBCOMP, 1, 0)
			c.send(publish5("rm/5", 1, 6, []byte("6"), nil))
			c.expectAck5(p5.PUBACK, 6, 0)
			for _, mid := range []uint16{2, 3, 4} {
				c.send(pubrel5(mid))
				c.expectAck5(p5.PUBCOMP, mid, 0)
			}
			if got, _ := sub.expectPublishes(4); strings.Join(got, "") != "1624" {
				t.Fatalf("subscriber got %q, want messages 1, 6, 2 and 4", got)
			}
		})
		t.Run("v3", func(t *testing.T) {
			c := connected(t, addr, "rm3", true)
			for mid := uint16(1); mid <= 3; mid++ {
				c.send(publishPacket("rm/3", 2, mid, []byte{byte('0' + mid)}, false))
				if r, ok := c.read().(*packets.PubrecPacket); !ok || r.MessageID != mid {
					t.Fatalf("got %v, want PUBREC %d", r, mid)
				}
			}
			for mid := uint16(1); mid <= 3; mid++ {
				rel := packets.NewControlPacket(packets.Pubrel).(*packets.PubrelPacket)
				rel.MessageID = mid
				c.send(rel)
				if r, ok := c.read().(*packets.PubcompPacket); !ok || r.MessageID != mid {
					t.Fatalf("got %v, want PUBCOMP %d", r, mid)
				}
			}
			if got, _ := sub.expectPublishes(2); strings.Join(got, "") != "12" {
				t.Fatalf("subscriber got %q, want messages 1 and 2 (3 over the quota)", got)
			}
			sub.expectQuiet(300 * time.Millisecond)
		})
	})
}

// TestIncomingInflightBytes: with max_inflight_bytes the QoS 2 payload
// waiting for PUBREL is limited too: once it reaches the limit a QoS 1/2
// PUBLISH is answered 0x97, whatever the quota; a PUBREL makes room.
func TestIncomingInflightBytes(t *testing.T) {
	for _, max := range []int{2, 0} {
		lines := []string{"max_inflight_messages " + strconv.Itoa(max), "max_inflight_bytes 100"}
		apply := func(c *conf.Config) { c.MaxInflightMessages, c.MaxInflightBytes = max, 100 }
		t.Run("max_inflight_messages "+strconv.Itoa(max), func(t *testing.T) {
			bothBrokers(t, lines, apply, func(t *testing.T, addr string) {
				c, _ := connected5(t, addr, "ib", true, nil)
				body := make([]byte, 60)
				for i, reason := range []byte{0, 0, 0x97, 0x97} { // 0, 60, 120, 120 bytes held
					c.send(publish5("ib", 2, uint16(i+1), body, nil))
					c.expectAck5(p5.PUBREC, uint16(i+1), reason)
				}
				c.send(publish5("ib", 1, 5, body, nil))
				c.expectAck5(p5.PUBACK, 5, 0x97)
				c.send(pubrel5(1))
				c.expectAck5(p5.PUBCOMP, 1, 0)
				c.send(publish5("ib", 2, 6, body, nil)) // 60 held
				c.expectAck5(p5.PUBREC, 6, 0)
				c.send(publish5("ib", 2, 7, body, nil)) // 120 held
				c.expectAck5(p5.PUBREC, 7, 0x97)
			})
		})
	}
}
