package bench

// Crash, latency and persistence tests of Summarize.

import (
	"math"
	"math/rand"
	"testing"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

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

// latencyOf is the latency of samples through the analysis's histogram.
func latencyOf(samples []int64) Latency {
	var a latencyAcc
	for _, v := range samples {
		a.add(v)
	}
	return a.latency()
}

// closeLatency says whether got matches the exact want: count, max and mean
// equal, percentiles within the histogram's precision.
func closeLatency(got, want Latency) bool {
	near := func(g, w int64) bool {
		return math.Abs(float64(g-w)) <= math.Max(1, math.Abs(float64(w))*1e-3)
	}
	return got.Count == want.Count && got.Max == want.Max && got.Mean == want.Mean &&
		near(got.P50, want.P50) && near(got.P90, want.P90) && near(got.P99, want.P99) && near(got.P999, want.P999)
}

// TestLatencyOf compares the histogram's percentiles with exact nearest-rank
// ones: within 0.1 % (3 significant digits), and exact below 2048 ns, where
// the histogram's buckets are 1 ns wide.
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
	wide := make([]int64, 5000) // microseconds to days: every bucket size
	for i := range wide {
		wide[i] = int64(math.Exp(rng.Float64() * 32))
	}
	huge := []int64{math.MaxInt64 / 4, math.MaxInt64 / 4, 3} // a sum beyond 64 bits, values beyond the histogram
	tests := []struct {
		name    string
		samples []int64
	}{{"one", one}, {"1..1000 reversed", seq}, {"random with ties", random}, {"two", []int64{10, 20}},
		{"wide", wide}, {"huge", huge}, {"negative", []int64{-5, 3, 7}}}
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
			if tt.name == "huge" {
				want.Mean = 1537228672809129302 // (2*(MaxInt64/4) + 3) / 3 rounded: beyond what sum above holds
				want.P50, want.P90, want.P99, want.P999 = math.MaxInt64/4, math.MaxInt64/4, math.MaxInt64/4, math.MaxInt64/4
			}
			if got := latencyOf(in); !closeLatency(got, want) {
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
	// the 3rd delivery carries no pub_t_ns (falls back to the pub event), and
	// only the 2nd and 4th acks carry it, as acks do since they have it.
	for i := int64(0); i < 4; i++ {
		pt := 10 * i * ms
		b.add(Event{T: pt, Type: EvPub, Client: "pub", Seq: i + 1})
		a := Event{T: pt + (i+1)*ms, Type: EvAck, Client: "pub", Seq: i + 1}
		if i%2 == 1 {
			a.PubT = pt
		}
		b.add(a)
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
	if !closeLatency(s.Latency.PublishToAck, wantAck) {
		t.Errorf("publish to ack %+v, want %+v", s.Latency.PublishToAck, wantAck)
	}
	if !closeLatency(s.Latency.PublishToDelivery, wantDlv) {
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
