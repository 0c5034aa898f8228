package bench

import (
	"encoding/json"
	"math/rand"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

// TestBacklogMatchesSort checks the streaming exposure and largest backlog
// against the computation they replace (every message's times kept, the
// steps sorted at the end) on a run with what makes streaming hard:
// consumptions read before their ack, consumptions 20 s late (after the
// open message was dropped), messages never acknowledged or never consumed
// by one subscriber, repeated acks, a kill, saves, and events a little out
// of time order in the file.
func TestBacklogMatchesSort(t *testing.T) {
	const ms = int64(time.Millisecond)
	rng := rand.New(rand.NewSource(7))
	var evs []Event
	for seq := int64(1); seq <= 6000; seq++ {
		pt := seq * ms
		evs = append(evs, Event{T: pt, Type: EvPub, Client: "p", Seq: seq, PubT: pt})
		if rng.Intn(100) > 0 {
			a := pt + 100_000 + rng.Int63n(3*ms)
			evs = append(evs, Event{T: a, Type: EvAck, Client: "p", Seq: seq, PubT: pt})
			if rng.Intn(50) == 0 {
				evs = append(evs, Event{T: a + ms, Type: EvAck, Client: "p", Seq: seq, PubT: pt})
			}
		}
		for _, sub := range []string{"s1", "s2"} {
			switch r := rng.Intn(100); {
			case r < 3 && sub == "s2": // never
			case r < 8 && sub == "s2": // held 20 s, across saves and the trim
				evs = append(evs, Event{T: pt + 20_000*ms + rng.Int63n(ms), Type: EvRecv, Client: sub, Pub: "p", Seq: seq, PubT: pt})
			default:
				rt := pt + rng.Int63n(5*ms)
				evs = append(evs, Event{T: rt, Type: EvRecv, Client: sub, Pub: "p", Seq: seq, PubT: pt})
				if rng.Intn(30) == 0 {
					evs = append(evs, Event{T: rt + ms, Type: EvRecv, Client: sub, Pub: "p", Seq: seq, PubT: pt, Dup: true})
				}
			}
		}
	}
	for st := 700 * ms; st < 30_000*ms; st += 700 * ms {
		evs = append(evs, Event{T: st, Type: EvSave, SizeBytes: 100})
	}
	evs = append(evs, Event{T: 3100 * ms, Type: EvAction, Action: "kill"}, Event{T: 3500 * ms, Type: EvAction, Action: "start"})
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].T < evs[j].T })
	// The recorder's order: an event stamped a little earlier may be written
	// just after a later one.
	for i := 1; i < len(evs); i++ {
		if evs[i].T-evs[i-1].T < ms/2 && rng.Intn(4) == 0 {
			evs[i], evs[i-1] = evs[i-1], evs[i]
		}
	}

	sc := scenarios.Scenario{
		Name:        "backlog",
		Publishers:  []scenarios.Publisher{{ClientID: "p", Count: 1, Messages: 6000, QoS: 1, Topic: "t"}},
		Subscribers: []scenarios.Subscriber{{ClientID: "s%d", Count: 2, Filter: "t", QoS: 1}},
	}
	raw, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	h := testHeader()
	h.Scenario = raw
	run := &Run{Header: h, Events: evs}
	in := InstantsOf(run)
	z := NewSummarizer(h, in)
	for i := range evs {
		z.Add(&evs[i])
	}
	z.Close(nil, "")

	wantExp, wantHeld, wantFirst := sortedBacklog(evs, in, 2)
	if z.backlog.late {
		t.Errorf("steps counted late")
	}
	if z.backlog.exposure != wantExp || z.backlog.maxHeld != wantHeld || z.backlog.firstAck != wantFirst {
		t.Errorf("streaming: exposure %d, largest backlog %d, first ack %d; sorted: %d, %d, %d",
			z.backlog.exposure, z.backlog.maxHeld, z.backlog.firstAck, wantExp, wantHeld, wantFirst)
	}
	if wantHeld < 100 || wantExp < 500*ms {
		t.Errorf("the run should hold a backlog across saves: largest %d, exposure %d", wantHeld, wantExp)
	}
}

// sortedBacklog is the former computation: every message's first ack, its
// consumers and last first consumption kept, the steps sorted at the end.
func sortedBacklog(evs []Event, in *Instants, want int) (exposure, maxHeld, firstAck int64) {
	type msg struct {
		acked      bool
		a, last    int64
		subs       int
		consumedBy map[string]bool
	}
	msgs := map[int64]*msg{}
	get := func(seq int64) *msg {
		if msgs[seq] == nil {
			msgs[seq] = &msg{consumedBy: map[string]bool{}}
		}
		return msgs[seq]
	}
	for _, e := range evs {
		switch e.Type {
		case EvAck:
			if m := get(e.Seq); !m.acked {
				m.acked, m.a = true, e.T
			}
		case EvRecv:
			if m := get(e.Seq); !m.consumedBy[e.Client] {
				m.consumedBy[e.Client] = true
				m.subs++
				m.last = max(m.last, e.T)
			}
		}
	}
	firstAck = -1
	var steps []int64
	for _, m := range msgs {
		if !m.acked {
			continue
		}
		if firstAck < 0 || m.a < firstAck {
			firstAck = m.a
		}
		end := in.exposureEnd(m.a)
		steps = append(steps, m.a<<1|1)
		if m.subs >= want {
			end = min(end, max(m.last, m.a))
			steps = append(steps, max(m.last, m.a)<<1)
		}
		exposure = max(exposure, end-m.a)
	}
	slices.Sort(steps)
	var held int64
	for _, s := range steps {
		held += 2*(s&1) - 1
		maxHeld = max(maxHeld, held)
	}
	return exposure, maxHeld, firstAck
}

// TestBacklogEarlyConsumption: a message consumed by both subscribers after
// its acknowledgement but written before it (a second out of order) was
// exposed from the ack to the last consumption, and held meanwhile.
func TestBacklogEarlyConsumption(t *testing.T) {
	sec := int64(time.Second)
	sc := scenarios.Scenario{
		Name:        "early",
		Publishers:  []scenarios.Publisher{{ClientID: "p", Count: 1, Messages: 1, QoS: 1, Topic: "t"}},
		Subscribers: []scenarios.Subscriber{{ClientID: "s%d", Count: 2, Filter: "t", QoS: 1}},
	}
	raw, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	h := testHeader()
	h.Scenario = raw
	evs := []Event{
		{T: 0, Type: EvPub, Client: "p", Seq: 1, PubT: 0},
		{T: 2 * sec, Type: EvRecv, Client: "s1", Pub: "p", Seq: 1, PubT: 0},
		{T: 3 * sec, Type: EvRecv, Client: "s2", Pub: "p", Seq: 1, PubT: 0},
		{T: 1 * sec, Type: EvAck, Client: "p", Seq: 1, PubT: 0},
		{T: 10 * sec, Type: EvSave, SizeBytes: 1},
	}
	in := InstantsOf(&Run{Header: h, Events: evs})
	z := NewSummarizer(h, in)
	for i := range evs {
		z.Add(&evs[i])
	}
	z.Close(nil, "")
	wantExp, wantHeld, _ := sortedBacklog(evs, in, 2)
	if wantExp != 2*sec || wantHeld != 1 {
		t.Fatalf("reference: exposure %d, largest backlog %d", wantExp, wantHeld)
	}
	if z.backlog.exposure != wantExp || z.backlog.maxHeld != wantHeld {
		t.Errorf("exposure %d, largest backlog %d; want %d, %d", z.backlog.exposure, z.backlog.maxHeld, wantExp, wantHeld)
	}
}
