package reports

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/bench"
)

// TestRecordedExternalFindings renders the findings of runs recorded against
// a real Mosquitto 2.0.11 started by hand (testdata/*/mosquitto.conf: its own
// max_queued_messages 1000 and autosave_interval 30, not the scenario's
// max_queued_messages 0 and autosave_interval 1). The report must not present
// the scenario's settings as the broker's, must take drops from the broker's
// $SYS counter, and must say "not sampled" and "stale" where that is all the
// events can tell.
func TestRecordedExternalFindings(t *testing.T) {
	tests := []struct {
		dir     string
		want    []string
		notWant []string
	}{
		{
			dir: "external-mosquitto", // --db given, sys_interval 1
			want: []string{
				"979 were dropped by it ($SYS) and 0 were lost",
				"(autosave_interval unknown)",
				"whose values are unknown",
				"Autosave trade-off: the saves wrote 232,571 B",
			},
			notWant: []string{"autosave_interval 1 s", "max_queued_messages 0", " LOST", "not sampled"},
		},
		{
			dir: "external-mosquitto-stale", // no --db, sys_interval 10 (default), 4 s run
			want: []string{
				"0 were dropped by it ($SYS, may be stale: last update",
				"979 are unaccounted for",
				"The persistence file was not sampled",
			},
			notWant: []string{"No save was detected", "979 were lost", "autosave_interval 1 s"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			s, got := recordedFindings(t, tc.dir)
			if s.BrokerConfigSource != "unknown" || s.Persist.AutosaveInterval != "unknown" {
				t.Errorf("config source %q, autosave %q: want unknown for an external broker", s.BrokerConfigSource, s.Persist.AutosaveInterval)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("findings lack %q:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("findings say %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestRecordedLaunchedFindings renders the findings of runs recorded on
// brokers mqbench started, whose configuration the run knows: crash-3s on the
// bundled broker (`--set publishers.0.messages=6000`: killed mid-publish) and
// persist-quick on Mosquitto 2.0.11 with `--set max_queued_messages=100`.
func TestRecordedLaunchedFindings(t *testing.T) {
	tests := []struct {
		dir, kind string
		want      []string
	}{
		{"bundled-crash", "bundled", []string{
			"predicted loss 1,605. It lost 1,605, exactly as predicted",
			"differs from the crash's by +1",
			"(autosave_interval 3 s)",
		}},
		{"mosquitto-queue-limit", "mosquitto", []string{
			"dropped 1,879 of 2,000 messages (94.0%, $SYS) because of max_queued_messages 100",
			"held at most 120 messages (20 in flight + 100 queued)",
			"no message was stored twice",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			s, got := recordedFindings(t, tc.dir)
			if s.BrokerKind != tc.kind || s.BrokerConfigSource != "launched" {
				t.Errorf("broker %q config source %q, want %s and launched", s.BrokerKind, s.BrokerConfigSource, tc.kind)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("findings lack %q:\n%s", w, got)
				}
			}
		})
	}
}

// recordedFindings summarizes the recorded run testdata/dir and checks its
// findings against testdata/dir/findings.golden.
func recordedFindings(t *testing.T, dir string) (bench.Summary, string) {
	t.Helper()
	run, err := bench.ReadRun(filepath.Join("testdata", dir))
	if err != nil {
		t.Fatal(err)
	}
	s := bench.Summarize(run)
	got := strings.Join(findings(run, &s, bench.RunExperiments(run)), "\n") + "\n"
	golden(t, dir+"/findings.golden", got)
	return s, got
}
