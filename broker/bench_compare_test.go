package broker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqbench/mqbench/internal/testutil"
)

// Benchmarks that run the bundled broker and the real Mosquitto 2.0.11 side by
// side in one `go test -run '^$' -bench . ./broker/`, with the same lean client
// and the same config lines, so the numbers compare:
//
//	bundled       the broker in this process (shares the CPU with the clients)
//	bundled-proc  `mqbench broker -c FILE` as a subprocess, like Mosquitto
//	mosquitto     /usr/sbin/mosquitto
//
// Throughput is reported as msgs/s, memory as rss_MB, saves as save_ms and the
// publish latency while a save runs as p99_ms / max_ms.

// benchTarget is a broker started for a benchmark.
type benchTarget struct {
	addr string
	pid  int           // for RSS; 0 for the in-process broker
	proc benchSignaler // nil for the in-process broker
	db   string        // persistence file path
}

type benchSignaler interface{ Signal(syscall.Signal) error }

// startBenchBroker starts one kind of broker; with persist true the data lives
// in a fresh directory with persistence on.
func startBenchBroker(b *testing.B, kind string, persist bool, extra ...string) benchTarget {
	b.Helper()
	dir := b.TempDir()
	dataDir := ""
	if persist {
		dataDir = dir
	}
	extra = append([]string{"log_dest none"}, extra...)
	db := filepath.Join(dir, "mosquitto.db")
	switch kind {
	case "bundled":
		br := inprocBroker(b, testutil.BundledConf(dataDir, extra...))
		return benchTarget{addr: br.Addr(), db: db}
	case "bundled-proc":
		bin := testutil.BuildMqbench(b)
		conf := testutil.WriteFile(b, dir, "mqbench.conf", testutil.BundledConf(dataDir, extra...))
		br := testutil.StartBundled(b, bin, conf)
		return benchTarget{addr: br.Addr, pid: br.PID, proc: br, db: db}
	case "mosquitto":
		testutil.RequireMosquitto(b)
		var lines []string
		for _, l := range extra {
			if !strings.HasPrefix(l, "log_dest") {
				lines = append(lines, l)
			}
		}
		m := testutil.StartMosquitto(b, testutil.MosquittoOptions{Dir: dir, Persistence: persist, Extra: lines})
		return benchTarget{addr: m.Addr, pid: m.PID, proc: m, db: m.DBPath}
	}
	b.Fatalf("unknown broker kind %q", kind)
	return benchTarget{}
}

// countingSub connects a clean-session QoS 2 subscriber of topic that counts
// what it receives.
func countingSub(b *testing.B, addr, topic string) *atomic.Int64 {
	b.Helper()
	var got atomic.Int64
	sub, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: "benchsub", CleanSession: true, Buffer: 1,
		OnMessage: func(testutil.Message) { got.Add(1) }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sub.Close)
	if _, err := sub.Subscribe(topic, 2); err != nil {
		b.Fatal(err)
	}
	return &got
}

// waitCount waits until c reaches n, or fails after timeout: a broker that
// loses messages must fail the benchmark, not hang it.
func waitCount(b *testing.B, c *atomic.Int64, n int64, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for c.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("subscriber received %d of %d within %v", c.Load(), n, timeout)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

var benchKinds = []string{"bundled", "bundled-proc", "mosquitto"}

// BenchmarkQoS2Publish: 10,000 QoS 2 150-byte messages per op from one publisher
// with 20 or 1,000 unacknowledged, one connected subscriber consuming at QoS 2.
// max_queued_messages 0 so nothing is dropped; the window-1000 case sets
// max_inflight_messages 1000 on both brokers, because both apply that limit
// to a publisher's unreleased QoS 2 messages and refuse the excess (see
// incoming.go).
func BenchmarkQoS2Publish(b *testing.B) {
	const n = 10000
	for _, kind := range benchKinds {
		for _, window := range []int{20, 1000} {
			b.Run(fmt.Sprintf("%s/window%d", kind, window), func(b *testing.B) {
				extra := []string{"max_queued_messages 0"}
				if window > 20 {
					extra = append(extra, fmt.Sprintf("max_inflight_messages %d", window))
				}
				tg := startBenchBroker(b, kind, false, extra...)
				got := countingSub(b, tg.addr, "test")
				pub, err := testutil.Dial(tg.addr, testutil.ClientOptions{ClientID: "pub", CleanSession: true})
				if err != nil {
					b.Fatal(err)
				}
				defer pub.Close()
				payloads := make([][]byte, n)
				for i := range payloads {
					payloads[i] = testutil.Payload(i, testutil.PayloadSize)
				}
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					if err := pub.PublishN(n, window, 2, "test", func(k int) []byte { return payloads[k] }, 120*time.Second); err != nil {
						b.Fatal(err)
					}
					waitCount(b, got, int64(n*(i+1)), 60*time.Second)
				}
				el := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(n*b.N)/el.Seconds(), "msgs/s")
			})
		}
	}
}

// BenchmarkMosquittoPubLines: the stock client, `mosquitto_pub -l -q 2`, feeds
// 10,000 150-byte lines per op; a QoS 2 subscriber consumes them.
func BenchmarkMosquittoPubLines(b *testing.B) {
	testutil.RequireClients(b)
	const n = 10000
	var in strings.Builder
	for i := 0; i < n; i++ {
		in.Write(testutil.Payload(i, testutil.PayloadSize))
		in.WriteByte('\n')
	}
	stdin := []byte(in.String())
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			tg := startBenchBroker(b, kind, false, "max_queued_messages 0")
			got := countingSub(b, tg.addr, "test")
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				testutil.Pub(b, tg.addr, stdin, 120*time.Second, "-t", "test", "-q", "2", "-l")
				waitCount(b, got, int64(n*(i+1)), 60*time.Second)
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(n*b.N)/el.Seconds(), "msgs/s")
		})
	}
}

// holdBacklog makes slowsub a persistent subscriber, takes it offline and
// publishes n 150-byte messages at QoS 1 (window 100: QoS 1 is not subject to
// Mosquitto's incoming in-flight limit) so the broker holds them all.
func holdBacklog(b *testing.B, addr string, n int) {
	b.Helper()
	sub, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: compatSub})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := sub.Subscribe(compatTopic, 2); err != nil {
		b.Fatal(err)
	}
	if err := sub.Disconnect(); err != nil {
		b.Fatal(err)
	}
	pub, err := testutil.Dial(addr, testutil.ClientOptions{ClientID: compatPub, CleanSession: true})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	if err := pub.PublishN(n, 100, 1, compatTopic, func(i int) []byte { return testutil.Payload(i, testutil.PayloadSize) }, 120*time.Second); err != nil {
		b.Fatal(err)
	}
	if err := pub.Disconnect(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHeldRSS: resident memory of a broker process holding 100,000
// 150-byte messages for an offline persistent subscriber (max_queued_messages 0).
func BenchmarkHeldRSS(b *testing.B) {
	const n = 100000
	for _, kind := range []string{"bundled-proc", "mosquitto"} {
		b.Run(kind, func(b *testing.B) {
			var rss, base int64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				tg := startBenchBroker(b, kind, false, "max_queued_messages 0")
				var err error
				if base, err = testutil.RSSBytes(tg.pid); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				holdBacklog(b, tg.addr, n)
				if rss, err = testutil.RSSBytes(tg.pid); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rss)/(1<<20), "rss_MB")
			b.ReportMetric(float64(rss-base)/n, "rss_B/held")
		})
	}
}

// BenchmarkAutosave100k: one save (SIGUSR1) of 100,000 held messages. save_ms
// is from the signal until the new file is in place (the first save, so the
// file appearing is the rename); p99_ms and max_ms are the latencies of QoS 1
// publishes from another client, sent one at a time, that overlapped the save.
// Mosquitto saves inside its event loop and stalls; the bundled broker writes
// off its state loop and should not.
func BenchmarkAutosave100k(b *testing.B) {
	const n = 100000
	for _, kind := range []string{"bundled-proc", "mosquitto"} {
		b.Run(kind, func(b *testing.B) {
			var saveDur time.Duration
			var during, baseline []time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				tg := startBenchBroker(b, kind, true, "max_queued_messages 0", "autosave_interval 0")
				holdBacklog(b, tg.addr, n)
				if _, err := os.Stat(tg.db); err == nil {
					b.Fatalf("%s exists before the save", tg.db)
				}
				probe, err := testutil.Dial(tg.addr, testutil.ClientOptions{ClientID: "probe", CleanSession: true})
				if err != nil {
					b.Fatal(err)
				}
				type sample struct{ start, end time.Time }
				var mu sync.Mutex
				var samples []sample
				stop := make(chan struct{})
				probeDone := make(chan error, 1)
				go func() {
					for k := 0; ; k++ {
						select {
						case <-stop:
							probeDone <- nil
							return
						default:
						}
						t0 := time.Now()
						if err := probe.Publish("probe", []byte("x"), 1, false); err != nil {
							probeDone <- err
							return
						}
						mu.Lock()
						samples = append(samples, sample{t0, time.Now()})
						mu.Unlock()
						if k%20 == 0 {
							time.Sleep(100 * time.Microsecond)
						}
					}
				}()
				time.Sleep(300 * time.Millisecond)
				b.StartTimer()
				sigAt := time.Now()
				if err := tg.proc.Signal(syscall.SIGUSR1); err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := os.Stat(tg.db); err == nil {
						break
					}
					if time.Since(sigAt) > 60*time.Second {
						b.Fatalf("no %s within 60 s of SIGUSR1", tg.db)
					}
					time.Sleep(200 * time.Microsecond)
				}
				doneAt := time.Now()
				b.StopTimer()
				time.Sleep(300 * time.Millisecond)
				close(stop)
				if err := <-probeDone; err != nil {
					b.Fatalf("probe publisher: %v", err)
				}
				probe.Close()
				saveDur = doneAt.Sub(sigAt)
				during, baseline = nil, nil
				for _, s := range samples {
					d := s.end.Sub(s.start)
					if s.start.Before(doneAt) && s.end.After(sigAt) {
						during = append(during, d)
					} else if s.end.Before(sigAt) {
						baseline = append(baseline, d)
					}
				}
				if fi, err := os.Stat(tg.db); err != nil || fi.Size() < int64(n)*228 {
					b.Fatalf("saved file %s: %v, want at least %d bytes for %d held", tg.db, err, n*228, n)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(saveDur.Microseconds())/1000, "save_ms")
			b.ReportMetric(float64(benchQuantile(during, 0.99).Microseconds())/1000, "p99_ms")
			b.ReportMetric(float64(benchQuantile(during, 1).Microseconds())/1000, "max_ms")
			b.ReportMetric(float64(benchQuantile(baseline, 0.99).Microseconds())/1000, "idle_p99_ms")
			b.ReportMetric(float64(len(during)), "probes_during")
		})
	}
}

// benchQuantile returns the q-quantile (nearest rank) of ds, 0 for none.
func benchQuantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}
