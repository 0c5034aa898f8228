package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/internal/testutil"
)

// TestExperimentsSideBySide runs the three shipped MQTT 5 persistence
// experiments, with fewer messages, on Mosquitto 2.0.11 and on the bundled
// broker, and checks the conclusion each report draws from its run: the
// expected one is Mosquitto's, so a bundled broker that behaved otherwise
// fails here with the same files and clients.
func TestExperimentsSideBySide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scenario string
		sets     []string
		want     []string
		check    func(t *testing.T, dir string)
	}{
		{"expiry-3s", []string{"publishers.0.messages=100", "publishers.1.messages=100"},
			[]string{"the file did not shrink at the first save after the expiry", "after away reconnected at"},
			func(t *testing.T, dir string) {
				if s := readSummary(t, dir); s.ExpiredOrLost != 100 || s.Lost != 0 || s.Delivered+s.HeldAtEnd != 100 {
					t.Errorf("expired_or_lost %d lost %d delivered+held %d, want 100, 0, 100", s.ExpiredOrLost, s.Lost, s.Delivered+s.HeldAtEnd)
				}
			}},
		{"session-expiry", []string{"publishers.0.messages=100"},
			[]string{"the first save after the expiry no longer held its backlog", "None of the 100 reached it"},
			func(t *testing.T, dir string) {
				if s := readSummary(t, dir); s.Lost != 100 || s.Delivered != 0 {
					t.Errorf("lost %d delivered %d, want 100 and 0", s.Lost, s.Delivered)
				}
			}},
		{"shared-backlog", []string{"publishers.0.messages=400", "publishers.0.rate=40"},
			[]string{"reached audit but not $share/workers/jobs", "0 never;", "members of $share/workers/jobs, but not that subscription"},
			func(t *testing.T, dir string) {
				for _, sub := range readSummary(t, dir).Subscribers {
					if sub.Client == "audit" && sub.Lost != 0 {
						t.Errorf("audit lost %d, want 0 (its subscription is in the file)", sub.Lost)
					}
				}
			}},
	}
	for _, broker := range []string{"mosquitto", "bundled"} {
		for _, tc := range tests {
			t.Run(tc.scenario+"/"+broker, func(t *testing.T) {
				t.Parallel()
				if broker == "mosquitto" {
					testutil.RequireMosquittoBroker(t)
				}
				dir := filepath.Join(t.TempDir(), "run")
				args := []string{"run", tc.scenario, "--broker", broker, "--out", dir, "--no-progress"}
				for _, s := range tc.sets {
					args = append(args, "--set", s)
				}
				res := runCLI(t, cliOpts{timeout: 150 * time.Second}, args...)
				if res.code != 0 {
					t.Fatalf("%s", res)
				}
				report, err := os.ReadFile(filepath.Join(dir, "report.md"))
				if err != nil {
					t.Fatal(err)
				}
				for _, w := range tc.want {
					if !strings.Contains(string(report), w) {
						t.Errorf("report.md lacks %q:\n%s", w, report)
					}
				}
				tc.check(t, dir)
			})
		}
	}
}
