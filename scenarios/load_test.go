package scenarios

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `name: t
broker:
  persistence: true
  autosave_interval: 3
publishers:
  - messages: 100
    qos: 2
    topic: test
subscribers:
  - filter: test
    qos: 1
    pace: 1s
duration: 5s
`

func writeScenario(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string // substring after the directory
	}{
		{"bad type", strings.Replace(good, "qos: 2", "qos: high", 1), "f.yaml:7: publishers[0].qos: expected a small non-negative integer"},
		{"unknown field", strings.Replace(good, "    topic: test", "    topic: test\n    colour: red", 1), "f.yaml:9: publishers[0].colour: unknown field"},
		{"bad qos", strings.Replace(good, "qos: 2", "qos: 3", 1), "f.yaml:7: publishers[0].qos: must be 0, 1 or 2 (got 3)"},
		{"bad duration", strings.Replace(good, "pace: 1s", "pace: 1 minute", 1), "f.yaml:12: subscribers[0].pace: bad duration \"1 minute\""},
		{"negative duration", strings.Replace(good, "duration: 5s", "duration: -5s", 1), "f.yaml:13: duration: must not be negative"},
		{"bad broker key", strings.Replace(good, "  persistence: true", "  persistance: true", 1), "f.yaml:3: broker.persistance: unknown configuration variable"},
		{"bad broker value", strings.Replace(good, "autosave_interval: 3", "autosave_interval: soon", 1), "f.yaml:4: broker.autosave_interval: invalid value \"soon\""},
		{"unknown top field", good + "colour: red\n", "f.yaml:14: colour: unknown field"},
		{"list expected", strings.Replace(good, "subscribers:\n  - filter: test\n    qos: 1\n    pace: 1s", "subscribers: 3", 1), "f.yaml:9: subscribers: expected a list"},
		{"no publishers", strings.Replace(good, "publishers:\n  - messages: 100\n    qos: 2\n    topic: test\n", "", 1), "publishers: at least one publisher"},
		{"wildcard topic", strings.Replace(good, "topic: test", "topic: a/+", 1), "f.yaml:8: publishers[0].topic: a publish topic cannot contain wildcards"},
		{"bad filter", strings.Replace(good, "filter: test", "filter: a/#/b", 1), "f.yaml:10: subscribers[0].filter:"},
		{"bad action", good + "actions:\n  - at: 1s\n    do: explode\n", "f.yaml:16: actions[0].do: must be save, stop"},
		{"action target", good + "actions:\n  - at: 1s\n    do: disconnect\n    target: nobody\n", "f.yaml:17: actions[0].target: must name a subscriber"},
		{"bad threshold", good + "thresholds:\n  - lost is zero\n", "f.yaml:15: thresholds[0]: threshold \"lost is zero\": want METRIC OP VALUE"},
		{"threshold with a unit that does not fit", good + "thresholds:\n  - lost <= 3MB\n", "f.yaml:15: thresholds[0]: threshold \"lost <= 3MB\": value \"3MB\" has a size unit but lost is not a bytes metric"},
		{"duplicate ids", strings.Replace(good, "  - filter: test", "  - client_id: pub\n    filter: test", 1), "subscribers[0].client_id: client id \"pub\" is also used by publishers[0]"},
		{"yaml syntax", "name: [\n", "f.yaml"},
		{"random too small", strings.Replace(good, "    topic: test", "    topic: test\n    payload: {kind: random, size: 8}", 1), "f.yaml:9: publishers[0].payload.size: must be at least 32"},
		{"bad client", strings.Replace(good, "    topic: test", "    topic: test\n    client: fast", 1), "f.yaml:9: publishers[0].client: must be lean or paho (got \"fast\")"},
		{"lean per message", strings.Replace(good, "    topic: test", "    topic: test\n    client: lean\n    connection_per_message: true", 1), "f.yaml:9: publishers[0].client: connection_per_message runs on paho"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeScenario(t, tt.text), nil)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadDefaults(t *testing.T) {
	s, err := Load(writeScenario(t, good), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, sub := s.Publishers[0], s.Subscribers[0]
	checks := []struct {
		name      string
		got, want interface{}
	}{
		{"publisher id", p.ClientID, "pub"},
		{"publisher count", p.Count, 1},
		{"inflight", p.Inflight, 1},
		{"payload kind", p.Payload.Kind, "experiment"},
		{"rate scope", p.RateScope, "per_publisher"},
		{"client", p.Client, ClientLean},
		{"publisher clean", p.Clean(), true},
		{"subscriber id", sub.ClientID, "sub"},
		{"pace mode", sub.PaceMode, "ack"},
		{"subscriber clean", sub.Clean(), true},
		{"sample interval", s.Sample.Interval.D(), 100 * time.Millisecond},
		{"decode", s.DecodeSaves(), true},
		{"sys", s.SYSEnabled(), true},
		{"drain", s.DrainEnabled(), true},
		{"drain timeout", s.DrainTimeout.D(), 30 * time.Second},
		{"time scale", s.TimeScale, 1.0},
		{"broker order", s.Broker[0].Key + "," + s.Broker[1].Key, "persistence,autosave_interval"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestClientIDTemplates(t *testing.T) {
	text := strings.Replace(good, "  - messages: 100", "  - messages: 100\n    count: 3", 1)
	s, err := Load(writeScenario(t, text), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(s.Publishers[0].IDs(), ",")
	if got != "pub-1,pub-2,pub-3" {
		t.Fatalf("ids = %s", got)
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		set     string
		check   func(s *Scenario) bool
		wantErr string
	}{
		{set: "duration=30s", check: func(s *Scenario) bool { return s.Duration.D() == 30*time.Second }},
		{set: "publishers.0.messages=500", check: func(s *Scenario) bool { return s.Publishers[0].Messages == 500 }},
		{set: "subscribers.0.pace=2s", check: func(s *Scenario) bool { return s.Subscribers[0].Pace.D() == 2*time.Second }},
		{set: "subscribers.0.clean_session=false", check: func(s *Scenario) bool { return !s.Subscribers[0].Clean() }},
		{set: "publishers.0.payload.kind=random", check: func(s *Scenario) bool { return s.Publishers[0].Payload.Kind == "random" }},
		{set: "autosave_interval=10", check: func(s *Scenario) bool { v, _ := s.BrokerValue("autosave_interval"); return v == "10" }},
		{set: "max_queued_messages=5", check: func(s *Scenario) bool {
			v, _ := s.BrokerValue("max_queued_messages")
			return v == "5" && s.Broker[len(s.Broker)-1].Key == "max_queued_messages"
		}},
		{set: "autosave_interval=[1, 2]", check: func(s *Scenario) bool { return len(s.Broker[1].Values) == 2 }},
		{set: "publishers.3.qos=1", wantErr: "--set publishers.3.qos: publishers[3]: no such entry"},
		{set: "publishers.0.colour=red", wantErr: "--set publishers.0.colour: publishers[0].colour: unknown field"},
		{set: "publishers.0.qos=3", wantErr: "--set publishers.0.qos: publishers[0].qos: must be 0, 1 or 2 (got 3)"},
		{set: "duration=soon", wantErr: "--set duration: duration: bad duration"},
		{set: "noequals", wantErr: "--set noequals: want KEY=VALUE"},
		{set: "not_a_key=1", wantErr: "--set not_a_key: broker.not_a_key: unknown configuration variable"},
		{set: "autosave_interval=soon", wantErr: "--set autosave_interval: broker.autosave_interval: invalid value"},
		{set: "sample.interval.x=1", wantErr: "--set sample.interval.x"},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			s, err := Load(writeScenario(t, good), []string{tt.set})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(s) {
				t.Fatalf("--set %s not applied: %+v", tt.set, s)
			}
		})
	}
}

func TestShippedLoad(t *testing.T) {
	infos := Shipped()
	if len(infos) < 8 {
		t.Fatalf("only %d shipped scenarios", len(infos))
	}
	for _, in := range infos {
		t.Run(in.Name, func(t *testing.T) {
			s, err := Load(in.Name, nil)
			if err != nil {
				t.Fatal(err)
			}
			if s.Description == "" {
				t.Error("no description")
			}
			if s.Name != in.Name {
				t.Errorf("name %q in file %s.yaml", s.Name, in.Name)
			}
			for _, e := range Expand(s) {
				if _, err := e.Settings(); err != nil {
					t.Errorf("%s: %v", e.Name, err)
				}
			}
		})
	}
}

func TestShippedSeedFacts(t *testing.T) {
	for _, name := range []string{"persist-3s", "persist-30s"} {
		s, err := Load(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, sub := s.Publishers[0], s.Subscribers[0]
		if p.Messages != 10000 || p.QoS != 2 || p.Topic != "test" || p.ClientID != "pub" || p.Inflight != 20 {
			t.Errorf("%s publisher %+v", name, p)
		}
		if sub.ClientID != "slowsub" || sub.Clean() || sub.Pace.D() != time.Minute || sub.PaceMode != "ack" {
			t.Errorf("%s subscriber %+v", name, sub)
		}
		want := strings.TrimPrefix(strings.TrimSuffix(name, "s"), "persist-")
		if v, _ := s.BrokerValue("autosave_interval"); v != want {
			t.Errorf("%s autosave_interval %q, want %q", name, v, want)
		}
	}
}

func TestUnknownScenario(t *testing.T) {
	_, err := Load("no-such-scenario", nil)
	if err == nil || !strings.Contains(err.Error(), "persist-3s") {
		t.Fatalf("want an error listing shipped names, got %v", err)
	}
}

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{`"1m30s"`, 90 * time.Second, false},
		{`"250ms"`, 250 * time.Millisecond, false},
		{`1000`, 1000, false},
		{`"soon"`, 0, true},
		{`true`, 0, true},
	}
	for _, tt := range tests {
		var d Duration
		err := json.Unmarshal([]byte(tt.in), &d)
		if (err != nil) != tt.bad {
			t.Fatalf("%s: err %v", tt.in, err)
		}
		if !tt.bad && d.D() != tt.want {
			t.Fatalf("%s: got %v", tt.in, d.D())
		}
	}
	b, _ := json.Marshal(Duration(3 * time.Second))
	if string(b) != `"3s"` {
		t.Fatalf("marshal: %s", b)
	}
}

// TestClientDefault: one persistent connection defaults to the lean client,
// connection_per_message to paho (the seed experiment's publish.single), and
// an explicit choice is kept.
func TestClientDefault(t *testing.T) {
	tests := []struct {
		name string
		sets []string
		want string
	}{
		{"persistent connection", nil, ClientLean},
		{"connection per message", []string{"publishers.0.connection_per_message=true"}, ClientPaho},
		{"explicit paho", []string{"publishers.0.client=paho"}, ClientPaho},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(writeScenario(t, good), tt.sets)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Publishers[0].Client; got != tt.want {
				t.Errorf("client = %q, want %q", got, tt.want)
			}
		})
	}
	for _, name := range []string{"persist-3s-literal", "persist-30s-literal"} {
		s, err := Load(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Publishers[0].Client; got != ClientPaho {
			t.Errorf("%s: client %q, want paho (connection per message)", name, got)
		}
	}
}
