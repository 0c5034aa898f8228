package bench

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/mqbench/mqbench/scenarios"
)

// What the header says about the broker: the scenario it ran, whose settings
// its config lines are, and how far its $SYS drop counter can be trusted.

// decodeScenario is the header's scenario (Header.DecodeScenario); nil when
// there is none or it cannot be read, which a note says: the analysis then
// goes on without the scenario's topics and filters rather than failing.
func decodeScenario(h Header, note func(string, ...any)) *scenarios.Scenario {
	sc, err := h.DecodeScenario()
	if err != nil {
		note("header scenario unreadable (%v): expected counts assume one topic", err)
		return nil
	}
	return sc
}

// autosaveSetting describes the configured autosave: "3" (seconds) or
// "on_changes 100", from the scenario's broker settings, else from the
// recorded mosquitto.conf lines; "" when neither sets it.
func autosaveSetting(sc *scenarios.Scenario, confLines []string) string {
	get := func(key string) (string, bool) {
		if sc != nil {
			if v, ok := sc.BrokerValue(key); ok {
				return v, true
			}
		}
		for _, l := range confLines {
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == key {
				return f[1], true
			}
		}
		return "", false
	}
	interval, hasInterval := get("autosave_interval")
	if oc, ok := get("autosave_on_changes"); ok {
		if b, err := strconv.ParseBool(oc); err == nil && b {
			if !hasInterval {
				interval = "1800" // Mosquitto's default
			}
			return "on_changes " + interval
		}
	}
	return interval
}

// configSource says whose settings the header's config lines are. Only a
// broker mqbench started ran with them; for an external broker they are the
// scenario's, which mqbench cannot apply, so its real settings are unknown.
func configSource(h Header) string {
	if h.BrokerConfigSource != "" {
		return h.BrokerConfigSource
	}
	switch h.BrokerKind {
	case "bundled", "mosquitto":
		return "launched"
	}
	return "unknown"
}

// sysGauges are the gauges the $SYS monitor writes: any of them arriving
// shows the broker published its $SYS tree at that instant.
var sysGauges = []string{GaugeStoreCount, GaugeStoreBytes, GaugeDropped, GaugeClients}

// dropCounter says whether the broker's drop counter was seen and whether it
// is fresh. Mosquitto publishes a $SYS value once per sys_interval and only
// when it changed, so the last tick seen is the latest instant at which the
// count is known to be complete: if that is before the last acknowledgement,
// the last messages' drops may be missing.
func dropCounter(gauges map[string][]gaugePoint, dropped []gaugePoint, lastAck, endT int64) DropCounter {
	d := DropCounter{Source: "unknown", Samples: len(dropped)}
	if len(dropped) == 0 {
		return d
	}
	d.Source = "$SYS"
	for _, name := range sysGauges {
		if g := gauges[name]; len(g) > 0 {
			d.LastUpdateT = max(d.LastUpdateT, g[len(g)-1].t)
		}
	}
	d.AgeAtEndNS = max(0, endT-d.LastUpdateT)
	d.Stale = d.LastUpdateT < lastAck
	return d
}

// MarshalJSON writes dropped_by_broker as null when the broker's drop counter
// was never received: 0 would read as "the broker dropped nothing", which the
// events do not say, and a threshold on a null metric is skipped, not passed.
func (s Summary) MarshalJSON() ([]byte, error) {
	type plain Summary // no methods: no recursion
	b, err := json.Marshal(plain(s))
	if err != nil || s.Drops.Source != "unknown" || s.DroppedByBroker != 0 {
		return b, err
	}
	return bytes.Replace(b, []byte(`"dropped_by_broker":0,`), []byte(`"dropped_by_broker":null,`), 1), nil
}

// configSourcer is a Target that knows whose settings its ConfigLines are.
type configSourcer interface{ ConfigSource() string }

// configSourceOf is the target's config source, "" when it cannot say.
func configSourceOf(t Target) string {
	if cs, ok := t.(configSourcer); ok {
		return cs.ConfigSource()
	}
	return ""
}
