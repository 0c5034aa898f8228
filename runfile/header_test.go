package runfile

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestDecodeScenario: the header's scenario decodes whichever way its
// durations were recorded (strings now, integer nanoseconds in early runs);
// an absent one is nil without error, a damaged one an error saying where.
func TestDecodeScenario(t *testing.T) {
	for name, raw := range map[string]string{
		"strings":  `{"name":"s","duration":"3s","publishers":[{"client_id":"p","start_at":"1.5s"}],"subscribers":[{"pace":"100ms"}]}`,
		"integers": `{"name":"s","duration":3000000000,"publishers":[{"client_id":"p","start_at":1500000000}],"subscribers":[{"pace":100000000}]}`,
	} {
		h := Header{Scenario: json.RawMessage(raw)}
		sc, err := h.DecodeScenario()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if sc.Name != "s" || sc.Duration.D() != 3*time.Second || sc.Publishers[0].StartAt.D() != 1500*time.Millisecond || sc.Subscribers[0].Pace.D() != 100*time.Millisecond {
			t.Errorf("%s: decoded %+v", name, sc)
		}
	}
	for _, raw := range []string{"", "null", " null\n"} {
		if sc, err := (&Header{Scenario: json.RawMessage(raw)}).DecodeScenario(); sc != nil || err != nil {
			t.Errorf("%q: %v, %v; want nil, nil", raw, sc, err)
		}
	}
	if _, err := (&Header{Scenario: json.RawMessage(`{"publishers":5}`)}).DecodeScenario(); err == nil || !strings.Contains(err.Error(), "scenario recorded in the header") {
		t.Errorf("bad scenario: %v", err)
	}
}

// TestResolveBroker: settings resolve over Mosquitto's defaults of the
// broker's release as the broker reads its file (later lines win, 65535
// in flight is unlimited); a value conf refuses stays at the default, unset.
func TestResolveBroker(t *testing.T) {
	b := ResolveBroker("2.0.11", nil)
	want := &BrokerSettings{AutosaveInterval: 1800 * time.Second, AutosaveChanges: 1800, MaxQueuedMessages: 1000, MaxInflightMessages: 20}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("defaults %+v, want %+v", b, want)
	}
	for _, v := range []string{"1.6.9", "mosquitto version 1.4.15"} {
		if b := ResolveBroker(v, nil); b.MaxQueuedMessages != 100 {
			t.Errorf("%s: max_queued_messages %d, want 1.x's 100", v, b.MaxQueuedMessages)
		}
	}
	b = ResolveBroker("2.0.11", []string{"listener 1883 127.0.0.1", "persistence true", "autosave_interval 3", "autosave_interval 0.5",
		"max_queued_messages 0", "max_queued_bytes\t2048", "max_inflight_messages 65535", "queue_qos0_messages abc", "autosave_on_changes"})
	want = &BrokerSettings{Persistence: true, AutosaveInterval: 500 * time.Millisecond, AutosaveChanges: 0, MaxQueuedMessages: 0, MaxQueuedBytes: 2048,
		Configured: []string{"persistence", "autosave_interval", "max_queued_messages", "max_queued_bytes", "max_inflight_messages"}}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("resolved %+v, want %+v", b, want)
	}
	if b.IsConfigured("queue_qos0_messages") || !b.IsConfigured("persistence") {
		t.Errorf("configured %q", b.Configured)
	}
}

// TestHeaderBrokerSettings: the writer records the resolved settings; a
// header recorded before them resolves the same on read; an external
// broker's settings are unknown (nil), its own file's are its lines only.
func TestHeaderBrokerSettings(t *testing.T) {
	h := Header{BrokerKind: "mosquitto", BrokerVersion: "2.0.11", BrokerConfig: []string{"autosave_interval 3"},
		Scenario: json.RawMessage(`{"broker":[{"key":"autosave_interval","values":["30"]}]}`),
		Named:    []NamedBroker{{Name: "a", Kind: "bundled", Config: []string{"max_queued_messages 5"}}, {Name: "b", Kind: "external"}}}
	var buf bytes.Buffer
	if _, err := NewWriter(&buf, h); err != nil {
		t.Fatal(err)
	}
	if h.BrokerSettings != nil || h.Named[0].Settings != nil {
		t.Fatal("HeaderLine changed the caller's header")
	}
	r, err := NewReader(&buf, "mem")
	if err != nil {
		t.Fatal(err)
	}
	got := r.Header.BrokerSettings
	if got == nil || got.AutosaveInterval != 3*time.Second || !reflect.DeepEqual(got, h.ResolvedBroker()) {
		t.Errorf("recorded %+v, resolved on read %+v", got, h.ResolvedBroker())
	}
	if n := r.Header.Named; n[0].Settings == nil || n[0].Settings.MaxQueuedMessages != 5 || n[1].Settings != nil {
		t.Errorf("named brokers %+v", n)
	}
	h.BrokerConfig = nil // launched without recorded lines: the scenario's section
	if b := h.ResolvedBroker(); b.AutosaveInterval != 30*time.Second {
		t.Errorf("from the scenario: %+v", b)
	}
	h.BrokerKind = "external"
	if b := h.ResolvedBroker(); b != nil || h.ConfigSource() != ConfigUnknown {
		t.Errorf("external: %+v, source %q", b, h.ConfigSource())
	}
	h.BrokerConfigSource = ConfigFromFile // its own file, with no lines: defaults
	if b := h.ResolvedBroker(); b == nil || b.IsConfigured("autosave_interval") {
		t.Errorf("external with its file: %+v", b)
	}
}
