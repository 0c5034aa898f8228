package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MQTT 5 property identifiers, as far as checkPublishProps needs them.
const (
	propPayloadFormat   = 1
	propMessageExpiry   = 2
	propContentType     = 3
	propResponseTopic   = 8
	propCorrelationData = 9
	propSubscriptionID  = 11
	propTopicAlias      = 35
	propUserProperty    = 38
)

// propKind is how a property's value is encoded on the wire.
type propKind uint8

const (
	propByte propKind = iota + 1
	propU16
	propU32
	propVarint
	propString
	propBinary
	propStringPair
)

// propKinds lists every identifier MQTT 5 defines; anything else is malformed.
var propKinds = map[uint32]propKind{
	1: propByte, 2: propU32, 3: propString, 8: propString, 9: propBinary, 11: propVarint,
	17: propU32, 18: propString, 19: propU16, 21: propString, 22: propBinary, 23: propByte,
	24: propU32, 25: propByte, 26: propString, 28: propString, 31: propString, 33: propU16,
	34: propU16, 35: propU16, 36: propByte, 37: propByte, 38: propStringPair, 39: propU32,
	40: propByte, 41: propByte, 42: propByte,
}

// publishProps are the identifiers allowed on a PUBLISH, the command
// Mosquitto checks stored message properties against.
var publishProps = map[uint32]bool{
	propPayloadFormat: true, propMessageExpiry: true, propContentType: true, propResponseTopic: true,
	propCorrelationData: true, propSubscriptionID: true, propTopicAlias: true, propUserProperty: true,
}

// checkPublishProps decides whether Mosquitto 2.0.11 accepts b, the property
// bytes of a MSG_STORE or CLIENT_MSG chunk, when it loads the file: it refuses
// the whole file otherwise, so the bundled broker must too. The rules are its
// loader's: a property length varint, then properties until that length is
// used up (running past it reads on until the bytes run out, which fails),
// each well formed, allowed on a PUBLISH and not repeated (user properties
// excepted); strings must be valid MQTT UTF-8. Bytes after the properties are
// ignored, as Mosquitto ignores them.
func checkPublishProps(b []byte) error {
	p := propReader{b: b}
	left, _, err := p.varint()
	if err != nil {
		return fmt.Errorf("property length: %w", err)
	}
	seen := map[uint32]bool{}
	for left > 0 {
		at := p.pos
		id, _, err := p.varint()
		if err != nil {
			return fmt.Errorf("property identifier at byte %d: %w", at, err)
		}
		left-- // Mosquitto counts one byte for the identifier, whatever its size
		kind, ok := propKinds[id]
		if !ok {
			return fmt.Errorf("unknown property identifier %d at byte %d", id, at)
		}
		n, err := p.value(kind)
		if err != nil {
			return fmt.Errorf("property %d at byte %d: %w", id, at, err)
		}
		left -= n // wraps like Mosquitto's unsigned count; the reads then fail
		if !publishProps[id] {
			return fmt.Errorf("property %d at byte %d is not allowed on a PUBLISH", id, at)
		}
		if id == propTopicAlias && p.last == 0 {
			return fmt.Errorf("topic alias 0 at byte %d", at)
		}
		if seen[id] && id != propUserProperty {
			return fmt.Errorf("property %d repeated at byte %d", id, at)
		}
		seen[id] = true
	}
	return nil
}

var errPropShort = errors.New("runs past the end of the properties")

// propReader reads property fields; last is the latest integer value read.
type propReader struct {
	b    []byte
	pos  int
	last uint32
}

func (p *propReader) take(n int) ([]byte, error) {
	if n > len(p.b)-p.pos {
		return nil, errPropShort
	}
	v := p.b[p.pos : p.pos+n]
	p.pos += n
	return v, nil
}

// varint reads an MQTT variable byte integer (at most 4 bytes, no overlong
// trailing zero byte) and returns it with its size.
func (p *propReader) varint() (uint32, uint32, error) {
	var v, mult uint32 = 0, 1
	for i := uint32(1); i <= 4; i++ {
		b, err := p.take(1)
		if err != nil {
			return 0, 0, err
		}
		v += uint32(b[0]&127) * mult
		mult *= 128
		if b[0]&128 == 0 {
			if i > 1 && b[0] == 0 {
				return 0, 0, errors.New("overlong variable byte integer")
			}
			return v, i, nil
		}
	}
	return 0, 0, errors.New("variable byte integer longer than 4 bytes")
}

// value reads one property value and returns how many bytes Mosquitto counts
// for it against the property length.
func (p *propReader) value(k propKind) (uint32, error) {
	switch k {
	case propByte:
		b, err := p.take(1)
		if err != nil {
			return 0, err
		}
		p.last = uint32(b[0])
		return 1, nil
	case propU16:
		b, err := p.take(2)
		if err != nil {
			return 0, err
		}
		p.last = uint32(binary.BigEndian.Uint16(b))
		return 2, nil
	case propU32:
		b, err := p.take(4)
		if err != nil {
			return 0, err
		}
		p.last = binary.BigEndian.Uint32(b)
		return 4, nil
	case propVarint:
		v, n, err := p.varint()
		p.last = v
		return n, err
	case propString, propBinary:
		return p.str(k == propString)
	default: // propStringPair
		n1, err := p.str(true)
		if err != nil {
			return 0, err
		}
		n2, err := p.str(true)
		return n1 + n2, err
	}
}

func (p *propReader) str(utf8 bool) (uint32, error) {
	h, err := p.take(2)
	if err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(h))
	s, err := p.take(n)
	if err != nil {
		return 0, err
	}
	if utf8 && !validMQTTUTF8(s) {
		return 0, errors.New("malformed UTF-8 string")
	}
	return 2 + uint32(n), nil
}

// validMQTTUTF8 is MQTT's UTF-8 rule as Mosquitto applies it: well formed,
// no surrogates or non-characters, no NUL or other control characters.
func validMQTTUTF8(s []byte) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		var n int
		var cp rune
		switch {
		case c == 0:
			return false
		case c <= 0x7F:
			n, cp = 1, rune(c)
		case c&0xE0 == 0xC0:
			if c == 0xC0 || c == 0xC1 {
				return false
			}
			n, cp = 2, rune(c&0x1F)
		case c&0xF0 == 0xE0:
			n, cp = 3, rune(c&0x0F)
		case c&0xF8 == 0xF0:
			if c > 0xF4 {
				return false
			}
			n, cp = 4, rune(c&0x07)
		default:
			return false
		}
		if i+n > len(s) {
			return false
		}
		for j := 1; j < n; j++ {
			i++
			if s[i]&0xC0 != 0x80 {
				return false
			}
			cp = cp<<6 | rune(s[i]&0x3F)
		}
		switch {
		case cp >= 0xD800 && cp <= 0xDFFF,
			n == 3 && cp < 0x800,
			n == 4 && (cp < 0x10000 || cp > 0x10FFFF),
			cp >= 0xFDD0 && cp <= 0xFDEF,
			cp&0xFFFF == 0xFFFE || cp&0xFFFF == 0xFFFF,
			cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F):
			return false
		}
	}
	return true
}
