package bench

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TestLeanWriterFlushAfterKick pins a lost flush in the lean writer: when a
// flush request's wake-up token is taken by the writer before the publish that
// preceded the request, the writer flushed nothing, then wrote that publish
// without flushing and waited forever, with the window full (persist-quick
// published 20 of 300 messages in about half the runs). Each round sets up
// that state (a queued publish, a pending request and its token) on a fresh
// connection; the publish must reach the broker side.
func TestLeanWriterFlushAfterKick(t *testing.T) {
	for round := 0; round < 32; round++ {
		client, broker := net.Pipe()
		c := &leanClient{o: leanOptions{QoS: 1, Topic: "test", Since: func() int64 { return 0 }}}
		cn := &leanConn{
			nc:         client,
			ch:         make(chan leanItem, 4),
			dead:       make(chan struct{}),
			writerDone: make(chan struct{}),
			kick:       make(chan struct{}, 1),
		}
		cn.ch <- leanItem{kind: packets.Publish, id: 1, seq: 1, payload: []byte("x")}
		cn.requestFlush()
		go c.writer(cn)

		// A hang guard, not a speed assertion: the packet is due at once.
		if err := broker.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		pkt, err := packets.ReadPacket(bufio.NewReader(broker))
		cn.fail(errLeanClosed)
		<-cn.writerDone
		broker.Close()
		if err != nil {
			t.Fatalf("round %d: queued publish not flushed after a flush request: %v", round, err)
		}
		if p, ok := pkt.(*packets.PublishPacket); !ok || p.MessageID != 1 {
			t.Fatalf("round %d: got %v, want PUBLISH id 1", round, pkt)
		}
	}
}
