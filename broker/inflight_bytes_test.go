package broker_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/broker/conf"
)

// expectPublishes reads n PUBLISH packets and returns their payloads and
// packet ids.
func (c *rawClient) expectPublishes(n int) ([]string, []uint16) {
	c.t.Helper()
	var got []string
	var mids []uint16
	for len(got) < n {
		p := c.read()
		pp, ok := p.(*packets.PublishPacket)
		if !ok {
			c.t.Fatalf("got %v, want PUBLISH", p)
		}
		got = append(got, string(pp.Payload))
		mids = append(mids, pp.MessageID)
	}
	return got, mids
}

// expectQuiet asserts nothing arrives within d.
func (c *rawClient) expectQuiet(d time.Duration) {
	c.t.Helper()
	if p, err := c.readErr(d); err == nil {
		c.t.Fatalf("got %v, want nothing", p)
	}
}

// TestMaxInflightBytes is db__ready_for_flight and db__ready_for_queue with
// max_inflight_bytes: a QoS 1 delivery goes into flight while the payload
// the subscriber holds is below max_inflight_bytes, is queued while that
// payload less max_inflight_bytes is below max_queued_bytes, else dropped; a
// QoS 0 delivery is dropped while the held payload less max_inflight_bytes
// reaches max_queued_bytes. An acknowledgement moves the queue on by count,
// whatever its bytes.
func TestMaxInflightBytes(t *testing.T) {
	lines := []string{"max_inflight_bytes 100", "max_queued_bytes 50", "max_queued_messages 0"}
	apply := func(c *conf.Config) { c.MaxInflightBytes, c.MaxQueuedBytes, c.MaxQueuedMessages = 100, 50, 0 }
	bothBrokers(t, lines, apply, func(t *testing.T, addr string) {
		sub := connected(t, addr, "mib-sub", true)
		sub.subscribe(1, "mib", 1)
		pub := connected(t, addr, "mib-pub", true)
		msg := func(i int) []byte { return append([]byte{byte('0' + i)}, bytes.Repeat([]byte("x"), 59)...) }
		for i := 1; i <= 4; i++ {
			pub.publish("mib", 1, uint16(i), msg(i), false)
		}
		// 1 and 2 fly (0 and 60 bytes held before each); 3 is queued (120-100
		// < 50); 4 is dropped (180-100 >= 50).
		got, mids := sub.expectPublishes(2)
		if got[0][0] != '1' || got[1][0] != '2' {
			t.Fatalf("first deliveries %q %q, want messages 1 and 2", got[0][:1], got[1][:1])
		}
		pub.publish("mib", 0, 0, []byte("zero"), false) // 180-100 >= 50: dropped
		sub.expectQuiet(500 * time.Millisecond)
		ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
		ack.MessageID = mids[0]
		sub.send(ack)
		if got, _ := sub.expectPublishes(1); got[0][0] != '3' {
			t.Fatalf("after the first PUBACK got message %q, want 3", got[0][:1])
		}
		pub.publish("mib", 0, 0, []byte("zero2"), false) // 120-100 < 50: sent
		if got, _ := sub.expectPublishes(1); got[0] != "zero2" {
			t.Fatalf("got %q, want the QoS 0 message sent once the held payload fell", got[0])
		}
		sub.expectQuiet(500 * time.Millisecond)
	})
}
