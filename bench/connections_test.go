package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/scenarios"
)

const manyConnsScenario = `name: conns
publishers:
  - client_id: pub
    messages: 20
    qos: 1
    topic: conn/trickle
    rate: 100
subscribers:
  - client_id: trickle
    filter: conn/trickle
    qos: 1
    client: lean
  - client_id: idle-%d
    count: 40
    filter: conn/idle
    qos: 0
    client: lean
    connect_rate: 200
duration: 500ms
drain_timeout: 5s
`

// A run with more connections than one source address may open (made small
// here) spreads them over 127.0.0.1-3, ramps the idle group at its connect
// rate, and summarises every first connect: count, peak, rate, latency and
// memory per connection.
func TestConnectionsRun(t *testing.T) {
	old := portsPerSource
	portsPerSource = 16
	defer func() { portsPerSource = old }()
	p := filepath.Join(t.TempDir(), "conns.yaml")
	if err := os.WriteFile(p, []byte(manyConnsScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := scenarios.Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := startBundled(t, sc)
	dir := filepath.Join(t.TempDir(), "run")
	if _, err := Execute(context.Background(), Options{Scenario: sc, Target: target, OutDir: dir, MQBench: "test"}); err != nil {
		t.Fatal(err)
	}
	s, err := SummarizeFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "ok" || s.Lost != 0 || s.Delivered != 20 {
		t.Fatalf("status %s lost %d delivered %d", s.Status, s.Lost, s.Delivered)
	}
	c := s.Connections
	if c == nil {
		t.Fatal("no connections summary")
	}
	// 41 subscribers and the publisher ($SYS monitor not counted).
	if c.Connected != 42 || c.Peak != 42 || c.Lost != 0 || c.Connect.Count != 42 {
		t.Errorf("connected %d peak %d lost %d latencies %d, want 42, 42, 0, 42", c.Connected, c.Peak, c.Lost, c.Connect.Count)
	}
	// The idle group's 40 connects at 200/s span at least 195 ms, whatever
	// the machine's speed: the rate cannot be above 42 / 0.195 s.
	if c.PerS <= 0 || c.PerS > 216 {
		t.Errorf("connect rate %.1f/s: the ramp of 200/s was not kept", c.PerS)
	}
	if c.ConnectP99Ns <= 0 || c.ConnectP99Ns != c.Connect.P99 {
		t.Errorf("connect p99 %d (latency %+v)", c.ConnectP99Ns, c.Connect)
	}
	if s.Bench.BytesPerConnection == nil {
		t.Error("mqbench's memory per connection unknown though both edges were sampled")
	}
	// The in-process broker has no process of its own to measure.
	if s.BrokerProcess.BytesPerConnection != nil {
		t.Errorf("broker memory per connection %v for a broker without a PID", *s.BrokerProcess.BytesPerConnection)
	}
}

func TestSourcePlan(t *testing.T) {
	old := portsPerSource
	portsPerSource = 10
	defer func() { portsPerSource = old }()
	sc := &scenarios.Scenario{
		Publishers:  []scenarios.Publisher{{ClientID: "pub", Count: 1}},
		Subscribers: []scenarios.Subscriber{{ClientID: "s-%d", Count: 24}},
	}
	e := &engine{sc: sc, addr: "tcp://127.0.0.1:1883"}
	p, err := newSourcePlan(e)
	if err != nil {
		t.Fatal(err)
	}
	// 26 connections (with the $SYS monitor), 10 per address: 3 addresses.
	if p == nil || len(p.addrs) != 3 || len(p.byID) != 26 {
		t.Fatalf("plan %+v", p)
	}
	per := map[string]int{}
	for _, a := range p.byID {
		per[a.IP.String()]++
	}
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		if per[ip] < 8 || per[ip] > 10 {
			t.Errorf("%s holds %d connections, want 8-10 (%v)", ip, per[ip], per)
		}
	}
	e.addr = "tcp://192.0.2.1:1883"
	if _, err := newSourcePlan(e); err == nil || !strings.Contains(err.Error(), "--shard") {
		t.Errorf("a remote broker beyond one address's ports: %v", err)
	}
	portsPerSource = 100
	if p, err := newSourcePlan(e); p != nil || err != nil {
		t.Errorf("within one address's ports: plan %v, %v", p, err)
	}
}

func TestFileLimitRefused(t *testing.T) {
	limit, err := RaiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkFileLimit(int(limit)); err == nil || !strings.Contains(err.Error(), "ulimit -Hn") {
		t.Errorf("a scenario of %d connections under a limit of %d: %v", limit, limit, err)
	}
	if err := checkFileLimit(10); err != nil {
		t.Errorf("10 connections: %v", err)
	}
}

// The connection pass on its own: losses lower the open count, the peak
// stays, and memory per connection needs both edges.
func TestConnPass(t *testing.T) {
	var c connPass
	for _, e := range []Event{
		{T: 10, Type: EvConn, Msg: ConnUp, Dur: 5},
		{T: 20, Type: EvConn, Msg: ConnUp, Dur: 10},
		{T: 25, Type: EvConn, Msg: ConnLost},
		{T: 1_000_000_005, Type: EvConn, Msg: ConnUp, Dur: 7},
	} {
		c.add(&e)
	}
	c.gauge(&Event{Type: EvGauge, Name: GaugeBenchRSSBeforeConnect, Value: 1000})
	c.gauge(&Event{Type: EvGauge, Name: GaugeBenchRSSConnected, Value: 5000})
	var s Summary
	c.close(&s)
	cs := s.Connections
	if cs.Connected != 3 || cs.Lost != 1 || cs.Peak != 2 {
		t.Errorf("connected %d lost %d peak %d, want 3 1 2", cs.Connected, cs.Lost, cs.Peak)
	}
	if cs.PerS != 3 { // 3 connects from t=5 to t=1 s+5
		t.Errorf("rate %g, want 3/s", cs.PerS)
	}
	if s.Bench.BytesPerConnection == nil || *s.Bench.BytesPerConnection != 2000 {
		t.Errorf("bench bytes per connection %v, want 2000 (4000 over a peak of 2)", s.Bench.BytesPerConnection)
	}
	if s.BrokerProcess.BytesPerConnection != nil {
		t.Error("broker memory per connection without its samples")
	}
}
