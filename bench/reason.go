package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// MQTT 5 reason codes, named as the standard (and Mosquitto's
// mosquitto_reason_string) name them, with what each means for a run in plain
// words. This is the one table: the lean publisher and the v5 subscriber
// label codes with it, Summarize counts the labels and reports explain them.
var reasonNames = map[byte]struct{ name, meaning string }{
	0x00: {"success", "accepted"},
	0x01: {"granted QoS 1", "the subscription was granted at QoS 1"},
	0x02: {"granted QoS 2", "the subscription was granted at QoS 2"},
	0x04: {"disconnect with will message", "the client asked for its will to be published"},
	0x10: {"no matching subscribers", "nobody was subscribed when they arrived"},
	0x11: {"no subscription existed", "there was no such subscription"},
	0x18: {"continue authentication", "authentication goes on"},
	0x19: {"re-authenticate", "the client asked to authenticate again"},
	0x80: {"unspecified error", "the broker refused without saying why"},
	0x81: {"malformed packet", "the broker could not parse the packet"},
	0x82: {"protocol error", "the broker saw a breach of the protocol"},
	0x83: {"implementation specific error", "the broker refused for a reason of its own"},
	0x84: {"unsupported protocol version", "the broker does not speak this MQTT version"},
	0x85: {"client identifier not valid", "the broker refused the client id"},
	0x86: {"bad user name or password", "the credentials were refused"},
	0x87: {"not authorized", "the broker's ACL or authentication did not allow it"},
	0x88: {"server unavailable", "the broker could not serve the client"},
	0x89: {"server busy", "the broker was too busy"},
	0x8A: {"banned", "the client is banned"},
	0x8B: {"server shutting down", "the broker was stopping"},
	0x8C: {"bad authentication method", "the authentication method was refused"},
	0x8D: {"keep alive timeout", "the broker heard nothing within the keepalive"},
	0x8E: {"session taken over", "another connection with the same client id took the session"},
	0x8F: {"topic filter invalid", "the broker refused the topic filter"},
	0x90: {"topic name invalid", "the broker refused the topic name"},
	0x91: {"packet identifier in use", "the packet id was already in use"},
	0x92: {"packet identifier not found", "the broker did not know the packet id (its state was lost)"},
	0x93: {"receive maximum exceeded", "more QoS 1/2 publishes were in flight than the broker allows"},
	0x94: {"topic alias invalid", "the broker refused the topic alias"},
	0x95: {"packet too large", "the packet exceeded the broker's maximum packet size"},
	0x96: {"message rate too high", "the broker found the message rate too high"},
	0x97: {"quota exceeded", "a quota of the broker was exceeded"},
	0x98: {"administrative action", "an administrator disconnected the client"},
	0x99: {"payload format invalid", "the payload did not match its declared format"},
	0x9A: {"retain not supported", "the broker does not support retained messages"},
	0x9B: {"QoS not supported", "the broker does not support this QoS"},
	0x9C: {"use another server", "the broker sent the client elsewhere"},
	0x9D: {"server moved", "the broker has moved"},
	0x9E: {"shared subscriptions not supported", "the broker does not support shared subscriptions"},
	0x9F: {"connection rate exceeded", "the client connected too often"},
	0xA0: {"maximum connect time", "the connection lasted as long as the broker allows"},
	0xA1: {"subscription identifiers not supported", "the broker does not support subscription identifiers"},
	0xA2: {"wildcard subscriptions not supported", "the broker does not support wildcard subscriptions"},
}

// Packet names used in reason labels.
const (
	rcConnack    = "connack"
	rcPuback     = "puback"
	rcPubrec     = "pubrec"
	rcPubcomp    = "pubcomp"
	rcSuback     = "suback"
	rcDisconnect = "disconnect"
)

// ackLabels holds the labels of the acknowledgements, built once, so the
// lean publisher's reader labels an ack without allocating.
var ackLabels = func() map[string]*[256]string {
	m := map[string]*[256]string{}
	for _, p := range []string{rcConnack, rcPuback, rcPubrec, rcPubcomp, rcSuback, rcDisconnect} {
		var a [256]string
		for c := range a {
			a[c] = p + " 0x" + strings.ToUpper(fmt.Sprintf("%02x", c))
		}
		m[p] = &a
	}
	return m
}()

// ReasonLabel is the label of code on packet ("puback 0x10"), the form
// events and the summary carry.
func ReasonLabel(packet string, code byte) string {
	if a := ackLabels[packet]; a != nil {
		return a[code]
	}
	return fmt.Sprintf("%s 0x%02X", packet, code)
}

// ParseReason splits a label into its packet and code.
func ParseReason(label string) (packet string, code byte, ok bool) {
	packet, hex, found := strings.Cut(label, " 0x")
	if !found {
		return "", 0, false
	}
	v, err := strconv.ParseUint(hex, 16, 8)
	if err != nil {
		return "", 0, false
	}
	return packet, byte(v), true
}

// ReasonName names a code as the standard does; on a SUBACK 0x00 is
// "granted QoS 0", elsewhere "success".
func ReasonName(packet string, code byte) string {
	if code == 0 && packet == rcSuback {
		return "granted QoS 0"
	}
	if code == 0 && packet == rcDisconnect {
		return "normal disconnection"
	}
	if r, ok := reasonNames[code]; ok {
		return r.name
	}
	return "unknown reason code"
}

// ReasonMeaning says in plain words what code on packet tells about a run.
func ReasonMeaning(packet string, code byte) string {
	if code == 0 && packet == rcSuback {
		return "the subscription was granted at QoS 0"
	}
	if code == 0 && packet == rcDisconnect {
		return "the broker closed the connection normally"
	}
	if r, ok := reasonNames[code]; ok {
		return r.meaning
	}
	return "a code the MQTT 5 standard does not define"
}

// ReasonFailed reports whether code is a failure (0x80 and above).
func ReasonFailed(code byte) bool { return code >= 0x80 }
