package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files under testdata")

const sec = int64(time.Second)

// tb builds a synthetic event stream for Summarize tests.
type tb struct {
	sc  *scenarios.Scenario
	evs []Event
}

func newTB(pubs []scenarios.Publisher, subs []scenarios.Subscriber, drain bool) *tb {
	d := drain
	return &tb{sc: &scenarios.Scenario{
		Name:        "synthetic",
		Broker:      []scenarios.BrokerSetting{{Key: "persistence", Values: []string{"true"}}, {Key: "autosave_interval", Values: []string{"3"}}},
		Publishers:  pubs,
		Subscribers: subs,
		Duration:    scenarios.Duration(10 * time.Second),
		Drain:       &d,
	}}
}

func pubGroup(id string, count int, topic string) scenarios.Publisher {
	return scenarios.Publisher{ClientID: id, Count: count, Messages: 10, QoS: 2, Topic: topic, Inflight: 1}
}

func subGroup(id string, count int, filter string) scenarios.Subscriber {
	return scenarios.Subscriber{ClientID: id, Count: count, Filter: filter, QoS: 2}
}

func (b *tb) add(e ...Event) *tb { b.evs = append(b.evs, e...); return b }

func (b *tb) phase(t int64, name string) *tb {
	return b.add(Event{T: t, Type: EvPhase, Msg: name})
}

// pubAck publishes seq from..to of pub starting at t, one per ms, each acked 2 ms later.
func (b *tb) pubAck(pub string, from, to int64, t int64) *tb {
	for s := from; s <= to; s++ {
		pt := t + (s-from)*int64(time.Millisecond)
		b.add(Event{T: pt, Type: EvPub, Client: pub, Seq: s, QoS: 2})
		b.add(Event{T: pt + 2*int64(time.Millisecond), Type: EvAck, Client: pub, Seq: s, QoS: 2})
	}
	return b
}

// recv makes sub consume the given seqs of pub at t, t+1ms, ...
func (b *tb) recv(sub, pub string, t int64, seqs ...int64) *tb {
	for i, s := range seqs {
		b.add(Event{T: t + int64(i)*int64(time.Millisecond), Type: EvRecv, Client: sub, Pub: pub, Seq: s, QoS: 2})
	}
	return b
}

func (b *tb) gauge(t int64, name string, v float64) *tb {
	return b.add(Event{T: t, Type: EvGauge, Name: name, Value: v})
}

func (b *tb) run(footer *Footer) *Run {
	raw, err := json.Marshal(b.sc)
	if err != nil {
		panic(err)
	}
	return &Run{
		Header: Header{Type: "header", Schema: EventSchema, RunID: "r1", ScenarioName: b.sc.Name, Scenario: raw, BrokerKind: "bundled", PersistPath: "/d/mosquitto.db"},
		Events: b.evs,
		Footer: footer,
	}
}

func seqs(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

var okFooter = &Footer{Type: "footer", T: 30 * sec, Status: "ok"}

// checkReconciles asserts expected = delivered + held + dropped + lost for every
// subscriber whose deliveries do not exceed what was expected, and that the
// totals are the sums.
func checkReconciles(t *testing.T, s Summary) {
	t.Helper()
	var d, h, l, dup, re int64
	for _, sub := range s.Subscribers {
		if sub.Delivered+sub.HeldAtEnd <= sub.Expected && sub.Delivered+sub.HeldAtEnd+sub.Dropped+sub.Lost != sub.Expected {
			t.Errorf("%s does not reconcile: %+v", sub.Client, sub)
		}
		if sub.Lost < 0 || sub.Dropped < 0 || sub.HeldAtEnd < 0 {
			t.Errorf("%s has a negative count: %+v", sub.Client, sub)
		}
		d += sub.Delivered
		h += sub.HeldAtEnd
		l += sub.Lost
		dup += sub.Duplicates
		re += sub.Reordered
	}
	if d != s.Delivered || h != s.HeldAtEnd || l != s.Lost || dup != s.Duplicates || re != s.Reordered {
		t.Errorf("totals %d/%d/%d/%d/%d are not the subscriber sums %d/%d/%d/%d/%d",
			s.Delivered, s.HeldAtEnd, s.Lost, s.Duplicates, s.Reordered, d, h, l, dup, re)
	}
}

func TestSummarizeReconciles(t *testing.T) {
	one := []scenarios.Publisher{pubGroup("pub", 1, "test")}
	slow := []scenarios.Subscriber{subGroup("slowsub", 1, "test")}
	tests := []struct {
		name  string
		build func() *tb
		want  []SubscriberSummary
		check func(t *testing.T, s Summary)
	}{
		{
			name: "delivered, held in drain, lost",
			build: func() *tb {
				return newTB(one, slow, true).phase(0, "run").
					pubAck("pub", 1, 10, 0).
					recv("slowsub", "pub", 1*sec, seqs(1, 6)...).
					phase(10*sec, "drain").
					recv("slowsub", "pub", 11*sec, 7, 8, 9)
			},
			want: []SubscriberSummary{{Client: "slowsub", Expected: 10, Delivered: 6, HeldAtEnd: 3, Lost: 1}},
		},
		{
			name: "broker drops",
			build: func() *tb {
				return newTB(one, slow, true).phase(0, "run").
					gauge(0, GaugeDropped, 0).
					pubAck("pub", 1, 100, 0).
					gauge(5*sec, GaugeDropped, 30).
					recv("slowsub", "pub", 1*sec, seqs(1, 20)...).
					gauge(9*sec, GaugeDropped, 50).
					phase(10*sec, "drain").
					recv("slowsub", "pub", 11*sec, seqs(21, 50)...)
			},
			want: []SubscriberSummary{{Client: "slowsub", Expected: 100, Delivered: 20, HeldAtEnd: 30, Dropped: 50}},
			check: func(t *testing.T, s Summary) {
				if s.DroppedByBroker != 50 {
					t.Errorf("dropped_by_broker %d, want 50", s.DroppedByBroker)
				}
			},
		},
		{
			name: "broker restart resets the drop counter",
			build: func() *tb {
				return newTB(one, slow, true).phase(0, "run").
					pubAck("pub", 1, 100, 0).
					gauge(1*sec, GaugeDropped, 10).
					gauge(2*sec, GaugeDropped, 40).
					gauge(3*sec, GaugeDropped, 0). // restarted
					gauge(4*sec, GaugeDropped, 15).
					recv("slowsub", "pub", 1*sec, seqs(1, 45)...)
			},
			// 40 before the restart + 15 after; no drain phase: held unknown.
			want: []SubscriberSummary{{Client: "slowsub", Expected: 100, Delivered: 45, Dropped: 55}},
		},
		{
			name: "duplicates and reorders",
			build: func() *tb {
				return newTB(one, slow, true).phase(0, "run").
					pubAck("pub", 1, 6, 0).
					recv("slowsub", "pub", 1*sec, 1, 2, 2, 4, 3, 5, 1, 6).
					phase(10*sec, "drain").
					recv("slowsub", "pub", 11*sec, 6)
			},
			// 2 and 1 again (and 6 again in the drain) are duplicates; 3 after 4 is a reorder,
			// the repeated 1 is a duplicate, not a reorder.
			want: []SubscriberSummary{{Client: "slowsub", Expected: 6, Delivered: 6, Duplicates: 3, Reordered: 1}},
		},
		{
			name: "filters decide what is expected",
			build: func() *tb {
				return newTB(
					[]scenarios.Publisher{pubGroup("a", 1, "sensors/a/temp"), pubGroup("b-%d", 2, "other/b")},
					[]scenarios.Subscriber{subGroup("s-a", 1, "sensors/+/temp"), subGroup("s-all", 1, "#"), subGroup("s-none", 1, "nothing/#")},
					true).phase(0, "run").
					pubAck("a", 1, 10, 0).
					pubAck("b-1", 1, 5, 0).
					pubAck("b-2", 1, 4, 0).
					add(Event{T: 1, Type: EvPub, Client: "b-2", Seq: 5}). // never acked: not expected
					recv("s-a", "a", sec, seqs(1, 10)...).
					recv("s-all", "a", sec, seqs(1, 10)...).
					recv("s-all", "b-1", sec, seqs(1, 5)...).
					recv("s-all", "b-2", sec, seqs(1, 3)...)
			},
			want: []SubscriberSummary{
				{Client: "s-a", Expected: 10, Delivered: 10},
				{Client: "s-all", Expected: 19, Delivered: 18, Lost: 1},
				{Client: "s-none"},
			},
			check: func(t *testing.T, s Summary) {
				if s.Published != 20 || s.Acked != 19 {
					t.Errorf("published/acked %d/%d, want 20/19", s.Published, s.Acked)
				}
			},
		},
		{
			name: "drops shared in proportion to what is missing",
			build: func() *tb {
				return newTB(one, []scenarios.Subscriber{subGroup("s-%d", 3, "test")}, true).phase(0, "run").
					pubAck("pub", 1, 100, 0).
					gauge(0, GaugeDropped, 0).
					gauge(9*sec, GaugeDropped, 100).
					recv("s-1", "pub", sec, seqs(1, 100)...). // misses nothing
					recv("s-2", "pub", sec, seqs(1, 25)...).  // misses 75
					recv("s-3", "pub", sec, seqs(1, 75)...)   // misses 25
			},
			want: []SubscriberSummary{
				{Client: "s-1", Expected: 100, Delivered: 100},
				{Client: "s-2", Expected: 100, Delivered: 25, Dropped: 75},
				{Client: "s-3", Expected: 100, Delivered: 75, Dropped: 25},
			},
		},
		{
			name: "more drops than missing",
			build: func() *tb {
				return newTB(one, slow, true).phase(0, "run").
					pubAck("pub", 1, 10, 0).
					gauge(9*sec, GaugeDropped, 500).
					recv("slowsub", "pub", sec, seqs(1, 8)...)
			},
			want: []SubscriberSummary{{Client: "slowsub", Expected: 10, Delivered: 8, Dropped: 2}},
			check: func(t *testing.T, s Summary) {
				if s.DroppedByBroker != 500 || !hasNote(s, "beyond what scenario subscribers were missing") {
					t.Errorf("dropped %d, notes %q", s.DroppedByBroker, s.Notes)
				}
			},
		},
		{
			name: "external broker counts drops from the first sample",
			build: func() *tb {
				b := newTB(one, slow, true).phase(0, "run").
					pubAck("pub", 1, 10, 0).
					gauge(1*sec, GaugeDropped, 1000).
					gauge(9*sec, GaugeDropped, 1004).
					recv("slowsub", "pub", sec, seqs(1, 6)...)
				return b
			},
			want: []SubscriberSummary{{Client: "slowsub", Expected: 10, Delivered: 6, Dropped: 4}},
			check: func(t *testing.T, s Summary) {
				if s.DroppedByBroker != 4 {
					t.Errorf("dropped_by_broker %d, want 4 (increase during the run only)", s.DroppedByBroker)
				}
			},
		},
		{
			name: "no drain: held from the latest decoded save",
			build: func() *tb {
				return newTB(one, slow, false).phase(0, "run").
					pubAck("pub", 1, 100, 0).
					recv("slowsub", "pub", sec, seqs(1, 10)...).
					add(Event{T: 4 * sec, Type: EvSave, SizeBytes: 20000, Held: 95, Decoded: true}).
					add(Event{T: 8 * sec, Type: EvSave, SizeBytes: 19000, Held: 88, Decoded: true}).
					add(Event{T: 9 * sec, Type: EvSave, SizeBytes: 18000}) // not decoded
			},
			want: []SubscriberSummary{{Client: "slowsub", Expected: 100, Delivered: 10, HeldAtEnd: 88, Lost: 2}},
		},
		{
			name: "no drain: a later broker.held gauge wins",
			build: func() *tb {
				return newTB(one, slow, false).phase(0, "run").
					pubAck("pub", 1, 100, 0).
					recv("slowsub", "pub", sec, seqs(1, 10)...).
					add(Event{T: 4 * sec, Type: EvSave, SizeBytes: 20000, Held: 95, Decoded: true}).
					gauge(9*sec, GaugeHeld, 90)
			},
			want: []SubscriberSummary{{Client: "slowsub", Expected: 100, Delivered: 10, HeldAtEnd: 90}},
		},
		{
			name: "more delivered than acked",
			build: func() *tb {
				return newTB(one, slow, true).phase(0, "run").
					pubAck("pub", 1, 3, 0).
					add(Event{T: 5, Type: EvPub, Client: "pub", Seq: 4}).
					recv("slowsub", "pub", sec, 1, 2, 3, 4)
			},
			want: []SubscriberSummary{{Client: "slowsub", Expected: 3, Delivered: 4}},
			check: func(t *testing.T, s Summary) {
				if !hasNote(s, "consumed 1 more") {
					t.Errorf("no note about the extra delivery: %q", s.Notes)
				}
			},
		},
		{
			name: "subscriber that got nothing still listed",
			build: func() *tb {
				return newTB(one, []scenarios.Subscriber{subGroup("fast", 1, "test"), subGroup("dead", 1, "test")}, true).phase(0, "run").
					pubAck("pub", 1, 5, 0).
					recv("fast", "pub", sec, seqs(1, 5)...)
			},
			want: []SubscriberSummary{{Client: "fast", Expected: 5, Delivered: 5}, {Client: "dead", Expected: 5, Lost: 5}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := tt.build().run(okFooter)
			if strings.HasPrefix(tt.name, "external") {
				run.Header.BrokerKind = "external"
			}
			s := Summarize(run)
			if !reflect.DeepEqual(s.Subscribers, tt.want) {
				t.Errorf("subscribers:\n got %+v\nwant %+v\nnotes %q", s.Subscribers, tt.want, s.Notes)
			}
			checkReconciles(t, s)
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}

func hasNote(s Summary, sub string) bool {
	for _, n := range s.Notes {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

func TestSummarizeStatusAndTaint(t *testing.T) {
	base := func() *tb {
		return newTB([]scenarios.Publisher{pubGroup("pub", 1, "test")}, []scenarios.Subscriber{subGroup("sub", 1, "test")}, true).
			phase(0, "run").pubAck("pub", 1, 3, 0).recv("sub", "pub", sec, 1, 2, 3)
	}
	tests := []struct {
		name        string
		build       func() *tb
		footer      *Footer
		tail        string
		wantStatus  string
		wantTainted bool
		wantReasons []string // each must be contained in some reason
	}{
		{"clean", base, okFooter, "", "ok", false, nil},
		{"footer tainted", base, &Footer{Status: "ok", Tainted: true, Reasons: []string{"stall"}}, "", "ok", true, []string{"stall"}},
		{"no footer", base, nil, "line 9 at byte 300: unexpected EOF", "incomplete", true, []string{"no footer", "unexpected EOF"}},
		{"warn note", func() *tb {
			return base().add(Event{T: 2 * sec, Type: EvNote, Level: "warn", Msg: "sub disconnected: EOF"},
				Event{T: 3 * sec, Type: EvNote, Level: "warn", Msg: "sub disconnected: EOF"},
				Event{T: 3 * sec, Type: EvNote, Level: "info", Msg: "just saying"})
		}, okFooter, "", "ok", true, []string{"sub disconnected: EOF"}},
		{"failed action", func() *tb {
			return base().add(Event{T: 2 * sec, Type: EvAction, Action: "kill", Err: "not supported"})
		}, okFooter, "", "ok", true, []string{"action kill", "not supported"}},
		{"interrupted", base, &Footer{Status: "interrupted", Error: "signal"}, "", "interrupted", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := tt.build().run(tt.footer)
			run.Tail = tt.tail
			s := Summarize(run)
			if s.Status != tt.wantStatus || s.Tainted != tt.wantTainted {
				t.Errorf("status/tainted = %s/%v, want %s/%v (reasons %q)", s.Status, s.Tainted, tt.wantStatus, tt.wantTainted, s.TaintReasons)
			}
			for _, w := range tt.wantReasons {
				found := false
				for _, r := range s.TaintReasons {
					found = found || strings.Contains(r, w)
				}
				if !found {
					t.Errorf("no taint reason contains %q: %q", w, s.TaintReasons)
				}
			}
			seen := map[string]bool{}
			for _, r := range s.TaintReasons {
				if seen[r] {
					t.Errorf("reason %q repeated", r)
				}
				seen[r] = true
			}
		})
	}
}

func TestSummarizeTaintReasonsCapped(t *testing.T) {
	b := newTB(nil, nil, true)
	for i := 0; i < 50; i++ {
		b.add(Event{T: int64(i), Type: EvNote, Level: "warn", Msg: "disconnect " + string(rune('A'+i))})
	}
	s := Summarize(b.run(okFooter))
	if len(s.TaintReasons) != maxReasons+1 || !strings.Contains(s.TaintReasons[maxReasons], "30 more") {
		t.Errorf("%d reasons, last %q", len(s.TaintReasons), s.TaintReasons[len(s.TaintReasons)-1])
	}
}

func TestSummarizeCrash(t *testing.T) {
	// Message seq is published at seq-1 ms and acked at seq+1 ms. Saves at 10
	// and 50 ms, kill at 80 ms, restart at 200 ms (a second start is ignored).
	// Before the kill the subscriber consumed 1..30; in the drain it gets
	// 31..49 (what the 50 ms save held) and 79..100; 50..78 are gone.
	ms := int64(time.Millisecond)
	b := newTB([]scenarios.Publisher{pubGroup("pub", 1, "test")}, []scenarios.Subscriber{subGroup("slowsub", 1, "test")}, true).
		phase(0, "run").
		pubAck("pub", 1, 100, 0).
		add(Event{T: 10 * ms, Type: EvSave, SizeBytes: 500, Held: 5, Decoded: true}).
		add(Event{T: 50 * ms, Type: EvSave, SizeBytes: 5000, Held: 19, Stored: 19, Decoded: true}).
		recv("slowsub", "pub", 0, seqs(1, 30)...).
		add(Event{T: 80 * ms, Type: EvAction, Action: "kill"}).
		add(Event{T: 200 * ms, Type: EvAction, Action: "start"}).
		add(Event{T: 300 * ms, Type: EvAction, Action: "start"}).
		add(Event{T: 400 * ms, Type: EvSave, SizeBytes: 47, Decoded: true}).
		phase(time.Second.Nanoseconds(), "drain").
		recv("slowsub", "pub", 2*sec, seqs(31, 49)...).
		recv("slowsub", "pub", 2*sec+100*ms, seqs(79, 100)...)
	s := Summarize(b.run(okFooter))
	if s.Crash == nil {
		t.Fatal("no crash summary")
	}
	// Independent count: acked (ack at seq-1+2 ms) at or before 80 ms -> seqs 1..79.
	var ackedBeforeKill, sinceSave, predicted, actual int64
	got := map[int64]int64{} // seq -> first receive time
	for _, e := range b.evs {
		if e.Type == EvRecv {
			if _, ok := got[e.Seq]; !ok {
				got[e.Seq] = e.T
			}
		}
	}
	for seq := int64(1); seq <= 100; seq++ {
		ackAt := (seq-1)*ms + 2*ms
		if ackAt > 80*ms {
			continue
		}
		ackedBeforeKill++
		rt, ok := got[seq]
		if !ok {
			actual++
		}
		if ackAt > 50*ms {
			sinceSave++
			if !ok || rt > 80*ms {
				predicted++
			}
		}
	}
	// The 50 ms save held 31..49 (19 stored): 49 unconsumed at the kill minus
	// 19 saved predicts 30 lost (50..79); 79 came back anyway (acked at the
	// kill instant, after the save), so one fewer was lost than predicted.
	want := CrashSummary{KillT: 80 * ms, LastSaveT: 50 * ms, SavedBeforeKill: true, RestartT: 200 * ms,
		AckedBeforeKill: ackedBeforeKill, UnconsumedAtKill: 49, AckedSinceSave: sinceSave, SavedUnconsumed: 19,
		PredictedFrom: "decoded_save", PredictedLost: predicted, ActualLost: actual, Difference: -1, Unexplained: -1}
	if *s.Crash != want {
		t.Errorf("crash:\n got %+v\nwant %+v", *s.Crash, want)
	}
	if want.ActualLost != 29 || s.LostInCrash != want.ActualLost {
		t.Errorf("lost_in_crash %d, independent count %d (want 29: seqs 50..78)", s.LostInCrash, want.ActualLost)
	}
	checkReconciles(t, s)
}

func TestSummarizeCrashWithoutSave(t *testing.T) {
	b := newTB([]scenarios.Publisher{pubGroup("pub", 1, "test")}, []scenarios.Subscriber{subGroup("sub", 1, "test")}, true).
		phase(0, "run").pubAck("pub", 1, 10, 0).
		add(Event{T: sec, Type: EvAction, Action: "kill"})
	s := Summarize(b.run(okFooter))
	want := CrashSummary{KillT: sec, AckedBeforeKill: 10, UnconsumedAtKill: 10, AckedSinceSave: 10, PredictedFrom: "no_save", PredictedLost: 10, ActualLost: 10}
	if s.Crash == nil || *s.Crash != want {
		t.Errorf("crash %+v, want %+v", s.Crash, want)
	}
}

// nearestRank is an independent nearest-rank percentile: the smallest sample v
// with at least p% of the samples <= v.
func nearestRank(samples []int64, p float64) int64 {
	best := int64(math.MaxInt64)
	for _, v := range samples {
		le := 0
		for _, w := range samples {
			if w <= v {
				le++
			}
		}
		if float64(le)*100 >= p*float64(len(samples))-1e-9 && v < best {
			best = v
		}
	}
	return best
}

func TestLatencyOf(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	random := make([]int64, 1234)
	for i := range random {
		random[i] = rng.Int63n(500) * 1000 // many ties
	}
	one := []int64{42}
	seq := make([]int64, 1000)
	for i := range seq {
		seq[i] = int64(1000 - i)
	}
	tests := []struct {
		name    string
		samples []int64
	}{{"one", one}, {"1..1000 reversed", seq}, {"random with ties", random}, {"two", []int64{10, 20}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]int64(nil), tt.samples...)
			var sum, mx int64
			for _, v := range tt.samples {
				sum += v
				mx = max(mx, v)
			}
			want := Latency{
				Count: int64(len(tt.samples)),
				P50:   nearestRank(tt.samples, 50),
				P90:   nearestRank(tt.samples, 90),
				P99:   nearestRank(tt.samples, 99),
				P999:  nearestRank(tt.samples, 99.9),
				Max:   mx,
				Mean:  int64(math.Round(float64(sum) / float64(len(tt.samples)))),
			}
			if got := latencyOf(in); got != want {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
	if (latencyOf(nil) != Latency{}) {
		t.Error("latency of no samples is not zero")
	}
	// Known values, not derived: 1..1000.
	if l := latencyOf(append([]int64(nil), seq...)); l.P50 != 500 || l.P90 != 900 || l.P99 != 990 || l.P999 != 999 || l.Max != 1000 || l.Mean != 501 {
		t.Errorf("1..1000: %+v", l)
	}
}

func TestSummarizeLatencyAndThroughput(t *testing.T) {
	ms := int64(time.Millisecond)
	b := newTB([]scenarios.Publisher{pubGroup("pub", 1, "test")}, []scenarios.Subscriber{subGroup("sub", 1, "test")}, true).phase(0, "run")
	// 4 messages: pub at 0,10,20,30 ms; acks after 1,2,3,4 ms; delivery after 5,6,7,8 ms;
	// the 3rd delivery carries no pub_t_ns (falls back to the pub event).
	for i := int64(0); i < 4; i++ {
		pt := 10 * i * ms
		b.add(Event{T: pt, Type: EvPub, Client: "pub", Seq: i + 1})
		b.add(Event{T: pt + (i+1)*ms, Type: EvAck, Client: "pub", Seq: i + 1})
		r := Event{T: pt + (i+5)*ms, Type: EvRecv, Client: "sub", Pub: "pub", Seq: i + 1, PubT: pt}
		if i == 2 {
			r.PubT = 0
		}
		b.add(r)
	}
	b.add(Event{T: 40 * ms, Type: EvRecv, Client: "sub", Pub: "pub", Seq: 1, PubT: 1}) // duplicate: no sample
	s := Summarize(b.run(okFooter))
	wantAck := Latency{Count: 4, P50: 2 * ms, P90: 4 * ms, P99: 4 * ms, P999: 4 * ms, Max: 4 * ms, Mean: 2500000}
	wantDlv := Latency{Count: 4, P50: 6 * ms, P90: 8 * ms, P99: 8 * ms, P999: 8 * ms, Max: 8 * ms, Mean: 6500000}
	if s.Latency.PublishToAck != wantAck {
		t.Errorf("publish to ack %+v, want %+v", s.Latency.PublishToAck, wantAck)
	}
	if s.Latency.PublishToDelivery != wantDlv {
		t.Errorf("publish to delivery %+v, want %+v", s.Latency.PublishToDelivery, wantDlv)
	}
	// acked 4 between first pub (0) and last ack (34 ms).
	if s.Publish.DurationNS != 34*ms || math.Abs(s.Publish.MsgsPerS-4/0.034) > 1e-9 {
		t.Errorf("publish %+v", s.Publish)
	}
	if s.Deliver.DurationNS != 38*ms || math.Abs(s.Deliver.MsgsPerS-4/0.038) > 1e-9 {
		t.Errorf("deliver %+v", s.Deliver)
	}
}

func TestFitSizePerHeld(t *testing.T) {
	line := func(helds ...int64) []SavePoint {
		var out []SavePoint
		for i, h := range helds {
			out = append(out, SavePoint{T: int64(i), Held: h, SizeBytes: 117 + 228*h, Decoded: true})
		}
		return out
	}
	noisy := line(100, 200, 300, 400)
	noisy[0].SizeBytes += 10
	noisy[1].SizeBytes -= 10
	noisy[2].SizeBytes -= 10
	noisy[3].SizeBytes += 10
	tests := []struct {
		name            string
		saves           []SavePoint
		wantPer, wantFx float64
	}{
		{"exact line", line(1000, 10000, 5000), 228, 117},
		{"empty saves ignored", append(line(10, 20), SavePoint{Held: 0, SizeBytes: 47, Decoded: true}), 228, 117},
		{"undecoded ignored", append(line(10, 20), SavePoint{Held: 15, SizeBytes: 1, Decoded: false}), 228, 117},
		// x mean 250, residuals +10,-10,-10,+10: slope 228 + sum((x-250)*r)/sum((x-250)^2) = 228 + 0/50000.
		{"symmetric noise", noisy, 228, 117},
		{"one held value: size/held", line(1000, 1000), (117 + 228*1000) / 1000.0, 0},
		// 5899 and 5901 differ by far less than 10%: no line through two near points.
		{"held too close to fit", []SavePoint{{Held: 5899, SizeBytes: 1427077, Decoded: true}, {Held: 5901, SizeBytes: 1427350, Decoded: true}},
			(1427077 + 1427350) / (5899 + 5901.0), 0},
		{"shrinking file: no negative slope", []SavePoint{{Held: 100, SizeBytes: 5000, Decoded: true}, {Held: 200, SizeBytes: 4000, Decoded: true}},
			9000 / 300.0, 0},
		// Same backlog saved twice, but the saves carry their message bytes:
		// the fixed part is the rest of the file, so no fit is needed.
		{"one held value with message bytes", []SavePoint{
			{Held: 10000, SizeBytes: 117 + 228*10000, MsgBytes: 228 * 10000, Decoded: true},
			{Held: 9990, SizeBytes: 117 + 228*9990, MsgBytes: 228 * 9990, Decoded: true},
		}, 228, 117},
		// A save taken mid-publish holds stores for messages not yet queued
		// (100 incoming, 185 bytes each): the largest backlog decides.
		{"message bytes, save mid-publish", []SavePoint{
			{Held: 150, SizeBytes: 117 + 228*150 + 185*100, MsgBytes: 228*150 + 185*100, Decoded: true},
			{Held: 300, SizeBytes: 117 + 228*300, MsgBytes: 228 * 300, Decoded: true},
		}, 228, 117},
		{"nothing decoded", []SavePoint{{Held: 5, SizeBytes: 100}}, 0, 0},
		{"no saves", nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			per, fx := fitSizePerHeld(tt.saves)
			if math.Abs(per-tt.wantPer) > 1e-6 || math.Abs(fx-tt.wantFx) > 1e-6 {
				t.Errorf("got %.6f/%.6f, want %.6f/%.6f", per, fx, tt.wantPer, tt.wantFx)
			}
		})
	}
}

func TestSummarizePersistence(t *testing.T) {
	b := newTB([]scenarios.Publisher{pubGroup("pub", 1, "test")}, []scenarios.Subscriber{subGroup("sub", 1, "test")}, true).
		gauge(1*sec, GaugePersistBytes, 47).
		add(Event{T: 4 * sec, Type: EvSave, SizeBytes: 117 + 228*1000, Held: 1000, Stored: 1000, Decoded: true}).
		gauge(5*sec, GaugePersistBytes, 117+228*1000).
		add(Event{T: 8 * sec, Type: EvSave, SizeBytes: 117 + 228*3000, Held: 3000, Stored: 3000, Decoded: true, DupStores: 2}).
		add(Event{T: 12 * sec, Type: EvSave, SizeBytes: 117 + 228*2000, Held: 2000, Stored: 2000, Decoded: true}).
		gauge(13*sec, GaugePersistBytes, 117+228*2000)
	b.sc.Broker = append(b.sc.Broker, scenarios.BrokerSetting{Key: "autosave_on_changes", Values: []string{"true"}})
	s := Summarize(b.run(okFooter))
	p := s.Persist
	if p.MaxBytes != 117+228*3000 || p.FinalBytes != 117+228*2000 || p.Saves != 3 || len(p.SavePoints) != 3 {
		t.Errorf("max/final/saves %d/%d/%d", p.MaxBytes, p.FinalBytes, p.Saves)
	}
	if p.MeanSavePeriodNS != 4*sec {
		t.Errorf("mean save period %d", p.MeanSavePeriodNS)
	}
	if math.Abs(p.BytesPerHeldMessage-228) > 1e-6 || math.Abs(p.FixedBytes-117) > 1e-6 {
		t.Errorf("fit %f + %f/held", p.FixedBytes, p.BytesPerHeldMessage)
	}
	if p.DuplicateStoresSeen != 2 {
		t.Errorf("duplicate stores %d", p.DuplicateStoresSeen)
	}
	if p.AutosaveInterval != "on_changes 3" || p.Path != "/d/mosquitto.db" {
		t.Errorf("autosave %q path %q", p.AutosaveInterval, p.Path)
	}
}

func TestAutosaveSetting(t *testing.T) {
	sc := func(kv ...string) *scenarios.Scenario {
		s := &scenarios.Scenario{}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Broker = append(s.Broker, scenarios.BrokerSetting{Key: kv[i], Values: []string{kv[i+1]}})
		}
		return s
	}
	tests := []struct {
		name string
		sc   *scenarios.Scenario
		conf []string
		want string
	}{
		{"interval", sc("autosave_interval", "30"), nil, "30"},
		{"on changes", sc("autosave_interval", "100", "autosave_on_changes", "true"), nil, "on_changes 100"},
		{"on changes false", sc("autosave_interval", "5", "autosave_on_changes", "false"), nil, "5"},
		{"on changes default count", sc("autosave_on_changes", "true"), nil, "on_changes 1800"},
		{"from conf lines", nil, []string{"persistence true", "autosave_interval 3"}, "3"},
		{"scenario wins", sc("autosave_interval", "30"), []string{"autosave_interval 3"}, "30"},
		{"unset", sc("persistence", "true"), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := autosaveSetting(tt.sc, tt.conf); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMatchTopic(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"test", "test", true},
		{"test", "test2", false},
		{"a/b", "a/b", true},
		{"a/b", "a", false},
		{"a", "a/b", false},
		{"+", "a", true},
		{"+", "a/b", false},
		{"+", "/a", false},
		{"+/+", "/a", true},
		{"a/+", "a/", true},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/b/d", false},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"a/b/#", "a", false},
		{"+/#", "a", true},
		{"#", "$SYS/broker/x", false},
		{"+/broker/#", "$SYS/broker/x", false},
		{"$SYS/#", "$SYS/broker/x", true},
		{"$SYS/+/x", "$SYS/broker/x", true},
		{"", "a", false},
		{"a", "", false},
	}
	for _, tt := range tests {
		if got := MatchTopic(tt.filter, tt.topic); got != tt.want {
			t.Errorf("MatchTopic(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

func TestApportion(t *testing.T) {
	tests := []struct {
		total      int64
		weights    []int64
		want       []int64
		wantExcess int64
	}{
		{0, []int64{1, 2}, []int64{0, 0}, 0},
		{10, []int64{0, 0}, []int64{0, 0}, 10},
		{10, []int64{5, 15}, []int64{3, 7}, 0}, // 2.5 / 7.5: remainders tie, first wins
		{3, []int64{1, 1, 1}, []int64{1, 1, 1}, 0},
		{2, []int64{1, 1, 1}, []int64{1, 1, 0}, 0},
		{100, []int64{10, 20}, []int64{10, 20}, 70},
		{7, []int64{3, 3, 4}, []int64{2, 2, 3}, 0},
		{5, nil, []int64{}, 5},
	}
	for _, tt := range tests {
		got, ex := apportion(tt.total, tt.weights)
		if !reflect.DeepEqual(got, tt.want) || ex != tt.wantExcess {
			t.Errorf("apportion(%d, %v) = %v, %d; want %v, %d", tt.total, tt.weights, got, ex, tt.want, tt.wantExcess)
		}
		var sum int64
		for i, g := range got {
			sum += g
			if g > tt.weights[i] {
				t.Errorf("share %d over its weight", i)
			}
		}
		if sum+ex != tt.total && tt.total > 0 {
			t.Errorf("apportion(%d, %v): shares+excess = %d", tt.total, tt.weights, sum+ex)
		}
	}
}

func TestCounterTotal(t *testing.T) {
	g := func(vs ...float64) []gaugePoint {
		var out []gaugePoint
		for i, v := range vs {
			out = append(out, gaugePoint{int64(i), v})
		}
		return out
	}
	tests := []struct {
		name     string
		g        []gaugePoint
		fromZero bool
		want     float64
	}{
		{"none", nil, true, 0},
		{"rising from zero", g(5, 7, 10), true, 10},
		{"rising, delta only", g(5, 7, 10), false, 5},
		{"reset", g(3, 8, 2, 6), true, 14},
		{"reset delta", g(3, 8, 2, 6), false, 11},
	}
	for _, tt := range tests {
		if got := counterTotal(tt.g, tt.fromZero); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSummarizeWithoutScenario(t *testing.T) {
	b := newTB(nil, nil, true).phase(0, "run").pubAck("p", 1, 4, 0).recv("s", "p", sec, 1, 2)
	run := b.run(okFooter)
	run.Header.Scenario = nil
	s := Summarize(run)
	want := []SubscriberSummary{{Client: "s", Expected: 4, Delivered: 2, Lost: 2}}
	if !reflect.DeepEqual(s.Subscribers, want) || !hasNote(s, "no scenario") {
		t.Errorf("subscribers %+v notes %q", s.Subscribers, s.Notes)
	}
	run.Header.Scenario = json.RawMessage(`{"publishers": 5}`)
	if s := Summarize(run); !hasNote(s, "unreadable") {
		t.Errorf("bad scenario not noted: %q", s.Notes)
	}
	if s := Summarize(nil); s.Status != "incomplete" {
		t.Errorf("nil run status %q", s.Status)
	}
}

// goldenRun is one synthetic run exercising most of Summarize, recorded through
// the Recorder so the golden file covers the whole read path.
func goldenRun() *tb {
	ms := int64(time.Millisecond)
	b := newTB([]scenarios.Publisher{pubGroup("pub", 1, "test")}, []scenarios.Subscriber{subGroup("slowsub", 1, "test"), subGroup("fast-%d", 2, "#")}, true).
		phase(0, "connect").phase(100*ms, "run").
		gauge(0, GaugeDropped, 0).
		gauge(50*ms, GaugePersistBytes, 47).
		pubAck("pub", 1, 200, 100*ms).
		recv("fast-1", "pub", 110*ms, seqs(1, 200)...).
		recv("fast-2", "pub", 110*ms, seqs(1, 150)...).
		recv("fast-2", "pub", 400*ms, 120, 160, 155).
		recv("slowsub", "pub", 200*ms, 1, 2, 3).
		add(Event{T: sec, Type: EvSave, SizeBytes: 117 + 228*150, Held: 150, Queued: 130, Inflight: 20, Stored: 150, Decoded: true}).
		gauge(sec+ms, GaugePersistBytes, 117+228*150).
		add(Event{T: 2 * sec, Type: EvSave, SizeBytes: 117 + 228*170, Held: 170, Queued: 150, Inflight: 20, Stored: 170, Decoded: true}).
		gauge(2*sec+ms, GaugePersistBytes, 117+228*170).
		gauge(2*sec, GaugeDropped, 20).
		add(Event{T: 2500 * ms, Type: EvNote, Level: "warn", Msg: "fast-2 disconnected: connection reset"}).
		add(Event{T: 2600 * ms, Type: EvNote, Level: "info", Msg: "fast-2 reconnected"}).
		gauge(sec, GaugeBenchRSSBytes, 30e6).gauge(2*sec, GaugeBenchRSSBytes, 35e6).
		gauge(sec, GaugeBenchCPUSecs, 0.5).gauge(2*sec, GaugeBenchCPUSecs, 0.75).
		gauge(sec, GaugeRSSBytes, 10e6).gauge(2*sec, GaugeCPUSeconds, 0.25).
		phase(3*sec, "drain").
		recv("slowsub", "pub", 3*sec, seqs(4, 170)...).
		phase(4*sec, "done")
	return b
}

func TestSummaryGolden(t *testing.T) {
	dir := t.TempDir()
	b := goldenRun()
	run := b.run(nil)
	h := run.Header
	h.Start = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	recordRun(t, dir, h, b.evs, Footer{T: 4 * sec, Status: "ok", End: h.Start.Add(4 * time.Second)})
	s, err := WriteSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var back Summary
	if err := json.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, *s) {
		t.Errorf("summary.json does not decode to the returned summary (%v)", err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, []string{EventsFile, SummaryFile}) {
		t.Errorf("run dir holds %v (temporary files left?)", names)
	}
	checkReconciles(t, *s)

	golden := filepath.Join("testdata", "summary.golden.json")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./bench -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("summary.json differs from %s (rerun with -update if intended):\n%s", golden, got)
	}
}

func TestWriteSummaryErrors(t *testing.T) {
	if _, err := WriteSummary(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("no error for a missing run dir")
	}
	// An existing summary.json is replaced only by a complete new one.
	dir := t.TempDir()
	recordRun(t, dir, testHeader(), testEvents(10), Footer{Status: "ok"})
	if err := os.WriteFile(filepath.Join(dir, SummaryFile), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteSummary(dir); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, SummaryFile))
	if !json.Valid(b) {
		t.Errorf("summary.json is not JSON: %q", b)
	}
}

func BenchmarkSummarize(b *testing.B) {
	tbld := newTB([]scenarios.Publisher{pubGroup("pub", 1, "test")}, []scenarios.Subscriber{subGroup("sub", 1, "test")}, true).phase(0, "run").
		pubAck("pub", 1, 30000, 0).recv("sub", "pub", sec, seqs(1, 30000)...)
	run := tbld.run(okFooter)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Summarize(run)
	}
}

func TestFirstMinuteGrowth(t *testing.T) {
	min := int64(time.Minute)
	sizes := []gaugePoint{{t: 1 * sec, v: 47}, {t: 5 * sec, v: 5000}, {t: 61 * sec, v: 9000}, {t: 70 * sec, v: 12000}}
	tests := []struct {
		name   string
		phases map[string]int64
		lastT  int64
		want   int64
	}{
		{"file existed at start", map[string]int64{"run": 2 * sec}, 90 * sec, 9000 - 47},
		{"no file yet at start", map[string]int64{"run": 0}, 90 * sec, 5000},
		{"run shorter than a minute", map[string]int64{"run": 2 * sec}, 2*sec + min - 1, -1},
		{"no run phase", map[string]int64{}, 90 * sec, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := firstMinuteGrowth(sizes, tt.phases, tt.lastT); got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
}
