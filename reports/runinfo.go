package reports

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mqbench/mqbench/bench"
)

// scenarioInfo is the part of the recorded scenario the reports need. It is
// decoded loosely from the header (durations as strings or nanoseconds) so a
// report never fails because the scenario schema grew or changed its encoding.
type scenarioInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Broker      []struct {
		Key    string   `json:"key"`
		Values []string `json:"values"`
	} `json:"broker"`
	Publishers []struct {
		ClientID             string          `json:"client_id"`
		Count                int             `json:"count"`
		Messages             int             `json:"messages"`
		QoS                  int             `json:"qos"`
		Topic                string          `json:"topic"`
		Rate                 float64         `json:"rate"`
		Inflight             int             `json:"inflight"`
		ConnectionPerMessage bool            `json:"connection_per_message"`
		Client               string          `json:"client"` // lean or paho; absent in runs recorded before the option
		CleanSession         *bool           `json:"clean_session"`
		StartAt              json.RawMessage `json:"start_at"`
	} `json:"publishers"`
	Subscribers []struct {
		ClientID     string          `json:"client_id"`
		Count        int             `json:"count"`
		Filter       string          `json:"filter"`
		QoS          int             `json:"qos"`
		CleanSession *bool           `json:"clean_session"`
		Pace         json.RawMessage `json:"pace"`
		PaceMode     string          `json:"pace_mode"`
	} `json:"subscribers"`
	Thresholds []string `json:"thresholds"`
}

// parseScenario decodes the header's scenario copy; an absent one is empty.
func parseScenario(h *bench.Header) (*scenarioInfo, error) {
	var si scenarioInfo
	if len(h.Scenario) == 0 || string(h.Scenario) == "null" {
		return &si, nil
	}
	if err := json.Unmarshal(h.Scenario, &si); err != nil {
		return nil, fmt.Errorf("decoding the scenario recorded in the header: %w", err)
	}
	return &si, nil
}

// rawDuration renders a recorded duration whichever way it was encoded.
func rawDuration(r json.RawMessage) string {
	s := strings.TrimSpace(string(r))
	if s == "" || s == "null" || s == "0" || s == `""` {
		return ""
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n).String()
	}
	var str string
	if json.Unmarshal(r, &str) == nil {
		return str
	}
	return s
}

// configLines are the broker settings the header records: the config the
// broker was started with if recorded, else the scenario's broker section.
// For an external broker they are the scenario's, never applied to it
// (Summary.BrokerConfigSource "unknown"): the report says so above them.
func configLines(h *bench.Header, si *scenarioInfo) []string {
	if len(h.BrokerConfig) > 0 {
		return h.BrokerConfig
	}
	var out []string
	for _, b := range si.Broker {
		out = append(out, strings.TrimSpace(b.Key+" "+strings.Join(b.Values, " ")))
	}
	return out
}

// brokerSetting returns the last value of key in the config lines (later lines
// win, as in mosquitto.conf).
func brokerSetting(lines []string, key string) (string, bool) {
	val, ok := "", false
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, _ := strings.Cut(l, " ")
		if k == key {
			val, ok = strings.TrimSpace(v), true
		}
	}
	return val, ok
}

// brokerInt is brokerSetting for a whole number; a value that does not parse
// counts as unset, so the limit falls back to Mosquitto's default.
func brokerInt(lines []string, key string) (int64, bool) {
	v, ok := brokerSetting(lines, key)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// queueLimits says which per-client limits applied: the configured values or
// Mosquitto's defaults for the broker's major version, and whether each was a
// default, so findings can name the real cause of drops.
type queueLimits struct {
	MaxQueued, MaxInflight         int64
	QueuedDefault, InflightDefault bool
	MaxQueuedBytes                 int64
	QueuedBytesSet                 bool
	Known                          bool // the values are meaningful for this broker kind
}

// The limits are only Known for a broker whose configuration the run
// recorded (one mqbench started, or read from its own file): an external
// broker's are never the scenario's.
func limitsFor(s *bench.Summary, lines []string) queueLimits {
	q := queueLimits{MaxQueued: 1000, MaxInflight: 20, QueuedDefault: true, InflightDefault: true, Known: s.BrokerConfigSource != "unknown"}
	if strings.HasPrefix(s.BrokerVersion, "1.") {
		q.MaxQueued = 100
	}
	if n, ok := brokerInt(lines, "max_queued_messages"); ok {
		q.MaxQueued, q.QueuedDefault = n, false
	}
	if n, ok := brokerInt(lines, "max_inflight_messages"); ok {
		q.MaxInflight, q.InflightDefault = n, false
	}
	if n, ok := brokerInt(lines, "max_queued_bytes"); ok && n > 0 {
		q.MaxQueuedBytes, q.QueuedBytesSet = n, true
	}
	return q
}

// clientsLabel names a group of clients as "N × `id`"; a count of 0 means one
// client, as in the scenario file.
func clientsLabel(count int, id string) string {
	if count == 0 {
		count = 1
	}
	return fmt.Sprintf("%d × `%s`", count, id)
}

// publishersLine and subscribersLine describe the clients in one sentence each.
func publishersLine(si *scenarioInfo) []string {
	var out []string
	for _, p := range si.Publishers {
		rate := "as fast as acknowledged"
		if p.Rate > 0 {
			rate = groupFloat(p.Rate, 0) + " msg/s"
		}
		s := fmt.Sprintf("%s: %s messages each, QoS %d, topic `%s`, %s", clientsLabel(p.Count, p.ClientID),
			groupInt(int64(p.Messages)), p.QoS, p.Topic, rate)
		if p.Inflight > 1 {
			s += fmt.Sprintf(", %d in flight", p.Inflight)
		}
		if p.ConnectionPerMessage {
			s += ", one connection per message"
		}
		if p.Client != "" {
			s += ", " + p.Client + " client"
		}
		if d := rawDuration(p.StartAt); d != "" {
			s += ", starting at " + d
		}
		out = append(out, s)
	}
	return out
}

func subscribersLine(si *scenarioInfo) []string {
	var out []string
	for _, sb := range si.Subscribers {
		clean := "clean session"
		if sb.CleanSession != nil && !*sb.CleanSession {
			clean = "persistent session"
		}
		pace := "consuming as fast as possible"
		if d := rawDuration(sb.Pace); d != "" {
			mode := sb.PaceMode
			if mode == "" {
				mode = "ack"
			}
			pace = fmt.Sprintf("consuming one message per %s (%s mode)", d, mode)
		}
		out = append(out, fmt.Sprintf("%s: filter `%s`, QoS %d, %s, %s", clientsLabel(sb.Count, sb.ClientID), sb.Filter, sb.QoS, clean, pace))
	}
	return out
}
