package broker_test

import (
	"bytes"
	"testing"
	"time"

	p5 "github.com/eclipse/paho.golang/packets"

	"github.com/mqbench/mqbench/broker/conf"
)

// MQTT 5 (issue #8), each check run against the bundled broker and against
// Mosquitto 2.0.11 with bothBrokers, so the expectation is Mosquitto's.

func TestV5Connack(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		t.Run("properties", func(t *testing.T) {
			_, ack := connected5(t, addr, "c1", true, nil)
			pr := ack.Properties
			if ack.SessionPresent || pr == nil || pr.ReceiveMaximum == nil || *pr.ReceiveMaximum != 20 ||
				pr.TopicAliasMaximum == nil || *pr.TopicAliasMaximum != 10 || pr.AssignedClientID != "" || pr.ServerKeepAlive != nil {
				t.Fatalf("CONNACK %v", ack)
			}
		})
		t.Run("assigned id", func(t *testing.T) {
			_, ack := connected5(t, addr, "", false, nil)
			if ack.Properties.AssignedClientID == "" {
				t.Fatalf("CONNACK %v: no assigned client identifier", ack)
			}
		})
		t.Run("auth method", func(t *testing.T) {
			c := dial5(t, addr)
			ack := c.connack(connect5("c2", true, func(c *p5.Connect) { c.Properties.AuthMethod = "SCRAM-SHA-1" }))
			if ack.ReasonCode != 0x8C {
				t.Fatalf("reason %#x, want 0x8C bad authentication method", ack.ReasonCode)
			}
		})
	})
}

func TestV5NotAuthorised(t *testing.T) {
	no := false
	bothBrokers(t, []string{"allow_anonymous false"}, func(c *conf.Config) { c.Security.AllowAnonymous = &no }, func(t *testing.T, addr string) {
		c := dial5(t, addr)
		ack := c.connack(connect5("c1", true, func(c *p5.Connect) { c.UsernameFlag, c.Username = true, "u" }))
		if ack.ReasonCode != 0x87 {
			t.Fatalf("reason %#x, want 0x87 not authorized", ack.ReasonCode)
		}
	})
}

func TestV5PublishReasonsAndProperties(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		pub, _ := connected5(t, addr, "pub", true, nil)
		pub.send(publish5("nobody/here", 1, 1, []byte("x"), nil))
		if a, ok := pub.read().Content.(*p5.Puback); !ok || a.ReasonCode != 0x10 {
			t.Fatalf("got %v, want PUBACK 0x10 no matching subscribers", a)
		}
		sub, _ := connected5(t, addr, "sub", true, nil)
		if r := sub.subscribe(1, p5.SubOptions{Topic: "props/#", QoS: 2}); !bytes.Equal(r, []byte{2}) {
			t.Fatalf("SUBACK %v", r)
		}
		props := &p5.Properties{PayloadFormat: b8(1), MessageExpiry: u32(300), ContentType: "text/plain", ResponseTopic: "reply/here",
			CorrelationData: []byte{1, 2, 3}, User: []p5.User{{Key: "k1", Value: "v1"}, {Key: "k2", Value: "v2"}}}
		pub.send(publish5("props/a", 1, 2, []byte("hello"), props))
		if a, ok := pub.read().Content.(*p5.Puback); !ok || a.ReasonCode != 0 {
			t.Fatalf("got %v, want PUBACK 0", a)
		}
		m := sub.expectPublish()
		pr := m.Properties
		if string(m.Payload) != "hello" || pr.PayloadFormat == nil || *pr.PayloadFormat != 1 || pr.ContentType != "text/plain" ||
			pr.ResponseTopic != "reply/here" || !bytes.Equal(pr.CorrelationData, []byte{1, 2, 3}) || len(pr.User) != 2 ||
			pr.User[0] != (p5.User{Key: "k1", Value: "v1"}) || pr.MessageExpiry == nil || *pr.MessageExpiry > 300 || *pr.MessageExpiry < 298 {
			t.Fatalf("delivered %v", m)
		}
	})
}

func TestV5TopicAlias(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		sub, _ := connected5(t, addr, "sub", true, nil)
		sub.subscribe(1, p5.SubOptions{Topic: "alias/#", QoS: 0})
		pub, _ := connected5(t, addr, "pub", true, nil)
		pub.send(publish5("alias/one", 0, 0, []byte("1"), &p5.Properties{TopicAlias: u16(3)}))
		pub.send(publish5("", 0, 0, []byte("2"), &p5.Properties{TopicAlias: u16(3)}))
		for _, want := range []string{"1", "2"} {
			if m := sub.expectPublish(); m.Topic != "alias/one" || string(m.Payload) != want {
				t.Fatalf("delivered %v, want %s on alias/one", m, want)
			}
		}
		pub.send(publish5("alias/two", 0, 0, []byte("3"), &p5.Properties{TopicAlias: u16(11)}))
		p := pub.read()
		if d, ok := p.Content.(*p5.Disconnect); !ok || d.ReasonCode != 0x94 {
			t.Fatalf("got %v, want DISCONNECT 0x94 topic alias invalid", p)
		}
	})
}

func TestV5ProtocolErrorDisconnect(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		c, _ := connected5(t, addr, "c", true, nil)
		c.send(publish5("t", 1, 0, []byte("x"), nil)) // QoS 1 without packet id
		p := c.read()
		if d, ok := p.Content.(*p5.Disconnect); !ok || d.ReasonCode != 0x82 {
			t.Fatalf("got %v, want DISCONNECT 0x82 protocol error", p)
		}
	})
}

func TestV5Unsuback(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		c, _ := connected5(t, addr, "c", true, nil)
		c.subscribe(1, p5.SubOptions{Topic: "a", QoS: 1})
		cp := p5.NewControlPacket(p5.UNSUBSCRIBE)
		u := cp.Content.(*p5.Unsubscribe)
		u.PacketID, u.Topics, u.Properties = 2, []string{"a", "b"}, &p5.Properties{}
		c.send(cp)
		p := c.read()
		if a, ok := p.Content.(*p5.Unsuback); !ok || !bytes.Equal(a.Reasons, []byte{0, 0x11}) {
			t.Fatalf("got %v, want UNSUBACK [0 0x11]", p)
		}
	})
}

func TestV5SessionExpiry(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		t.Run("expiry 0 ends with the connection", func(t *testing.T) {
			c, _ := connected5(t, addr, "e0", false, nil)
			c.subscribe(1, p5.SubOptions{Topic: "x", QoS: 1})
			c.disconnect(0, nil)
			_, ack := connected5(t, addr, "e0", false, nil)
			if ack.SessionPresent {
				t.Fatal("session present after expiry 0")
			}
		})
		t.Run("kept within the interval", func(t *testing.T) {
			c, _ := connected5(t, addr, "e60", true, func(c *p5.Connect) { c.Properties.SessionExpiryInterval = u32(60) })
			c.subscribe(1, p5.SubOptions{Topic: "held", QoS: 1})
			c.disconnect(0, nil)
			pub, _ := connected5(t, addr, "p", true, nil)
			pub.send(publish5("held", 1, 1, []byte("queued"), nil))
			pub.read()
			c2, ack := connected5(t, addr, "e60", false, func(c *p5.Connect) { c.Properties.SessionExpiryInterval = u32(60) })
			if !ack.SessionPresent {
				t.Fatal("session not present")
			}
			if m := c2.expectPublish(); string(m.Payload) != "queued" {
				t.Fatalf("got %v", m)
			}
		})
		t.Run("removed after the interval", func(t *testing.T) {
			c, _ := connected5(t, addr, "e1", false, func(c *p5.Connect) { c.Properties.SessionExpiryInterval = u32(1) })
			c.subscribe(1, p5.SubOptions{Topic: "x", QoS: 1})
			c.disconnect(0, nil)
			time.Sleep(2500 * time.Millisecond)
			_, ack := connected5(t, addr, "e1", false, func(c *p5.Connect) { c.Properties.SessionExpiryInterval = u32(1) })
			if ack.SessionPresent {
				t.Fatal("session present after its expiry")
			}
		})
	})
}

func TestV5MessageExpiry(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		c, _ := connected5(t, addr, "off", true, func(c *p5.Connect) { c.Properties.SessionExpiryInterval = u32(60) })
		c.subscribe(1, p5.SubOptions{Topic: "exp", QoS: 1})
		c.disconnect(0, nil)
		pub, _ := connected5(t, addr, "p", true, nil)
		pub.send(publish5("exp", 1, 1, []byte("short"), &p5.Properties{MessageExpiry: u32(1)}))
		pub.read()
		pub.send(publish5("exp", 1, 2, []byte("long"), &p5.Properties{MessageExpiry: u32(100)}))
		pub.read()
		time.Sleep(2500 * time.Millisecond)
		c2, _ := connected5(t, addr, "off", false, func(c *p5.Connect) { c.Properties.SessionExpiryInterval = u32(60) })
		m := c2.expectPublish()
		if string(m.Payload) != "long" || m.Properties.MessageExpiry == nil || *m.Properties.MessageExpiry > 98 {
			t.Fatalf("got %v, want only the unexpired message with its expiry decremented", m)
		}
	})
}

func TestV5DisconnectWithWill(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		obs, _ := connected5(t, addr, "obs", true, nil)
		obs.subscribe(1, p5.SubOptions{Topic: "will/#", QoS: 0})
		willed := func(id string) func(*p5.Connect) {
			return func(c *p5.Connect) {
				c.WillFlag, c.WillTopic, c.WillMessage = true, "will/"+id, []byte("bye")
				c.WillProperties.ContentType = "text/plain"
			}
		}
		quiet, _ := connected5(t, addr, "quiet", true, willed("quiet"))
		quiet.disconnect(0, nil)
		obs.expectNothing(500 * time.Millisecond)
		loud, _ := connected5(t, addr, "loud", true, willed("loud"))
		loud.disconnect(0x04, nil)
		m := obs.expectPublish()
		if m.Topic != "will/loud" {
			t.Fatalf("got %v, want the will of loud", m)
		}
	})
}

// TestV5DisconnectReasonAlone: a DISCONNECT 0x04 without a property length
// (remaining length 1) still asks for the will.
func TestV5DisconnectReasonAlone(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		obs, _ := connected5(t, addr, "obs", true, nil)
		obs.subscribe(1, p5.SubOptions{Topic: "will/#", QoS: 0})
		c, _ := connected5(t, addr, "w", true, func(c *p5.Connect) { c.WillFlag, c.WillTopic, c.WillMessage = true, "will/w", []byte("x") })
		if _, err := c.nc.Write([]byte{0xE0, 0x01, 0x04}); err != nil {
			t.Fatal(err)
		}
		if m := obs.expectPublish(); m.Topic != "will/w" {
			t.Fatalf("got %v, want the will", m)
		}
	})
}
