package bench

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

const ms = int64(time.Millisecond)

func oneToOne() *tb {
	return newTB([]scenarios.Publisher{pubGroup("pub", 1, "test")}, []scenarios.Subscriber{subGroup("sub", 1, "test")}, true)
}

// TestSummaryLatencySplit: deliveries in the observation window and in the
// drain are two different measurements; mixing them made the window's
// percentiles report how long the backlog waited.
func TestSummaryLatencySplit(t *testing.T) {
	b := oneToOne().phase(0, "run").pubAck("pub", 1, 10, 0).
		recv("sub", "pub", 100*ms, 1, 2).         // sent at 0 and 1 ms: ~100 ms
		phase(5*sec, "drain").                    //
		recv("sub", "pub", 5*sec, seqs(3, 10)...) // waited ~5 s
	s := Summarize(b.run(okFooter))
	w, d := s.Latency.PublishToDelivery, s.Latency.DrainDelivery
	if w.Count != 2 || w.Max > 200*ms {
		t.Errorf("publish_to_delivery %+v: want the 2 window deliveries, ~100 ms", w)
	}
	if d.Count != 8 || d.P50 < 4*sec {
		t.Errorf("drain_delivery %+v: want the 8 drain deliveries, ~5 s", d)
	}
}

// TestSummaryFinalBytes: final_bytes must not depend on whether a timer save
// fell inside the drain.
func TestSummaryFinalBytes(t *testing.T) {
	base := func() *tb {
		return oneToOne().phase(0, "run").pubAck("pub", 1, 10, 0).
			add(Event{T: sec, Type: EvSave, SizeBytes: 2397, Held: 10, Stored: 10, Decoded: true}).
			gauge(sec+50*ms, GaugePersistBytes, 2397).
			phase(4*sec, "drain").recv("sub", "pub", 4*sec, seqs(1, 10)...)
	}
	withDrainSave := base().
		add(Event{T: 4500 * ms, Type: EvSave, SizeBytes: 117, Decoded: true}).
		gauge(4600*ms, GaugePersistBytes, 117)
	for name, b := range map[string]*tb{"no save in drain": base(), "save in drain": withDrainSave} {
		s := Summarize(b.run(okFooter))
		if s.Persist.FinalBytes != 2397 || s.Persist.FinalSource != "window_end" {
			t.Errorf("%s: final %d (%s), want 2397 (window_end)", name, s.Persist.FinalBytes, s.Persist.FinalSource)
		}
	}
	if s := Summarize(withDrainSave.run(okFooter)); s.Persist.EndBytes != 117 {
		t.Errorf("end_bytes %d, want the last sample 117", s.Persist.EndBytes)
	}

	// A clean stop: the final save the broker wrote on SIGTERM.
	stopped := base().
		add(Event{T: 2 * sec, Type: EvAction, Action: "stop"}).
		add(Event{T: 2100 * ms, Type: EvSave, SizeBytes: 2400, Held: 10, Stored: 10, Decoded: true}).
		add(Event{T: 3 * sec, Type: EvAction, Action: "start"}).
		add(Event{T: 3500 * ms, Type: EvSave, SizeBytes: 2500, Held: 10, Stored: 10, Decoded: true})
	if s := Summarize(stopped.run(okFooter)); s.Persist.FinalBytes != 2400 || s.Persist.FinalSource != "stop" {
		t.Errorf("stopped: final %d (%s), want 2400 (stop)", s.Persist.FinalBytes, s.Persist.FinalSource)
	}

	noDrain := newTB([]scenarios.Publisher{pubGroup("pub", 1, "test")}, []scenarios.Subscriber{subGroup("sub", 1, "test")}, false).
		phase(0, "run").pubAck("pub", 1, 10, 0).
		gauge(sec, GaugePersistBytes, 500).gauge(2*sec, GaugePersistBytes, 700)
	if s := Summarize(noDrain.run(okFooter)); s.Persist.FinalBytes != 700 || s.Persist.FinalSource != "last_sample" {
		t.Errorf("no drain: final %d (%s), want 700 (last_sample)", s.Persist.FinalBytes, s.Persist.FinalSource)
	}
}

// TestSummaryStoredVsHeld: with two subscribers a save stores each message
// once and holds it twice; "held" alone rose above what was published.
func TestSummaryStoredVsHeld(t *testing.T) {
	b := newTB([]scenarios.Publisher{pubGroup("pub", 1, "test")}, []scenarios.Subscriber{subGroup("sub-%d", 2, "test")}, true).
		phase(0, "run").pubAck("pub", 1, 10, 0).
		add(Event{T: sec, Type: EvSave, SizeBytes: 117 + 10*150 + 20*80, Held: 20, Stored: 10, Decoded: true})
	s := Summarize(b.run(okFooter))
	if s.Persist.MaxStoredMessages != 10 || s.Persist.MaxHeldDeliveries != 20 {
		t.Errorf("stored %d held %d, want 10 stored (<= published %d) and 20 deliveries held",
			s.Persist.MaxStoredMessages, s.Persist.MaxHeldDeliveries, s.Published)
	}
}

// TestSummaryTradeoff computes the autosave trade-off of a run with known
// times: 100 messages acked at 2..101 ms, saves at 50 ms and 1 s, nothing
// consumed until the drain at 5 s, the recording ends at 6 s.
func TestSummaryTradeoff(t *testing.T) {
	b := oneToOne().phase(0, "run").pubAck("pub", 1, 100, 0).
		add(Event{T: 50 * ms, Type: EvSave, SizeBytes: 1000, Decoded: true}).
		add(Event{T: sec, Type: EvSave, SizeBytes: 3000, Decoded: true}).
		phase(5*sec, "drain").recv("sub", "pub", 5*sec, seqs(1, 100)...)
	s := Summarize(b.run(&Footer{Type: "footer", T: 6 * sec, Status: "ok"}))
	p := s.Persist
	if !p.Sampled || p.BytesWritten == nil || *p.BytesWritten != 4000 {
		t.Fatalf("bytes_written %v, want 4000 (the two saves' sizes)", p.BytesWritten)
	}
	if got := *p.BytesWrittenPerMin; got != 4000.0*60/6 {
		t.Errorf("bytes_written_per_min %g, want %g (4000 B over 6 s)", got, 4000.0*60/6)
	}
	// Seq 49, acked at 50 ms, the instant the first save was detected, is
	// not counted in it: first saved at 1 s, 950 ms only in memory.
	if *p.ExposureMaxNS != 950*ms {
		t.Errorf("exposure_max_ns %d, want %d", *p.ExposureMaxNS, 950*ms)
	}
	// Acks run from 2 to 101 ms; the only save inside splits them 48 / 51 ms.
	if *p.MaxSaveGapNS != 51*ms {
		t.Errorf("max_save_gap_ns %d, want %d", *p.MaxSaveGapNS, 51*ms)
	}
	rate := 100 / 0.101 // acked over first pub .. last ack
	want := int64(rate*0.051 + 0.5)
	if *p.PredictedCrashLoss != want {
		t.Errorf("predicted_crash_loss %d, want %d", *p.PredictedCrashLoss, want)
	}

	// No file sampled: unknown, encoded as null so check skips them.
	noFile := b.run(okFooter)
	noFile.Header.PersistPath = ""
	var kept []Event
	for _, e := range noFile.Events {
		if e.Type != EvSave {
			kept = append(kept, e)
		}
	}
	noFile.Events = kept
	u := Summarize(noFile)
	if u.Persist.Sampled || u.Persist.BytesWritten != nil || u.Persist.ExposureMaxNS != nil || u.Persist.PredictedCrashLoss != nil {
		t.Errorf("unsampled run has trade-off numbers: %+v", u.Persist)
	}
	js, err := json.Marshal(u.Persist)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"bytes_written":null`, `"exposure_max_ns":null`, `"predicted_crash_loss":null`, `"bytes_written_per_min":null`} {
		if !strings.Contains(string(js), k) {
			t.Errorf("summary.json lacks %s: %s", k, js)
		}
	}
}

// TestSummaryExternalBroker: an external broker's settings are not the
// scenario's, and its drop counter is the only source of drops.
func TestSummaryExternalBroker(t *testing.T) {
	b := oneToOne().phase(0, "run").pubAck("pub", 1, 10, 0).
		gauge(0, GaugeDropped, 40). // the broker's counter before the run
		gauge(5*ms, GaugeDropped, 44).
		gauge(50*ms, GaugeStoreCount, 10). // a $SYS tick after the last ack (11 ms)
		phase(sec, "drain").recv("sub", "pub", sec, seqs(1, 6)...)
	r := b.run(okFooter)
	r.Header.BrokerKind = "external"
	s := Summarize(r)
	if s.BrokerConfigSource != "unknown" || s.Persist.AutosaveInterval != "unknown" {
		t.Errorf("config source %q autosave %q, want unknown (the scenario says 3)", s.BrokerConfigSource, s.Persist.AutosaveInterval)
	}
	if s.DroppedByBroker != 4 || s.Lost != 0 || s.Drops.Source != "$SYS" || s.Drops.Stale {
		t.Errorf("dropped %d lost %d drops %+v: want 4 dropped (increase during the run), fresh $SYS", s.DroppedByBroker, s.Lost, s.Drops)
	}

	// The counter's last update came before the last acknowledgement.
	stale := oneToOne().phase(0, "run").pubAck("pub", 1, 10, 0).
		gauge(0, GaugeDropped, 0).
		phase(sec, "drain").recv("sub", "pub", sec, seqs(1, 6)...)
	r = stale.run(okFooter)
	r.Header.BrokerKind = "external"
	s = Summarize(r)
	if !s.Drops.Stale || s.Drops.AgeAtEndNS != okFooter.T || !hasNote(s, "counted as lost") {
		t.Errorf("drops %+v: want stale, age %d", s.Drops, okFooter.T)
	}

	// No counter at all: unknown, not a measured zero.
	none := oneToOne().phase(0, "run").pubAck("pub", 1, 10, 0)
	r = none.run(okFooter)
	r.Header.BrokerKind = "external"
	if s = Summarize(r); s.Drops.Source != "unknown" {
		t.Errorf("drops %+v: want source unknown", s.Drops)
	}
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"dropped_by_broker":null,`) {
		t.Errorf("summary.json without a drop counter: dropped_by_broker is not null: %.300s", js)
	}
	var back Summary
	if err := json.Unmarshal(js, &back); err != nil || back.DroppedByBroker != 0 || back.Drops.Source != "unknown" {
		t.Errorf("reading it back: %v, %+v", err, back.Drops)
	}

	// A broker mqbench launched ran with the recorded settings.
	if s = Summarize(oneToOne().run(okFooter)); s.BrokerConfigSource != "launched" || s.Persist.AutosaveInterval != "3" {
		t.Errorf("bundled: config source %q autosave %q", s.BrokerConfigSource, s.Persist.AutosaveInterval)
	}
}

// TestSummaryCrashExplained: the prediction comes from what the last save
// held, and the difference from it is split into drops and the rest. With the
// save's detection 100 ms after its snapshot (messages acked in between are
// not in the file), a time-based prediction would say fewer are lost than
// were.
func TestSummaryCrashExplained(t *testing.T) {
	// 100 messages acked at 2..101 ms; the snapshot at 50 ms held seqs 1..48,
	// detected at 80 ms; kill at 120 ms; the restarted broker delivers 1..48.
	b := oneToOne().phase(0, "run").pubAck("pub", 1, 100, 0).
		gauge(0, GaugeDropped, 0).gauge(110*ms, GaugeDropped, 2).
		// Stored 50: two more messages in the publisher's QoS 2 handshake,
		// stored but held for no subscriber (Mosquitto does this).
		add(Event{T: 80 * ms, Type: EvSave, SizeBytes: 5000, Held: 48, Stored: 50, Inflight: 1, Decoded: true}).
		add(Event{T: 120 * ms, Type: EvAction, Action: "kill"}).
		add(Event{T: 200 * ms, Type: EvAction, Action: "start"}).
		phase(sec, "drain").recv("sub", "pub", sec, seqs(1, 48)...)
	s := Summarize(b.run(okFooter))
	c := s.Crash
	if c == nil {
		t.Fatal("no crash summary")
	}
	if c.UnconsumedAtKill != 100 || c.SavedUnconsumed != 48 || c.PredictedLost != 52 || c.PredictedFrom != "decoded_save" {
		t.Errorf("prediction %+v: want 100 unconsumed - 48 saved = 52", *c)
	}
	if c.ActualLost != 52 || c.Difference != 0 || c.Unexplained != 0 {
		t.Errorf("outcome %+v: want 52 lost, as predicted", *c)
	}
	if c.AckedSinceSave != 21 {
		t.Errorf("acked_since_save %d, want 21 (acked after the save's detection at 80 ms)", c.AckedSinceSave)
	}
	if c.DroppedBeforeKill != 2 {
		t.Errorf("dropped_before_kill %d, want 2", c.DroppedBeforeKill)
	}
	if s.LostInCrash != c.ActualLost {
		t.Errorf("lost_in_crash %d != crash.actual_lost %d", s.LostInCrash, c.ActualLost)
	}
}
