package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/eclipse/paho.mqtt.golang/packets"
	mp "github.com/mochi-mqtt/server/v2/packets"
)

// The remote side of a bridge with bridge_protocol_version mqttv50: the
// bridge works on paho's 3.1.1 packet structs throughout, and this codec puts
// them on the wire as MQTT 5 with mochi's encoders (and reads MQTT 5 back into
// them), as Mosquitto's bridge context with protocol mqtt5 sends them: a
// CONNECT with no properties, SUBSCRIBEs with No Local, Retain As Published
// and retain handling 0, PUBLISHes and acknowledgements without properties.
// Message properties do not cross the bridge (its local side is 3.1.1).

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
type v5Codec struct{ recvMax uint16 }

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
		err = pk.ConnectEncode(&buf)
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
		if err := pk.PublishDecode(body); err != nil {
			return nil, err
		}
		p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
		p.Qos, p.Retain, p.Dup = fh.Qos, fh.Retain, fh.Dup
		p.TopicName, p.MessageID, p.Payload = pk.TopicName, pk.PacketID, pk.Payload
		return p, nil
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
