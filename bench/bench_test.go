package bench

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqbench/mqbench/scenarios"
)

// benchMessages is the size of one benchmark round: 10,000 QoS 2 150-byte
// messages over one connection with 1,000 in flight and no subscriber, so the
// publisher path alone is measured.
const benchMessages = 10000

// benchScenario is throughput-qos2 without its subscriber.
func benchScenario(tb testing.TB) *scenarios.Scenario {
	tb.Helper()
	sc, err := scenarios.Load("throughput-qos2", []string{
		"duration=5s", "drain=false", "sample.interval=100ms",
		"publishers.0.messages=10000", "publishers.0.inflight=1000",
	})
	if err != nil {
		tb.Fatal(err)
	}
	sc.Subscribers = nil
	return sc
}

// BenchmarkPublishQoS2Window1000 measures what one mqbench publisher gets through
// a real Mosquitto: paho alone (bare) and the whole engine with recorder,
// sampler, $SYS monitor and /proc sampling (engine). The msgs/s metric is the
// answer; the difference is the harness's overhead.
func BenchmarkPublishQoS2Window1000(b *testing.B) {
	sc := benchScenario(b)
	target := startMosquitto(b, sc)
	b.Run("bare", func(b *testing.B) {
		var total time.Duration
		for i := 0; i < b.N; i++ {
			total += barePublish(b, target.Addr(), benchMessages, 1000)
		}
		b.ReportMetric(float64(benchMessages*b.N)/total.Seconds(), "msgs/s")
	})
	b.Run("engine", func(b *testing.B) {
		var total time.Duration
		for i := 0; i < b.N; i++ {
			total += enginePublish(b, sc, target)
		}
		b.ReportMetric(float64(benchMessages*b.N)/total.Seconds(), "msgs/s")
	})
}

// barePublish publishes n messages with paho and a window, recording nothing.
func barePublish(b *testing.B, addr string, n, window int) time.Duration {
	opts := mqtt.NewClientOptions().AddBroker(addr).SetClientID("bare").SetProtocolVersion(4)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	gen, _ := newPayloadGen(scenarios.Payload{Kind: "random", Size: 150}, "bare", false, 1)
	sem := make(chan struct{}, window)
	toks := make(chan mqtt.Token, window)
	done := make(chan struct{})
	go func() {
		for tok := range toks {
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				b.Errorf("publish: %v", tok.Error())
			}
			<-sem
		}
		close(done)
	}()
	start := time.Now()
	for seq := int64(1); seq <= int64(n); seq++ {
		sem <- struct{}{}
		p, _ := gen.make(seq, time.Now())
		toks <- c.Publish("test", 2, false, p)
	}
	close(toks)
	<-done
	return time.Since(start)
}

// enginePublish runs the scenario through Execute and returns first pub to last ack.
func enginePublish(b *testing.B, sc *scenarios.Scenario, target Target) time.Duration {
	dir := filepath.Join(b.TempDir(), "run")
	if _, err := Execute(context.Background(), Options{Scenario: sc, Target: target, OutDir: dir}); err != nil {
		b.Fatal(err)
	}
	run, err := ReadRun(dir)
	if err != nil {
		b.Fatal(err)
	}
	var first, last int64 = -1, 0
	acks := 0
	for _, e := range run.Events {
		if e.Type == EvPub && first < 0 {
			first = e.T
		}
		if e.Type == EvAck {
			acks++
			last = e.T
		}
	}
	if acks != benchMessages {
		b.Fatalf("%d acks, want %d", acks, benchMessages)
	}
	return time.Duration(last - first)
}
