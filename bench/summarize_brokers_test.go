package bench

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mqbench/mqbench/runfile"
	"github.com/mqbench/mqbench/scenarios"
)

// bridgeRun summarizes a synthetic edge -> core run: 100 QoS 1 messages
// acknowledged at the edge, of which the core's subscriber got the first 60
// (seq 7 twice), the edge's last decoded save held 30, the core's $SYS counted
// 4 drops, the edge's 2, and the core was stopped, started, killed and
// started again. The edge's
// file grew during the outage; the core's shrank after its restart.
func bridgeRun(t *testing.T) Summary {
	t.Helper()
	drain := false
	sc := scenarios.Scenario{
		Name: "bridge",
		Brokers: []scenarios.NamedBroker{
			{Name: "edge", Conf: []scenarios.BrokerSetting{{Key: "connection", Values: []string{"c"}}, {Key: "address", Values: []string{"@core"}}}},
			{Name: "core"},
		},
		Publishers:  []scenarios.Publisher{{ClientID: "pub", Count: 1, Messages: 100, QoS: 1, Topic: "bo/q1/data", Broker: "edge"}},
		Subscribers: []scenarios.Subscriber{{ClientID: "sub", Count: 1, Filter: "bo/q1/#", QoS: 1, Broker: "core"}},
		Duration:    scenarios.Duration(time.Second),
		Drain:       &drain,
	}
	raw, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	h := testHeader()
	h.ScenarioName, h.Scenario = sc.Name, raw
	h.Named = []runfile.NamedBroker{
		{Name: "edge", Kind: "bundled", Addr: "tcp://127.0.0.1:1", PersistPath: "/e/mosquitto.db", Config: []string{"autosave_interval 5"}, ConfigSource: "launched"},
		{Name: "core", Kind: "mosquitto", Addr: "tcp://127.0.0.1:2", PersistPath: "/c/mosquitto.db", Config: []string{"autosave_interval 3"}, ConfigSource: "launched"},
	}
	run := &Run{Header: h}
	const ms = int64(time.Millisecond)
	add := func(e Event) { run.Events = append(run.Events, e) }
	add(Event{T: 0, Type: EvPhase, Msg: "run"})
	for seq := int64(1); seq <= 100; seq++ {
		add(Event{T: seq * ms, Type: EvPub, Client: "pub", Seq: seq, QoS: 1})
		add(Event{T: seq*ms + 1, Type: EvAck, Client: "pub", Seq: seq})
		if seq <= 60 {
			add(Event{T: seq*ms + 2, Type: EvRecv, Client: "sub", Pub: "pub", Seq: seq, PubT: seq * ms})
		}
	}
	add(Event{T: 7*ms + 3, Type: EvRecv, Client: "sub", Pub: "pub", Seq: 7, Dup: true})
	for i, b := range []string{"edge", "core"} {
		add(Event{T: 10 * ms, Type: EvGauge, Name: GaugeDropped, Value: 0, Broker: b})
		add(Event{T: 200 * ms, Type: EvGauge, Name: GaugeDropped, Value: float64(2 + 2*i), Broker: b})
		add(Event{T: 200 * ms, Type: EvGauge, Name: GaugePersistBytes, Value: float64(1000 * (i + 1)), Broker: b})
	}
	add(Event{T: 50 * ms, Type: EvAction, Action: "stop", Target: "core", Broker: "core"})
	add(Event{T: 80 * ms, Type: EvAction, Action: "start", Target: "core", Broker: "core"})
	add(Event{T: 100 * ms, Type: EvAction, Action: "kill", Target: "core", Broker: "core"})
	add(Event{T: 110 * ms, Type: EvAction, Action: "start", Target: "core", Broker: "core"})
	add(Event{T: 90 * ms, Type: EvSave, SizeBytes: 9000, Held: 30, Stored: 30, Decoded: true, Broker: "edge"})
	add(Event{T: 150 * ms, Type: EvSave, SizeBytes: 500, Held: 0, Decoded: true, Broker: "core"})
	run.Footer = &Footer{T: 300 * ms, Status: "ok"}
	return Summarize(run)
}

// TestBridgeReconciles pins the reconciliation across a bridge: every
// acknowledged message is delivered, held at one end, dropped by one end, or
// lost, and each broker's own file, drops and actions stay its own.
func TestBridgeReconciles(t *testing.T) {
	s := bridgeRun(t)
	if len(s.Bridge) != 1 {
		t.Fatalf("bridge flows = %+v, want one edge -> core", s.Bridge)
	}
	f := s.Bridge[0]
	want := BridgeFlow{From: "edge", To: "core", Subscribers: []string{"sub"}, Acked: 100, Delivered: 60,
		HeldFrom: 30, HeldTo: 0, DroppedFrom: 2, DroppedTo: 4, Lost: 4, Duplicates: 1}
	if f.From != want.From || f.To != want.To || f.Acked != want.Acked || f.Delivered != want.Delivered ||
		f.HeldFrom != want.HeldFrom || f.HeldTo != want.HeldTo || f.DroppedFrom != want.DroppedFrom ||
		f.DroppedTo != want.DroppedTo || f.Lost != want.Lost || f.Duplicates != want.Duplicates {
		t.Errorf("flow = %+v\nwant %+v", f, want)
	}
	if sum := f.Delivered + f.DeliveredInDrain + f.HeldFrom + f.HeldTo + f.DroppedFrom + f.DroppedTo + f.Lost; sum != f.Acked {
		t.Errorf("flow does not add up: %d explained of %d acked", sum, f.Acked)
	}
	// The run's lost is the bridge's: what the edge held or either end
	// dropped is not lost because the top level reads only the edge's file.
	if s.Lost != f.Lost || len(s.Subscribers) != 1 || s.Subscribers[0].Lost != f.Lost {
		t.Errorf("top-level lost %d (subscriber %+v), want the bridge's %d", s.Lost, s.Subscribers, f.Lost)
	}
	edge, core := s.Brokers["edge"], s.Brokers["core"]
	if edge == nil || core == nil {
		t.Fatalf("brokers = %v", s.Brokers)
	}
	if edge.Persist.MaxBytes != 9000 || core.Persist.MaxBytes != 2000 {
		t.Errorf("max bytes edge %d core %d, want 9000 and 2000 (each its own file)", edge.Persist.MaxBytes, core.Persist.MaxBytes)
	}
	if edge.DroppedByBroker != 2 || core.DroppedByBroker != 4 {
		t.Errorf("dropped edge %d core %d, want 2 and 4", edge.DroppedByBroker, core.DroppedByBroker)
	}
	if core.Stops != 1 || core.Starts != 2 || core.Kills != 1 || edge.Stops != 0 || edge.Kills != 0 {
		t.Errorf("actions: core %d/%d/%d edge %d/%d, want the core's stop, kill and starts on the core only", core.Stops, core.Starts, core.Kills, edge.Stops, edge.Kills)
	}
	if edge.Persist.AutosaveInterval != "5" || core.Persist.AutosaveInterval != "3" {
		t.Errorf("autosave edge %q core %q", edge.Persist.AutosaveInterval, core.Persist.AutosaveInterval)
	}
	if edge.Persist.ExposureMaxNS != nil || edge.FinalSave == nil || edge.FinalSave.Held != 30 {
		t.Errorf("edge persist: exposure %v (want unknown), final save %+v", edge.Persist.ExposureMaxNS, edge.FinalSave)
	}
	// The top level is the first broker's: the core's stop and drops are not its.
	if s.Persist.MaxBytes != 9000 || s.DroppedByBroker != 2 || s.Persist.Saves != 1 {
		t.Errorf("top level max bytes %d dropped %d saves %d, want the edge's 9000, 2 and 1", s.Persist.MaxBytes, s.DroppedByBroker, s.Persist.Saves)
	}
	// Messages acknowledged after the edge's only save were in its memory
	// alone to the end: neither the core's later save nor its kill ends that.
	if e := s.Persist.ExposureMaxNS; e == nil || *e < 200*int64(time.Millisecond) {
		t.Errorf("top level exposure %v, want about 210 ms (the core's save and kill are not the edge's)", e)
	}
	if s.Crash != nil {
		t.Errorf("the core's kill became the top level's crash: %+v", s.Crash)
	}
}

// TestOneBrokerNoBrokers: a one-broker run has no brokers or bridge section,
// so its summary reads as it always did.
func TestOneBrokerNoBrokers(t *testing.T) {
	s := Summarize(&Run{Header: testHeader(), Footer: &Footer{Status: "ok"}})
	if s.Brokers != nil || s.Bridge != nil {
		t.Errorf("brokers %v bridge %v for one broker", s.Brokers, s.Bridge)
	}
}
