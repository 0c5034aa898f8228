package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/broker/persist"
)

// TestRecordedExperimentFindings renders the MQTT 5 persistence experiments
// recorded on both brokers (small runs: `mqbench run expiry-3s --set
// publishers.0.messages=100 --set publishers.1.messages=100`, `session-expiry
// --set publishers.0.messages=100`, `shared-backlog --set
// publishers.0.messages=400 --set publishers.0.rate=40`, each with --broker
// bundled and mosquitto). The numbers in the findings are checked against the
// saves and the experiment pass of the same run, so a finding that stopped
// reading them fails here, and the two brokers' runs must reach the same
// conclusion: Mosquitto 2.0.11 is the reference.
func TestRecordedExperimentFindings(t *testing.T) {
	for _, kind := range []string{"bundled", "mosquitto"} {
		t.Run("expiry-3s-"+kind, func(t *testing.T) {
			s, x, got := recordedExperiment(t, "expiry-3s-"+kind, kind)
			if len(x.Expiring) != 1 || x.Expiring[0].Acked != 100 {
				t.Fatalf("expiring groups %+v, want brief with 100 acknowledged", x.Expiring)
			}
			g := x.Expiring[0]
			saves := decodedSaves(&s)
			before, ok1 := lastSaveBefore(saves, g.FirstAckT+g.ExpiryNS)
			after, ok2 := firstSaveFrom(saves, g.LastAckT+g.ExpiryNS+brokerClock, func(bench.SavePoint) bool { return true })
			if !ok1 || !ok2 {
				t.Fatalf("no save on both sides of the expiry: %+v", saves)
			}
			// Mosquitto 2.0.11 discards an expired message only when it
			// would send it: the offline subscriber's file keeps them.
			if after.Held != before.Held || after.SizeBytes != before.SizeBytes {
				t.Errorf("save after the expiry %+v differs from the one before %+v: the broker dropped expired messages of an offline client", after, before)
			}
			for _, w := range []string{
				"the last save before the expiry (" + saveText(before, &s) + ")",
				"the first after it (" + saveText(after, &s) + ")",
				"the file did not shrink at the first save after the expiry",
				"after away reconnected at " + formatSecs(x.Away[0].ReconnectT, &s),
				groupInt(s.ExpiredOrLost) + " messages were never delivered and counted expired or lost",
			} {
				if !strings.Contains(strings.ToLower(got), strings.ToLower(w)) {
					t.Errorf("findings lack %q:\n%s", w, got)
				}
			}
			if s.ExpiredOrLost != 100 || s.Lost != 0 {
				t.Errorf("expired_or_lost %d lost %d, want 100 and 0", s.ExpiredOrLost, s.Lost)
			}
		})
		t.Run("session-expiry-"+kind, func(t *testing.T) {
			s, x, got := recordedExperiment(t, "session-expiry-"+kind, kind)
			if len(x.Away) != 1 || x.Away[0].HeldFor != 100 || x.Away[0].ReconnectT != -1 {
				t.Fatalf("away sessions %+v, want away holding 100, never back", x.Away)
			}
			a := x.Away[0]
			expiry := a.DisconnectT + a.ExpiryNS
			saves := decodedSaves(&s)
			gone, ok := firstSaveFrom(saves, expiry, func(sp bench.SavePoint) bool { return sp.Held == 0 })
			settled, _ := firstSaveFrom(saves, expiry+brokerClock, func(bench.SavePoint) bool { return true })
			if !ok || gone.T > settled.T {
				t.Fatalf("the first save once the session expired at %d still holds the backlog: %+v", expiry, saves)
			}
			for _, w := range []string{
				"the first save after the expiry no longer held its backlog (" + saveText(gone, &s) + "), " + secsText(gone.T-expiry) + " after the expiry",
				"None of the 100 reached it",
			} {
				if !strings.Contains(got, w) {
					t.Errorf("findings lack %q:\n%s", w, got)
				}
			}
		})
		t.Run("shared-backlog-"+kind, func(t *testing.T) {
			_, x, got := recordedExperiment(t, "shared-backlog-"+kind, kind)
			r := x.Restart
			if r == nil || len(r.Entries) != 2 || !r.Entries[0].Shared || r.Entries[1].Name != "audit" {
				t.Fatalf("restart split %+v, want the share and audit", r)
			}
			share, audit := r.Entries[0], r.Entries[1]
			// The held backlog of the share's members survives in their
			// sessions; the share itself does not (Mosquitto 2.0.11's
			// persist__subs_save writes the plain subscriptions only).
			if share.BeforeSurvived == 0 || share.Away == 0 || share.AwayReceived != 0 || audit.AwayReceived != audit.Away {
				t.Errorf("share %+v audit %+v: want the share's held messages delivered after the restart, none of those published while it was away, and all of audit's", share, audit)
			}
			for _, w := range []string{
				"of " + groupInt(share.Before) + " acknowledged before the broker went down, " + groupInt(share.BeforeReceived),
				groupInt(share.BeforeSurvived) + " after the restart",
				"of " + groupInt(share.Away) + " acknowledged after the start while it was away",
				"reached audit but not $share/workers/jobs",
				// Read from the broker's last file, kept with the events.
				"holds 3 sessions (audit, worker-1, worker-2) and 1 subscription (audit: jobs). It saved the sessions of worker-1 and worker-2, members of $share/workers/jobs, but not that subscription",
			} {
				if !strings.Contains(got, w) {
					t.Errorf("findings lack %q:\n%s", w, got)
				}
			}
		})
	}
}

// recordedExperiment summarizes testdata/dir, runs the experiment pass and
// returns the findings (checked against the golden file).
func recordedExperiment(t *testing.T, dir, kind string) (bench.Summary, bench.Experiments, string) {
	t.Helper()
	run, err := bench.ReadRun(filepath.Join("testdata", dir))
	if err != nil {
		t.Fatal(err)
	}
	s, got := recordedFindings(t, dir)
	if s.BrokerKind != kind {
		t.Fatalf("broker %q, want %s", s.BrokerKind, kind)
	}
	return s, bench.RunExperiments(run), got
}

// TestSavedSharesFinding reads a file that does hold a shared subscription
// (written by the persist codec, as a broker that saved one would): the
// finding must then say it was saved.
func TestSavedSharesFinding(t *testing.T) {
	dir := t.TempDir()
	db := &persist.DB{
		Clients: []persist.Client{{ClientID: "w-1", SessionExpiryInterval: 300}},
		Subs:    []persist.Sub{{ClientID: "w-1", Topic: "$share/g/t", QoS: 1}},
	}
	if err := os.MkdirAll(filepath.Join(dir, "broker"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := persist.WriteFile(filepath.Join(dir, "broker", "mosquitto.db"), db); err != nil {
		t.Fatal(err)
	}
	run := &bench.Run{Dir: dir, Header: bench.Header{PersistPath: "/elsewhere/mosquitto.db"}}
	r := &bench.RestartSplit{Entries: []bench.RestartEntry{{Name: "$share/g/t", Shared: true, Members: []string{"w-1", "w-2"}}}}
	got := savedSharesFinding(run, r)
	if !strings.Contains(got, "1 session (w-1) and 1 subscription (w-1: $share/g/t). It saved $share/g/t.") {
		t.Errorf("got %q", got)
	}
	db.Subs = nil
	if err := persist.WriteFile(filepath.Join(dir, "broker", "mosquitto.db"), db); err != nil {
		t.Fatal(err)
	}
	if got := savedSharesFinding(run, r); !strings.Contains(got, "It saved the session of w-1, members of $share/g/t, but not that subscription") {
		t.Errorf("got %q", got)
	}
	run.Dir = t.TempDir() // no file: nothing said
	if got := savedSharesFinding(run, r); got != "" {
		t.Errorf("without a file: %q", got)
	}
}

// TestExperimentFindingsFollowData changes the data under a finding and
// checks the finding changes with it: the conclusions are computed, not
// written in.
func TestExperimentFindingsFollowData(t *testing.T) {
	s := &bench.Summary{Phases: map[string]int64{"run": 0}, DurationNS: 20e9}
	sec := int64(1e9)
	g := bench.ExpiringAcks{Group: "brief", ExpiryNS: 4 * sec, Acked: 100, FirstAckT: sec, LastAckT: sec}
	save := func(t, held, size int64) bench.SavePoint {
		return bench.SavePoint{T: t * sec, Held: held, Stored: held, SizeBytes: size, Decoded: true}
	}
	s.Persist.SavePoints = []bench.SavePoint{save(4, 200, 51000), save(8, 200, 51000), save(12, 0, 100)}
	if got := messageExpiryFinding(s, g, nil); !strings.Contains(got, "did not shrink") || !strings.Contains(got, "at the save at 12.0 s") {
		t.Errorf("kept expired messages: %s", got)
	}
	s.Persist.SavePoints[1] = save(8, 100, 26000)
	if got := messageExpiryFinding(s, g, nil); !strings.Contains(got, "the file shrank by 25,000 B (25.0 kB) at the first save after the expiry") {
		t.Errorf("dropped expired messages: %s", got)
	}
	s.Persist.SavePoints = s.Persist.SavePoints[1:]
	if got := messageExpiryFinding(s, g, nil); !strings.Contains(got, "whether the file held them is unknown") {
		t.Errorf("no save before the expiry: %s", got)
	}

	a := bench.AwaySession{Client: "away", ExpiryNS: 10 * sec, DisconnectT: sec / 2, ReconnectT: -1, HeldFor: 100}
	s.Persist.SavePoints = []bench.SavePoint{save(8, 100, 24000), save(12, 100, 24000), save(16, 0, 47)}
	if got := sessionExpiryFinding(s, a); !strings.Contains(got, "the save at 12.0 s: 100 deliveries, 100 messages stored, 24,000 B (24.0 kB), after the expiry, still held it") || !strings.Contains(got, "came 5.5 s after the expiry.") {
		t.Errorf("a save after the expiry kept the session: %s", got)
	}
	a.ReconnectT = 5 * sec
	if got := sessionExpiryFinding(s, a); got != "" {
		t.Errorf("a subscriber back before its expiry has no finding: %s", got)
	}

	r := &bench.RestartSplit{DownT: 5 * sec, DownBy: "stop", StartT: 6 * sec, Entries: []bench.RestartEntry{
		{Name: "$share/g/t", Shared: true, Before: 10, BeforeSurvived: 10, BackT: 9 * sec, Away: 5},
		{Name: "audit", Before: 10, BeforeReceived: 10, BackT: 9 * sec, Away: 5, AwayReceived: 5},
	}}
	if got := restartFinding(s, r); !strings.Contains(got, "reached audit but not $share/g/t") {
		t.Errorf("share not restored: %s", got)
	}
	r.Entries[0].AwayReceived = 5
	if got := restartFinding(s, r); strings.Contains(got, "not $share/g/t") {
		t.Errorf("a share that got its messages is said not restored: %s", got)
	}
}
