package main

// The run command end to end: shipped scenarios, several runs and sweeps,
// and bad input that must be refused before anything runs.

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/internal/testutil"
	"github.com/mqbench/mqbench/reports"
	"github.com/mqbench/mqbench/scenarios"
)

func TestScenariosCommand(t *testing.T) {
	t.Parallel()
	res := runCLI(t, cliOpts{}, "scenarios")
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	// Compare with the files on disk, not with scenarios.Shipped (which the
	// command itself uses), so a scenario missing from the embed shows up.
	files, err := filepath.Glob("../../scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped scenario files found (%v)", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if !strings.Contains(res.stdout, " "+name+" ") {
			t.Errorf("scenarios output lacks %s:\n%s", name, res.stdout)
		}
	}
	if strings.Contains(res.stdout, "does not load") {
		t.Errorf("a shipped scenario does not load:\n%s", res.stdout)
	}
}

const quickN = 300

// quickArgs shrink persist-quick: 300 messages, 3 s observation, then drain.
var quickArgs = []string{"persist-quick", "--no-progress", "--set", "publishers.0.messages=300", "--set", "duration=3s"}

func TestRunPersistQuick(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		broker string
		need   func(*testing.T)
		after  func(*testing.T, string) // follow-up commands on the run directory
	}{
		{name: "bundled", broker: "bundled", after: followUps},
		{name: "mosquitto", broker: "mosquitto", need: func(t *testing.T) { testutil.RequireMosquittoBroker(t) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.need != nil {
				tc.need(t)
			}
			dir := filepath.Join(t.TempDir(), "run")
			res := runCLI(t, cliOpts{}, append([]string{"run", "--broker", tc.broker, "--out", dir}, quickArgs...)...)
			checkPersistRun(t, dir, res, quickN)
			if s := readSummary(t, dir); s.BrokerKind != tc.broker {
				t.Errorf("broker_kind %q, want %q", s.BrokerKind, tc.broker)
			}
			if tc.after != nil && !t.Failed() {
				tc.after(t, dir)
			}
		})
	}
}

// followUps exercises inspect, check and report on a finished bundled run.
func followUps(t *testing.T, dir string) {
	db := filepath.Join(dir, "broker", "mosquitto.db")
	t.Run("inspect", func(t *testing.T) {
		res := runCLI(t, cliOpts{}, "inspect", db)
		if res.code != 0 {
			t.Fatalf("%s", res)
		}
		version := ""
		for _, line := range strings.Split(res.stdout, "\n") {
			if strings.Contains(line, "format version") {
				f := strings.FieldsFunc(line, func(r rune) bool { return r == '│' || r == '|' || r == ' ' })
				version = f[len(f)-1]
			}
		}
		if version != "6" {
			t.Errorf("inspect shows format version %q, want 6:\n%s", version, res.stdout)
		}
		res = runCLI(t, cliOpts{}, "inspect", "--json", db)
		if res.code != 0 {
			t.Fatalf("%s", res)
		}
		var st struct {
			Version int `json:"version"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
			t.Fatalf("inspect --json: %v\n%s", err, res.stdout)
		}
		if st.Version != 6 {
			t.Errorf("inspect --json version %d, want 6", st.Version)
		}
	})

	t.Run("check", func(t *testing.T) {
		// A doctored baseline: the same run with half its peak file size, so
		// this run's persist.max_bytes is a +100% regression.
		raw, err := os.ReadFile(filepath.Join(dir, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		var base map[string]any
		if err := json.Unmarshal(raw, &base); err != nil {
			t.Fatal(err)
		}
		persist := base["persist"].(map[string]any)
		persist["max_bytes"] = math.Floor(persist["max_bytes"].(float64) / 2)
		doctored, err := json.Marshal(base)
		if err != nil {
			t.Fatal(err)
		}
		baseline := filepath.Join(t.TempDir(), "baseline.json")
		if err := os.WriteFile(baseline, doctored, 0o644); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			args     []string
			code     int
			inStdout string
			inStderr string
		}{
			{"passes", nil, 0, "check passed", ""},
			{"same baseline", []string{"--baseline", filepath.Join(dir, "summary.json")}, 0, "check passed", ""},
			{"doctored baseline", []string{"--baseline", baseline}, 3, "persist.max_bytes", "check failed"},
			{"failing threshold", []string{"--threshold", "published < 10"}, 3, "published", "check failed"},
			{"bad threshold", []string{"--threshold", "bogus >"}, 1, "", `"bogus >"`},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				res := runCLI(t, cliOpts{}, append([]string{"check", dir}, tc.args...)...)
				if res.code != tc.code {
					t.Fatalf("exit %d, want %d\n%s", res.code, tc.code, res)
				}
				if !strings.Contains(res.stdout, tc.inStdout) || !strings.Contains(res.stderr, tc.inStderr) {
					t.Errorf("want %q in stdout and %q in stderr\n%s", tc.inStdout, tc.inStderr, res)
				}
			})
		}
	})

	// Last: it deletes and re-creates the rendered files.
	t.Run("report", func(t *testing.T) {
		before, err := os.ReadFile(filepath.Join(dir, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		rendered := []string{"summary.json", reports.ReportFile, reports.PersistencePNG, reports.BacklogPNG, reports.LatencyPNG}
		for _, f := range rendered {
			if err := os.Remove(filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
		res := runCLI(t, cliOpts{}, "report", dir)
		if res.code != 0 {
			t.Fatalf("%s", res)
		}
		after, err := os.ReadFile(filepath.Join(dir, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		var b, a any
		if err := json.Unmarshal(before, &b); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(after, &a); err != nil {
			t.Fatal(err)
		}
		bj, _ := json.Marshal(b)
		aj, _ := json.Marshal(a)
		if !bytes.Equal(bj, aj) {
			t.Errorf("re-rendered summary.json differs:\nbefore %s\nafter  %s", bj, aj)
		}
		for _, f := range rendered {
			if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
				t.Errorf("%s not re-rendered (%v)", f, err)
			}
		}
		checkPNGs(t, dir, reports.PersistencePNG, reports.BacklogPNG, reports.LatencyPNG)
		if !strings.Contains(res.stdout, "acknowledged by broker") {
			t.Errorf("report prints no summary table:\n%s", res.stdout)
		}
	})
}

func TestRunSeveral(t *testing.T) {
	t.Parallel()
	type run struct{ name, autosave string }
	tests := []struct {
		name string
		args []string
		runs []run // run directories expected under --out, with their autosave column
	}{
		{"two scenario files", []string{"testdata/a.yaml", "testdata/b.yaml"}, []run{{"a", "1 s"}, {"b", "1 s"}}},
		{"sweep", []string{"testdata/sweep.yaml"}, []run{{"sweep-autosave_interval-0.5", "0.5 s"}, {"sweep-autosave_interval-1", "1 s"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "out")
			var args []string
			for _, a := range tc.args {
				abs, err := filepath.Abs(a)
				if err != nil {
					t.Fatal(err)
				}
				args = append(args, abs)
			}
			res := runCLI(t, cliOpts{timeout: 90 * time.Second}, append(append([]string{"run"}, args...), "--out", out, "--no-progress")...)
			if res.code != 0 {
				t.Fatalf("%s", res)
			}
			var dirs []string
			for _, r := range tc.runs {
				dir := filepath.Join(out, r.name)
				dirs = append(dirs, dir)
				s := readSummary(t, dir)
				if s.Scenario != r.name || s.Status != "ok" || s.Published != 150 || s.Lost != 0 {
					t.Errorf("%s: scenario %q status %q published %d lost %d", r.name, s.Scenario, s.Status, s.Published, s.Lost)
				}
			}
			checkComparison(t, out, tc.runs[0].name, tc.runs[0].autosave, tc.runs[1].name, tc.runs[1].autosave)
			if !strings.Contains(res.stdout, "│ "+tc.runs[1].name+" ") {
				t.Errorf("stdout has no comparison row for %s:\n%s", tc.runs[1].name, res.stdout)
			}

			// `mqbench compare` redoes the comparison of the recorded runs elsewhere.
			again := filepath.Join(t.TempDir(), "again")
			res = runCLI(t, cliOpts{}, append(append([]string{"compare"}, dirs...), "--out", again)...)
			if res.code != 0 {
				t.Fatalf("compare: %s", res)
			}
			checkComparison(t, again, tc.runs[0].name, tc.runs[0].autosave, tc.runs[1].name, tc.runs[1].autosave)
		})
	}
}

// checkComparison checks compare.md has a row per run (name, autosave pairs)
// with its autosave interval, and that the overlay plot decodes.
func checkComparison(t *testing.T, dir string, runAutosave ...string) {
	t.Helper()
	md, err := os.ReadFile(filepath.Join(dir, reports.CompareFile))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(runAutosave); i += 2 {
		name, autosave := runAutosave[i], runAutosave[i+1]
		row := ""
		for _, line := range strings.Split(string(md), "\n") {
			if strings.HasPrefix(line, "| "+name+" ") {
				row = line
			}
		}
		if row == "" || !strings.Contains(row, "| "+autosave+" ") {
			t.Errorf("compare.md: row for %s with autosave %q missing (row %q):\n%s", name, autosave, row, md)
		}
	}
	checkPNGs(t, dir, reports.ComparePersistencePNG)
}

// TestSweepIntervals pins what the sweep file expands to, so TestRunSeveral's
// two runs are known to differ in autosave_interval.
func TestSweepIntervals(t *testing.T) {
	t.Parallel()
	sc, err := scenarios.Load("testdata/sweep.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := scenarios.Expand(sc)
	var vals []string
	for _, s := range got {
		v, _ := s.BrokerValue("autosave_interval")
		vals = append(vals, v)
	}
	if strings.Join(vals, ",") != "0.5,1" {
		t.Errorf("sweep expands to autosave_interval %v, want [0.5 1]", vals)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// A directory holding a recorded run must never be reused or touched.
	recorded := t.TempDir()
	precious := []byte("a recorded run")
	if err := os.WriteFile(filepath.Join(recorded, bench.EventsFile), precious, 0o644); err != nil {
		t.Fatal(err)
	}
	userDir := t.TempDir() // a user's directory given as --out, with a report of theirs
	userReport := []byte("# my notes")
	if err := os.WriteFile(filepath.Join(userDir, reports.ReportFile), userReport, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     []string
		skip    func() string // non-empty: why this case cannot run here
		inErr   []string
		timeout time.Duration
	}{
		{name: "unknown field", args: []string{"run", abs("testdata/unknown-field.yaml")},
			inErr: []string{"unknown-field.yaml:7:", "publishers[0].colour", "unknown field"}},
		{name: "bad qos", args: []string{"run", abs("testdata/bad-qos.yaml")},
			inErr: []string{"bad-qos.yaml:9:", "subscribers[0].qos", "must be 0, 1 or 2"}},
		{name: "unknown --set key", args: append([]string{"run"}, append(quickArgs, "--set", "nosuchkey=1")...),
			inErr: []string{"--set nosuchkey", "unknown"}},
		{name: "nothing listening", args: append([]string{"run", "--broker", "tcp://127.0.0.1:1"}, quickArgs...),
			inErr: []string{"127.0.0.1:1", "connection refused"}, timeout: 30 * time.Second},
		{name: "mosquitto not on PATH", args: append([]string{"run", "--broker", "mosquitto"}, quickArgs...),
			env: []string{"PATH=" + t.TempDir()}, inErr: []string{"mosquitto not found"},
			skip: func() string {
				if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
					return "launch falls back to /usr/sbin/mosquitto when PATH lacks it; the error is covered by broker/launch TestMissingMosquitto"
				}
				return ""
			}},
		{name: "broker config with unknown key", args: []string{"broker", "-c", abs("testdata/unknown-key.conf")},
			inErr: []string{abs("testdata/unknown-key.conf") + `:4: unknown configuration variable "autosave_intervall"`}},
		{name: "run directory holds a recorded run", args: append([]string{"run", "--out", recorded}, quickArgs...),
			inErr: []string{filepath.Join(recorded, bench.EventsFile), "already exists"}},
		{name: "run directory holds a user's report.md", args: append([]string{"run", "--out", userDir}, quickArgs...),
			inErr: []string{filepath.Join(userDir, reports.ReportFile), "already exists"}},
		{name: "two runs into one directory", args: []string{"run", abs("testdata/a.yaml"), abs("testdata/a.yaml"), "--no-progress"},
			inErr: []string{"would both write"}},
		{name: "unknown broker kind", args: append([]string{"run", "--broker", "rabbit"}, quickArgs...),
			inErr: []string{`unknown broker kind "rabbit"`}},
		{name: "missing run directory", args: []string{"check", filepath.Join(t.TempDir(), "nope")},
			inErr: []string{"nope"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.skip != nil {
				if why := tc.skip(); why != "" {
					t.Skip(why)
				}
			}
			args := tc.args
			out := filepath.Join(t.TempDir(), "out")
			if args[0] == "run" && !contains(args, "--out") {
				args = append(args, "--out", out)
			}
			res := runCLI(t, cliOpts{env: tc.env, timeout: tc.timeout}, args...)
			if res.code != 1 {
				t.Fatalf("exit %d, want 1\n%s", res.code, res)
			}
			for _, s := range tc.inErr {
				if !strings.Contains(res.stderr, s) {
					t.Errorf("stderr lacks %q\n%s", s, res)
				}
			}
			if tc.name == "two runs into one directory" {
				if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("refused invocation still created %s (%v)", out, err)
				}
			}
		})
	}
	t.Cleanup(func() {
		got, err := os.ReadFile(filepath.Join(recorded, bench.EventsFile))
		if err != nil || !bytes.Equal(got, precious) {
			t.Errorf("recorded run changed: %q, %v", got, err)
		}
		if _, err := os.Stat(filepath.Join(recorded, "broker")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a broker was started in the recorded run's directory (%v)", err)
		}
		if got, err := os.ReadFile(filepath.Join(userDir, reports.ReportFile)); err != nil || !bytes.Equal(got, userReport) {
			t.Errorf("user's report.md changed: %q, %v", got, err)
		}
		if ents, err := os.ReadDir(userDir); err != nil || len(ents) != 1 {
			t.Errorf("user's directory gained files: %v, %v", ents, err)
		}
	})
}
