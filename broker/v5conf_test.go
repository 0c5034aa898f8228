package broker_test

import (
	"strings"
	"testing"
	"time"

	p5 "github.com/eclipse/paho.golang/packets"

	"github.com/mqbench/mqbench/broker/conf"
)

// Configuration keys MQTT 5 brings to the fore, against both brokers:
// maximum_qos, retain_available, max_keepalive and max_topic_alias.

func TestV5ConfigLimits(t *testing.T) {
	lines := []string{"max_qos 1", "max_topic_alias 2", "retain_available false", "max_keepalive 30"}
	apply := func(c *conf.Config) {
		c.Listeners[0].MaxQoS, c.Listeners[0].MaxTopicAlias = 1, 2
		c.RetainUnavailable, c.MaxKeepalive = true, 30
	}
	bothBrokers(t, lines, apply, func(t *testing.T, addr string) {
		t.Run("connack", func(t *testing.T) {
			_, ack := connected5(t, addr, "c", true, nil)
			pr := ack.Properties
			if pr.MaximumQOS == nil || *pr.MaximumQOS != 1 || pr.RetainAvailable == nil || *pr.RetainAvailable != 0 ||
				pr.ServerKeepAlive == nil || *pr.ServerKeepAlive != 30 || pr.TopicAliasMaximum == nil || *pr.TopicAliasMaximum != 2 {
				t.Fatalf("CONNACK %v", ack)
			}
		})
		t.Run("subscribe capped", func(t *testing.T) {
			c, _ := connected5(t, addr, "s", true, nil)
			if r := c.subscribe(1, p5.SubOptions{Topic: "x", QoS: 2}); len(r) != 1 || r[0] != 1 {
				t.Fatalf("SUBACK %v, want QoS 1 granted", r)
			}
		})
		t.Run("publish QoS 2", func(t *testing.T) {
			c, _ := connected5(t, addr, "p2", true, nil)
			c.send(publish5("x", 2, 1, []byte("x"), nil))
			if d, ok := c.read().Content.(*p5.Disconnect); !ok || d.ReasonCode != 0x9B {
				t.Fatalf("got %v, want DISCONNECT 0x9B", d)
			}
		})
		t.Run("publish retained", func(t *testing.T) {
			c, _ := connected5(t, addr, "pr", true, nil)
			p := publish5("x", 0, 0, []byte("x"), nil)
			p.Content.(*p5.Publish).Retain = true
			p.FixedHeader.Flags |= 1
			c.send(p)
			if d, ok := c.read().Content.(*p5.Disconnect); !ok || d.ReasonCode != 0x9A {
				t.Fatalf("got %v, want DISCONNECT 0x9A", d)
			}
		})
		t.Run("will retained", func(t *testing.T) {
			c := dial5(t, addr)
			ack := c.connack(connect5("w", true, func(c *p5.Connect) { c.WillFlag, c.WillTopic, c.WillRetain = true, "w", true }))
			if ack.ReasonCode != 0x9A {
				t.Fatalf("reason %#x, want 0x9A", ack.ReasonCode)
			}
		})
		t.Run("alias above maximum", func(t *testing.T) {
			c, _ := connected5(t, addr, "a", true, nil)
			c.send(publish5("x", 0, 0, []byte("x"), &p5.Properties{TopicAlias: u16(3)}))
			if d, ok := c.read().Content.(*p5.Disconnect); !ok || d.ReasonCode != 0x94 {
				t.Fatalf("got %v, want DISCONNECT 0x94", d)
			}
		})
	})
}

// TestPersistentClientExpiration: a 3.1.1 persistent session offline longer
// than persistent_client_expiration is removed (session_expiry__add gives a
// never-expiring session the global limit). Mosquitto takes the limit in
// hours at least, so this runs on the bundled broker alone with one second.
func TestPersistentClientExpiration(t *testing.T) {
	cfg := quietConfig(t)
	cfg.PersistentClientExpiration = time.Second
	b := startBroker(t, cfg)
	offlineSubscriber(t, b.Addr(), "old", "x", 1)
	time.Sleep(2500 * time.Millisecond)
	c := dial(t, b.Addr())
	if ack := c.connect("old", false); ack.SessionPresent {
		t.Fatal("session present after persistent_client_expiration")
	}
}

// TestV5OversizePublish: over message_size_limit an MQTT 5 PUBLISH is acked
// 0x95 and dropped, the client kept; under it, delivered as usual.
func TestV5OversizePublish(t *testing.T) {
	lines := []string{"message_size_limit 100"}
	bothBrokers(t, lines, func(c *conf.Config) { c.MessageSizeLimit = 100 }, func(t *testing.T, addr string) {
		c, _ := connected5(t, addr, "big", true, nil)
		props := &p5.Properties{ContentType: strings.Repeat("a", 150)}
		c.send(publish5("big", 1, 1, make([]byte, 200), props))
		if a, ok := c.read().Content.(*p5.Puback); !ok || a.ReasonCode != 0x95 {
			t.Fatalf("got %v, want PUBACK 0x95", a)
		}
		c.send(publish5("big", 1, 2, make([]byte, 50), props)) // large properties, small payload
		if a, ok := c.read().Content.(*p5.Puback); !ok || a.ReasonCode != 0x10 {
			t.Fatalf("got %v, want PUBACK 0x10", a)
		}
	})
}

// TestV5ClientMaximumPacketSize: a delivery over the client's Maximum Packet
// Size is not sent (its packet id is spent, as in Mosquitto), and a CONNACK
// over it is not sent at all.
func TestV5ClientMaximumPacketSize(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		c, _ := connected5(t, addr, "small", true, func(c *p5.Connect) { c.Properties.MaximumPacketSize = u32(20) })
		c.subscribe(1, p5.SubOptions{Topic: "mps", QoS: 1})
		pub, _ := connected5(t, addr, "pub", true, nil)
		pub.send(publish5("mps", 1, 1, []byte("12345678901234567890"), nil))
		pub.read()
		pub.send(publish5("mps", 1, 2, []byte("7890"), nil))
		pub.read()
		if m := c.expectPublish(); string(m.Payload) != "7890" || m.PacketID != 2 {
			t.Fatalf("got %v, want only the small message, packet id 2", m)
		}
		tiny := dial5(t, addr)
		tiny.send(connect5("tiny", true, func(c *p5.Connect) { c.Properties.MaximumPacketSize = u32(2) }))
		if p, err := tiny.readErr(3 * time.Second); err == nil {
			t.Fatalf("got %v, want no CONNACK", p)
		}
	})
}
