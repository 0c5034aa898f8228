package runfile

import (
	"slices"
	"strings"
	"time"

	"github.com/mqbench/mqbench/broker/conf"
)

// Header.BrokerConfigSource values: whose settings the recorded config lines
// are, so a report never presents a scenario's settings as an external
// broker's.
const (
	ConfigLaunched = "launched" // mqbench wrote them and started the broker with them
	ConfigFromFile = "file"     // an external broker's own configuration file
	ConfigUnknown  = "unknown"  // an external broker: the lines are the scenario's, never applied
)

// BrokerSettings are the broker's resolved settings that the analysis and
// the reports read (autosave, persistence, the per-client queue limits),
// typed, with Mosquitto's defaults filled in for what the configuration left
// out. They are resolved once, from the config lines, when the header is
// written (HeaderLine), so no reader parses mosquitto.conf lines again; runs
// recorded before the field existed get the same resolution on read
// (Header.ResolvedBroker).
type BrokerSettings struct {
	Persistence bool `json:"persistence"`
	// AutosaveInterval is the period of timed saves when AutosaveOnChanges
	// is false (fractional seconds for the bundled broker), 0 for none.
	AutosaveInterval time.Duration `json:"autosave_interval_ns"`
	// AutosaveOnChanges true: a save every AutosaveChanges changes (the
	// same autosave_interval value, read as a count).
	AutosaveOnChanges   bool  `json:"autosave_on_changes"`
	AutosaveChanges     int   `json:"autosave_changes"`
	MaxQueuedMessages   int   `json:"max_queued_messages"`   // 0 = unlimited
	MaxQueuedBytes      int64 `json:"max_queued_bytes"`      // 0 = unlimited
	MaxInflightMessages int   `json:"max_inflight_messages"` // 0 = unlimited
	QueueQoS0Messages   bool  `json:"queue_qos0_messages"`
	// Configured lists the keys the configuration set, in its order; every
	// other value is Mosquitto's default, which a report says ("Mosquitto's
	// default") rather than presenting it as chosen.
	Configured []string `json:"configured,omitempty"`
}

// brokerKeys are the mosquitto.conf keys BrokerSettings holds.
var brokerKeys = []string{
	"persistence", "retained_persistence", "autosave_interval", "autosave_on_changes",
	"max_queued_messages", "max_queued_bytes", "max_inflight_messages", "queue_qos0_messages",
}

// IsConfigured says whether the configuration set key (else its value is
// Mosquitto's default).
func (b *BrokerSettings) IsConfigured(key string) bool {
	return slices.Contains(b.Configured, key)
}

// ResolveBroker resolves the settings of a broker that ran with the given
// mosquitto.conf lines: conf applies them over the defaults of the reported
// version (conf.DefaultFor, the one owner of Mosquitto's defaults), exactly
// as the broker read them (later lines win; 65535 in-flight means
// unlimited). A line conf refuses leaves its key at the default, unset: the
// record still reads, and never claims a value the broker did not take.
func ResolveBroker(version string, lines []string) *BrokerSettings {
	c := conf.DefaultFor(version)
	var configured []string
	for i, l := range lines {
		l = strings.TrimSpace(l)
		key, value := l, ""
		if at := strings.IndexAny(l, " \t"); at >= 0 {
			key, value = l[:at], l[at+1:]
		}
		if !slices.Contains(brokerKeys, key) || c.Apply(key, value, "", i+1) != nil {
			continue
		}
		if !slices.Contains(configured, key) {
			configured = append(configured, key)
		}
	}
	return &BrokerSettings{
		Persistence:         c.Persistence,
		AutosaveInterval:    c.AutosaveInterval,
		AutosaveOnChanges:   c.AutosaveOnChanges,
		AutosaveChanges:     c.AutosaveChanges,
		MaxQueuedMessages:   c.MaxQueuedMessages,
		MaxQueuedBytes:      c.MaxQueuedBytes,
		MaxInflightMessages: c.MaxInflightMessages,
		QueueQoS0Messages:   c.QueueQoS0Messages,
		Configured:          configured,
	}
}

// configSource is a recorded config source, or for a run recorded before
// the field existed the one its broker kind implies: only a broker mqbench
// started ran with the lines.
func configSource(source, kind string) string {
	if source != "" {
		return source
	}
	switch kind {
	case "bundled", "mosquitto":
		return ConfigLaunched
	}
	return ConfigUnknown
}

// ConfigSource says whose settings BrokerConfig holds (ConfigLaunched,
// ConfigFromFile or ConfigUnknown).
func (h *Header) ConfigSource() string {
	return configSource(h.BrokerConfigSource, h.BrokerKind)
}

// ResolvedBroker is the broker's resolved settings: as recorded, or for a
// run recorded before they were, resolved now by the function that records
// them; nil when the run cannot know them (ConfigUnknown: an external broker
// whose own configuration was not read).
func (h *Header) ResolvedBroker() *BrokerSettings {
	if h.BrokerSettings != nil {
		return h.BrokerSettings
	}
	return resolveHeader(h)
}

// resolveHeader resolves the header's broker settings from its config lines.
// A launched broker recorded without lines (runs before they were recorded,
// and test targets that have none) ran with the scenario's broker section,
// so that is what is resolved.
func resolveHeader(h *Header) *BrokerSettings {
	src := h.ConfigSource()
	if src == ConfigUnknown {
		return nil
	}
	lines := h.BrokerConfig
	if len(lines) == 0 && src == ConfigLaunched {
		if sc, err := h.DecodeScenario(); err == nil && sc != nil {
			for _, b := range sc.Broker {
				if len(b.Values) > 0 {
					lines = append(lines, b.Key+" "+b.Values[0])
				}
			}
		}
	}
	return ResolveBroker(h.BrokerVersion, lines)
}

// ResolvedSettings is the named broker's resolved settings (see
// Header.ResolvedBroker); nil when the run cannot know them.
func (n *NamedBroker) ResolvedSettings() *BrokerSettings {
	if n.Settings != nil {
		return n.Settings
	}
	if configSource(n.ConfigSource, n.Kind) == ConfigUnknown {
		return nil
	}
	return ResolveBroker(n.Version, n.Config)
}
