package broker_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	p5 "github.com/eclipse/paho.golang/packets"

	"github.com/mqbench/mqbench/broker/persist"
	"github.com/mqbench/mqbench/internal/testutil"
)

// Overlapping subscriptions of one MQTT 5 client, against both brokers:
// Mosquitto 2.0.11 sends a copy per matching subscription (its
// db__message_insert skips the duplicate check for MQTT 5), each with that
// subscription's QoS, Retain As Published and identifier, in the order its
// subscription tree is searched; each copy takes its own packet id, its own
// place against the queue limits and its own CLIENT_MSG record.

// subscribeID sends one SUBSCRIBE with identifier id (0: none) for opts and
// checks it is granted.
func subscribeID(t *testing.T, c *v5Client, mid uint16, id int, opts p5.SubOptions) {
	t.Helper()
	cp := p5.NewControlPacket(p5.SUBSCRIBE)
	s := cp.Content.(*p5.Subscribe)
	s.PacketID, s.Subscriptions, s.Properties = mid, []p5.SubOptions{opts}, &p5.Properties{}
	if id != 0 {
		s.Properties.SubscriptionIdentifier = &id
	}
	c.send(cp)
	if a, ok := c.read().Content.(*p5.Suback); !ok || len(a.Reasons) != 1 || a.Reasons[0] != opts.QoS {
		t.Fatalf("SUBACK %v", a)
	}
}

// copyString is one received copy: topic, payload, QoS, retain, packet id
// and subscription identifier (0: none).
func copyString(m *p5.Publish) string {
	id := 0
	if m.Properties != nil && m.Properties.SubscriptionIdentifier != nil {
		id = *m.Properties.SubscriptionIdentifier
	}
	return fmt.Sprintf("%s|%s|q%d|r%v|mid%d|id%d", m.Topic, m.Payload, m.QoS, m.Retain, m.PacketID, id)
}

// copiesUntil reads PUBLISHes (without acknowledging them) up to and
// including the first on topic end.
func copiesUntil(c *v5Client, end string) []string {
	c.t.Helper()
	var got []string
	for {
		m := c.expectPublish()
		got = append(got, copyString(m))
		if m.Topic == end {
			return got
		}
	}
}

// publishQoS2 publishes from c at QoS 2 through to PUBCOMP, so the message
// has been routed by either broker when it returns.
func publishQoS2(t *testing.T, c *v5Client, topic string, payload []byte, retain bool) {
	t.Helper()
	p := publish5(topic, 2, 1, payload, nil)
	if retain {
		p.Content.(*p5.Publish).Retain = true
		p.FixedHeader.Flags |= 1
	}
	c.send(p)
	if _, ok := c.read().Content.(*p5.Pubrec); !ok {
		t.Fatal("no PUBREC")
	}
	rel := p5.NewControlPacket(p5.PUBREL)
	rel.Content.(*p5.Pubrel).PacketID = 1
	c.send(rel)
	if _, ok := c.read().Content.(*p5.Pubcomp); !ok {
		t.Fatal("no PUBCOMP")
	}
}

func TestV5OverlapCopies(t *testing.T) {
	// sub__search's order for ov/b/c: ov/b/c/#, ov/b/c, ov/+/c, ov/#, then
	// the root's +/b/c; a QoS 0 copy takes no packet id; the No Local
	// subscription gives no copy of the client's own message.
	want := []string{
		"ov/b/c|one|q1|rfalse|mid1|id4", "ov/b/c|one|q2|rfalse|mid2|id0", "ov/b/c|one|q1|rtrue|mid3|id2",
		"ov/b/c|one|q0|rfalse|mid0|id1", "ov/b/c|one|q1|rfalse|mid4|id5",
		"ov/b/c|own|q0|rfalse|mid0|id4", "ov/b/c|own|q0|rfalse|mid0|id0", "ov/b/c|own|q0|rfalse|mid0|id2",
		"ov/b/c|own|q0|rfalse|mid0|id1",
		"ov/end|m|q0|rfalse|mid0|id1",
	}
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		c, _ := connected5(t, addr, "ovsub", true, nil)
		subscribeID(t, c, 1, 1, p5.SubOptions{Topic: "ov/#", QoS: 0})
		subscribeID(t, c, 2, 2, p5.SubOptions{Topic: "ov/+/c", QoS: 1, RetainAsPublished: true})
		subscribeID(t, c, 3, 0, p5.SubOptions{Topic: "ov/b/c", QoS: 2})
		subscribeID(t, c, 4, 4, p5.SubOptions{Topic: "ov/b/c/#", QoS: 1})
		subscribeID(t, c, 5, 5, p5.SubOptions{Topic: "+/b/c", QoS: 1, NoLocal: true})
		pub, _ := connected5(t, addr, "ovpub", true, nil)
		publishQoS2(t, pub, "ov/b/c", []byte("one"), true)
		c.send(publish5("ov/b/c", 0, 0, []byte("own"), nil))
		c.send(publish5("ov/end", 0, 0, []byte("m"), nil)) // after "own" on the same connection
		if g := copiesUntil(c, "ov/end"); !reflect.DeepEqual(g, want) {
			t.Errorf("copies:\n got  %q\n want %q", g, want)
		}
	})
}

// heldCopy is one saved outgoing delivery, with its message's payload.
type heldCopy struct {
	payload    string
	mid        uint16
	qos, state uint8
	props      string
}

func savedCopies(t *testing.T, path, client string) (copies []heldCopy, lastMid uint16) {
	t.Helper()
	db, err := persist.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	payload := map[uint64]string{}
	for _, ms := range db.Stores {
		payload[ms.StoreID] = string(ms.Payload)
	}
	for _, cm := range db.ClientMsgs {
		if cm.ClientID == client {
			copies = append(copies, heldCopy{payload[cm.StoreID], cm.Mid, cm.QoS, cm.State, fmt.Sprintf("%x", cm.Properties)})
		}
	}
	for _, cl := range db.Clients {
		if cl.ClientID == client {
			lastMid = cl.LastMid
		}
	}
	return copies, lastMid
}

// TestV5OverlapQueued: copies held for an offline MQTT 5 session count one
// by one against max_queued_messages, are saved one CLIENT_MSG each with
// their own identifier, and come back as such after a restart.
func TestV5OverlapQueued(t *testing.T) {
	testutil.RequireMosquitto(t)
	extra := []string{"max_queued_messages 4"}
	hold := func(t *testing.T, addr string) {
		c, _ := connected5(t, addr, "ovq", false, func(c *p5.Connect) { c.Properties.SessionExpiryInterval = u32(3600) })
		subscribeID(t, c, 1, 1, p5.SubOptions{Topic: "oq/#", QoS: 1})
		subscribeID(t, c, 2, 2, p5.SubOptions{Topic: "oq/+", QoS: 2})
		subscribeID(t, c, 3, 0, p5.SubOptions{Topic: "oq/a", QoS: 1})
		c.disconnect(0, nil)
		pub, _ := connected5(t, addr, "oqpub", true, nil)
		for _, p := range []string{"m1", "m2"} {
			publishQoS2(t, pub, "oq/a", []byte(p), false)
		}
		pub.disconnect(0, nil)
	}
	drain := func(t *testing.T, addr string) []string {
		c, ack := connected5(t, addr, "ovq", false, func(c *p5.Connect) { c.Properties.SessionExpiryInterval = u32(3600) })
		if !ack.SessionPresent {
			t.Fatal("session not present after the restart")
		}
		var got []string
		for i := 0; i < 4; i++ {
			got = append(got, copyString(c.expectPublish()))
		}
		c.expectNothing(500 * time.Millisecond)
		return got
	}
	// m1's three copies (oq/a, oq/+, oq/#) and m2's first are held; m2's
	// other two are dropped, their packet ids spent.
	want := []string{"oq/a|m1|q1|rfalse|mid1|id0", "oq/a|m1|q2|rfalse|mid2|id2", "oq/a|m1|q1|rfalse|mid3|id1", "oq/a|m2|q1|rfalse|mid4|id0"}
	type result struct {
		saved   []heldCopy
		lastMid uint16
		drained []string
	}
	run := func(t *testing.T, start func(dir string) (addr string, stop func())) result {
		dir := t.TempDir()
		addr, stop := start(dir)
		hold(t, addr)
		stop()
		var r result
		r.saved, r.lastMid = savedCopies(t, dir+"/mosquitto.db", "ovq")
		addr, _ = start(dir)
		r.drained = drain(t, addr)
		return r
	}
	var mosq, bundled result
	t.Run("mosquitto", func(t *testing.T) {
		mosq = run(t, func(dir string) (string, func()) {
			m := testutil.StartMosquitto(t, testutil.MosquittoOptions{Dir: dir, Persistence: true, Extra: extra})
			return m.Addr, func() {
				if err := m.Stop(20 * time.Second); err != nil {
					t.Fatal(err)
				}
			}
		})
		if len(mosq.saved) != 4 || mosq.lastMid != 6 {
			t.Errorf("Mosquitto saved %+v, last mid %d", mosq.saved, mosq.lastMid)
		}
	})
	t.Run("bundled", func(t *testing.T) {
		bundled = run(t, func(dir string) (string, func()) {
			b := inprocBroker(t, testutil.BundledConf(dir, extra...))
			return b.Addr(), func() {
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	})
	if !reflect.DeepEqual(mosq.drained, want) || !reflect.DeepEqual(bundled.drained, want) {
		t.Errorf("after the restart:\n mosquitto %q\n bundled   %q\n want      %q", mosq.drained, bundled.drained, want)
	}
	if !reflect.DeepEqual(mosq.saved, bundled.saved) || mosq.lastMid != bundled.lastMid {
		t.Errorf("saved deliveries:\n mosquitto %+v (last mid %d)\n bundled   %+v (last mid %d)", mosq.saved, mosq.lastMid, bundled.saved, bundled.lastMid)
	}
}
