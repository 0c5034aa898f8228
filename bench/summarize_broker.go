package bench

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/mqbench/mqbench/runfile"
	"github.com/mqbench/mqbench/scenarios"
)

// What the header says about the broker: the scenario it ran, its resolved
// settings, and how far its $SYS drop counter can be trusted.

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

// autosaveText describes the broker's autosave as the summary records it:
// "3" (seconds, fractional for the bundled broker) or "on_changes 100"; ""
// when the configuration left autosave_interval at Mosquitto's default, and
// "unknown" when the run cannot know the settings (an external broker).
func autosaveText(b *runfile.BrokerSettings) string {
	switch {
	case b == nil:
		return "unknown"
	case b.AutosaveOnChanges:
		return "on_changes " + strconv.Itoa(b.AutosaveChanges)
	case !b.IsConfigured("autosave_interval"):
		return ""
	}
	return strconv.FormatFloat(b.AutosaveInterval.Seconds(), 'f', -1, 64)
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
