package broker_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/broker/conf"
	"github.com/mqbench/mqbench/internal/testutil"
)

// MQTT 3.1.1 behaviours an independent conformance suite found the bundled
// broker getting wrong (issue #8, item 5). Each runs with raw packets against
// the bundled broker and against Mosquitto 2.0.11, so the expectation is
// Mosquitto's, not ours.

// bothBrokers starts the in-process bundled broker from cfg and a real
// Mosquitto with the same extra lines, and runs fn against each address.
func bothBrokers(t *testing.T, lines []string, apply func(*conf.Config), fn func(t *testing.T, addr string)) {
	t.Helper()
	cfg := quietConfig(t)
	if apply != nil {
		apply(cfg)
	}
	b := startBroker(t, cfg)
	t.Run("bundled", func(t *testing.T) { fn(t, b.Addr()) })
	t.Run("mosquitto", func(t *testing.T) {
		testutil.RequireMosquittoBroker(t)
		m := testutil.StartMosquitto(t, testutil.MosquittoOptions{Extra: lines})
		fn(t, m.Addr)
	})
}

// expectNoConnack asserts the connection closes without any CONNACK.
func expectNoConnack(t *testing.T, c *rawClient) {
	t.Helper()
	p, err := c.readErr(5 * time.Second)
	if err == nil {
		t.Fatalf("got %v, want the connection closed without CONNACK", p)
	}
}

func TestWillSentOnTakeover(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		obs := connected(t, addr, "observer", true)
		obs.subscribe(1, "will/#", 1)
		first := dial(t, addr)
		cp := connectPacket("twin", true)
		cp.WillFlag, cp.WillTopic, cp.WillMessage, cp.WillQos = true, "will/twin", []byte("gone"), 1
		first.send(cp)
		if ack := first.read(); ack.(*packets.ConnackPacket).ReturnCode != 0 {
			t.Fatalf("first connection refused: %v", ack)
		}
		connected(t, addr, "twin", true) // takes the client id over
		p := obs.await(func(p packets.ControlPacket) bool { _, ok := p.(*packets.PublishPacket); return ok })
		if pp := p.(*packets.PublishPacket); pp.TopicName != "will/twin" || string(pp.Payload) != "gone" {
			t.Fatalf("observer got %v, want the taken-over connection's will", pp)
		}
	})
}

func TestNULInStringsClosesConnection(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		t.Run("client id", func(t *testing.T) {
			c := dial(t, addr)
			c.send(connectPacket("bad\x00id", true))
			expectNoConnack(t, c)
		})
		t.Run("username", func(t *testing.T) {
			c := dial(t, addr)
			cp := connectPacket("u", true)
			cp.UsernameFlag, cp.Username = true, "al\x00ice"
			c.send(cp)
			expectNoConnack(t, c)
		})
		t.Run("subscribe filter", func(t *testing.T) {
			c := connected(t, addr, "s", true)
			sp := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
			sp.MessageID, sp.Topics, sp.Qoss = 1, []string{"a\x00b"}, []byte{0}
			c.send(sp)
			c.expectClosed()
		})
		t.Run("control character in client id", func(t *testing.T) {
			c := dial(t, addr)
			c.send(connectPacket("bell\x07", true))
			expectNoConnack(t, c)
		})
	})
}

// TestMQTT31PubrelWithDup: a 3.1 client may resend PUBREL with DUP set (flags
// 0x0A); Mosquitto checks PUBREL flags for 3.1.1 only.
func TestMQTT31PubrelWithDup(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		c := dial(t, addr)
		cp := connectPacket("old", true)
		cp.ProtocolName, cp.ProtocolVersion = "MQIsdp", 3
		c.send(cp)
		if ack := c.read(); ack.(*packets.ConnackPacket).ReturnCode != 0 {
			t.Fatalf("3.1 connect refused: %v", ack)
		}
		c.send(publishPacket("t", 2, 5, []byte("x"), false))
		if _, ok := c.read().(*packets.PubrecPacket); !ok {
			t.Fatal("no PUBREC")
		}
		c.sendRaw([]byte{0x6a, 0x02, 0x00, 0x05}) // PUBREL, DUP and QoS 1 flags
		if p := c.read(); p.(*packets.PubcompPacket).MessageID != 5 {
			t.Fatalf("got %v, want PUBCOMP 5", p)
		}
	})
}

func TestOversizePublishDroppedNotDisconnected(t *testing.T) {
	lines := []string{"message_size_limit 100"}
	bothBrokers(t, lines, func(c *conf.Config) { c.MessageSizeLimit = 100 }, func(t *testing.T, addr string) {
		sub := connected(t, addr, "sub", true)
		sub.subscribe(1, "t", 2)
		pub := connected(t, addr, "pub", true)
		big := bytes.Repeat([]byte("x"), 101)
		pub.send(publishPacket("t", 1, 1, big, false))
		if p := pub.read(); p.(*packets.PubackPacket).MessageID != 1 {
			t.Fatalf("oversize QoS 1: got %v, want PUBACK 1", p)
		}
		pub.send(publishPacket("t", 2, 2, big, false))
		if p := pub.read(); p.(*packets.PubrecPacket).MessageID != 2 {
			t.Fatalf("oversize QoS 2: got %v, want PUBREC 2", p)
		}
		pub.send(publishPacket("t", 0, 0, big, false))
		pub.send(publishPacket("t", 0, 0, []byte("small"), false))
		p := sub.await(func(p packets.ControlPacket) bool { _, ok := p.(*packets.PublishPacket); return ok })
		if pp := p.(*packets.PublishPacket); string(pp.Payload) != "small" {
			t.Fatalf("subscriber got %d bytes, want only the small message", len(pp.Payload))
		}
	})
}

func TestOversizeWillRefused(t *testing.T) {
	lines := []string{"message_size_limit 100"}
	bothBrokers(t, lines, func(c *conf.Config) { c.MessageSizeLimit = 100 }, func(t *testing.T, addr string) {
		c := dial(t, addr)
		cp := connectPacket("w", true)
		cp.WillFlag, cp.WillTopic, cp.WillMessage = true, "w", bytes.Repeat([]byte("x"), 101)
		c.send(cp)
		p, err := c.readErr(5 * time.Second)
		if err != nil || p.(*packets.ConnackPacket).ReturnCode != packets.ErrRefusedNotAuthorised {
			t.Fatalf("got %v, %v, want CONNACK 5", p, err)
		}
	})
}

// TestWrongAckDisconnects: PUBREC for a QoS 1 delivery (or PUBACK for QoS 2)
// is a protocol error Mosquitto disconnects for.
func TestWrongAckDisconnects(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		for _, tc := range []struct {
			qos byte
			ack packets.ControlPacket
		}{
			{1, packets.NewControlPacket(packets.Pubrec)},
			{2, packets.NewControlPacket(packets.Puback)},
		} {
			sub := connected(t, addr, "wrong", true)
			sub.subscribe(1, "t", tc.qos)
			pub := connected(t, addr, "p", true)
			pub.publish("t", tc.qos, 3, []byte("x"), false)
			p := sub.await(func(p packets.ControlPacket) bool { _, ok := p.(*packets.PublishPacket); return ok })
			switch a := tc.ack.(type) {
			case *packets.PubrecPacket:
				a.MessageID = p.(*packets.PublishPacket).MessageID
			case *packets.PubackPacket:
				a.MessageID = p.(*packets.PublishPacket).MessageID
			}
			sub.send(tc.ack)
			sub.expectClosed()
		}
	})
}

// TestConnectCappedBeforeAuth: a client that has not been accepted cannot
// make the broker buffer more than one valid CONNECT: a CONNECT announcing
// 256 MB, or anything else as the first packet, is cut off at once.
func TestConnectCappedBeforeAuth(t *testing.T) {
	b := startBroker(t, quietConfig(t))
	for _, raw := range [][]byte{
		{0x10, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x04, 'M', 'Q', 'T', 'T'},
		{0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01, 'a'},
	} {
		c := dial(t, b.Addr())
		c.sendRaw(raw)
		start := time.Now()
		c.expectClosed()
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%x: closed after %v, want at once", raw[:2], d)
		}
	}
	// Nothing after a CONNECT is read before the CONNECT is accepted: a
	// refused client's pipelined PUBLISH never reaches anyone.
	cfg := quietConfig(t)
	no := false
	cfg.Security.AllowAnonymous = &no
	b2 := startBroker(t, cfg)
	c := dial(t, b2.Addr())
	var buf bytes.Buffer
	_ = connectPacket("x", true).Write(&buf)
	_ = publishPacket("t", 0, 0, []byte("sneaked"), false).Write(&buf)
	c.sendRaw(buf.Bytes())
	p, err := c.readErr(5 * time.Second)
	if err != nil || p.(*packets.ConnackPacket).ReturnCode != packets.ErrRefusedNotAuthorised {
		t.Fatalf("got %v, %v, want CONNACK 5", p, err)
	}
	c.expectClosed()
	if st := b2.Stats(); st.PublishReceived != 0 {
		t.Errorf("the refused client's PUBLISH was read (%d publishes received)", st.PublishReceived)
	}
}
