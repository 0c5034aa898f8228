package bench

import (
	"encoding/json"

	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

// writeSynthRun writes dir/events.jsonl.gz for n QoS 1 messages of one
// publisher to one subscriber at 20,000 msgs/s (the 1.2 M-message
// run): pub, ack 1 ms later and recv 2 ms later, both carrying pub_t_ns; every 1,000th
// message is delivered twice and every 5,000th never; a gauge set every
// 250 ms and a save every 3 s, as the sampler writes them. It goes through the
// Recorder, so the file is what a real run writes.
func writeSynthRun(t testing.TB, dir string, n int64) string {
	t.Helper()
	drain := true
	sc := scenarios.Scenario{
		Name:        "synthetic",
		Broker:      []scenarios.BrokerSetting{{Key: "persistence", Values: []string{"true"}}, {Key: "autosave_interval", Values: []string{"3"}}},
		Publishers:  []scenarios.Publisher{{ClientID: "pub-1", Count: 1, Messages: int(n), QoS: 1, Topic: "test", Inflight: 20}},
		Subscribers: []scenarios.Subscriber{{ClientID: "sub-1", Count: 1, Filter: "test", QoS: 1}},
		Duration:    scenarios.Duration(time.Duration(n) * 50 * time.Microsecond),
		Drain:       &drain,
	}
	raw, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	h := testHeader()
	h.ScenarioName, h.Scenario = sc.Name, raw
	r, err := NewRecorder(dir, h)
	if err != nil {
		t.Fatal(err)
	}
	const ms = int64(time.Millisecond)
	step := int64(50 * time.Microsecond)
	r.Emit(Event{T: 0, Type: EvPhase, Msg: "connect"})
	r.Emit(Event{T: ms, Type: EvPhase, Msg: "run"})
	var nextGauge, nextSave int64 = ms, 3000 * ms
	var size int64
	for seq := int64(1); seq <= n; seq++ {
		pt := ms + seq*step
		for pt >= nextGauge {
			size += 4000
			r.Emit(Event{T: nextGauge, Type: EvGauge, Name: GaugePersistBytes, Value: float64(size)})
			r.Emit(Event{T: nextGauge, Type: EvGauge, Name: GaugeDropped, Value: 0})
			r.Emit(Event{T: nextGauge, Type: EvGauge, Name: GaugeBenchRSSBytes, Value: 50e6})
			nextGauge += 250 * ms
		}
		if pt >= nextSave {
			r.Emit(Event{T: nextSave, Type: EvSave, SizeBytes: size, Held: 40, Stored: 40, Decoded: true, MsgBytes: 40 * 90})
			nextSave += 3000 * ms
		}
		r.Emit(Event{T: pt, Type: EvPub, Client: "pub-1", Seq: seq, QoS: 1, Size: 160})
		r.Emit(Event{T: pt + ms, Type: EvAck, Client: "pub-1", Seq: seq, QoS: 1, PubT: pt})
		if seq%5000 == 0 {
			continue
		}
		rv := Event{T: pt + 2*ms, Type: EvRecv, Client: "sub-1", Pub: "pub-1", Seq: seq, QoS: 1, Size: 160, PubT: pt}
		r.Emit(rv)
		if seq%1000 == 0 {
			rv.T += ms
			rv.Dup = true
			r.Emit(rv)
		}
	}
	end := ms + (n+1)*step + 10*ms
	r.Emit(Event{T: end, Type: EvPhase, Msg: "drain"})
	r.Emit(Event{T: end + ms, Type: EvPhase, Msg: "done"})
	if err := r.Close(Footer{T: end + 2*ms, Status: "ok"}); err != nil {
		t.Fatal(err)
	}
	return r.Path()
}

// synthMessages is the size of the synthetic run BenchmarkAnalysis reads:
// MQBENCH_SYNTH_MSGS, default 1.2 M (20,000 msgs/s for 60 s).
func synthMessages(tb testing.TB) int64 {
	n := int64(1_200_000)
	if v := os.Getenv("MQBENCH_SYNTH_MSGS"); v != "" {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil || n <= 0 {
			tb.Fatalf("MQBENCH_SYNTH_MSGS=%q: want a positive count", v)
		}
	}
	return n
}

// BenchmarkAnalysis measures the summary of a recorded run of
// MQBENCH_SYNTH_MSGS messages as `mqbench report` computes it: reading
// events.jsonl.gz and summarizing. It reports events per second, the peak
// heap in use during the analysis and the process's peak RSS (VmHWM, reset
// after the file was written, so the generator does not count):
//
//	MQBENCH_SYNTH_MSGS=12000000 go test ./bench -run '^$' -bench Analysis -benchtime 1x
func BenchmarkAnalysis(b *testing.B) {
	n := synthMessages(b)
	dir := b.TempDir()
	path := writeSynthRun(b, dir, n)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	events := float64(3*n - n/5000 + n/1000 - n/5000)
	runtime.GC()
	resetPeakRSS()
	stop := make(chan struct{})
	peak := make(chan uint64)
	go samplePeakHeap(stop, peak)
	b.ResetTimer()
	var s Summary
	for i := 0; i < b.N; i++ {
		if s, err = SummarizeFile(path); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	heap := <-peak
	if s.Published != n || s.Delivered != n-n/5000 || s.Duplicates != n/1000-n/5000 {
		b.Fatalf("summary of the synthetic run: published %d delivered %d duplicates %d", s.Published, s.Delivered, s.Duplicates)
	}
	b.ReportMetric(events*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(heap)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(peakRSS())/1e6, "peak-RSS-MB")
	b.ReportMetric(float64(fi.Size())/float64(n), "file-B/msg")
}

// samplePeakHeap reports the largest HeapInuse seen every 10 ms until stop.
func samplePeakHeap(stop <-chan struct{}, out chan<- uint64) {
	var m runtime.MemStats
	var peak uint64
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapInuse)
		select {
		case <-stop:
			out <- peak
			return
		case <-tick.C:
		}
	}
}

// resetPeakRSS resets the kernel's peak RSS of this process (Linux).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is VmHWM of this process in bytes, 0 when unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// TestWriteSynthRun writes the synthetic run of MQBENCH_SYNTH_MSGS messages
// into the directory MQBENCH_SYNTH_OUT, to measure `mqbench report` on it:
//
//	MQBENCH_SYNTH_OUT=/tmp/synth MQBENCH_SYNTH_MSGS=1200000 go test ./bench -run TestWriteSynthRun
//	/usr/bin/time -v mqbench report /tmp/synth
func TestWriteSynthRun(t *testing.T) {
	dir := os.Getenv("MQBENCH_SYNTH_OUT")
	if dir == "" {
		t.Skip("MQBENCH_SYNTH_OUT not set")
	}
	n := synthMessages(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeSynthRun(t, dir, n)
}
