package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/internal/testutil"
)

// TestExternalWithConf: against an external Mosquitto whose configuration
// differs from the scenario's, --conf makes the report show the broker's own
// settings (autosave 30 s, queue limit 1000) and sample its persistence file,
// and the drops its limit caused are the broker's, not lost.
func TestExternalWithConf(t *testing.T) {
	testutil.RequireMosquittoBroker(t)
	dir := t.TempDir()
	var confPath string
	m := testutil.StartMosquittoConf(t, dir, func(port int) string {
		c := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n"+
			"autosave_interval 30\nmax_queued_messages 1000\nsys_interval 1\nlog_dest none\n", port, dir)
		if os.Geteuid() == 0 {
			c += "user root\n"
		}
		confPath = filepath.Join(dir, "mosquitto.conf")
		return c
	})
	run := filepath.Join(t.TempDir(), "run")
	res := runCLI(t, cliOpts{}, "run", "persist-quick", "--broker", "tcp://"+m.Addr, "--conf", confPath, "--no-progress", "--out", run)
	if res.code != 0 {
		t.Fatalf("run failed:\n%s", res)
	}
	s := readSummary(t, run)
	if s.BrokerConfigSource != "file" || s.Persist.AutosaveInterval != "30" {
		t.Errorf("config source %q autosave %q, want the broker's own file and 30", s.BrokerConfigSource, s.Persist.AutosaveInterval)
	}
	if s.Persist.Path != filepath.Join(dir, "mosquitto.db") {
		t.Errorf("sampled %q, want the broker's persistence file", s.Persist.Path)
	}
	if s.DroppedByBroker == 0 || s.Lost != 0 {
		t.Errorf("dropped %d lost %d: the broker's queue limit of 1000 should show as drops", s.DroppedByBroker, s.Lost)
	}
	report, err := os.ReadFile(filepath.Join(run, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), "max_queued_messages 1000") || strings.Contains(string(report), "max_queued_messages 0") {
		t.Errorf("report does not show the broker's own settings:\n%s", report)
	}
	res = runCLI(t, cliOpts{}, "run", "persist-quick", "--conf", confPath, "--no-progress", "--out", filepath.Join(t.TempDir(), "x"))
	if res.code == 0 || !strings.Contains(res.stderr, "--conf") {
		t.Errorf("--conf with the bundled broker should be refused:\n%s", res)
	}
}
