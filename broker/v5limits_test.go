package broker_test

import (
	"errors"
	"net"
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
