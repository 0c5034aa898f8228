package broker_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/internal/testutil"
)

// TestBadMessageCloses: a PUBLISH the broker refuses (denied by the ACL, over
// message_size_limit, over the incoming quota) is acknowledged and dropped,
// and the connection is then closed when the client already has
// max_queued_messages packets waiting to be written, which with
// max_queued_messages 0 is always: Debian's Mosquitto 2.0.11 does this (its
// CVE-2023-28366 fix), and a Mosquitto bridge with a backlog of QoS 2 into a
// core with max_queued_messages 0 is closed this way on every reconnect.
func TestBadMessageCloses(t *testing.T) {
	testutil.RequireMosquitto(t)
	acl := testutil.WriteFile(t, t.TempDir(), "acl", "topic readwrite ok/#\n")
	type pub struct {
		topic string
		qos   byte
		size  int
	}
	qos2 := make([]pub, 22) // 2 more than max_inflight_messages (20), none released
	for i := range qos2 {
		qos2[i] = pub{"ok/q", 2, 1}
	}
	for _, tc := range []struct {
		name   string
		extra  []string
		pubs   []pub
		closed bool
	}{
		{"denied QoS 0, max_queued_messages 0", []string{"max_queued_messages 0", "acl_file " + acl}, []pub{{"t", 0, 1}}, true},
		{"denied QoS 1, max_queued_messages 0", []string{"max_queued_messages 0", "acl_file " + acl}, []pub{{"t", 1, 1}}, true},
		{"denied QoS 1, default queue", []string{"acl_file " + acl}, []pub{{"t", 1, 1}}, false},
		{"too large QoS 1, max_queued_messages 0", []string{"max_queued_messages 0", "message_size_limit 10"}, []pub{{"ok", 1, 100}}, true},
		{"allowed QoS 1, max_queued_messages 0", []string{"max_queued_messages 0", "acl_file " + acl}, []pub{{"ok/x", 1, 1}}, false},
		{"over the quota, max_queued_messages 0", []string{"max_queued_messages 0"}, qos2, true},
		{"over the quota, default queue", nil, qos2, false},
	} {
		for _, kind := range []string{kindMosquitto, kindBundled} {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				s := startSide(t, kind, t.TempDir(), 0, tc.extra...)
				nc, err := net.Dial("tcp", s.addr())
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				r := bufio.NewReader(nc)
				c := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
				c.ProtocolName, c.ProtocolVersion, c.ClientIdentifier, c.CleanSession, c.Keepalive = "MQTT", 4, "p", true, 60
				if err := c.Write(nc); err != nil {
					t.Fatal(err)
				}
				if _, err := packets.ReadPacket(r); err != nil {
					t.Fatalf("CONNACK: %v", err)
				}
				for i, p := range tc.pubs {
					pk := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
					pk.TopicName, pk.Qos, pk.Payload = p.topic, p.qos, make([]byte, p.size)
					if p.qos > 0 {
						pk.MessageID = uint16(i + 1)
					}
					if err := pk.Write(nc); err != nil {
						t.Fatal(err)
					}
				}
				closed := false
				_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
				for {
					_, err := packets.ReadPacket(r)
					if err != nil {
						ne, ok := err.(net.Error)
						closed = !ok || !ne.Timeout()
						break
					}
				}
				if closed != tc.closed {
					t.Errorf("connection closed %v, want %v", closed, tc.closed)
				}
			})
		}
	}
}
