package bench

import (
	"fmt"
	"sync/atomic"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqbench/mqbench/runfile"
	"github.com/mqbench/mqbench/scenarios"
)

// NamedTarget is one broker of a run with several (the scenario's brokers
// list): the launch package starts each and hands them over by name.
type NamedTarget struct {
	Name   string
	Target Target
}

// brokerRun is what the engine knows of one broker during a run: where its
// clients connect, whether a stop or kill action has it down (so its clients'
// disconnects are expected, and no other broker's), its sampler and $SYS
// monitor. A one-broker run has one, named "".
type brokerRun struct {
	name   string
	target Target
	addr   string
	// down: a stop/kill action is in effect on this broker.
	down atomic.Bool
	// backUpT is when the broker last came back (rec.Since() after a start
	// action following stop/kill), 0 if it never went down. A publish sent
	// before then may fail because of the outage even though its error is
	// reported later.
	backUpT atomic.Int64
	smp     *sampler
	sys     mqtt.Client
}

// sysID is the client id of the broker's $SYS monitor: the one broker's
// keeps the id runs always used.
func (b *brokerRun) sysID() string {
	if b.name == "" {
		return sysClientID
	}
	return sysClientID + "-" + b.name
}

// tag puts the broker's name on an event that belongs to it (empty for the
// one broker of a run, so its events are recorded as they always were).
func (b *brokerRun) tag(ev Event) Event {
	ev.Broker = b.name
	return ev
}

// newBrokers builds the engine's brokers: the one target, or one per
// scenario broker, each client mapped to its group's broker.
func newBrokers(o Options, sc *scenarios.Scenario) ([]*brokerRun, map[string]*brokerRun, error) {
	if !sc.MultiBroker() {
		if len(o.Brokers) > 0 {
			return nil, nil, fmt.Errorf("run: %d named brokers for a scenario without a brokers list", len(o.Brokers))
		}
		return []*brokerRun{{target: o.Target, addr: o.Target.Addr()}}, nil, nil
	}
	byName := map[string]Target{}
	for _, nt := range o.Brokers {
		byName[nt.Name] = nt.Target
	}
	var out []*brokerRun
	index := map[string]*brokerRun{}
	for _, name := range sc.BrokerNames() {
		t := byName[name]
		if t == nil {
			return nil, nil, fmt.Errorf("run: no target for broker %s of the scenario", name)
		}
		b := &brokerRun{name: name, target: t, addr: t.Addr()}
		if len(splitAddrs(b.addr)) != 1 {
			return nil, nil, fmt.Errorf("broker %s: a cluster address (%s) cannot be one broker of a run with several", name, b.addr)
		}
		out = append(out, b)
		index[name] = b
	}
	if len(o.Brokers) != len(out) {
		return nil, nil, fmt.Errorf("run: %d named brokers for a scenario of %d", len(o.Brokers), len(out))
	}
	byClient := map[string]*brokerRun{}
	for g, p := range sc.Publishers {
		for _, id := range p.IDs() {
			byClient[id] = index[sc.PublisherBroker(g)]
		}
	}
	for g, s := range sc.Subscribers {
		for _, id := range s.IDs() {
			byClient[id] = index[sc.SubscriberBroker(g)]
		}
	}
	for _, b := range out {
		byClient[b.sysID()] = b
	}
	return out, byClient, nil
}

// namedHeader records every broker of a run with several (nil for one).
func namedHeader(bs []*brokerRun) []runfile.NamedBroker {
	if len(bs) == 0 || bs[0].name == "" {
		return nil
	}
	out := make([]runfile.NamedBroker, len(bs))
	for i, b := range bs {
		out[i] = runfile.NamedBroker{
			Name: b.name, Kind: b.target.Kind(), Version: b.target.Version(), Addr: b.addr,
			PersistPath: b.target.PersistPath(), Config: b.target.ConfigLines(), ConfigSource: configSourceOf(b.target),
		}
	}
	return out
}

// brokerOf is the broker client id connects to (the first for an id not in
// the scenario, e.g. the one broker's $SYS monitor).
func (e *engine) brokerOf(id string) *brokerRun {
	if b := e.byClient[id]; b != nil {
		return b
	}
	if len(e.brokers) == 0 {
		return &brokerRun{} // a bare engine of a test: a broker never down
	}
	return e.brokers[0]
}

// brokerNamed is the broker an action names (the first when it names none).
func (e *engine) brokerNamed(name string) *brokerRun {
	for _, b := range e.brokers {
		if b.name == name {
			return b
		}
	}
	if name == "" {
		return e.brokers[0]
	}
	return nil
}

// downFor says whether client id's broker is down by a scheduled stop/kill.
func (e *engine) downFor(id string) bool { return e.brokerOf(id).down.Load() }

// levelFor is "info" while a scheduled stop/kill has client id's broker
// down (trouble is expected then), "warn" otherwise: a core stopped by the
// scenario explains its own clients' disconnects, not the edge's.
func (e *engine) levelFor(id string) string {
	if e.downFor(id) {
		return LevelInfo
	}
	return LevelWarn
}

// pubErrLevel is the level for a failed publish of publisher id sent at
// sendT: paho reports a publish's failure only when the publisher's in-order
// acknowledgement loop reaches it, which after a kill may be once the broker
// is back, so whether the outage explains the failure depends on when the
// message was sent, not on when its error is seen.
func (e *engine) pubErrLevel(id string, sendT int64) string {
	if up := e.brokerOf(id).backUpT.Load(); up > 0 && sendT < up {
		return LevelInfo
	}
	return e.levelFor(id)
}

// of is " of broker NAME" for notes about one broker of several, "" for the
// one broker, so a one-broker run's notes read as they always did.
func (b *brokerRun) of() string {
	if b.name == "" {
		return ""
	}
	return " of broker " + b.name
}
