package reports

import (
	"fmt"
	"strings"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/scenarios"
)

// recordedScenario is the header's scenario (Header.DecodeScenario), empty
// when the header holds none, so a report of such a run still renders.
func recordedScenario(h *bench.Header) (*scenarios.Scenario, error) {
	sc, err := h.DecodeScenario()
	if sc == nil && err == nil {
		sc = &scenarios.Scenario{}
	}
	return sc, err
}

// durationText is a recorded duration as the scenario file writes it, ""
// when unset.
func durationText(d scenarios.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// configLines are the broker settings the header records: the config the
// broker was started with if recorded, else the scenario's broker section.
// For an external broker they are the scenario's, never applied to it
// (Summary.BrokerConfigSource "unknown"): the report says so above them.
func configLines(h *bench.Header, si *scenarios.Scenario) []string {
	if len(h.BrokerConfig) > 0 {
		return h.BrokerConfig
	}
	var out []string
	for _, b := range si.Broker {
		out = append(out, strings.TrimSpace(b.Key+" "+strings.Join(b.Values, " ")))
	}
	return out
}

// queueLimits says which per-client limits applied: the configured values or
// Mosquitto's defaults for the broker's release, and whether each was a
// default, so findings can name the real cause of drops.
type queueLimits struct {
	MaxQueued, MaxInflight         int64
	QueuedDefault, InflightDefault bool
	MaxQueuedBytes                 int64
	QueuedBytesSet                 bool
	Known                          bool // the values are meaningful for this broker kind
}

// limitsFor reads the limits from the header's resolved settings. They are
// only Known for a broker whose configuration the run recorded (one mqbench
// started, or read from its own file): an external broker's are never the
// scenario's.
func limitsFor(h *bench.Header) queueLimits {
	b := h.ResolvedBroker()
	if b == nil {
		return queueLimits{}
	}
	q := queueLimits{
		Known:     true,
		MaxQueued: int64(b.MaxQueuedMessages), QueuedDefault: !b.IsConfigured("max_queued_messages"),
		MaxInflight: int64(b.MaxInflightMessages), InflightDefault: !b.IsConfigured("max_inflight_messages"),
	}
	if b.IsConfigured("max_queued_bytes") && b.MaxQueuedBytes > 0 {
		q.MaxQueuedBytes, q.QueuedBytesSet = b.MaxQueuedBytes, true
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
func publishersLine(si *scenarios.Scenario) []string {
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
		if d := durationText(p.StartAt); d != "" {
			s += ", starting at " + d
		}
		out = append(out, s)
	}
	return out
}

func subscribersLine(si *scenarios.Scenario) []string {
	var out []string
	for _, sb := range si.Subscribers {
		clean := "clean session"
		if sb.CleanSession != nil && !*sb.CleanSession {
			clean = "persistent session"
		}
		pace := "consuming as fast as possible"
		if d := durationText(sb.Pace); d != "" {
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
