package reports

import (
	"cmp"
	"compress/gzip"
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/scenarios"
)

// fixture describes a synthetic run: one QoS 2 publisher, one paced persistent
// subscriber, a broker that keeps at most limit messages per subscriber and
// saves every saveEvery. It is fully deterministic (fixed times, fixed seed), so
// golden files built from it are stable.
type fixture struct {
	name      string
	messages  int
	limit     int           // messages the broker keeps for the subscriber (inflight + queued)
	saveEvery time.Duration // autosave period as observed
	autosave  string        // autosave_interval setting
	tainted   bool
	noFooter  bool          // the recorder died: no footer
	dupStores int64         // DupStores reported by every save after the first
	kind      string        // broker kind in the header, "bundled" when empty
	noDB      bool          // no persistence file sampled: no path, sizes or saves
	sysUntil  time.Duration // after this time since the run phase no $SYS drop counter arrives (0: always)
	noSys     bool          // no $SYS drop counter at all
}

func defaultFixture() fixture {
	return fixture{name: "persist-fixture", messages: 2000, limit: 1020, saveEvery: 500 * time.Millisecond, autosave: "0.5"}
}

type action struct {
	t    int64
	kind int // order within the same instant: ack, consume, gauge, save
	seq  int
}

const (
	actAck = iota
	actConsume
	actGauge
	actSave
)

// writeFixture writes dir/events.jsonl.gz for f and returns dir.
func writeFixture(t testing.TB, dir string, f fixture) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(42))
	ms := int64(time.Millisecond)
	runT := 500 * ms
	drainT := runT + 5000*ms
	cleanFalse := false
	sc := scenarios.Scenario{
		Name:        f.name,
		Description: "Synthetic run: a fast QoS 2 publisher and a subscriber consuming one message every 500 ms.",
		Broker: []scenarios.BrokerSetting{
			{Key: "persistence", Values: []string{"true"}},
			{Key: "autosave_interval", Values: []string{f.autosave}},
		},
		Publishers:  []scenarios.Publisher{{ClientID: "pub", Count: 1, Messages: f.messages, QoS: 2, Topic: "test", Inflight: 1}},
		Subscribers: []scenarios.Subscriber{{ClientID: "slowsub", Count: 1, Filter: "test", QoS: 2, CleanSession: &cleanFalse, Pace: scenarios.Duration(500 * time.Millisecond), PaceMode: "ack"}},
		Duration:    scenarios.Duration(5 * time.Second),
		Thresholds:  []string{"lost == 0"},
	}
	scJSON, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	h := bench.Header{
		Type: "header", Schema: bench.EventSchema, RunID: "run-" + f.name, ScenarioName: f.name, Scenario: scJSON,
		BrokerKind: cmp.Or(f.kind, "bundled"), BrokerVersion: "2.0.11-compatible", BrokerAddr: "tcp://127.0.0.1:1883",
		PersistPath: map[bool]string{false: "/data/mosquitto.db"}[f.noDB], BrokerConfig: []string{"persistence true", "autosave_interval " + f.autosave},
		MQBench: "test", GoVersion: "go1.26", Host: "fixture-host",
		Start: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), TimeScale: 1,
	}

	var evs []bench.Event
	evs = append(evs, bench.Event{T: 0, Type: bench.EvPhase, Msg: "connect"}, bench.Event{T: runT, Type: bench.EvPhase, Msg: "run"})
	pubT := make([]int64, f.messages+1)
	var acts []action
	for i := 1; i <= f.messages; i++ {
		pubT[i] = runT + int64(i)*ms
		ack := pubT[i] + 300*int64(time.Microsecond) + rng.Int63n(200)*int64(time.Microsecond)
		evs = append(evs, bench.Event{T: pubT[i], Type: bench.EvPub, Client: "pub", Seq: int64(i), QoS: 2, Size: 150})
		evs = append(evs, bench.Event{T: ack, Type: bench.EvAck, Client: "pub", Seq: int64(i), QoS: 2})
		acts = append(acts, action{t: ack, kind: actAck, seq: i})
	}
	for c := runT + 500*ms; c < drainT; c += 500 * ms {
		acts = append(acts, action{t: c, kind: actConsume})
	}
	for g := int64(0); g <= drainT; g += 100 * ms {
		acts = append(acts, action{t: g, kind: actGauge})
	}
	for s := runT + int64(f.saveEvery); s < drainT && !f.noDB; s += int64(f.saveEvery) {
		acts = append(acts, action{t: s, kind: actSave})
	}
	sort.SliceStable(acts, func(i, j int) bool {
		if acts[i].t != acts[j].t {
			return acts[i].t < acts[j].t
		}
		return acts[i].kind < acts[j].kind
	})
	var queue []int
	dropped, fileSize, saves := 0, int64(0), 0
	for _, a := range acts {
		switch a.kind {
		case actAck:
			if len(queue) >= f.limit {
				dropped++
			} else {
				queue = append(queue, a.seq)
			}
		case actConsume:
			if len(queue) > 0 {
				s := queue[0]
				queue = queue[1:]
				evs = append(evs, bench.Event{T: a.t, Type: bench.EvRecv, Client: "slowsub", Pub: "pub", Seq: int64(s), QoS: 2, Size: 150, PubT: pubT[s]})
			}
		case actGauge:
			if fileSize > 0 {
				evs = append(evs, bench.Event{T: a.t, Type: bench.EvGauge, Name: bench.GaugePersistBytes, Value: float64(fileSize)})
			}
			if !f.noSys && (f.sysUntil == 0 || a.t <= runT+int64(f.sysUntil)) {
				evs = append(evs, bench.Event{T: a.t, Type: bench.EvGauge, Name: bench.GaugeDropped, Value: float64(dropped)})
			}
		case actSave:
			held := int64(len(queue))
			fileSize = 117 + 228*held
			e := bench.Event{T: a.t, Type: bench.EvSave, SizeBytes: fileSize, Held: held,
				Queued: max(0, held-20), Inflight: min(20, held), Stored: held, Decoded: true}
			if saves > 0 {
				e.DupStores = f.dupStores
			}
			saves++
			evs = append(evs, e)
		}
	}
	evs = append(evs, bench.Event{T: drainT, Type: bench.EvPhase, Msg: "drain"})
	end := drainT
	for i, s := range queue {
		end = drainT + int64(i+1)*ms
		evs = append(evs, bench.Event{T: end, Type: bench.EvRecv, Client: "slowsub", Pub: "pub", Seq: int64(s), QoS: 2, Size: 150, PubT: pubT[s]})
	}
	end += ms
	if f.tainted {
		evs = append(evs, bench.Event{T: runT + 2000*ms, Type: bench.EvNote, Level: "warn", Msg: "subscriber slowsub disconnected unexpectedly"})
	}
	evs = append(evs, bench.Event{T: end, Type: bench.EvPhase, Msg: "done"})
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].T < evs[j].T })

	file, err := os.Create(filepath.Join(dir, bench.EventsFile))
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(file)
	enc := json.NewEncoder(zw)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(enc.Encode(h))
	for _, e := range evs {
		must(enc.Encode(e))
	}
	if !f.noFooter {
		ft := bench.Footer{Type: "footer", T: end, Status: "ok", End: h.Start.Add(time.Duration(end))}
		if f.tainted {
			ft.Tainted = true
			ft.Reasons = []string{"subscriber slowsub disconnected unexpectedly"}
		}
		must(enc.Encode(ft))
	}
	must(zw.Close())
	must(file.Close())
	return dir
}

// TestFixtureReconciles guards the fixture itself: if it stopped producing the
// drops and backlog the other tests rely on, their goldens would prove nothing.
func TestFixtureReconciles(t *testing.T) {
	dir := writeFixture(t, t.TempDir(), defaultFixture())
	run, err := bench.ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := bench.Summarize(run)
	if s.Acked != 2000 || s.DroppedByBroker == 0 || s.HeldAtEnd == 0 || s.Delivered == 0 {
		t.Fatalf("fixture does not build a backlog with drops: acked %d dropped %d held %d delivered %d", s.Acked, s.DroppedByBroker, s.HeldAtEnd, s.Delivered)
	}
	if got := s.Delivered + s.HeldAtEnd + s.DroppedByBroker + s.Lost; got != s.Acked {
		t.Fatalf("delivered+held+dropped+lost = %d, acked %d", got, s.Acked)
	}
	if s.Persist.Saves < 3 {
		t.Fatalf("saves %d, want >= 3", s.Persist.Saves)
	}
}
