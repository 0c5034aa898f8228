package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/internal/testutil"
)

// v5Scenario publishes with a message expiry to a subscriber that is away
// (a held backlog that expires), and to a topic nobody subscribed to.
const v5Scenario = `name: v5-report
duration: 5s
drain_timeout: 3s
protocol: 5
publishers:
  - client_id: brief
    messages: 100
    qos: 1
    topic: v5/x
    message_expiry: 1s
    start_at: 1s
  - client_id: lonely
    messages: 50
    qos: 1
    topic: v5/nobody
    start_at: 1s
subscribers:
  - client_id: away
    filter: v5/x
    qos: 1
    clean_session: false
    session_expiry: 1m
actions:
  - {at: 500ms, do: disconnect, target: away}
  - {at: 4s, do: reconnect, target: away}
`

// TestRunV5Report: `mqbench run` of an MQTT 5 scenario on Mosquitto writes
// the reason codes and the expired messages into summary.json and explains
// them in report.md.
func TestRunV5Report(t *testing.T) {
	t.Parallel()
	for _, broker := range []string{"mosquitto", "bundled"} {
		t.Run(broker, func(t *testing.T) {
			if broker == "bundled" {
				t.Skip("bundled broker MQTT 5: issue #8")
			}
			testutil.RequireMosquittoBroker(t)
			src := filepath.Join(t.TempDir(), "v5.yaml")
			if err := os.WriteFile(src, []byte(v5Scenario), 0o644); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "run")
			res := runCLI(t, cliOpts{}, "run", src, "--broker", broker, "--out", dir)
			if res.code != 0 {
				t.Fatalf("run failed: %s", res)
			}
			s := readSummary(t, dir)
			if s.ReasonCodes["puback 0x10"] != 50 || s.ReasonCodes["puback 0x00"] != 100 || s.ExpiredOrLost != 100 || s.Lost != 0 {
				t.Errorf("reason_codes %v expired_or_lost %d lost %d", s.ReasonCodes, s.ExpiredOrLost, s.Lost)
			}
			report, err := os.ReadFile(filepath.Join(dir, "report.md"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{
				"PUBACK 0x10 (no matching subscribers) for 50 publishes: nobody was subscribed when they arrived",
				"100 messages were expired or lost: sent with an MQTT 5 message expiry",
			} {
				if !strings.Contains(string(report), want) {
					t.Errorf("report.md lacks %q:\n%s", want, report)
				}
			}
		})
	}
}
