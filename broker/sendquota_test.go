package broker_test

import (
	"bufio"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/internal/testutil"
)

// TestLegacyWindowGrows: for a 3.1.1 client, Mosquitto 2.0.11 moves queued
// deliveries into flight on a PUBACK until the acknowledged message's
// position, not the number in flight, reaches max_inflight_messages: with
// 5 in flight and the first acknowledged, 5 more go out, so 9 are
// unacknowledged. Side by side, so the bundled broker's window is
// Mosquitto's.
func TestLegacyWindowGrows(t *testing.T) {
	testutil.RequireMosquitto(t)
	for _, kind := range []string{kindMosquitto, kindBundled} {
		t.Run(kind, func(t *testing.T) {
			s := startSide(t, kind, t.TempDir(), 0, "max_inflight_messages 5")
			sub := dialT(t, s.addr(), testutil.ClientOptions{ClientID: "slow"})
			subscribeT(t, sub, 1, "w/#")
			if err := sub.Disconnect(); err != nil {
				t.Fatal(err)
			}
			pub := dialT(t, s.addr(), testutil.ClientOptions{ClientID: "pub", CleanSession: true})
			for i := 0; i < 50; i++ {
				if err := pub.Publish("w/x", []byte(strconv.Itoa(i)), 1, false); err != nil {
					t.Fatal(err)
				}
			}
			nc, err := net.Dial("tcp", s.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			r := bufio.NewReader(nc)
			c := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
			c.ProtocolName, c.ProtocolVersion, c.ClientIdentifier, c.Keepalive = "MQTT", 4, "slow", 60
			if err := c.Write(nc); err != nil {
				t.Fatal(err)
			}
			var mids []uint16
			// count reads PUBLISHes until nothing comes for quiet.
			count := func(quiet time.Duration) int {
				n := 0
				for {
					_ = nc.SetReadDeadline(time.Now().Add(quiet))
					pk, err := packets.ReadPacket(r)
					if err != nil {
						return n
					}
					if p, ok := pk.(*packets.PublishPacket); ok {
						mids = append(mids, p.MessageID)
						n++
					}
				}
			}
			if n := count(time.Second); n != 5 {
				t.Fatalf("%d deliveries before any PUBACK, want max_inflight_messages (5)", n)
			}
			ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
			ack.MessageID = mids[0]
			if err := ack.Write(nc); err != nil {
				t.Fatal(err)
			}
			if n := count(time.Second); n != 5 {
				t.Errorf("%d deliveries after the first PUBACK, want 5 (9 unacknowledged, as Mosquitto 2.0.11)", n)
			}
		})
	}
}
