package broker_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	p5 "github.com/eclipse/paho.golang/packets"
)

// v5Client is a raw MQTT 5 connection built on the paho.golang packet codec,
// so tests control every packet and see every reason code and property.
type v5Client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dial5(t testing.TB, addr string) *v5Client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &v5Client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// connect5 is a CONNECT for id with Clean Start clean; mod may change it.
func connect5(id string, clean bool, mod func(*p5.Connect)) *p5.ControlPacket {
	cp := p5.NewControlPacket(p5.CONNECT)
	c := cp.Content.(*p5.Connect)
	c.ProtocolName, c.ProtocolVersion, c.ClientID, c.CleanStart, c.KeepAlive = "MQTT", 5, id, clean, 60
	c.Properties, c.WillProperties = &p5.Properties{}, &p5.Properties{}
	if mod != nil {
		mod(c)
	}
	return cp
}

func (c *v5Client) send(p *p5.ControlPacket) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.WriteTo(c.nc); err != nil {
		c.t.Fatalf("writing %s: %v", p, err)
	}
}

func (c *v5Client) readErr(timeout time.Duration) (*p5.ControlPacket, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	return p5.ReadPacket(c.br)
}

func (c *v5Client) read() *p5.ControlPacket {
	c.t.Helper()
	p, err := c.readErr(5 * time.Second)
	if err != nil {
		c.t.Fatalf("reading packet: %v", err)
	}
	return p
}

// connack sends cp and returns the CONNACK.
func (c *v5Client) connack(cp *p5.ControlPacket) *p5.Connack {
	c.t.Helper()
	c.send(cp)
	p := c.read()
	ack, ok := p.Content.(*p5.Connack)
	if !ok {
		c.t.Fatalf("got %v, want CONNACK", p)
	}
	return ack
}

// connected5 opens an MQTT 5 connection that was accepted.
func connected5(t testing.TB, addr, id string, clean bool, mod func(*p5.Connect)) (*v5Client, *p5.Connack) {
	t.Helper()
	c := dial5(t, addr)
	ack := c.connack(connect5(id, clean, mod))
	if ack.ReasonCode != 0 {
		t.Fatalf("CONNACK reason %#x, want 0", ack.ReasonCode)
	}
	return c, ack
}

func (c *v5Client) subscribe(mid uint16, opts ...p5.SubOptions) []byte {
	c.t.Helper()
	cp := p5.NewControlPacket(p5.SUBSCRIBE)
	s := cp.Content.(*p5.Subscribe)
	s.PacketID, s.Subscriptions, s.Properties = mid, opts, &p5.Properties{}
	c.send(cp)
	p := c.read()
	ack, ok := p.Content.(*p5.Suback)
	if !ok || ack.PacketID != mid {
		c.t.Fatalf("got %v, want SUBACK %d", p, mid)
	}
	return ack.Reasons
}

func publish5(topic string, qos byte, mid uint16, payload []byte, props *p5.Properties) *p5.ControlPacket {
	if props == nil {
		props = &p5.Properties{}
	}
	p := &p5.Publish{Topic: topic, QoS: qos, PacketID: mid, Payload: payload, Properties: props}
	return p.ToControlPacket()
}

// expectPublish reads the next packet, which must be a PUBLISH.
func (c *v5Client) expectPublish() *p5.Publish {
	c.t.Helper()
	p := c.read()
	pub, ok := p.Content.(*p5.Publish)
	if !ok {
		c.t.Fatalf("got %v, want PUBLISH", p)
	}
	return pub
}

// expectNothing asserts nothing arrives within d.
func (c *v5Client) expectNothing(d time.Duration) {
	c.t.Helper()
	if p, err := c.readErr(d); err == nil {
		c.t.Fatalf("got %v, want nothing", p)
	}
}

// disconnect sends DISCONNECT with reason and, when expiry is not nil, a
// Session Expiry Interval.
func (c *v5Client) disconnect(reason byte, expiry *uint32) {
	c.t.Helper()
	cp := p5.NewControlPacket(p5.DISCONNECT)
	d := cp.Content.(*p5.Disconnect)
	d.ReasonCode, d.Properties = reason, &p5.Properties{SessionExpiryInterval: expiry}
	c.send(cp)
	_, _ = c.readErr(2 * time.Second)
}

func u32(v uint32) *uint32 { return &v }
func u16(v uint16) *uint16 { return &v }
func b8(v byte) *byte      { return &v }
