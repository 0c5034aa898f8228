package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"time"

	packets5 "github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/scenarios"
)

// The lean publisher's MQTT 5 mode. It is the same publisher (window,
// batching, reconnects: leanpub.go) with the packets written and read by
// paho.golang's codec instead of paho.mqtt.golang's; only the encoding and
// the reason codes differ, so v5 and 3.1.1 runs measure the broker alike.

// leanV5 is what an MQTT 5 lean connection needs beyond 3.1.1's.
type leanV5 struct {
	props      *packets5.Properties // every PUBLISH's properties, built once
	topicAlias bool                 // topic_alias: send alias 1 once the broker allows aliases
	// OnAck replaces leanOptions.OnAck: each acknowledgement with its
	// reason code label.
	OnAck func(seq, t int64, reason string)
	// OnReason is told of a CONNACK's code and of a DISCONNECT from the broker.
	OnReason func(t int64, reason, msg string)
	// OnRefused is told of a publish the broker refused (PUBACK/PUBREC 0x80
	// and above): it is not acknowledged and not resent.
	OnRefused func(seq, t int64, reason string)
}

// newLeanV5 builds the v5 settings of a publisher group.
func newLeanV5(p scenarios.Publisher) *leanV5 {
	props := &packets5.Properties{ContentType: p.ContentType, ResponseTopic: p.ResponseTopic}
	if s := p.MessageExpirySeconds(); s > 0 {
		props.MessageExpiry = &s
	}
	keys := make([]string, 0, len(p.UserProperties))
	for k := range p.UserProperties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		props.User = append(props.User, packets5.User{Key: k, Value: p.UserProperties[k]})
	}
	return &leanV5{props: props, topicAlias: p.TopicAlias}
}

// leanIn is one packet from the broker, reduced to what the reader needs,
// the same for both codecs.
type leanIn struct {
	kind byte   // packets.Puback, Pubrec, Pubcomp, Pingresp, Disconnect (same numbers in both codecs)
	id   uint16 // packet id of an acknowledgement
	rc   byte   // MQTT 5 reason code (0 for 3.1.1)
	name string // packet name, for an unexpected packet
}

// readIn reads the next packet from the broker with the connection's codec.
func (c *leanClient) readIn(br *bufio.Reader) (leanIn, error) {
	if c.o.V5 == nil {
		pkt, err := packets.ReadPacket(br)
		if err != nil {
			return leanIn{}, err
		}
		switch p := pkt.(type) {
		case *packets.PubackPacket:
			return leanIn{kind: packets.Puback, id: p.MessageID}, nil
		case *packets.PubrecPacket:
			return leanIn{kind: packets.Pubrec, id: p.MessageID}, nil
		case *packets.PubcompPacket:
			return leanIn{kind: packets.Pubcomp, id: p.MessageID}, nil
		case *packets.PingrespPacket:
			return leanIn{kind: packets.Pingresp}, nil
		}
		return leanIn{name: packetName(pkt)}, nil
	}
	return c.r5.read(br)
}

// leanReader5 decodes the broker's packets with paho.golang's codec
// (Unpack) into packets it reuses. packets5.ReadPacket would allocate a
// packet, its properties and a buffer grown by at least 512 bytes for every
// acknowledgement (measured: 5.3 KB per QoS 2 message, six times 3.1.1's);
// here only the fixed header (type and remaining length) is read by hand,
// and the body is unpacked by the codec from a buffer kept for the
// connection's reader.
type leanReader5 struct {
	buf   bytes.Buffer
	props packets5.Properties
	ack   packets5.Puback
	rec   packets5.Pubrec
	comp  packets5.Pubcomp
	disc  packets5.Disconnect
}

// read reads one packet.
func (r *leanReader5) read(br *bufio.Reader) (leanIn, error) {
	first, err := br.ReadByte()
	if err != nil {
		return leanIn{}, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		b, err := br.ReadByte()
		if err != nil {
			return leanIn{}, err
		}
		n += int(b&0x7f) * mul
		if b&0x80 == 0 {
			break
		}
		if i == 3 {
			return leanIn{}, errors.New("malformed remaining length")
		}
		mul *= 128
	}
	r.buf.Reset()
	if _, err := io.CopyN(&r.buf, br, int64(n)); err != nil {
		return leanIn{}, err
	}
	r.props = packets5.Properties{}
	switch typ := first >> 4; typ {
	case packets5.PUBACK:
		r.ack = packets5.Puback{Properties: &r.props}
		err = r.ack.Unpack(&r.buf)
		return leanIn{kind: packets.Puback, id: r.ack.PacketID, rc: r.ack.ReasonCode}, err
	case packets5.PUBREC:
		r.rec = packets5.Pubrec{Properties: &r.props}
		err = r.rec.Unpack(&r.buf)
		return leanIn{kind: packets.Pubrec, id: r.rec.PacketID, rc: r.rec.ReasonCode}, err
	case packets5.PUBCOMP:
		r.comp = packets5.Pubcomp{Properties: &r.props}
		err = r.comp.Unpack(&r.buf)
		return leanIn{kind: packets.Pubcomp, id: r.comp.PacketID, rc: r.comp.ReasonCode}, err
	case packets5.PINGRESP:
		return leanIn{kind: packets.Pingresp}, nil
	case packets5.DISCONNECT:
		r.disc = packets5.Disconnect{Properties: &r.props}
		err = r.disc.Unpack(&r.buf)
		return leanIn{kind: packets.Disconnect, rc: r.disc.ReasonCode}, err
	default:
		cp := packets5.ControlPacket{FixedHeader: packets5.FixedHeader{Type: typ}}
		return leanIn{name: cp.PacketType()}, nil
	}
}

// connectV5 sends the MQTT 5 CONNECT and reads the CONNACK; it returns the
// broker's receive maximum and topic alias maximum.
func (c *leanClient) connectV5(nc net.Conn, br *bufio.Reader) (recvMax, aliasMax uint16, err error) {
	o := &c.o
	cp := &packets5.Connect{
		ProtocolName: "MQTT", ProtocolVersion: 5, ClientID: o.ClientID, CleanStart: o.Clean,
		KeepAlive: uint16(o.KeepAlive / time.Second), Properties: &packets5.Properties{},
	}
	if !o.Clean {
		never := ^uint32(0) // a persistent session, as 3.1.1's
		cp.Properties.SessionExpiryInterval = &never
	}
	if o.Username != "" {
		cp.UsernameFlag, cp.Username = true, o.Username
	}
	if o.HasPassword {
		cp.PasswordFlag, cp.Password = true, []byte(o.Password)
	}
	if w := o.Will; w != nil {
		cp.WillFlag, cp.WillTopic, cp.WillMessage = true, w.Topic, []byte(w.Payload)
		cp.WillQOS, cp.WillRetain, cp.WillProperties = w.QoS, w.Retain, &packets5.Properties{}
	}
	ccp := packets5.NewControlPacket(packets5.CONNECT)
	ccp.Content = cp
	if _, err := ccp.WriteTo(nc); err != nil {
		return 0, 0, fmt.Errorf("sending CONNECT: %w", err)
	}
	in, err := packets5.ReadPacket(br)
	if err != nil {
		return 0, 0, fmt.Errorf("reading CONNACK: %w", err)
	}
	ca, ok := in.Content.(*packets5.Connack)
	if !ok {
		return 0, 0, fmt.Errorf("expected CONNACK, got %s", in.PacketType())
	}
	if o.V5.OnReason != nil {
		o.V5.OnReason(o.Since(), ReasonLabel(rcConnack, ca.ReasonCode), o.ClientID)
	}
	if ca.ReasonCode >= 0x80 {
		return 0, 0, fmt.Errorf("broker refused: %s (CONNACK 0x%02X)", ReasonName(rcConnack, ca.ReasonCode), ca.ReasonCode)
	}
	recvMax = 65535
	if p := ca.Properties; p != nil {
		if p.ReceiveMaximum != nil {
			recvMax = *p.ReceiveMaximum
		}
		if p.TopicAliasMaximum != nil {
			aliasMax = *p.TopicAliasMaximum
		}
	}
	return recvMax, aliasMax, nil
}

// leanWriter5 holds the packets the v5 writer reuses, so a PUBLISH costs
// what paho.golang's codec allocates and nothing more.
type leanWriter5 struct {
	pub     packets5.Publish
	cp      packets5.ControlPacket
	aliased bool // the topic went out with its alias on this connection
	alias   bool // aliases are in use on this connection
	props   packets5.Properties
	w311    func(io.Writer, leanItem) error // the 3.1.1 codec for the packets without properties
}

// newWriter5 prepares a connection's v5 writer state.
func (c *leanClient) newWriter5(cn *leanConn) *leanWriter5 {
	w := &leanWriter5{props: *c.o.V5.props}
	if c.o.V5.topicAlias && cn.aliasMax > 0 {
		one := uint16(1)
		w.props.TopicAlias = &one
		w.alias = true
	}
	w.pub = packets5.Publish{Topic: c.o.Topic, QoS: c.o.QoS, Retain: c.o.Retain, Properties: &w.props}
	w.cp = packets5.ControlPacket{FixedHeader: packets5.FixedHeader{Type: packets5.PUBLISH}, Content: &w.pub}
	w.w311 = func(wr io.Writer, it leanItem) error { return c.writeItem(wr, nil, it) }
	return w
}

// writeItem5 encodes one packet with paho.golang's codec.
func (w *leanWriter5) writeItem5(bw io.Writer, it leanItem) error {
	var err error
	switch it.kind {
	case packets.Publish:
		w.pub.PacketID, w.pub.Duplicate, w.pub.Payload = it.id, it.dup, it.payload
		if w.alias && w.aliased {
			w.pub.Topic = "" // the alias alone names it
		}
		_, err = w.cp.WriteTo(bw)
		w.pub.Payload = nil
		w.aliased = w.alias
	default:
		// PUBREL, PINGREQ and DISCONNECT with reason code success and no
		// properties are the same bytes in MQTT 5 as in 3.1.1 (MQTT 5
		// 3.6.2.1, 3.14.2.1: the code may be left out), and paho.mqtt.golang's
		// codec writes them with a third of paho.golang's allocations.
		err = w.w311(bw, it)
	}
	return err
}
