package broker

import (
	"bufio"
	"bytes"

	"github.com/eclipse/paho.mqtt.golang/packets"
	mp "github.com/mochi-mqtt/server/v2/packets"
)

// ignoredPacket is a packet only a server should send that Mosquitto 2.0.11
// reads from a connected client and ignores (its client library's
// handle__pingresp, handle__suback and handle__unsuback, compiled into the
// broker): the connection stays open, only the keepalive notices it.
type ignoredPacket struct {
	packets.PingreqPacket // any ControlPacket: never written
}

// serverPacket reads a PINGRESP, SUBACK or UNSUBACK from a client with the
// checks those handlers make: a packet identifier, not 0; MQTT 5 properties
// that parse; a SUBACK with at least one reason code (the Debian 2.0.11 under
// test refuses one without). A failed check closes the connection without a
// DISCONNECT, as the handlers return straight to their caller.
func serverPacket(r *bufio.Reader, fh packets.FixedHeader, proto byte) (packets.ControlPacket, error) {
	body, err := readBody(r, fh.RemainingLength, nil)
	if err != nil {
		return nil, err
	}
	name := packets.PacketNames[fh.MessageType]
	if fh.MessageType == packets.Pingresp {
		return &ignoredPacket{}, nil
	}
	if len(body) < 2 {
		return nil, malformed("%s truncated", name)
	}
	if body[0] == 0 && body[1] == 0 {
		return nil, &malformedError{msg: name + " with packet identifier 0", protocol: true}
	}
	rest := body[2:]
	if proto == 5 {
		kind := byte(mp.Suback)
		if fh.MessageType == packets.Unsuback {
			kind = mp.Unsuback
		}
		var p mp.Properties
		buf := bytes.NewBuffer(rest)
		if _, err := p.Decode(kind, buf); err != nil {
			return nil, malformed("%s properties: %v", name, err)
		}
		rest = buf.Bytes()
	}
	if fh.MessageType == packets.Suback && len(rest) == 0 {
		return nil, &malformedError{msg: "SUBACK without reason codes", protocol: true}
	}
	return &ignoredPacket{}, nil
}
