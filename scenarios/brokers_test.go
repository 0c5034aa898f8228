package scenarios

import (
	"strings"
	"testing"
)

// TestBridgeOutageShipped: the shipped experiment loads, names its brokers in
// order, starts the core before the edge whose bridge names it, and fills in
// the core's address where the edge's conf says @core.
func TestBridgeOutageShipped(t *testing.T) {
	s, err := Load("bridge-outage", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.BrokerNames(), ","); got != "edge,core" {
		t.Fatalf("brokers = %s", got)
	}
	order, err := s.BrokerOrder()
	if err != nil || strings.Join(order, ",") != "core,edge" {
		t.Fatalf("order = %v, %v; want core first", order, err)
	}
	if s.PublisherBroker(0) != "edge" || s.SubscriberBroker(0) != "core" || s.ActionBroker(s.Actions[0]) != "core" {
		t.Fatalf("brokers of clients/actions: %s %s %s", s.PublisherBroker(0), s.SubscriberBroker(0), s.ActionBroker(s.Actions[0]))
	}
	set, err := s.BrokerSettings("edge", map[string]string{"core": "tcp://127.0.0.1:4242"})
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	var topics []string
	for _, st := range set {
		switch st.Key {
		case "address":
			addr = st.Value
		case "topic":
			topics = append(topics, st.Value)
			if st.Line == 0 || st.File == "" {
				t.Errorf("topic line has no place: %+v", st)
			}
		}
	}
	if addr != "127.0.0.1:4242" {
		t.Errorf("address = %q, want the core's host:port", addr)
	}
	if len(topics) != 2 {
		t.Errorf("topic lines = %q, want one per list value", topics)
	}
	if _, err := s.BrokerSettings("edge", map[string]string{}); err == nil {
		t.Error("edge settings before the core has an address: no error")
	}
	sc, err := Scale(s, 0.2, false)
	if err != nil {
		t.Fatal(err)
	}
	if v := sc.Brokers[1].Conf[1].Values[0]; v != "1" {
		t.Errorf("core autosave_interval scaled by 0.2 = %s, want 1", v)
	}
	if s.Brokers[1].Conf[1].Values[0] != "5" {
		t.Error("Scale changed the original scenario")
	}
}

// TestBrokersErrors: every mistake naming brokers is reported with its place.
func TestBrokersErrors(t *testing.T) {
	base := `name: x
duration: 1s
brokers:
  - name: edge
    conf:
      connection: c
      address: "@core"
  - name: core
`
	tests := []struct{ name, yaml, want string }{
		{"unknown client broker", base + "publishers: [{messages: 1, qos: 1, topic: t, broker: mid}]\n",
			`x.yaml:9: publishers[0].broker: names no broker of the scenario (brokers: edge, core; got "mid")`},
		{"broker action without target", base + "publishers: [{messages: 1, qos: 1, topic: t}]\nactions: [{at: 1s, do: stop}]\n",
			"actions[0].target: with several brokers a stop action names its broker"},
		{"ref to no broker", strings.Replace(base, "@core", "@hub", 1) + "publishers: [{messages: 1, qos: 1, topic: t}]\n",
			"brokers[0].conf.address: @hub names no broker of the scenario"},
		{"cycle", base + "    conf: {connection: d, address: \"@edge\"}\npublishers: [{messages: 1, qos: 1, topic: t}]\n",
			"cycle (edge -> core -> edge)"},
		{"duplicate name", strings.Replace(base, "name: core", "name: edge", 1) + "publishers: [{messages: 1, qos: 1, topic: t}]\n",
			`brokers[1].name: broker "edge" is named twice`},
		{"bad name", strings.Replace(base, "name: core", "name: Core/1", 1) + "publishers: [{messages: 1, qos: 1, topic: t}]\n",
			"brokers[1].name: want a name"},
		{"broker beside brokers", base + "broker: {persistence: true}\npublishers: [{messages: 1, qos: 1, topic: t}]\n",
			"broker: a scenario with a brokers list"},
		{"bad conf key", base + "    conf: {autosave_interval: soon}\npublishers: [{messages: 1, qos: 1, topic: t}]\n",
			"x.yaml:9: brokers[1].conf.autosave_interval:"},
		{"unknown entry field", base + "    kind: mosquitto\npublishers: [{messages: 1, qos: 1, topic: t}]\n",
			"x.yaml:9: brokers[1].kind: unknown field (known: name, conf)"},
		{"client broker without list", "name: x\nduration: 1s\npublishers: [{messages: 1, qos: 1, topic: t, broker: edge}]\n",
			`publishers[0].broker: names broker "edge", but the scenario has no brokers list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.yaml), "x.yaml")
			if err == nil {
				s.ApplyDefaults()
				err = s.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

// TestSetBrokerKey: --set brokers.NAME.KEY=VALUE changes one broker's key
// and only that broker's; a name the scenario lacks is an error.
func TestSetBrokerKey(t *testing.T) {
	s, err := Load("bridge-outage", []string{"brokers.edge.max_queued_messages=0", "brokers.core.queue_qos0_messages=true"})
	if err != nil {
		t.Fatal(err)
	}
	val := func(name, key string) string {
		for _, st := range s.broker(name).Conf {
			if st.Key == key {
				return strings.Join(st.Values, "|")
			}
		}
		return "<none>"
	}
	if v := val("edge", "max_queued_messages"); v != "0" {
		t.Errorf("edge max_queued_messages = %s, want 0", v)
	}
	if v := val("core", "max_queued_messages"); v != "1000" {
		t.Errorf("core max_queued_messages = %s, want its own 1000", v)
	}
	if v := val("core", "queue_qos0_messages"); v != "true" {
		t.Errorf("core queue_qos0_messages = %s, want appended true", v)
	}
	if v := val("edge", "queue_qos0_messages"); v != "<none>" {
		t.Errorf("edge got the core's key: %s", v)
	}
	if _, err := Load("bridge-outage", []string{"brokers.hub.persistence=false"}); err == nil || !strings.Contains(err.Error(), `no broker "hub"`) {
		t.Errorf("unknown broker: %v", err)
	}
	if _, err := Load("bridge-outage", []string{"brokers.edge.autosave_interval=soon"}); err == nil || !strings.Contains(err.Error(), "--set brokers.edge.autosave_interval: brokers[0].conf.autosave_interval") {
		t.Errorf("bad value: %v", err)
	}
}
