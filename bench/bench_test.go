package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqbench/mqbench/scenarios"
)

// benchMessages is the size of one benchmark round: 10,000 QoS 2 150-byte
// messages over one connection and no subscriber, so the publisher path alone
// is measured.
const benchMessages = 10000

// benchScenario is throughput-qos2 without its subscriber, on the given client.
func benchScenario(tb testing.TB, client string) *scenarios.Scenario {
	tb.Helper()
	sc, err := scenarios.Load("throughput-qos2", []string{
		"duration=5s", "drain=false", "sample.interval=100ms",
		"publishers.0.messages=10000", "publishers.0.inflight=1000",
		"publishers.0.client=" + client,
	})
	if err != nil {
		tb.Fatal(err)
	}
	sc.Subscribers = nil
	return sc
}

// cpuTime is this process's user+system CPU time (getrusage): the publisher's
// own cost, which a busy 2-core machine shares with the broker.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// brokerCPU is the broker process's CPU time (0 if unknown): on a 2-core
// machine the broker and the client compete, so both costs matter.
func brokerCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	s, err := readProc(pid)
	if err != nil {
		return 0
	}
	return time.Duration(s.CPUSeconds * float64(time.Second))
}

// excluded is work a round did that is not publishing (reading the recorded
// run back), taken out of the CPU and allocation figures.
var excludedCPU, excludedAlloc uint64

// measure runs round b.N times, each returning the time from first publish to
// last ack of benchMessages messages, and reports msgs/s, CPU µs per message
// (ours and the broker's) and heap bytes allocated per message.
func measure(b *testing.B, brokerPID int, round func() time.Duration) {
	excludedCPU, excludedAlloc = 0, 0
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	cpu0, bcpu0 := cpuTime(b), brokerCPU(brokerPID)
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		total += round()
	}
	b.StopTimer()
	cpu, bcpu := cpuTime(b)-cpu0-time.Duration(excludedCPU), brokerCPU(brokerPID)-bcpu0
	runtime.ReadMemStats(&ms1)
	ms1.TotalAlloc -= excludedAlloc
	msgs := float64(benchMessages * b.N)
	b.ReportMetric(msgs/total.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/msgs, "cpu-µs/msg")
	if brokerPID > 0 {
		b.ReportMetric(float64(bcpu.Microseconds())/msgs, "broker-cpu-µs/msg")
	}
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/msgs, "B/msg")
}

// BenchmarkPublishQoS2 measures what one publisher gets through each broker
// (Mosquitto, and the bundled broker as a subprocess, both with
// max_inflight_messages 0 and max_queued_messages 0, started in the same run)
// with windows 1, 20 and 1,000: the lean client in 3.1.1 and in MQTT 5 mode
// against paho's 3.1.1 client. The msgs/s metric is the answer; cpu-µs/msg and
// B/msg say what the client costs, broker-cpu-µs/msg what the broker does.
func BenchmarkPublishQoS2(b *testing.B) {
	for _, kind := range benchBrokers {
		b.Run(kind, func(b *testing.B) {
			tb := startTransportBroker(b, kind, "")
			addr, pid := tb.addrs["tcp"], tb.pid
			for _, window := range []int{1, 20, 1000} {
				b.Run(fmt.Sprintf("window=%d/lean", window), func(b *testing.B) {
					measure(b, pid, func() time.Duration { return leanPublish(b, addr, benchMessages, window) })
				})
				b.Run(fmt.Sprintf("window=%d/lean-v5", window), func(b *testing.B) {
					measure(b, pid, func() time.Duration { return leanPublishV5(b, addr, benchMessages, window) })
				})
				b.Run(fmt.Sprintf("window=%d/paho", window), func(b *testing.B) {
					measure(b, pid, func() time.Duration { return barePublish(b, addr, benchMessages, window) })
				})
			}
		})
	}
}

// BenchmarkEngineOverhead is the price of recording: the bare lean publisher
// against the whole engine (recorder, sampler, $SYS monitor, /proc sampling)
// publishing the same messages with the same window (1,000) on the same client.
func BenchmarkEngineOverhead(b *testing.B) {
	sc := benchScenario(b, scenarios.ClientLean)
	target := startMosquitto(b, sc)
	b.Run("bare", func(b *testing.B) {
		measure(b, target.PID(), func() time.Duration { return leanPublish(b, target.Addr(), benchMessages, 1000) })
	})
	b.Run("engine", func(b *testing.B) {
		measure(b, target.PID(), func() time.Duration { return enginePublish(b, sc, target) })
	})
	b.Run("engine-paho", func(b *testing.B) {
		measure(b, target.PID(), func() time.Duration { return enginePublish(b, benchScenario(b, scenarios.ClientPaho), target) })
	})
}

// leanPublish publishes n QoS 2 messages with the lean client and a window,
// recording nothing; it returns first publish to last ack.
func leanPublish(b *testing.B, addr string, n, window int) time.Duration {
	return leanPublishTLS(b, addr, nil, n, window)
}

// leanPublishV5 is leanPublish in the lean publisher's MQTT 5 mode (no
// properties), so the two codecs are compared on the same broker.
func leanPublishV5(b *testing.B, addr string, n, window int) time.Duration {
	return leanPublishWith(b, addr, nil, n, window, newLeanV5(scenarios.Publisher{Protocol: scenarios.Protocol5}))
}

// leanPublishTLS is leanPublish over any transport (tlsc for mqtts:// and wss://).
func leanPublishTLS(b *testing.B, addr string, tlsc *tls.Config, n, window int) time.Duration {
	return leanPublishWith(b, addr, tlsc, n, window, nil)
}

// leanPublishWith is leanPublishTLS in MQTT 5 mode when v5 is not nil.
func leanPublishWith(b *testing.B, addr string, tlsc *tls.Config, n, window int, v5 *leanV5) time.Duration {
	stop := make(chan struct{})
	defer close(stop)
	start := time.Now()
	since := func() int64 { return int64(time.Since(start)) }
	acked := 0
	c, err := dialLean(leanOptions{
		Addr: addr, TLS: tlsc, ClientID: "bare-lean", Clean: true, QoS: 2, Topic: "test", Window: window,
		Stop: stop, Since: since,
		OnAck:  func(int64, int64) { acked++ }, // one reader goroutine: no race
		OnLost: func(err error) bool { b.Errorf("connection lost: %v", err); return false },
		V5:     v5,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.close()
	gen, _ := newPayloadGen(scenarios.Payload{Kind: "random", Size: 150}, "bare", false, 1)
	first := time.Now()
	for seq := int64(1); seq <= int64(n); seq++ {
		if !c.acquire(stop) {
			b.Fatal("publisher down")
		}
		p, _ := gen.make(seq, 0, time.Now())
		c.publish(seq, p)
	}
	if !c.waitIdle(stop) {
		b.Fatal("publisher down before every ack")
	}
	d := time.Since(first)
	if acked != n {
		b.Fatalf("%d acks, want %d", acked, n)
	}
	return d
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
		p, _ := gen.make(seq, 0, time.Now())
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
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime(b)
	run, err := ReadRun(dir)
	if err != nil {
		b.Fatal(err)
	}
	excludedCPU += uint64(cpuTime(b) - cpu0)
	runtime.ReadMemStats(&ms1)
	excludedAlloc += ms1.TotalAlloc - ms0.TotalAlloc
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
