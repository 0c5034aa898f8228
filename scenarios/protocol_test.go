package scenarios

import (
	"math"
	"strings"
	"testing"
	"time"
)

// parseValid parses, defaults and validates scenario text.
func parseValid(t *testing.T, text string) (*Scenario, error) {
	t.Helper()
	s, err := Parse([]byte(text), "v5.yaml")
	if err != nil {
		return nil, err
	}
	s.ApplyDefaults()
	return s, s.Validate()
}

// TestProtocolV5Fields: a v5 scenario loads with every v5 field, groups
// inherit the run-wide level, and the derived wire values are right.
func TestProtocolV5Fields(t *testing.T) {
	s, err := parseValid(t, `name: v5
duration: 5s
protocol: 5
publishers:
  - messages: 10
    topic: t
    qos: 1
    message_expiry: 1500ms
    user_properties: {origin: mqbench, run: "7"}
    topic_alias: true
    content_type: application/json
    response_topic: replies
subscribers:
  - filter: t
    count: 2
    qos: 1
    shared_group: g
    receive_maximum: 10
    session_expiry: 1m
  - filter: t
    protocol: 4
    clean_session: false
`)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Publishers[0]
	if !p.V5() || p.UserProperties["run"] != "7" || p.MessageExpirySeconds() != 2 {
		t.Errorf("publisher = %+v, expiry %d s", p, p.MessageExpirySeconds())
	}
	if got := s.Subscribers[0].SubscribeFilter(); got != "$share/g/t" {
		t.Errorf("SubscribeFilter = %q", got)
	}
	if got := s.Subscribers[0].SessionExpirySeconds(); got != 60 {
		t.Errorf("session expiry = %d, want 60", got)
	}
	if s.Subscribers[1].V5() || s.Subscribers[1].Protocol != Protocol311 {
		t.Errorf("subscriber 2 protocol = %d, want 4", s.Subscribers[1].Protocol)
	}
	persistent := Subscriber{Protocol: 5, CleanSession: new(bool)}
	if got := persistent.SessionExpirySeconds(); got != math.MaxUint32 {
		t.Errorf("persistent v5 session expiry = %d, want never", got)
	}
	if got := durationSeconds(Duration(time.Second)); got != 1 {
		t.Errorf("durationSeconds(1s) = %d", got)
	}
}

// TestProtocolErrors: each mistake names file:line and the field.
func TestProtocolErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"bad level", "protocol: 6\n", "v5.yaml:3: protocol: must be 3 (MQTT 3.1), 4 (MQTT 3.1.1) or 5"},
		{"v5 field on 3.1.1 publisher", "publishers:\n  - {messages: 1, topic: t, message_expiry: 3s}\n",
			"v5.yaml:4: publishers[0].message_expiry: is an MQTT 5 field, but this group speaks MQTT 3.1.1"},
		{"v5 field on 3.1 subscriber", "subscribers:\n  - filter: t\n    protocol: 3\n    shared_group: g\n",
			"v5.yaml:6: subscribers[0].shared_group: is an MQTT 5 field, but this group speaks MQTT 3.1"},
		{"user property type", "protocol: 5\npublishers:\n  - messages: 1\n    topic: t\n    user_properties: [a]\n",
			"v5.yaml:7: publishers[0].user_properties: expected a mapping"},
		{"share name", "protocol: 5\nsubscribers:\n  - {filter: t, shared_group: a/b}\n", "subscribers[0].shared_group: a share name cannot contain"},
		{"no local shared", "protocol: 5\nsubscribers:\n  - {filter: t, shared_group: g, no_local: true}\n", "subscribers[0].no_local: cannot be set on a shared subscription"},
		{"paho topic alias", "protocol: 5\npublishers:\n  - {messages: 1, topic: t, client: paho, topic_alias: true}\n", "publishers[0].topic_alias: the paho publisher does not send topic aliases"},
		{"v5 per message", "protocol: 5\npublishers:\n  - {messages: 1, topic: t, connection_per_message: true}\n", "publishers[0].protocol: connection_per_message speaks MQTT 3.1.1"},
		{"receive maximum", "protocol: 5\nsubscribers:\n  - {filter: t, receive_maximum: 70000}\n", "subscribers[0].receive_maximum: must be 1 to 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "name: x\nduration: 1s\n" + tt.text
			if !strings.Contains(tt.text, "publishers:") {
				text += "publishers:\n  - {messages: 1, topic: t}\n"
			}
			_, err := parseValid(t, text)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}
