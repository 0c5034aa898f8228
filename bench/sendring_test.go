package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mqbench/mqbench/scenarios"
)

func TestSendRing(t *testing.T) {
	r := newSendRing(5) // 8 slots
	if len(r.slots) != 8 {
		t.Fatalf("%d slots, want 8", len(r.slots))
	}
	if r.sent(1) || r.get(1) != 0 {
		t.Fatal("an unsent seq has a time")
	}
	for seq := int64(1); seq <= 20; seq++ {
		r.put(seq, seq*100)
	}
	for seq := int64(-1); seq <= 22; seq++ {
		want := int64(0)
		if seq >= 13 && seq <= 20 { // the last 8
			want = seq * 100
		}
		if got := r.get(seq); got != want {
			t.Errorf("get(%d) = %d, want %d", seq, got, want)
		}
		if r.sent(seq) != (seq >= 1 && seq <= 20) {
			t.Errorf("sent(%d) = %v", seq, r.sent(seq))
		}
	}
}

// A reader racing the writer gets a seq's own time or 0, never another seq's.
func TestSendRingConcurrent(t *testing.T) {
	r := newSendRing(16)
	const n = 200000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := int64(1); seq <= n; seq++ {
			r.put(seq, seq*3)
		}
	}()
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < n; k++ {
				seq := r.hi.Load() - int64(k%20)
				if got := r.get(seq); got != 0 && got != seq*3 {
					t.Errorf("get(%d) = %d", seq, got)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Every shipped scenario's send times stay exact (the ring holds all its
// messages of experiment payloads), and the rings never take more than the
// budget, however many publishers share it.
func TestSendRingSizes(t *testing.T) {
	for _, info := range scenarios.Shipped() {
		name := info.Name
		sc, err := scenarios.Load(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		sizes := sendRingSizes(sc)
		for gi, pc := range sc.Publishers {
			if !carriesSendTime(pc.Payload) && sizes[gi] < pc.Messages {
				t.Errorf("%s publishers.%d: ring %d for %d messages", name, gi, sizes[gi], pc.Messages)
			}
		}
	}
	sc := &scenarios.Scenario{}
	for _, n := range []int{1, 3, 1000, 20000} {
		sc.Publishers = []scenarios.Publisher{{ClientID: "p-%d", Count: n, Messages: 1 << 30, Inflight: 10, Payload: scenarios.Payload{Kind: payloadExperiment}}}
		sizes := sendRingSizes(sc)
		total := len(newSendRing(sizes[0]).slots) * n
		if total > max(sendRingBudget, sendRingMin*n) {
			t.Errorf("%d publishers: %d slots", n, total)
		}
		if n == 1 && sizes[0] != sendRingBudget {
			t.Errorf("one publisher: ring %d, want the whole budget", sizes[0])
		}
	}
	sc.Publishers = []scenarios.Publisher{{ClientID: "p", Messages: 12_000_000, Inflight: 200, Payload: scenarios.Payload{Kind: payloadRandom}}}
	if got := sendRingSizes(sc)[0]; got != 400 {
		t.Errorf("random payload: ring %d, want twice the window", got)
	}
}

// A run's recv events carry their send time from the payload (random) or from
// the publisher's ring (experiment); deliveries older than the ring carry
// none, are counted in a note, and the summary is still what exact send
// times give.
func TestRecvSendTimes(t *testing.T) {
	for _, tc := range []struct {
		kind        string
		wantUnknown bool
	}{{payloadRandom, false}, {payloadExperiment, true}} {
		t.Run(tc.kind, func(t *testing.T) {
			old := sendRingBudget
			sendRingBudget = sendRingMin
			defer func() { sendRingBudget = old }()
			// The subscriber lags the publisher by far more than 64 messages.
			sc := loadTiny(t, "publishers.0.payload.kind="+tc.kind, "publishers.0.qos=1", "subscribers.0.qos=1",
				"publishers.0.messages=300", "publishers.0.inflight=20", "subscribers.0.pace=2ms")
			target := startBundled(t, sc)
			dir := filepath.Join(t.TempDir(), "run")
			if _, err := Execute(context.Background(), Options{Scenario: sc, Target: target, OutDir: dir, MQBench: "test"}); err != nil {
				t.Fatal(err)
			}
			run, err := ReadRun(dir)
			if err != nil {
				t.Fatal(err)
			}
			pubT := map[int64]int64{}
			unknown, note := 0, ""
			exact := *run
			exact.Events = nil
			for _, e := range run.Events {
				switch e.Type {
				case EvPub:
					pubT[e.Seq] = e.T
				case EvAck:
					if e.PubT != pubT[e.Seq] {
						t.Errorf("ack seq %d: pub_t_ns %d, its pub event says %d", e.Seq, e.PubT, pubT[e.Seq])
					}
				case EvRecv:
					if e.PubT == 0 {
						unknown++
					} else if e.PubT != pubT[e.Seq] {
						t.Errorf("recv seq %d: pub_t_ns %d, its pub event says %d", e.Seq, e.PubT, pubT[e.Seq])
					}
					e.PubT = pubT[e.Seq]
				case EvNote:
					if strings.Contains(e.Msg, "carry no pub_t_ns") {
						note = e.Msg
					}
				}
				exact.Events = append(exact.Events, e)
			}
			if tc.wantUnknown != (unknown > 0) {
				t.Fatalf("%d recv events without pub_t_ns", unknown)
			}
			if want := fmt.Sprintf("subscriber slowsub: %d deliveries", unknown); (unknown > 0) != strings.HasPrefix(note, want) {
				t.Errorf("note %q, want it to start %q", note, want)
			}
			got, want := Summarize(run), Summarize(&exact)
			if got.Latency != want.Latency || got.Delivered != want.Delivered || want.Delivered != 300 {
				t.Errorf("summary latency %+v delivered %d, with exact send times %+v %d", got.Latency, got.Delivered, want.Latency, want.Delivered)
			}
		})
	}
}
