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
// default case, which tells an MQTT 5 client 0x82 (protocol error). Packets
// only a server sends are read by handlers Mosquitto's client library
// compiles into the broker: a client's PINGRESP, UNSUBACK and SUBACK (with a
// reason code) are ignored and the connection stays open; a CONNACK, a
// SUBACK without reason codes or an UNSUBACK with packet identifier 0 close
// it without a word.
func TestV5ReservedPacketType(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		for _, tc := range []struct {
			name string
			raw  []byte
			want byte // DISCONNECT reason; 0: closed silently
			open bool
		}{
			{"type 0", []byte{0x00, 0x03, 0x00, 0x01, 0x00}, 0x82, false},
			{"CONNACK", []byte{0x20, 0x03, 0x00, 0x00, 0x00}, 0, false},
			{"SUBACK without codes", []byte{0x90, 0x03, 0x00, 0x01, 0x00}, 0, false},
			{"UNSUBACK mid 0", []byte{0xB0, 0x03, 0x00, 0x00, 0x00}, 0, false},
			{"SUBACK", []byte{0x90, 0x04, 0x00, 0x01, 0x00, 0x00}, 0, true},
			{"UNSUBACK", []byte{0xB0, 0x03, 0x00, 0x01, 0x00}, 0, true},
			{"PINGRESP", []byte{0xD0, 0x00}, 0, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, _ := connected5(t, addr, "rt", true, nil)
				if _, err := c.nc.Write(tc.raw); err != nil {
					t.Fatal(err)
				}
				if !tc.open {
					c.expectClosed5(tc.want)
					return
				}
				c.send(p5.NewControlPacket(p5.PINGREQ))
				if p := c.read(); p.Type != p5.PINGRESP {
					t.Fatalf("got %v, want PINGRESP: the connection kept", p)
				}
			})
		}
	})
}

// TestServerPacketsFromClient311: the same handlers for a 3.1.1 client (no
// properties): a PINGRESP, UNSUBACK or SUBACK from it is ignored.
func TestServerPacketsFromClient311(t *testing.T) {
	bothBrokers(t, nil, nil, func(t *testing.T, addr string) {
		c := connected(t, addr, "sp3", true)
		c.sendRaw([]byte{0xD0, 0x00, 0xB0, 0x02, 0x00, 0x01, 0x90, 0x03, 0x00, 0x01, 0x00})
		c.sync()
		c.sendRaw([]byte{0x90, 0x02, 0x00, 0x01}) // no reason codes
		c.expectClosed()
	})
}
