package broker_test

import (
	"fmt"
	"testing"

	p5 "github.com/eclipse/paho.golang/packets"
)

// TestV5AuthWithoutMethod: Mosquitto 2.0.11 without an authentication plugin
// refuses a CONNECT with an Authentication Method (CONNACK 0x8C, then the
// connection is closed), and closes a connection that sends AUTH without
// having started extended authentication, with no DISCONNECT first
// (handle__auth returns its protocol error straight to the caller).
func TestV5AuthWithoutMethod(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		t.Run("connect with method", func(t *testing.T) {
			c := dial5(t, addr)
			ack := c.connack(connect5("am", true, func(c *p5.Connect) {
				c.Properties.AuthMethod, c.Properties.AuthData = "SCRAM-SHA-1", []byte("client-first")
			}))
			if ack.ReasonCode != 0x8C || ack.Properties.AuthMethod != "" {
				t.Fatalf("CONNACK %v, want 0x8C bad authentication method without properties", ack)
			}
			c.expectClosed5(0)
		})
		for _, reason := range []byte{0x00, 0x18, 0x19} {
			t.Run(fmt.Sprintf("AUTH %#x", reason), func(t *testing.T) {
				c, _ := connected5(t, addr, "au", true, nil)
				cp := p5.NewControlPacket(p5.AUTH)
				a := cp.Content.(*p5.Auth)
				a.ReasonCode, a.Properties = reason, &p5.Properties{AuthMethod: "SCRAM-SHA-1"}
				c.send(cp)
				c.expectClosed5(0)
			})
		}
		t.Run("AUTH before CONNECT", func(t *testing.T) {
			c := dial5(t, addr)
			cp := p5.NewControlPacket(p5.AUTH)
			cp.Content.(*p5.Auth).Properties = &p5.Properties{}
			c.send(cp)
			c.expectClosed5(0)
		})
	})
}

// TestV5ReservedPacketType: a packet of type 0 reaches handle__packet's
// default case, which tells an MQTT 5 client 0x82 (protocol error); a CONNACK
// or a SUBACK without reason codes from a client is refused by its own
// handler, without a word. (Mosquitto ignores a client's PINGRESP and a
// well-formed UNSUBACK; the bundled broker closes the connection: not
// imitated yet.)
func TestV5ReservedPacketType(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		for _, tc := range []struct {
			first byte
			want  byte
		}{{0x00, 0x82}, {0x20, 0}, {0x90, 0}} {
			t.Run(fmt.Sprintf("%#x", tc.first), func(t *testing.T) {
				c, _ := connected5(t, addr, "rt", true, nil)
				if _, err := c.nc.Write([]byte{tc.first, 0x03, 0x00, 0x01, 0x00}); err != nil {
					t.Fatal(err)
				}
				c.expectClosed5(tc.want)
			})
		}
	})
}
