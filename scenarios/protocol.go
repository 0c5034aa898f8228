package scenarios

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// protocol is the run-wide protocol level, 3.1.1 when the scenario names none.
func (s *Scenario) protocol() int {
	if s.Protocol == 0 {
		return Protocol311
	}
	return s.Protocol
}

// V5 reports whether the group speaks MQTT 5.
func (p Publisher) V5() bool { return p.Protocol == Protocol5 }

// V5 reports whether the group speaks MQTT 5.
func (s Subscriber) V5() bool { return s.Protocol == Protocol5 }

// SessionExpirySeconds is the session expiry interval a v5 subscriber sends:
// session_expiry in whole seconds, or, for a persistent session
// (clean_session false) without one, never (0xFFFFFFFF), which is what a
// 3.1.1 persistent session means.
func (s Subscriber) SessionExpirySeconds() uint32 {
	if s.SessionExpiry > 0 {
		return durationSeconds(s.SessionExpiry)
	}
	if !s.Clean() {
		return math.MaxUint32
	}
	return 0
}

// MessageExpirySeconds is the message expiry interval on the wire, 0 = none.
func (p Publisher) MessageExpirySeconds() uint32 { return durationSeconds(p.MessageExpiry) }

// durationSeconds rounds a positive duration up to whole seconds (MQTT 5
// intervals are seconds; a 500ms expiry must not become "never").
func durationSeconds(d Duration) uint32 {
	if d <= 0 {
		return 0
	}
	secs := (time.Duration(d) + time.Second - 1) / time.Second
	if secs > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(secs)
}

// protocolName says a level in words for errors.
func protocolName(level int) string {
	switch level {
	case Protocol31:
		return "MQTT 3.1"
	case Protocol311:
		return "MQTT 3.1.1"
	case Protocol5:
		return "MQTT 5"
	}
	return fmt.Sprintf("protocol %d", level)
}

// validateProtocol checks the protocol levels and that MQTT 5 fields are set
// only on groups that speak MQTT 5: a v5 field on a 3.1.1 group would not
// reach the wire, and a run that silently ignored it would measure
// something else than the file says.
func (s *Scenario) validateProtocol(bad func(path, format string, args ...interface{})) {
	okLevel := func(path string, level int) bool {
		switch level {
		case 0, Protocol31, Protocol311, Protocol5:
			return true
		}
		bad(path, "must be 3 (MQTT 3.1), 4 (MQTT 3.1.1) or 5 (MQTT 5) (got %d)", level)
		return false
	}
	okLevel("protocol", s.Protocol)
	v5only := func(path string, level int, field string) {
		bad(path+"."+field, "is an MQTT 5 field, but this group speaks %s: set protocol: 5 (in the group or run-wide)", protocolName(level))
	}
	for i, p := range s.Publishers {
		path := fmt.Sprintf("publishers[%d]", i)
		if !okLevel(path+".protocol", p.Protocol) {
			continue
		}
		if !p.V5() {
			set := map[string]bool{
				"message_expiry": p.MessageExpiry != 0, "user_properties": len(p.UserProperties) > 0,
				"topic_alias": p.TopicAlias, "content_type": p.ContentType != "", "response_topic": p.ResponseTopic != "",
			}
			for _, f := range []string{"message_expiry", "user_properties", "topic_alias", "content_type", "response_topic"} {
				if set[f] {
					v5only(path, p.Protocol, f)
				}
			}
			continue
		}
		if p.TopicAlias && p.Client == ClientPaho {
			bad(path+".topic_alias", "the paho publisher does not send topic aliases (paho.golang leaves them to an extension): use client: lean")
		}
		if p.ConnectionPerMessage {
			bad(path+".protocol", "connection_per_message speaks MQTT 3.1.1 (paho-mqtt's publish.single): leave protocol 5 out or publish over one connection")
		}
		if p.ResponseTopic != "" && strings.ContainsAny(p.ResponseTopic, "+#") {
			bad(path+".response_topic", "a topic name cannot contain wildcards (got %q)", p.ResponseTopic)
		}
		if p.MessageExpiry > 0 && time.Duration(p.MessageExpiry) > time.Duration(math.MaxUint32)*time.Second {
			bad(path+".message_expiry", "must be at most %d seconds (got %s)", uint32(math.MaxUint32), p.MessageExpiry)
		}
		for k := range p.UserProperties {
			if k == "" {
				bad(path+".user_properties", "a property name must not be empty")
			}
		}
	}
	for i, sub := range s.Subscribers {
		path := fmt.Sprintf("subscribers[%d]", i)
		if !okLevel(path+".protocol", sub.Protocol) {
			continue
		}
		if !sub.V5() {
			set := map[string]bool{
				"session_expiry": sub.SessionExpiry != 0, "receive_maximum": sub.ReceiveMaximum != 0,
				"no_local": sub.NoLocal, "shared_group": sub.SharedGroup != "",
			}
			for _, f := range []string{"session_expiry", "receive_maximum", "no_local", "shared_group"} {
				if set[f] {
					v5only(path, sub.Protocol, f)
				}
			}
			continue
		}
		if sub.ReceiveMaximum < 0 || sub.ReceiveMaximum > 65535 {
			bad(path+".receive_maximum", "must be 1 to 65535 (got %d)", sub.ReceiveMaximum)
		}
		if g := sub.SharedGroup; g != "" && strings.ContainsAny(g, "/+#") {
			bad(path+".shared_group", "a share name cannot contain /, + or # (got %q)", g)
		}
		if sub.SharedGroup != "" && sub.NoLocal {
			// MQTT 5 3.8.3.1: No Local on a shared subscription is a protocol error.
			bad(path+".no_local", "cannot be set on a shared subscription (MQTT 5 forbids it)")
		}
	}
}
