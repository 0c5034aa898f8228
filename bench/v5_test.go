package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

// v5Run runs scenario text on a fresh Mosquitto 2.0.11 and returns the
// recorded run and its summary. The bundled broker is not used: its MQTT 5
// is being written (issue #8), and these tests must say what a real MQTT 5
// broker does.
func v5Run(t *testing.T, text string) (*Run, Summary) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "v5.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := scenarios.Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := startMosquitto(t, sc)
	dir := filepath.Join(t.TempDir(), "run")
	if _, err := Execute(context.Background(), Options{Scenario: sc, Target: target, OutDir: dir, MQBench: "test"}); err != nil {
		t.Fatal(err)
	}
	run, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	return run, Summarize(run)
}

// subByName finds a subscriber's (or share's) reconciliation.
func subByName(t *testing.T, s Summary, name string) SubscriberSummary {
	t.Helper()
	for _, sub := range s.Subscribers {
		if sub.Client == name {
			return sub
		}
	}
	t.Fatalf("no subscriber %s in %+v", name, s.Subscribers)
	return SubscriberSummary{}
}

// TestV5Mosquitto: an MQTT 5 run on Mosquitto, lean and paho.golang
// publishers. User properties and the
// content type reach the subscriber (topic alias on), a shared group splits
// the deliveries and is accounted as one, and a publish nobody subscribed
// to is acknowledged with PUBACK 0x10, counted.
func TestV5Mosquitto(t *testing.T) {
	run, s := v5Run(t, `name: v5
duration: 3s
drain_timeout: 5s
protocol: 5
publishers:
  - client_id: pub
    messages: 300
    qos: 1
    inflight: 10
    topic: v5/t
    topic_alias: true
    content_type: application/json
    user_properties: {origin: mqbench, run: "v5"}
  - client_id: lonely
    messages: 50
    qos: 1
    topic: v5/nobody
    start_at: 500ms
  - client_id: library
    client: paho
    messages: 100
    qos: 2
    inflight: 10
    topic: v5/lib
    content_type: text/plain
subscribers:
  - client_id: worker-%d
    count: 2
    filter: v5/t
    qos: 1
    shared_group: workers
    start_at: 0s
  - client_id: all
    filter: v5/t
    qos: 2
  - client_id: lib
    filter: v5/lib
    qos: 2
`)
	if run.Footer.Tainted {
		t.Errorf("tainted: %v", run.Footer.Reasons)
	}
	share := subByName(t, s, "$share/workers/v5/t")
	if share.Expected != 300 || share.Delivered+share.HeldAtEnd != 300 || share.Lost != 0 || share.Duplicates != 0 || share.Reordered != 0 {
		t.Errorf("share = %+v, want 300 expected and received once", share)
	}
	all := subByName(t, s, "all")
	if all.Delivered+all.HeldAtEnd != 300 || all.Lost != 0 {
		t.Errorf("all = %+v", all)
	}
	per := map[string]int{}
	props := false
	for _, e := range run.Events {
		if e.Type == EvRecv {
			per[e.Client]++
		}
		if e.Type == EvNote && strings.Contains(e.Msg, `MQTT 5 properties arrived as published: content_type "application/json", response_topic "", user_properties {origin: "mqbench", run: "v5"}`) {
			props = true
		}
	}
	if per["worker-1"] == 0 || per["worker-2"] == 0 || per["worker-1"]+per["worker-2"] != 300 {
		t.Errorf("shared deliveries = %v, want 300 split between worker-1 and worker-2", per)
	}
	if !props {
		t.Error("no note that the user properties and content type arrived")
	}
	lib := subByName(t, s, "lib")
	if lib.Expected != 100 || lib.Delivered+lib.HeldAtEnd != 100 || lib.Lost != 0 {
		t.Errorf("lib (from the paho.golang publisher) = %+v", lib)
	}
	want := map[string]int64{"puback 0x00": 300, "puback 0x10": 50, "pubcomp 0x00": 100, "connack 0x00": 7, "suback 0x01": 2, "suback 0x02": 2}
	for k, n := range want {
		if s.ReasonCodes[k] != n {
			t.Errorf("reason_codes[%q] = %d, want %d (all: %v)", k, s.ReasonCodes[k], n, s.ReasonCodes)
		}
	}
}

// TestV5MosquittoExpiry: a persistent v5 subscriber is away while 100
// messages with a 1 s expiry and 100 without are published; when it comes
// back 3 s later Mosquitto has discarded the expired ones. They are counted
// as expired_or_lost, not lost, and the others arrive.
func TestV5MosquittoExpiry(t *testing.T) {
	_, s := v5Run(t, `name: v5-expiry
duration: 5s
drain_timeout: 3s
protocol: 5
publishers:
  - client_id: brief
    messages: 100
    qos: 1
    topic: v5/x
    message_expiry: 1s
    start_at: 1s
  - client_id: durable
    messages: 100
    qos: 1
    topic: v5/x
    start_at: 1s
subscribers:
  - client_id: away
    filter: v5/x
    qos: 1
    clean_session: false
    session_expiry: 1m
actions:
  - {at: 500ms, do: disconnect, target: away}
  - {at: 4s, do: reconnect, target: away}
`)
	t.Logf("away: %+v reasons %v", s.Subscribers, s.ReasonCodes)
	sub := subByName(t, s, "away")
	if sub.Expected != 200 || sub.ExpiredOrLost != 100 || sub.Lost != 0 || sub.Delivered+sub.HeldAtEnd != 100 {
		t.Errorf("away = %+v, want 100 expired_or_lost, 100 received, none lost", sub)
	}
	if s.ExpiredOrLost != 100 || s.Lost != 0 {
		t.Errorf("summary expired_or_lost %d lost %d", s.ExpiredOrLost, s.Lost)
	}
}

// TestV5MosquittoStopStart: the broker is stopped (final save) and started
// again mid-run: the lean and paho.golang v5 publishers come back with it and
// resend what was unacknowledged, and the persistent v5 subscriber's session
// survives, so nothing acknowledged is lost.
func TestV5MosquittoStopStart(t *testing.T) {
	run, s := v5Run(t, `name: v5-restart
duration: 6s
drain_timeout: 10s
protocol: 5
broker:
  persistence: true
publishers:
  - client_id: lean
    messages: 400
    qos: 1
    rate: 200
    inflight: 10
    topic: v5/r
  - client_id: lib
    client: paho
    messages: 400
    qos: 2
    rate: 200
    inflight: 10
    topic: v5/r
subscribers:
  - client_id: keeper
    filter: v5/r
    qos: 2
    clean_session: false
actions:
  - {at: 1s, do: stop}
  - {at: 2s, do: start}
`)
	for _, e := range run.Events {
		if e.Type == EvNote || e.Type == EvAction {
			t.Logf("%s %s %s %s", time.Duration(e.T), e.Action, e.Level, e.Msg)
		}
	}
	sub := subByName(t, s, "keeper")
	if s.Acked != 800 || sub.Lost != 0 || sub.Delivered+sub.HeldAtEnd != 800 {
		t.Errorf("published %d acked %d, keeper %+v: want 800 acknowledged and received", s.Published, s.Acked, sub)
	}
}

// TestProtocol31Mosquitto: protocol 3 (MQTT 3.1, "MQIsdp") for the lean and
// paho publishers and the subscriber, on Mosquitto: messages go through, and
// no reason code is recorded (3.1 has none).
func TestProtocol31Mosquitto(t *testing.T) {
	run, s := v5Run(t, `name: v31
duration: 2s
drain_timeout: 5s
protocol: 3
publishers:
  - client_id: lean
    messages: 100
    qos: 2
    inflight: 10
    topic: v31/t
  - client_id: paho
    client: paho
    messages: 100
    qos: 1
    topic: v31/t
subscribers:
  - client_id: old
    filter: v31/#
    qos: 2
`)
	if run.Footer.Tainted {
		t.Errorf("tainted: %v", run.Footer.Reasons)
	}
	sub := subByName(t, s, "old")
	if s.Acked != 200 || sub.Delivered+sub.HeldAtEnd != 200 || sub.Lost != 0 || len(s.ReasonCodes) != 0 {
		t.Errorf("acked %d, old %+v, reason codes %v", s.Acked, sub, s.ReasonCodes)
	}
}
