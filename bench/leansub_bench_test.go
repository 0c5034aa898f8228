package bench

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mqbench/mqbench/internal/testutil"
)

// BenchmarkFanout runs testdata/fanout-500.yaml (one publisher, 1,000 QoS 1
// messages, 500 subscribers: 500,000 deliveries) with `mqbench run` as its
// own process, on each broker, with the paho and the lean subscriber:
// deliveries/s is the run's delivery rate, bench-rss-MB mqbench's peak
// resident memory sampled during the run, bench-cpu-µs/delivery mqbench's
// CPU (run and summary) per delivery, p50-ms the publish-to-delivery
// latency. The broker runs as its own process in both cases, so mqbench's
// numbers are its own.
func BenchmarkFanout(b *testing.B) {
	bin := testutil.BuildMqbench(b)
	scenario, err := filepath.Abs(filepath.Join("testdata", "fanout-500.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	for _, kind := range benchBrokers {
		for _, client := range []string{"paho", "lean"} {
			b.Run(kind+"/"+client, func(b *testing.B) {
				if kind == "mosquitto" {
					testutil.RequireMosquittoBroker(b)
				}
				var deliveries, delivered, cpu, rss, p50 float64
				for i := 0; i < b.N; i++ {
					s := fanoutRun(b, bin, scenario, kind, client)
					deliveries += s.Deliver.MsgsPerS
					delivered += float64(s.Delivered)
					cpu += s.Bench.CPUSeconds * 1e6 / float64(max(s.Delivered, 1))
					rss = max(rss, float64(s.Bench.MaxRSSBytes)/1e6)
					p50 += float64(s.Latency.PublishToDelivery.P50) / 1e6
				}
				n := float64(b.N)
				b.ReportMetric(deliveries/n, "deliveries/s")
				b.ReportMetric(delivered/n, "delivered")
				b.ReportMetric(cpu/n, "bench-cpu-µs/delivery")
				b.ReportMetric(rss, "bench-rss-MB")
				b.ReportMetric(p50/n, "p50-ms")
			})
		}
	}
}

// fanoutRun is one `mqbench run` of the fan-out scenario; a run that lost
// or duplicated a delivery fails the benchmark. Deliveries still held when
// the drain gave up (subscribers that fell behind) are reported, not failed:
// that is what the benchmark measures.
func fanoutRun(b *testing.B, bin, scenario, kind, client string) Summary {
	dir := filepath.Join(b.TempDir(), "run")
	cmd := exec.Command(bin, "run", scenario, "--broker", kind, "--no-progress", "--json", "--out", dir,
		"--set", "subscribers.0.client="+client)
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin")
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("mqbench run: %v (%s)", err, out)
	}
	var s Summary
	if err := json.Unmarshal(out, &s); err != nil {
		b.Fatalf("summary: %v", err)
	}
	if s.Status != "ok" || s.Lost != 0 || s.Duplicates != 0 {
		b.Fatalf("%s/%s: status %s, delivered %d, lost %d, duplicates %d", kind, client, s.Status, s.Delivered, s.Lost, s.Duplicates)
	}
	return s
}
