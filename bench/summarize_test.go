package bench

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/internal/testutil"
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

// TestSummaryGolden summarizes a recorded synthetic run and compares it with
// the summary the analysis gave when the golden file was written: counts
// exact, latency percentiles within testutil.LatencyRelTolerance.
func TestSummaryGolden(t *testing.T) {
	dir := t.TempDir()
	b := goldenRun()
	run := b.run(nil)
	h := run.Header
	h.Start = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	recordRun(t, dir, h, b.evs, Footer{T: 4 * sec, Status: "ok", End: h.Start.Add(4 * time.Second)})
	s, err := SummarizeFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkReconciles(t, s)
	got, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "summary.golden.json")
	if *updateGolden {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./bench -run Golden -update to create it)", err)
	}
	diffs, err := testutil.SummaryDiff(got, want)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("%s differs: %s", golden, d)
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
