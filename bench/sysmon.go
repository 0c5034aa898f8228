package bench

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// sysTopics are the $SYS counters mqbench records, each mapped to its gauge.
// Subscribing to these alone (not $SYS/#) keeps the broker's own store small.
var sysTopics = map[string]string{
	"$SYS/broker/store/messages/count":     GaugeStoreCount,
	"$SYS/broker/messages/stored":          GaugeStoreCount, // Mosquitto 1.4
	"$SYS/broker/store/messages/bytes":     GaugeStoreBytes,
	"$SYS/broker/publish/messages/dropped": GaugeDropped,
	"$SYS/broker/clients/connected":        GaugeClients,
}

// sysVersionTopic is where Mosquitto (and the bundled broker) retain their version.
const sysVersionTopic = "$SYS/broker/version"

// connectSys starts the $SYS monitor, a clean-session client whose counters

// sysClientID is the $SYS monitor's client id.
const sysClientID = "mqbench-sys"

// (dropped messages above all) explain what the file size cannot.
func (e *engine) connectSys(b *brokerRun) error {
	filters := map[string]byte{}
	for t := range sysTopics {
		filters[t] = 0
	}
	// launch reads an external broker's version without the run's
	// credentials or TLS files, so a secured broker's header has none: the
	// monitor, which has them, records it in a note.
	var versionOnce sync.Once
	if b.target.Version() == "" {
		filters[sysVersionTopic] = 0
	}
	handler := func(_ mqtt.Client, m mqtt.Message) {
		if m.Topic() == sysVersionTopic {
			versionOnce.Do(func() {
				e.note(LevelInfo, fmt.Sprintf("broker version%s (from %s): %.100s", b.of(), sysVersionTopic, m.Payload()))
			})
			return
		}
		name, ok := sysTopics[m.Topic()]
		if !ok {
			return
		}
		v, err := strconv.ParseFloat(string(m.Payload()), 64)
		if err != nil {
			return
		}
		e.emit(b.tag(Event{T: e.rec.Since(), Type: EvGauge, Name: name, Value: v}))
	}
	subscribed := make(chan error, 1)
	id := b.sysID()
	opts := e.clientOptions(id, true, e.conns.sys, false).
		SetDefaultPublishHandler(handler).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { e.connLost("$SYS monitor", id, err, false) }).
		SetOnConnectHandler(func(c mqtt.Client) {
			err := e.waitToken(c.SubscribeMultiple(filters, handler), connectTimeout)
			select {
			case subscribed <- err:
			default:
			}
		})
	c := mqtt.NewClient(opts)
	b.sys = c
	if err := e.waitToken(c.Connect(), connectTimeout); err != nil {
		return fmt.Errorf("connecting $SYS monitor: %w", err)
	}
	select {
	case err := <-subscribed:
		if err != nil {
			return fmt.Errorf("subscribing to $SYS: %w", err)
		}
	case <-time.After(connectTimeout):
		return fmt.Errorf("subscribing to $SYS: no SUBACK within %s", connectTimeout)
	}
	return nil
}
