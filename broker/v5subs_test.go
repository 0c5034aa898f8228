package broker_test

import (
	"testing"
	"time"

	p5 "github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// MQTT 5 subscription options and identifiers, against both brokers.

func TestV5NoLocal(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		c, _ := connected5(t, addr, "self", true, nil)
		c.subscribe(1, p5.SubOptions{Topic: "nl/#", QoS: 0, NoLocal: true})
		c.send(publish5("nl/a", 0, 0, []byte("mine"), nil))
		c.expectNothing(500 * time.Millisecond)
		other, _ := connected5(t, addr, "other", true, nil)
		other.send(publish5("nl/a", 0, 0, []byte("theirs"), nil))
		if m := c.expectPublish(); string(m.Payload) != "theirs" {
			t.Fatalf("got %v", m)
		}
	})
}

func TestV5RetainOptions(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		pub, _ := connected5(t, addr, "pub", true, nil)
		p := publish5("ret/a", 0, 0, []byte("kept"), nil)
		p.Content.(*p5.Publish).Retain = true
		p.FixedHeader.Flags |= 1
		pub.send(p)
		time.Sleep(200 * time.Millisecond)

		never, _ := connected5(t, addr, "never", true, nil)
		never.subscribe(1, p5.SubOptions{Topic: "ret/#", RetainHandling: 2})
		never.expectNothing(500 * time.Millisecond)

		newOnly, _ := connected5(t, addr, "new", true, nil)
		newOnly.subscribe(1, p5.SubOptions{Topic: "ret/#", RetainHandling: 1})
		if m := newOnly.expectPublish(); !m.Retain {
			t.Fatalf("got %v, want the retained message", m)
		}
		newOnly.subscribe(2, p5.SubOptions{Topic: "ret/#", RetainHandling: 1})
		newOnly.expectNothing(500 * time.Millisecond)

		rap, _ := connected5(t, addr, "rap", true, nil)
		rap.subscribe(1, p5.SubOptions{Topic: "ret/#", RetainAsPublished: true, RetainHandling: 2})
		plain, _ := connected5(t, addr, "plain", true, nil)
		plain.subscribe(1, p5.SubOptions{Topic: "ret/#", RetainHandling: 2})
		p = publish5("ret/a", 0, 0, []byte("live"), nil)
		p.Content.(*p5.Publish).Retain = true
		p.FixedHeader.Flags |= 1
		pub.send(p)
		if m := rap.expectPublish(); !m.Retain {
			t.Fatalf("retain as published: got %v with retain clear", m)
		}
		if m := plain.expectPublish(); m.Retain {
			t.Fatalf("without retain as published: got %v with retain set", m)
		}
	})
}

func TestV5SubscriptionIdentifier(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		c, _ := connected5(t, addr, "sid", true, nil)
		cp := p5.NewControlPacket(p5.SUBSCRIBE)
		s := cp.Content.(*p5.Subscribe)
		id := 42
		s.PacketID, s.Subscriptions, s.Properties = 1, []p5.SubOptions{{Topic: "sid/#", QoS: 1}}, &p5.Properties{SubscriptionIdentifier: &id}
		c.send(cp)
		if a, ok := c.read().Content.(*p5.Suback); !ok || len(a.Reasons) != 1 || a.Reasons[0] != 1 {
			t.Fatalf("SUBACK %v", a)
		}
		c.send(publish5("sid/x", 1, 1, []byte("x"), nil))
		var m *p5.Publish
		for m == nil {
			switch p := c.read().Content.(type) {
			case *p5.Publish:
				m = p
			case *p5.Puback:
			default:
				t.Fatalf("got %v", p)
			}
		}
		if m.Properties.SubscriptionIdentifier == nil || *m.Properties.SubscriptionIdentifier != 42 {
			t.Fatalf("got %v, want subscription identifier 42", m)
		}
	})
}

// TestSharedSubscription: the members of a group take turns, an MQTT 3.1.1
// member too, and a plain subscriber beside them gets every message.
func TestSharedSubscription(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		a, _ := connected5(t, addr, "a", true, nil)
		a.subscribe(1, p5.SubOptions{Topic: "$share/g/sh/#", QoS: 1})
		b := connected(t, addr, "b", true)
		b.subscribe(1, "$share/g/sh/#", 1)
		all, _ := connected5(t, addr, "all", true, nil)
		all.subscribe(1, p5.SubOptions{Topic: "sh/#", QoS: 0})
		pub, _ := connected5(t, addr, "pub", true, nil)
		for i := 0; i < 4; i++ {
			pub.send(publish5("sh/x", 0, 0, []byte{byte('0' + i)}, nil))
		}
		for i := 0; i < 4; i++ {
			all.expectPublish()
		}
		for i := 0; i < 2; i++ {
			a.expectPublish()
			if _, ok := b.read().(*packets.PublishPacket); !ok {
				t.Fatal("3.1.1 member got no PUBLISH")
			}
		}
		a.expectNothing(300 * time.Millisecond)
	})
}
