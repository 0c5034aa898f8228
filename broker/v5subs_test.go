package broker_test

import (
	"testing"
	"time"

	p5 "github.com/eclipse/paho.golang/packets"
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
