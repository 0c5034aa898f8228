package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/scenarios"
)

// tinyScenario: 200 QoS 2 messages to a persistent subscriber paced at 5 ms, so a
// backlog exists when the 1 s window closes and the drain has work to do.
const tinyScenario = `name: tiny
description: end-to-end test
broker:
  persistence: true
  autosave_interval: 1
  max_queued_messages: 0
  sys_interval: 1
publishers:
  - client_id: pub
    messages: 200
    qos: 2
    topic: test
    inflight: 10
subscribers:
  - client_id: slowsub
    filter: test
    qos: 2
    clean_session: false
    pace: 5ms
actions:
  - at: 500ms
    do: save
duration: 1s
drain: true
drain_timeout: 10s
sample:
  interval: 50ms
`

func loadTiny(t testing.TB, sets ...string) *scenarios.Scenario {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tiny.yaml")
	if err := os.WriteFile(p, []byte(tinyScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := scenarios.Load(p, sets)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// checkRun reads the recorded run back and checks that it is consistent.
func checkRun(t *testing.T, dir string, wantMsgs int64, wantSave bool) {
	t.Helper()
	run, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if run.Footer == nil || run.Footer.Status != "ok" {
		t.Fatalf("footer %+v", run.Footer)
	}
	if run.Footer.Tainted {
		t.Errorf("run tainted: %v", run.Footer.Reasons)
	}
	pubs, acks := map[int64]bool{}, map[int64]bool{}
	recv := map[int64]int{}
	phases := []string{}
	saves, actions := 0, 0
	var lastT int64
	for _, e := range run.Events {
		switch e.Type {
		case EvPub:
			pubs[e.Seq] = true
		case EvAck:
			if !pubs[e.Seq] {
				t.Errorf("ack for seq %d before its pub", e.Seq)
			}
			acks[e.Seq] = true
		case EvRecv:
			if e.Client != "slowsub" || e.Pub != "pub" {
				t.Errorf("recv %+v", e)
			}
			if e.PubT <= 0 || e.PubT > e.T {
				t.Errorf("recv seq %d: pub_t_ns %d not before t_ns %d", e.Seq, e.PubT, e.T)
			}
			recv[e.Seq]++
		case EvPhase:
			phases = append(phases, e.Msg)
		case EvSave:
			saves++
		case EvAction:
			actions++
			if e.Err != "" {
				t.Errorf("action %s failed: %s", e.Action, e.Err)
			}
		}
		if e.T > lastT {
			lastT = e.T
		}
	}
	if got := strings.Join(phases, ","); got != "connect,run,drain,done" {
		t.Errorf("phases %s", got)
	}
	if int64(len(pubs)) != wantMsgs || int64(len(acks)) != wantMsgs || int64(len(recv)) != wantMsgs {
		t.Errorf("pub %d ack %d unique recv %d, want %d each", len(pubs), len(acks), len(recv), wantMsgs)
	}
	for seq, n := range recv {
		if n != 1 {
			t.Errorf("seq %d received %d times", seq, n)
		}
	}
	if actions != 1 {
		t.Errorf("%d action events, want 1", actions)
	}
	if wantSave && saves == 0 {
		t.Errorf("no save detected")
	}
	if run.Footer.T < lastT {
		t.Errorf("footer t %d before last event %d", run.Footer.T, lastT)
	}
	s := Summarize(run)
	if s.Published != wantMsgs || s.Acked != wantMsgs || s.Lost != 0 || s.Duplicates != 0 {
		t.Errorf("summary published %d acked %d lost %d duplicates %d", s.Published, s.Acked, s.Lost, s.Duplicates)
	}
	if s.Delivered+s.HeldAtEnd != wantMsgs {
		t.Errorf("delivered %d + held %d != %d", s.Delivered, s.HeldAtEnd, wantMsgs)
	}
}

func TestExecuteMosquitto(t *testing.T) {
	sc := loadTiny(t)
	target := startMosquitto(t, sc)
	dir := filepath.Join(t.TempDir(), "run")
	var progress int
	res, err := Execute(context.Background(), Options{
		Scenario: sc, Target: target, OutDir: dir, MQBench: "test",
		Progress: func(Progress) { progress++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dir != dir {
		t.Errorf("dir %s", res.Dir)
	}
	if progress == 0 {
		t.Error("progress never called")
	}
	checkRun(t, dir, 200, true)
	// A second run into the same directory must not overwrite the first.
	if _, err := Execute(context.Background(), Options{Scenario: sc, Target: target, OutDir: dir}); err == nil ||
		!strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second run into %s: %v", dir, err)
	}
}

func TestExecuteBundled(t *testing.T) {
	sc := loadTiny(t)
	target := startBundled(t, sc)
	dir := filepath.Join(t.TempDir(), "run")
	if _, err := Execute(context.Background(), Options{Scenario: sc, Target: target, OutDir: dir, MQBench: "test"}); err != nil {
		t.Fatal(err)
	}
	checkRun(t, dir, 200, true)
}

func TestExecuteInterrupted(t *testing.T) {
	sc := loadTiny(t, "duration=1m", "subscribers.0.pace=1m")
	target := startBundled(t, sc)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	res, err := Execute(ctx, Options{Scenario: sc, Target: target, OutDir: dir, Progress: func(p Progress) {
		if p.Phase == "run" && p.Acked > 50 {
			cancel()
		}
	}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if res.Footer.Status != "interrupted" {
		t.Fatalf("status %q", res.Footer.Status)
	}
	run, err := ReadRun(dir)
	if err != nil || run.Footer == nil || run.Footer.Status != "interrupted" {
		t.Fatalf("read back: %v %+v", err, run)
	}
}

func TestExecuteBadOptions(t *testing.T) {
	sc := loadTiny(t)
	sweep, err := scenarios.Load("persist-sweep", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no scenario", Options{Target: &bundledTarget{}, OutDir: "x"}, "no scenario"},
		{"no target", Options{Scenario: sc, OutDir: "x"}, "no broker target"},
		{"no dir", Options{Scenario: sc, Target: &bundledTarget{}}, "no output directory"},
		{"sweep", Options{Scenario: sweep, Target: &bundledTarget{}, OutDir: t.TempDir()}, "expand the sweep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Execute(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}

func TestExecuteBrokerUnreachable(t *testing.T) {
	sc := loadTiny(t)
	target := startBundled(t, sc)
	addr := target.Addr()
	target.b.Close()
	dir := t.TempDir()
	res, err := Execute(context.Background(), Options{Scenario: sc, Target: &fixedAddr{target, addr}, OutDir: dir})
	if err == nil {
		t.Fatal("no error with the broker gone")
	}
	if res == nil || res.Footer.Status != "error" {
		t.Fatalf("result %+v", res)
	}
	run, rerr := ReadRun(dir)
	if rerr != nil || run.Footer == nil || run.Footer.Status != "error" || run.Footer.Error == "" {
		t.Fatalf("recorded footer: %v %+v", rerr, run)
	}
}

type fixedAddr struct {
	*bundledTarget
	addr string
}

func (f *fixedAddr) Addr() string { return f.addr }
