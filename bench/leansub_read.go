package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	packets5 "github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqbench/mqbench/scenarios"
)

// leanSubIn is one packet from the broker as the lean subscriber's reader
// sees it, the same for both codecs.
type leanSubIn struct {
	kind    byte // packets.Publish, Pubrel, Suback, Connack, Pingresp, Disconnect (same numbers in both codecs)
	id      uint16
	rc      byte   // MQTT 5 reason code (CONNACK, DISCONNECT)
	codes   []byte // SUBACK return codes
	name    string // packet name, for an unexpected packet
	qos     byte
	dup     bool
	retain  bool
	topic   string
	payload []byte
	props   *packets5.Properties // MQTT 5 PUBLISH properties (reused: valid until the next read)
}

// leanDelivery is a delivery as the mqtt.Message the subscriber's
// accounting (consume) and ack-pace queue take; Ack sends its
// acknowledgement on the connection it came on.
type leanDelivery struct {
	in  leanSubIn
	cn  *leanSubConn
	s   *subscriber
	pub *paho.Publish // MQTT 5: for checkProps, nil on 3.1.1
}

func (d *leanDelivery) Duplicate() bool   { return d.in.dup }
func (d *leanDelivery) Qos() byte         { return d.in.qos }
func (d *leanDelivery) Retained() bool    { return d.in.retain }
func (d *leanDelivery) Topic() string     { return d.in.topic }
func (d *leanDelivery) MessageID() uint16 { return d.in.id }
func (d *leanDelivery) Payload() []byte   { return d.in.payload }

// Ack releases the acknowledgement (ack pace mode); on a connection that is
// gone it is dropped, and the broker resends.
func (d *leanDelivery) Ack() {
	if d.in.qos == 2 {
		d.s.lean.markReceived(d.in.id)
	}
	if err := d.cn.acknowledge(d.in.qos, d.in.id, true, d.s.e.rec.Since); err != nil {
		d.cn.fail(fmt.Errorf("writing to broker: %w", err))
	}
}

// leanRead reads one connection until it ends: deliveries are recorded and
// acknowledged, QoS 2 flows completed, acknowledgements flushed whenever the
// read buffer is empty (one write per burst).
func (s *subscriber) leanRead(cn *leanSubConn, r5 *leanSubReader5) {
	e := s.e
	since := e.rec.Since
	inline := leanInline(s.cfg)
	unexpected := 0
	var err error
	for {
		if cn.br.Buffered() == 0 {
			if err = cn.flush(since); err != nil {
				err = fmt.Errorf("writing to broker: %w", err)
				break
			}
		}
		var in leanSubIn
		if r5 != nil {
			in, err = r5.read(cn.br)
		} else {
			in, err = readSub311(cn.br)
		}
		if err != nil {
			err = fmt.Errorf("reading from broker: %w", err)
			break
		}
		switch in.kind {
		case packets.Publish:
			d := &leanDelivery{in: in, cn: cn, s: s}
			if r5 != nil {
				d.pub = paho.PublishFromPacketPublish(&packets5.Publish{Topic: in.topic, QoS: in.qos, Payload: in.payload, Properties: in.props})
				s.checkProps(d.pub)
			}
			if in.qos == 2 && s.lean.received(in.id) {
				err = cn.acknowledge(2, in.id, false, since) // sent again: consumed already
				break
			}
			if !inline {
				s.handler(nil, d) // queued; the consumer acknowledges at its pace
				continue
			}
			s.consume(d)
			if in.qos == 2 {
				s.lean.markReceived(in.id)
			}
			if s.cfg.PaceMode == "block" {
				e.pause(s.cfg.Pace.D())
			}
			err = cn.acknowledge(in.qos, in.id, false, since)
		case packets.Pubrel:
			s.lean.released(in.id)
			cn.wmu.Lock()
			cn.comp.MessageID = in.id
			err = cn.comp.Write(cn.bw)
			cn.wmu.Unlock()
		case packets.Suback:
			select {
			case cn.suback <- in.codes:
			default:
			}
		case packets.Pingresp:
			cn.pingSent.Store(0)
		case packets.Disconnect:
			e.emit(Event{T: since(), Type: EvReason, Client: s.id, Reason: ReasonLabel(rcDisconnect, in.rc)})
			err = fmt.Errorf("broker sent DISCONNECT 0x%02X (%s)", in.rc, ReasonName(rcDisconnect, in.rc))
		default:
			if unexpected++; unexpected == 1 {
				e.note(LevelInfo, fmt.Sprintf("subscriber %s ignored an unexpected %s from the broker", s.id, in.name))
			}
		}
		if err != nil {
			if in.kind != packets.Disconnect {
				err = fmt.Errorf("writing to broker: %w", err)
			}
			break
		}
	}
	cn.fail(err)
	s.leanLost(cn, cn.err)
}

// leanInline says whether a lean subscriber consumes and acknowledges each
// delivery on its reader (pace 0, or pace_mode block, whose pause then holds
// the reader as paho's blocking handler does) rather than through the
// subscriber's queue and consumeLoop (ack pace mode with a pace).
func leanInline(cfg scenarios.Subscriber) bool {
	return cfg.PaceMode == "block" || cfg.Pace.D() <= 0
}

// readSub311 reads one packet with paho.mqtt.golang's codec.
func readSub311(br *bufio.Reader) (leanSubIn, error) {
	pkt, err := packets.ReadPacket(br)
	if err != nil {
		return leanSubIn{}, err
	}
	switch p := pkt.(type) {
	case *packets.PublishPacket:
		return leanSubIn{kind: packets.Publish, id: p.MessageID, qos: p.Qos, dup: p.Dup, retain: p.Retain, topic: p.TopicName, payload: p.Payload}, nil
	case *packets.PubrelPacket:
		return leanSubIn{kind: packets.Pubrel, id: p.MessageID}, nil
	case *packets.SubackPacket:
		return leanSubIn{kind: packets.Suback, id: p.MessageID, codes: p.ReturnCodes}, nil
	case *packets.PingrespPacket:
		return leanSubIn{kind: packets.Pingresp}, nil
	}
	return leanSubIn{name: packetName(pkt)}, nil
}

// leanSubReader5 decodes the broker's MQTT 5 packets with paho.golang's
// codec (Unpack) from one buffer kept for the connection, as the lean
// publisher's leanReader5 does for acknowledgements: packets5.ReadPacket
// would allocate a packet, its properties and a fresh buffer per delivery.
type leanSubReader5 struct {
	buf   bytes.Buffer
	props packets5.Properties
	pub   packets5.Publish
	rel   packets5.Pubrel
	sa    packets5.Suback
	ca    packets5.Connack
	disc  packets5.Disconnect
}

// read reads one packet; a PUBLISH's properties are valid until the next read.
func (r *leanSubReader5) read(br *bufio.Reader) (leanSubIn, error) {
	first, err := br.ReadByte()
	if err != nil {
		return leanSubIn{}, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		b, err := br.ReadByte()
		if err != nil {
			return leanSubIn{}, err
		}
		n += int(b&0x7f) * mul
		if b&0x80 == 0 {
			break
		}
		if i == 3 {
			return leanSubIn{}, errors.New("malformed remaining length")
		}
		mul *= 128
	}
	r.buf.Reset()
	if _, err := io.CopyN(&r.buf, br, int64(n)); err != nil {
		return leanSubIn{}, err
	}
	r.props = packets5.Properties{}
	switch typ := first >> 4; typ {
	case packets5.PUBLISH:
		r.pub = packets5.Publish{Properties: &r.props, QoS: (first >> 1) & 3, Duplicate: first&8 != 0, Retain: first&1 != 0}
		err = r.pub.Unpack(&r.buf) // copies the payload out of buf
		return leanSubIn{kind: packets.Publish, id: r.pub.PacketID, qos: r.pub.QoS, dup: r.pub.Duplicate, retain: r.pub.Retain,
			topic: r.pub.Topic, payload: r.pub.Payload, props: &r.props}, err
	case packets5.PUBREL:
		r.rel = packets5.Pubrel{Properties: &r.props}
		err = r.rel.Unpack(&r.buf)
		return leanSubIn{kind: packets.Pubrel, id: r.rel.PacketID, rc: r.rel.ReasonCode}, err
	case packets5.SUBACK:
		r.sa = packets5.Suback{Properties: &r.props}
		err = r.sa.Unpack(&r.buf)
		return leanSubIn{kind: packets.Suback, id: r.sa.PacketID, codes: append([]byte(nil), r.sa.Reasons...)}, err
	case packets5.CONNACK:
		r.ca = packets5.Connack{Properties: &r.props}
		err = r.ca.Unpack(&r.buf)
		return leanSubIn{kind: packets.Connack, rc: r.ca.ReasonCode, name: "CONNACK"}, err
	case packets5.PINGRESP:
		return leanSubIn{kind: packets.Pingresp}, nil
	case packets5.DISCONNECT:
		r.disc = packets5.Disconnect{Properties: &r.props}
		err = r.disc.Unpack(&r.buf)
		return leanSubIn{kind: packets.Disconnect, rc: r.disc.ReasonCode}, err
	default:
		cp := packets5.ControlPacket{FixedHeader: packets5.FixedHeader{Type: typ}}
		return leanSubIn{name: cp.PacketType()}, nil
	}
}
