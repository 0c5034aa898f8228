package broker

import "unicode/utf8"

// validMQTTString is Mosquitto's mosquitto_validate_utf8, which every string
// field it reads (client id, username, will topic, topics, filters) must pass,
// or the connection is closed as malformed: well-formed UTF-8 of at most
// 65,535 bytes without U+0000, other C0/C1 control characters, surrogates or
// non-characters (MQTT-1.5.3).
func validMQTTString(s string) bool {
	if len(s) > 65535 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r <= 0x1f, r >= 0x7f && r <= 0x9f:
			return false
		case r >= 0xd800 && r <= 0xdfff:
			return false
		case r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe:
			return false
		}
	}
	return true
}
