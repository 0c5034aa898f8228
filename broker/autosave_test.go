package broker_test

import (
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/broker"
	"github.com/mqbench/mqbench/internal/testutil"
)

// settled waits until no save is running or pending and returns the number of
// snapshots taken so far.
func settled(t *testing.T, b *broker.Broker) int64 {
	t.Helper()
	var st broker.Stats
	testutil.WaitFor(t, "saves to settle", func() bool {
		st = b.Stats()
		return st.Saves+st.SaveErrors == st.SavesStarted
	})
	return st.SavesStarted
}

// TestAutosaveOnChanges counts changes the way the model doc lists them: with
// a count of 1 every change is one save, so each step's saves are its changes.
func TestAutosaveOnChanges(t *testing.T) {
	cfg := quietConfig(t)
	cfg.AutosaveOnChanges = true
	cfg.AutosaveInterval = time.Second
	cfg.AutosaveChanges = 1
	b := startBroker(t, cfg)
	var sub, pub *rawClient
	steps := []struct {
		name string
		do   func()
		want int64
	}{
		{"persistent client connects", func() { sub = connected(t, b.Addr(), "sub", false) }, 1},
		{"subscribe packet", func() { sub.subscribe(1, "t", 1) }, 1},
		{"clean client connects", func() { pub = connected(t, b.Addr(), "pub", true) }, 0},
		{"publish with no subscriber", func() { pub.publish("none", 1, 1, []byte("x"), false) }, 0},
		{"delivery straight in flight", func() { pub.publish("t", 1, 2, []byte("x"), false) }, 0},
		{"delivery completed (PUBACK)", func() {
			p := sub.read().(*packets.PublishPacket)
			ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
			ack.MessageID = p.MessageID
			sub.send(ack)
			sub.sync()
		}, 1},
		{"retained set", func() { pub.publish("r", 0, 0, []byte("x"), true) }, 1},
		{"retained cleared", func() { pub.publish("r", 0, 0, nil, true) }, 1},
		{"disconnect", func() { sub.send(packets.NewControlPacket(packets.Disconnect)); sub.expectClosed() }, 0},
		{"queued for offline client", func() { pub.publish("t", 1, 3, []byte("x"), false) }, 1},
		// Reconnecting is one change; the queued delivery moving in flight is none.
		{"persistent reconnect and unsubscribe packet", func() {
			sub = connected(t, b.Addr(), "sub", false)
			up := packets.NewControlPacket(packets.Unsubscribe).(*packets.UnsubscribePacket)
			up.MessageID = 9
			up.Topics = []string{"t"}
			sub.send(up)
			sub.await(func(p packets.ControlPacket) bool { _, ok := p.(*packets.UnsubackPacket); return ok })
		}, 2},
	}
	prev := settled(t, b)
	for _, s := range steps {
		s.do()
		got := settled(t, b)
		if got-prev != s.want {
			t.Errorf("%s: %d saves, want %d", s.name, got-prev, s.want)
		}
		prev = got
	}
}

// TestAutosaveOnChangesCount: a count of 3 saves on the third change only.
func TestAutosaveOnChangesCount(t *testing.T) {
	cfg := quietConfig(t)
	cfg.AutosaveOnChanges = true
	cfg.AutosaveInterval = 3 * time.Second
	cfg.AutosaveChanges = 3
	b := startBroker(t, cfg)
	c := connected(t, b.Addr(), "c", true)
	want := []int64{0, 0, 1, 1, 1, 2}
	for i, w := range want {
		c.subscribe(uint16(i+1), "t", 0)
		if got := settled(t, b); got != w {
			t.Fatalf("after %d subscribes: %d saves, want %d", i+1, got, w)
		}
	}
}

// TestAutosaveFractional: the fractional interval extension saves by itself.
func TestAutosaveFractional(t *testing.T) {
	cfg := testConfig(t)
	cfg.AutosaveInterval = 50 * time.Millisecond
	b := startBroker(t, cfg)
	testutil.WaitFor(t, "two timed saves", func() bool { return b.Stats().Saves >= 2 })
}
