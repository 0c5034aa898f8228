package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/eclipse/paho.mqtt.golang/packets"
	mp "github.com/mochi-mqtt/server/v2/packets"
)

// Both sides of a bridge with bridge_protocol_version mqttv50: the bridge
// works on paho's 3.1.1 packet structs throughout, and this codec puts them on
// the wire as MQTT 5 with mochi's encoders (and reads MQTT 5 back into them),
// as Mosquitto's bridge context with protocol mqtt5 sends them: a CONNECT
// with a Receive Maximum only, SUBSCRIBEs with No Local, Retain As Published
// and retain handling 0, acknowledgements without properties. A PUBLISH
// keeps its property block as read (publish5), so a message's properties
// cross the bridge in both directions as they do in Mosquitto, whose one
// bridge context speaks MQTT 5 to both brokers; the local broker counts the
// message expiry interval down when it sends the message on.

// publish5 is a PUBLISH with its MQTT 5 property block, raw, which the
// bridge forwards untouched.
type publish5 struct {
	*packets.PublishPacket
	props []byte
}

// remoteCodec writes and reads the remote side's packets.
type remoteCodec interface {
	write(w io.Writer, p packets.ControlPacket) error
	read(r *bufio.Reader) (packets.ControlPacket, error)
}

type v3Codec struct{}

func (v3Codec) write(w io.Writer, p packets.ControlPacket) error { return p.Write(w) }
func (v3Codec) read(r *bufio.Reader) (packets.ControlPacket, error) {
	return packets.ReadPacket(r)
}

// v5Codec's recvMax is the Receive Maximum its CONNECT carries: Mosquitto's
// send__connect always sends msgs_in.inflight_maximum (max_inflight_messages).
// sessionExpiry is the local side's Session Expiry Interval: the bridge's
// local session lives as long as the bridge (Mosquitto's bridge context is
// never expired), so the local CONNECT asks for "never".
type v5Codec struct {
	recvMax       uint16
	sessionExpiry uint32
}

func (c v5Codec) write(w io.Writer, p packets.ControlPacket) error {
	var buf bytes.Buffer
	pk := mp.Packet{ProtocolVersion: 5}
	var err error
	switch p := p.(type) {
	case *packets.ConnectPacket:
		pk.FixedHeader = mp.FixedHeader{Type: mp.Connect}
		pk.Connect = mp.ConnectParams{ProtocolName: []byte("MQTT"), Clean: p.CleanSession, Keepalive: p.Keepalive,
			ClientIdentifier: p.ClientIdentifier, UsernameFlag: p.UsernameFlag, Username: []byte(p.Username),
			PasswordFlag: p.PasswordFlag, Password: p.Password, WillFlag: p.WillFlag, WillQos: p.WillQos,
			WillRetain: p.WillRetain, WillTopic: p.WillTopic, WillPayload: p.WillMessage}
		pk.Properties.ReceiveMaximum = c.recvMax
		if c.sessionExpiry > 0 {
			pk.Properties.SessionExpiryInterval, pk.Properties.SessionExpiryIntervalFlag = c.sessionExpiry, true
		}
		err = pk.ConnectEncode(&buf)
	case *publish5:
		return writePublish5(w, p)
	case *packets.PublishPacket:
		pk.FixedHeader = mp.FixedHeader{Type: mp.Publish, Qos: p.Qos, Retain: p.Retain, Dup: p.Dup}
		pk.TopicName, pk.PacketID, pk.Payload = p.TopicName, p.MessageID, p.Payload
		err = pk.PublishEncode(&buf)
	case *packets.PubackPacket:
		pk.FixedHeader, pk.PacketID = mp.FixedHeader{Type: mp.Puback}, p.MessageID
		err = pk.PubackEncode(&buf)
	case *packets.PubrecPacket:
		pk.FixedHeader, pk.PacketID = mp.FixedHeader{Type: mp.Pubrec}, p.MessageID
		err = pk.PubrecEncode(&buf)
	case *packets.PubrelPacket:
		pk.FixedHeader, pk.PacketID = mp.FixedHeader{Type: mp.Pubrel, Qos: 1}, p.MessageID
		err = pk.PubrelEncode(&buf)
	case *packets.PubcompPacket:
		pk.FixedHeader, pk.PacketID = mp.FixedHeader{Type: mp.Pubcomp}, p.MessageID
		err = pk.PubcompEncode(&buf)
	case *packets.SubscribePacket:
		pk.FixedHeader, pk.PacketID = mp.FixedHeader{Type: mp.Subscribe, Qos: 1}, p.MessageID
		for i, f := range p.Topics {
			pk.Filters = append(pk.Filters, mp.Subscription{Filter: f, Qos: p.Qoss[i], NoLocal: true, RetainAsPublished: true})
		}
		err = pk.SubscribeEncode(&buf)
	case *packets.UnsubscribePacket:
		pk.FixedHeader, pk.PacketID = mp.FixedHeader{Type: mp.Unsubscribe, Qos: 1}, p.MessageID
		for _, f := range p.Topics {
			pk.Filters = append(pk.Filters, mp.Subscription{Filter: f})
		}
		err = pk.UnsubscribeEncode(&buf)
	case *packets.PingreqPacket:
		pk.FixedHeader = mp.FixedHeader{Type: mp.Pingreq}
		err = pk.PingreqEncode(&buf)
	case *packets.PingrespPacket:
		pk.FixedHeader = mp.FixedHeader{Type: mp.Pingresp}
		err = pk.PingrespEncode(&buf)
	case *packets.DisconnectPacket:
		pk.FixedHeader = mp.FixedHeader{Type: mp.Disconnect}
		err = pk.DisconnectEncode(&buf)
	default:
		return fmt.Errorf("bridge: no MQTT 5 encoding for %s", p.String())
	}
	if err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// maxBridgeRemotePacket bounds what the remote may send in one packet, so a
// forged remaining length cannot make the bridge allocate beyond MQTT's limit.
const maxBridgeRemotePacket = 268435455

func (v5Codec) read(r *bufio.Reader) (packets.ControlPacket, error) {
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		n += int(b&0x7F) * mul
		if b&0x80 == 0 {
			break
		}
		if mul *= 128; i == 3 {
			return nil, fmt.Errorf("malformed remaining length")
		}
	}
	if n > maxBridgeRemotePacket {
		return nil, fmt.Errorf("packet of %d bytes", n)
	}
	body, err := readBody(r, n, nil)
	if err != nil {
		return nil, err
	}
	return decodeRemoteV5(first, body)
}

func decodeRemoteV5(first byte, body []byte) (cp packets.ControlPacket, err error) {
	defer func() {
		if r := recover(); r != nil { // mochi indexes past the end of some truncated packets
			cp, err = nil, fmt.Errorf("malformed packet from the remote")
		}
	}()
	var fh mp.FixedHeader
	if err := fh.Decode(first); err != nil {
		return nil, err
	}
	fh.Remaining = len(body)
	pk := &mp.Packet{FixedHeader: fh, ProtocolVersion: 5}
	switch fh.Type {
	case mp.Connack:
		if err := pk.ConnackDecode(body); err != nil {
			return nil, err
		}
		return &packets.ConnackPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Connack},
			SessionPresent: pk.SessionPresent, ReturnCode: pk.ReasonCode}, nil
	case mp.Publish:
		return decodePublish5(fh, body)
	case mp.Puback, mp.Pubrec, mp.Pubrel, mp.Pubcomp:
		if err := pk.PubackDecode(body); err != nil { // one decoder serves all four
			return nil, err
		}
		switch fh.Type {
		case mp.Puback:
			return &packets.PubackPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Puback}, MessageID: pk.PacketID}, nil
		case mp.Pubrec:
			return &packets.PubrecPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Pubrec}, MessageID: pk.PacketID}, nil
		case mp.Pubrel:
			return &packets.PubrelPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Pubrel, Qos: 1}, MessageID: pk.PacketID}, nil
		}
		return &packets.PubcompPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Pubcomp}, MessageID: pk.PacketID}, nil
	case mp.Suback:
		return &packets.SubackPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Suback}}, nil
	case mp.Unsuback:
		return &packets.UnsubackPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Unsuback}}, nil
	case mp.Pingreq:
		return &packets.PingreqPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Pingreq}}, nil
	case mp.Pingresp:
		return &packets.PingrespPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Pingresp}}, nil
	case mp.Disconnect:
		return &packets.DisconnectPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Disconnect}}, nil
	}
	return nil, fmt.Errorf("unexpected packet type %d from the remote", fh.Type)
}

// decodePublish5 reads an MQTT 5 PUBLISH body in one pass: topic, packet
// id, the property block kept raw (the bridge forwards it untouched, and the
// broker that receives it checks it as it checks any client's), payload.
func decodePublish5(fh mp.FixedHeader, body []byte) (*publish5, error) {
	bad := fmt.Errorf("malformed PUBLISH from the remote")
	if len(body) < 2 {
		return nil, bad
	}
	i := 2 + (int(body[0])<<8 | int(body[1]))
	if fh.Qos > 0 {
		i += 2
	}
	if i > len(body) {
		return nil, bad
	}
	n, used, err := readVarint(body[i:])
	if err != nil || i+used+n > len(body) {
		return nil, bad
	}
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Qos, p.Retain, p.Dup = fh.Qos, fh.Retain, fh.Dup
	p.TopicName = string(body[2 : 2+(int(body[0])<<8|int(body[1]))])
	if fh.Qos > 0 {
		p.MessageID = uint16(body[i-2])<<8 | uint16(body[i-1])
	}
	p.Payload = body[i+used+n:]
	return &publish5{PublishPacket: p, props: body[i+used : i+used+n]}, nil
}

// readVarint reads an MQTT variable byte integer at the start of b.
func readVarint(b []byte) (n, used int, err error) {
	mul := 1
	for i := 0; i < 4 && i < len(b); i++ {
		n += int(b[i]&0x7F) * mul
		if b[i]&0x80 == 0 {
			return n, i + 1, nil
		}
		mul *= 128
	}
	return 0, 0, fmt.Errorf("malformed variable byte integer")
}

// writePublish5 writes p as an MQTT 5 PUBLISH carrying its property block.
func writePublish5(w io.Writer, p *publish5) error {
	b := appendPublish5Head(nil, p.Qos, p.Dup, p.Retain, p.TopicName, p.MessageID, p.props, len(p.Payload))
	_, err := w.Write(append(b, p.Payload...))
	return err
}
