package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// maxRemainingLength is the largest remaining length MQTT can encode.
const maxRemainingLength = 268435455

// malformedError is a packet that cannot be decoded; the connection that sent it
// is closed, nothing else is affected.
type malformedError struct {
	msg  string
	tell bool // an MQTT 5 PUBLISH, SUBSCRIBE or UNSUBSCRIBE: DISCONNECT 0x81 first
	// protocol: a protocol error rather than a malformed packet (told
	// 0x82 when tell is set).
	protocol bool
}

func (e *malformedError) Error() string { return "malformed packet: " + e.msg }

// oversizeError is a packet over max_packet_size: the connection is closed,
// an MQTT 5 client told 0x95 (packet too large) first.
type oversizeError struct {
	size, limit int
	tell        bool
}

func (e *oversizeError) Error() string {
	return fmt.Sprintf("packet of %d bytes over max_packet_size %d", e.size, e.limit)
}

func malformed(format string, args ...any) error {
	return &malformedError{msg: fmt.Sprintf(format, args...)}
}

// maxConnectLength is the largest CONNECT MQTT 3.1.1 can carry: the fixed
// fields and five length-prefixed strings of at most 65,535 bytes each. A
// client that announces more before it is authenticated is cut off before
// anything is buffered.
const maxConnectLength = 12 + 5*(2+65535)

// readRules say what the connection's state allows the next packet to be.
type readRules struct {
	limit int // message_size_limit for PUBLISH payloads (0 = the protocol's)
	// maxPacket is max_packet_size (0 = none): Mosquitto's packet__read
	// refuses a packet whose first byte and body exceed it (it leaves the
	// remaining length's own bytes out) before reading the body.
	maxPacket int
	proto     byte // the client's protocol level (3 = MQTT 3.1), 0 before CONNECT
	first     bool // nothing was accepted yet: only a CONNECT may come
}

// oversizePublish is a PUBLISH whose payload exceeded message_size_limit. Its
// payload was read past without being kept; the state completes its flow
// (PUBACK, PUBREC) and drops it, as Mosquitto's handle__publish does.
type oversizePublish struct {
	*packets.PublishPacket
}

// readPacket reads one control packet as an established MQTT 3.1.1 connection
// with message_size_limit limit would (see readRules).
func readPacket(r *bufio.Reader, limit int) (packets.ControlPacket, error) {
	return readPacketRules(r, readRules{limit: limit, proto: 4})
}

// readPacketRules reads one control packet. The fixed header is decoded here
// so the size limit is enforced before any body is buffered; the body is then
// decoded by the paho packets codec, through a reader that turns its silent
// short reads into errors, and leftover bytes are refused.
func readPacketRules(r *bufio.Reader, rules readRules) (packets.ControlPacket, error) {
	limit := rules.limit
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	fh := packets.FixedHeader{
		MessageType: first >> 4,
		Dup:         first&0x08 != 0,
		Qos:         (first >> 1) & 0x03,
		Retain:      first&0x01 != 0,
	}
	flags := first & 0x0f
	if rules.first && fh.MessageType != packets.Connect {
		return nil, malformed("first packet is %s, not CONNECT", packets.PacketNames[fh.MessageType])
	}
	// The checks of Mosquitto's handlers run after packet__read has read
	// the remaining length and refused an oversize packet, so an oversize
	// packet is refused as oversize whatever its flags.
	var flagErr error
	switch fh.MessageType {
	case packets.Publish:
		if fh.Qos == 3 {
			// handle__publish refuses it: an MQTT 5 client hears 0x81.
			flagErr = &malformedError{msg: "PUBLISH with QoS 3", tell: rules.proto == 5}
		}
	case packets.Pubrel, packets.Subscribe, packets.Unsubscribe:
		// Mosquitto checks these flags for 3.1.1 only: a 3.1 client may set
		// DUP on a resent PUBREL.
		if flags != 0x02 && rules.proto != 3 {
			// handle__subscribe and handle__unsubscribe tell an MQTT 5
			// client (0x81); handle__pubrel does not.
			flagErr = &malformedError{msg: fmt.Sprintf("%s with flags %#x", packets.PacketNames[fh.MessageType], flags),
				tell: rules.proto == 5 && fh.MessageType != packets.Pubrel}
		}
	case packets.Connect, packets.Puback, packets.Pubrec, packets.Pubcomp, packets.Pingreq, packets.Disconnect:
		if flags != 0 {
			flagErr = malformed("%s with flags %#x", packets.PacketNames[fh.MessageType], flags)
		}
	case packets.Suback, packets.Unsuback, packets.Pingresp:
		// Server packets: handled (and ignored) by Mosquitto once the
		// client is connected; see serverPacket.
	case 0:
		// handle__packet's default case: a protocol error, which it tells
		// an MQTT 5 client.
		flagErr = &malformedError{msg: "reserved packet type 0", tell: rules.proto == 5, protocol: true}
	default:
		flagErr = malformed("unexpected packet type %d", fh.MessageType)
	}
	var rl, mult int
	for i := 0; ; i++ {
		if i == 4 {
			return nil, malformed("remaining length longer than 4 bytes")
		}
		d, err := r.ReadByte()
		if err != nil {
			return nil, noEOF(err)
		}
		rl |= int(d&0x7f) << (7 * uint(mult))
		mult++
		if d&0x80 == 0 {
			break
		}
	}
	fh.RemainingLength = rl
	if rules.maxPacket > 0 && rl+1 > rules.maxPacket {
		return nil, &oversizeError{size: rl + 1, limit: rules.maxPacket, tell: rules.proto == 5}
	}
	if flagErr != nil {
		return nil, flagErr
	}
	if fh.MessageType == packets.Connect && rl > maxConnectLength {
		return nil, malformed("CONNECT of %d bytes is longer than any valid CONNECT", rl)
	}
	switch fh.MessageType {
	case packets.Puback, packets.Pubrec, packets.Pubrel, packets.Pubcomp:
		if rl != 2 && (rules.proto != 5 || rl < 2) {
			return nil, malformed("%s with remaining length %d", packets.PacketNames[fh.MessageType], rl)
		}
	case packets.Pingreq, packets.Disconnect:
		if rl != 0 && (rules.proto != 5 || fh.MessageType == packets.Pingreq) {
			return nil, malformed("%s with remaining length %d", packets.PacketNames[fh.MessageType], rl)
		}
	}
	switch fh.MessageType {
	case packets.Suback, packets.Unsuback, packets.Pingresp:
		return serverPacket(r, fh, rules.proto)
	}
	var body []byte
	if fh.MessageType == packets.Publish && limit > 0 && rules.proto == 5 {
		return readV5Publish(r, fh, first, rl, limit)
	}
	if fh.MessageType == packets.Publish && limit > 0 {
		// Read the topic length first so the payload size is known before the
		// body is buffered.
		if rl < 2 {
			return nil, malformed("PUBLISH too short")
		}
		var tl [2]byte
		if _, err := io.ReadFull(r, tl[:]); err != nil {
			return nil, noEOF(err)
		}
		hdr := 2 + (int(tl[0])<<8 | int(tl[1]))
		if fh.Qos > 0 {
			hdr += 2
		}
		if rl-hdr > limit {
			return readOversize(r, fh, tl, rl)
		}
		body, err = readBody(r, rl-2, tl[:])
	} else {
		body, err = readBody(r, rl, nil)
	}
	if err != nil {
		return nil, err
	}
	if rules.proto == 5 {
		return decodeV5(fh, first, body)
	}
	if fh.MessageType == packets.Connect {
		if name, level, ok := connectVersion(body); ok && name == "MQTT" && level == 5 {
			return decodeV5(fh, first, body)
		}
	}
	cp, err := packets.NewControlPacketWithHeader(fh)
	if err != nil {
		return nil, malformed("%v", err)
	}
	if fh.MessageType == packets.Connect {
		// A protocol version this broker does not speak (MQTT 5 has fields the
		// 3.1.1 codec cannot parse) must still get CONNACK 1, so look at the
		// name and level before decoding the rest.
		if name, level, ok := connectVersion(body); ok && !supportedVersion(name, level) {
			return &packets.ConnectPacket{FixedHeader: fh, ProtocolName: name, ProtocolVersion: level}, nil
		}
	}
	sr := &strictReader{b: body}
	if err := cp.Unpack(sr); err != nil {
		return nil, malformed("%s: %v", packets.PacketNames[fh.MessageType], err)
	}
	if sr.short {
		return nil, malformed("%s truncated", packets.PacketNames[fh.MessageType])
	}
	if len(sr.b) != 0 {
		return nil, malformed("%s has %d trailing bytes", packets.PacketNames[fh.MessageType], len(sr.b))
	}
	return cp, nil
}

// readOversize reads the topic and packet id of a PUBLISH over
// message_size_limit and skips its payload without buffering it.
func readOversize(r *bufio.Reader, fh packets.FixedHeader, tl [2]byte, rl int) (packets.ControlPacket, error) {
	n := int(tl[0])<<8 | int(tl[1])
	hdr := 2 + n
	if fh.Qos > 0 {
		hdr += 2
	}
	if hdr > rl {
		return nil, malformed("PUBLISH topic longer than the packet")
	}
	var rest [2]byte
	topic := make([]byte, n)
	if _, err := io.ReadFull(r, topic); err != nil {
		return nil, noEOF(err)
	}
	pp, err := packets.NewControlPacketWithHeader(fh)
	if err != nil {
		return nil, malformed("%v", err)
	}
	p := pp.(*packets.PublishPacket)
	p.TopicName = string(topic)
	if fh.Qos > 0 {
		if _, err := io.ReadFull(r, rest[:]); err != nil {
			return nil, noEOF(err)
		}
		p.MessageID = uint16(rest[0])<<8 | uint16(rest[1])
	}
	if _, err := io.CopyN(io.Discard, r, int64(rl-hdr)); err != nil {
		return nil, noEOF(err)
	}
	return &oversizePublish{PublishPacket: p}, nil
}

// connectVersion extracts the protocol name and level from a CONNECT body.
func connectVersion(body []byte) (string, byte, bool) {
	if len(body) < 2 {
		return "", 0, false
	}
	n := int(body[0])<<8 | int(body[1])
	if len(body) < 2+n+1 {
		return "", 0, false
	}
	return string(body[2 : 2+n]), body[2+n], true
}

// supportedVersion reports MQTT 3.1 ("MQIsdp" level 3), 3.1.1 ("MQTT" level 4)
// and 5 ("MQTT" level 5).
// Other names are not MQTT at all and are handled as protocol errors.
func supportedVersion(name string, level byte) bool {
	switch name {
	case "MQIsdp":
		return level&0x7F == 3 // 0x83: a bridge's try_private
	case "MQTT":
		return level&0x7F == 4 || level == 5
	}
	return true
}

// readBody reads n bytes after prefix, growing the buffer only as data arrives so
// a forged length cannot make a connection allocate hundreds of megabytes.
func readBody(r io.Reader, n int, prefix []byte) ([]byte, error) {
	const chunk = 64 << 10
	if n+len(prefix) <= chunk {
		buf := make([]byte, len(prefix)+n)
		copy(buf, prefix)
		if _, err := io.ReadFull(r, buf[len(prefix):]); err != nil {
			return nil, noEOF(err)
		}
		return buf, nil
	}
	var bb bytes.Buffer
	bb.Grow(chunk)
	bb.Write(prefix)
	if _, err := io.CopyN(&bb, r, int64(n)); err != nil {
		return nil, noEOF(err)
	}
	return bb.Bytes(), nil
}

// noEOF reports a connection closed in the middle of a packet as unexpected.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// strictReader feeds a packet body to the paho codec. The codec reads fields with
// a single Read and ignores short counts; this reader refuses to return fewer
// bytes than asked, so a truncated field becomes an error instead of zeros.
type strictReader struct {
	b     []byte
	short bool
}

func (s *strictReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	if len(s.b) < len(p) {
		s.short = true
		s.b = nil
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

// outKind tells the writer goroutine which packet to encode.
type outKind uint8

const (
	outPublish outKind = iota + 1
	outPuback
	outPubrec
	outPubrel
	outPubcomp
	outConnack
	outSuback
	outUnsuback
	outPingresp
	outDisconnect // MQTT 5 only
)

// outPkt is one packet queued for a connection's writer. It is small and holds
// the stored payload by reference; encoding happens on the writer goroutine so
// the state owner never spends time on it.
type outPkt struct {
	kind    outKind
	qos     byte
	dup     bool
	retain  bool
	flag    bool // CONNACK session present
	code    byte // CONNACK return code
	mid     uint16
	topic   string
	payload []byte
	codes   []byte // SUBACK return codes, MQTT 5 UNSUBACK reason codes
	v5      bool   // the client speaks MQTT 5: encode with reason codes and properties
	raw     []byte // MQTT 5 PUBLISH or CONNACK property block (without its length)
}

// encoder reuses packet structs between writes on one connection.
type encoder struct {
	pub    packets.PublishPacket
	ack    packets.PubackPacket
	rec    packets.PubrecPacket
	rel    packets.PubrelPacket
	comp   packets.PubcompPacket
	connak packets.ConnackPacket
	suback packets.SubackPacket
	unsub  packets.UnsubackPacket
	ping   packets.PingrespPacket
	buf    bytes.Buffer
}

func (e *encoder) write(w io.Writer, p *outPkt) error {
	if p.v5 {
		return e.v5Out(w, p)
	}
	switch p.kind {
	case outPublish:
		e.pub = packets.PublishPacket{
			FixedHeader: packets.FixedHeader{MessageType: packets.Publish, Qos: p.qos, Dup: p.dup, Retain: p.retain},
			TopicName:   p.topic, MessageID: p.mid, Payload: p.payload,
		}
		return e.pub.Write(w)
	case outPuback:
		e.ack = packets.PubackPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Puback}, MessageID: p.mid}
		return e.ack.Write(w)
	case outPubrec:
		e.rec = packets.PubrecPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Pubrec}, MessageID: p.mid}
		return e.rec.Write(w)
	case outPubrel:
		e.rel = packets.PubrelPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Pubrel, Qos: 1}, MessageID: p.mid}
		return e.rel.Write(w)
	case outPubcomp:
		e.comp = packets.PubcompPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Pubcomp}, MessageID: p.mid}
		return e.comp.Write(w)
	case outConnack:
		e.connak = packets.ConnackPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Connack}, SessionPresent: p.flag, ReturnCode: p.code}
		return e.connak.Write(w)
	case outSuback:
		e.suback = packets.SubackPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Suback}, MessageID: p.mid, ReturnCodes: p.codes}
		return e.suback.Write(w)
	case outUnsuback:
		e.unsub = packets.UnsubackPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Unsuback}, MessageID: p.mid}
		return e.unsub.Write(w)
	case outPingresp:
		e.ping = packets.PingrespPacket{FixedHeader: packets.FixedHeader{MessageType: packets.Pingresp}}
		return e.ping.Write(w)
	}
	return fmt.Errorf("unknown outgoing packet kind %d", p.kind)
}
