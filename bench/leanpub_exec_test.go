package bench

// The lean publisher driven by the engine (Execute), as a run drives it:
// both publisher clients, a broker that goes away, a scheduled kill and start.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

// TestExecuteClients runs the engine on both publisher clients: the same
// events come out (the end-to-end checks of checkRun).
func TestExecuteClients(t *testing.T) {
	for _, client := range []string{scenarios.ClientLean, scenarios.ClientPaho} {
		t.Run(client, func(t *testing.T) {
			sc := loadTiny(t, "publishers.0.client="+client)
			target := startBundled(t, sc)
			dir := filepath.Join(t.TempDir(), "run")
			if _, err := Execute(context.Background(), Options{Scenario: sc, Target: target, OutDir: dir, MQBench: "test"}); err != nil {
				t.Fatal(err)
			}
			checkRun(t, dir, 200, true)
		})
	}
}

// TestExecuteLeanBrokerGone: the broker goes away mid-run with no scheduled
// stop: the run ends on time, tainted, with the publisher's loss noted.
func TestExecuteLeanBrokerGone(t *testing.T) {
	sc := loadTiny(t, "publishers.0.rate=400", "drain=false", "duration=1500ms")
	target := startBundled(t, sc)
	dir := filepath.Join(t.TempDir(), "run")
	var once sync.Once
	type out struct {
		res *Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := Execute(context.Background(), Options{Scenario: sc, Target: target, OutDir: dir, Progress: func(p Progress) {
			if p.Acked > 20 {
				once.Do(func() { target.b.Close() })
			}
		}})
		done <- out{res, err}
	}()
	var o out
	select {
	case o = <-done:
	case <-time.After(hangGuard):
		t.Fatal("run hung after the broker went away")
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	if !o.res.Footer.Tainted {
		t.Fatal("run not tainted after the broker closed the publisher's connection")
	}
	reasons := strings.Join(o.res.Footer.Reasons, "\n")
	if !strings.Contains(reasons, "publisher pub lost its connection") || !strings.Contains(reasons, "publisher pub stopped") {
		t.Errorf("reasons do not report the publisher's loss:\n%s", reasons)
	}
}

// TestExecuteLeanKillStart: a scheduled kill and start of real Mosquitto; the
// lean publisher reconnects, resends, and every message is acknowledged once,
// with the outage not tainting the publisher.
func TestExecuteLeanKillStart(t *testing.T) {
	text := `name: killstart
broker:
  max_queued_messages: 0
publishers:
  - client_id: pub
    messages: 1200
    qos: 2
    topic: test
    inflight: 10
    rate: 1000
subscribers: []
actions:
  - at: 400ms
    do: kill
  - at: 900ms
    do: start
duration: 3s
drain: false
sample:
  sys: false
`
	p := filepath.Join(t.TempDir(), "ks.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := scenarios.Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := startMosquitto(t, sc)
	dir := filepath.Join(t.TempDir(), "run")
	res, err := Execute(context.Background(), Options{Scenario: sc, Target: target, OutDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	run, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	acks := map[int64]int{}
	var startT, lastAck int64 = -1, 0
	reconnected := false
	for _, e := range run.Events {
		switch e.Type {
		case EvAck:
			acks[e.Seq]++
			lastAck = e.T
		case EvAction:
			if e.Action == "start" {
				startT = e.T
			}
			if e.Err != "" {
				t.Fatalf("action %s: %s", e.Action, e.Err)
			}
		case EvNote:
			if e.Msg == "publisher pub reconnected" {
				reconnected = true
			}
		}
	}
	if !reconnected {
		t.Error("no reconnect noted")
	}
	if startT < 0 || lastAck <= startT {
		t.Errorf("no acknowledgement after the restart (start %d, last ack %d)", startT, lastAck)
	}
	for seq := int64(1); seq <= 1200; seq++ {
		if acks[seq] != 1 {
			t.Errorf("seq %d acknowledged %d times", seq, acks[seq])
		}
	}
	for _, r := range res.Footer.Reasons {
		if strings.Contains(r, "publisher pub") {
			t.Errorf("scheduled outage tainted the publisher: %s", r)
		}
	}
}
