package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

// TestLeanSubscriberTiny is TestExecuteMosquitto and TestExecuteBundled with
// the tiny scenario's persistent, paced subscriber (ack pace mode: acks
// released by consumeLoop) on the lean client.
func TestLeanSubscriberTiny(t *testing.T) {
	for _, kind := range []string{"bundled", "mosquitto"} {
		t.Run(kind, func(t *testing.T) {
			sc := loadTiny(t, "subscribers.0.client=lean")
			dir := filepath.Join(t.TempDir(), "run")
			if _, err := Execute(context.Background(), Options{Scenario: sc, Target: sideTarget(t, kind, sc), OutDir: dir, MQBench: "test"}); err != nil {
				t.Fatal(err)
			}
			checkRun(t, dir, 200, true)
		})
	}
}

// sideTarget starts the broker of one kind with the scenario's settings:
// the bundled broker in this process, or a real Mosquitto 2.0.11.
func sideTarget(t *testing.T, kind string, sc *scenarios.Scenario) Target {
	t.Helper()
	if kind == "mosquitto" {
		return startMosquitto(t, sc)
	}
	return startBundled(t, sc)
}

// pairScenario: one publisher (400 messages at 1,000/s) and two subscribers
// on the same filter, one on paho and one on the lean client, both
// persistent for QoS 1 and 2 and taken away for 150 ms mid-run by the
// disconnect and reconnect actions, so the session resumes with a backlog.
// QoS 0 has nothing to resume (the broker does not queue it by default):
// its subscribers stay connected.
func pairScenario(qos, protocol int) string {
	s := fmt.Sprintf(`name: lean-pair
protocol: %d
broker:
  max_queued_messages: 0
publishers:
  - client_id: pub
    messages: 400
    qos: %d
    rate: 1000
    topic: pair
    inflight: 20
    payload: {kind: random, size: 100}
subscribers:
  - {client_id: paho-sub, filter: pair, qos: %[2]d, clean_session: %[3]t, client: paho}
  - {client_id: lean-sub, filter: pair, qos: %[2]d, clean_session: %[3]t, client: lean}
duration: 1500ms
drain: true
drain_timeout: 10s
sample:
  interval: 50ms
`, protocol, qos, qos == 0)
	if qos > 0 {
		s += `actions:
  - {at: 150ms, do: disconnect, target: paho-sub}
  - {at: 150ms, do: disconnect, target: lean-sub}
  - {at: 300ms, do: reconnect, target: paho-sub}
  - {at: 300ms, do: reconnect, target: lean-sub}
`
	}
	return s
}

// TestLeanSubscriberAccounting: the lean subscriber beside the paho one in
// the same run, on both brokers, QoS 0, 1 and 2, MQTT 3.1.1 and 5, with a
// persistent session resumed mid-run for QoS 1 and 2: both receive every
// message (none lost), the lean subscriber's accounting (expected,
// delivered, lost) is the paho subscriber's, and the lean subscriber never
// consumes a QoS 2 message twice.
func TestLeanSubscriberAccounting(t *testing.T) {
	for _, kind := range []string{"bundled", "mosquitto"} {
		for _, protocol := range []int{4, 5} {
			for qos := 0; qos <= 2; qos++ {
				t.Run(fmt.Sprintf("%s/protocol=%d/qos=%d", kind, protocol, qos), func(t *testing.T) {
					p := filepath.Join(t.TempDir(), "pair.yaml")
					if err := os.WriteFile(p, []byte(pairScenario(qos, protocol)), 0o644); err != nil {
						t.Fatal(err)
					}
					sc, err := scenarios.Load(p, nil)
					if err != nil {
						t.Fatal(err)
					}
					dir := filepath.Join(t.TempDir(), "run")
					if _, err := Execute(context.Background(), Options{Scenario: sc, Target: sideTarget(t, kind, sc), OutDir: dir, MQBench: "test"}); err != nil {
						t.Fatal(err)
					}
					run, err := ReadRun(dir)
					if err != nil {
						t.Fatal(err)
					}
					if run.Footer == nil || run.Footer.Status != "ok" {
						t.Fatalf("footer %+v", run.Footer)
					}
					s := Summarize(run)
					if s.Published != 400 || s.Acked != 400 {
						t.Fatalf("published %d acked %d, want 400", s.Published, s.Acked)
					}
					paho, lean := subByName(t, s, "paho-sub"), subByName(t, s, "lean-sub")
					for _, sub := range []SubscriberSummary{paho, lean} {
						if sub.Expected != 400 || sub.Lost != 0 || sub.Delivered+sub.HeldAtEnd != 400 {
							t.Errorf("%s: expected %d delivered %d held %d lost %d, want all 400 delivered", sub.Client, sub.Expected, sub.Delivered, sub.HeldAtEnd, sub.Lost)
						}
					}
					switch {
					case qos == 0 && (lean.Duplicates != 0 || paho.Duplicates != 0):
						t.Errorf("duplicates at QoS 0: lean %d, paho %d", lean.Duplicates, paho.Duplicates)
					case qos == 2 && lean.Duplicates != 0:
						t.Errorf("lean-sub: %d duplicates at QoS 2", lean.Duplicates)
					case qos == 2 && paho.Duplicates != 0:
						// Both paho clients hand a QoS 2 PUBLISH the broker sends
						// again after the resume to the application a second time;
						// the lean subscriber keeps the session's PUBREC'd ids.
						t.Logf("paho-sub: %d duplicates at QoS 2 after the session resumed (lean-sub: none)", paho.Duplicates)
					}
					if lean.Expected != paho.Expected || lean.Delivered != paho.Delivered || lean.Lost != paho.Lost {
						t.Errorf("lean %+v, paho %+v: the accounting differs", lean, paho)
					}
					if protocol == 5 {
						connacks := 0
						for _, e := range run.Events {
							if e.Type == EvReason && e.Client == "lean-sub" && e.Reason == ReasonLabel(rcConnack, 0) {
								connacks++
							}
						}
						if want := 1 + min(qos, 1); connacks != want {
							t.Errorf("lean-sub recorded %d CONNACK 0x00 reasons, want %d (one per connection)", connacks, want)
						}
					}
				})
			}
		}
	}
}

// TestLeanSubscriberKeepalive: an idle lean subscriber with a 1 s keepalive
// stays connected for 4 s on both brokers (Mosquitto closes a client silent
// for 1.5 keepalives), so its PINGREQs go out and their PINGRESPs are read.
func TestLeanSubscriberKeepalive(t *testing.T) {
	for _, kind := range []string{"bundled", "mosquitto"} {
		t.Run(kind, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "ka.yaml")
			text := `name: lean-keepalive
publishers:
  - {client_id: pub, messages: 1, qos: 1, topic: ka}
subscribers:
  - {client_id: idle, filter: ka, qos: 1, client: lean, connect: {keepalive: 1s}}
duration: 4s
drain: false
`
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			sc, err := scenarios.Load(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "run")
			if _, err := Execute(context.Background(), Options{Scenario: sc, Target: sideTarget(t, kind, sc), OutDir: dir, MQBench: "test"}); err != nil {
				t.Fatal(err)
			}
			run, err := ReadRun(dir)
			if err != nil {
				t.Fatal(err)
			}
			recv := 0
			for _, e := range run.Events {
				if e.Type == EvNote && strings.Contains(e.Msg, "idle") {
					t.Errorf("note: %s", e.Msg)
				}
				if e.Type == EvRecv {
					recv++
				}
			}
			if recv != 1 {
				t.Errorf("%d deliveries, want 1", recv)
			}
		})
	}
}

// A subscriber that loses its connection once publishing is over (the drain)
// still reconnects: the drain waits for messages a broker back by then holds.
// One loop serves the lean and the MQTT 5 subscriber (lostRetry).
func TestLostRetryDuringDrain(t *testing.T) {
	rec, err := NewRecorder(filepath.Join(t.TempDir(), EventsFile), Header{})
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{rec: rec, stop: make(chan struct{}), stopPublish: make(chan struct{}), drainCh: make(chan struct{}), brokers: []*brokerRun{{}}}
	e.pubOnce.Do(func() { close(e.stopPublish) }) // the drain phase
	s := &subscriber{e: e, id: "sub"}
	var mu sync.Mutex
	retrying := false
	calls := make(chan int, 10)
	n := 0
	connect := func() error {
		n++
		calls <- n
		if n < 2 {
			return fmt.Errorf("broker still away")
		}
		return nil
	}
	s.lostRetry(&mu, &retrying, func() bool { return true }, fmt.Errorf("gone"), connect)
	for want := 1; want <= 2; want++ {
		select {
		case got := <-calls:
			if got != want {
				t.Fatalf("connect call %d, want %d", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no reconnect attempt %d during the drain", want)
		}
	}
	e.endRun()
	e.wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if retrying {
		t.Error("still marked retrying after a successful reconnect")
	}
	if err := rec.Close(Footer{Type: "footer", Status: "ok"}); err != nil {
		t.Fatal(err)
	}
}
