package main

// End-to-end tests of the mqbench command line: the binary is built once in
// TestMain and executed, because `mqbench run` starts the bundled broker as a
// child of itself (mqbench broker -c CONF), so exec is the only realistic path.
// Every child runs in its own process group under a context timeout, so a
// hang fails the test instead of stalling the suite, and whatever the child
// started is killed with it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/internal/testutil"
	"github.com/mqbench/mqbench/reports"
	"github.com/mqbench/mqbench/scenarios"
)

// mqbenchBin is the binary built by TestMain.
var mqbenchBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	bin, err := testutil.BuildMqbenchErr()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cli test:", err)
		return 1
	}
	defer testutil.RemoveBuild()
	mqbenchBin = bin
	return m.Run()
}

// cliResult is what one mqbench invocation did.
type cliResult struct {
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s\n--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// cliOpts tune one invocation; the zero value is a 60 s bound, the test's
// environment and a fresh working directory (so nothing lands in the source tree).
type cliOpts struct {
	timeout time.Duration
	env     []string // replaces these variables in os.Environ()
}

// newCmd prepares mqbench in its own process group, killed as a group when ctx ends.
func newCmd(ctx context.Context, t *testing.T, o cliOpts, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.CommandContext(ctx, mqbenchBin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = withEnv(os.Environ(), o.env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

// runCLI runs mqbench to completion and fails the test if it did not end in time.
func runCLI(t *testing.T, o cliOpts, args ...string) cliResult {
	t.Helper()
	if o.timeout == 0 {
		o.timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	cmd, stdout, stderr := newCmd(ctx, t, o, args...)
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		t.Fatalf("mqbench %s: did not finish within %s (killed)\n%s", strings.Join(args, " "), o.timeout, res)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("mqbench %s: %v", strings.Join(args, " "), err)
	}
	return res
}

func withEnv(base, over []string) []string {
	out := make([]string, 0, len(base)+len(over))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for _, o := range over {
			if ok, _, _ := strings.Cut(o, "="); ok == k {
				replaced = true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return append(out, over...)
}

func readSummary(t *testing.T, dir string) bench.Summary {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s bench.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	return s
}

func readRun(t *testing.T, dir string) *bench.Run {
	t.Helper()
	run, err := bench.ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// checkPNGs decodes the run's plots: a plot that does not decode or is empty fails.
func checkPNGs(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, name := range names {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if b := img.Bounds(); b.Dx() == 0 || b.Dy() == 0 {
			t.Errorf("%s: empty image %v", name, b)
		}
	}
}

// expectedBytesPerHeld is the Mosquitto format 6 cost of one held message for
// one persistent subscriber (mosquitto-model.md "Sizes"): MSG_STORE 8+32+|source
// id|+|topic|+|payload| plus CLIENT_MSG 8+16+|client id|, with the payload size
// averaged over what the run actually published.
func expectedBytesPerHeld(t *testing.T, run *bench.Run) float64 {
	t.Helper()
	var sc scenarios.Scenario
	if err := json.Unmarshal(run.Header.Scenario, &sc); err != nil {
		t.Fatalf("header scenario: %v", err)
	}
	if len(sc.Publishers) != 1 || len(sc.Subscribers) != 1 {
		t.Fatalf("want one publisher and one subscriber, got %d and %d", len(sc.Publishers), len(sc.Subscribers))
	}
	var n, total int64
	pubID := ""
	for _, e := range run.Events {
		if e.Type == bench.EvPub {
			n++
			total += int64(e.Size)
			pubID = e.Client
		}
	}
	if n == 0 {
		t.Fatal("no pub events")
	}
	subID := sc.Subscribers[0].IDs()[0]
	return float64(8+32+len(pubID)+len(sc.Publishers[0].Topic)) + float64(total)/float64(n) + float64(8+16+len(subID))
}

// checkPersistRun checks one persist-quick style run of n messages end to end:
// files, reconciled counts, saves, the per-message file cost, plots, report.
func checkPersistRun(t *testing.T, dir string, res cliResult, n int64) {
	t.Helper()
	if res.code != 0 {
		t.Fatalf("run failed:\n%s", res)
	}
	for _, f := range []string{bench.EventsFile, "summary.json", reports.ReportFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", f, err)
		}
	}
	s := readSummary(t, dir)
	if s.Status != "ok" || s.Tainted {
		t.Errorf("status %q tainted %v %v", s.Status, s.Tainted, s.TaintReasons)
	}
	if s.Published != n || s.Acked != n {
		t.Errorf("published %d acked %d, want %d each", s.Published, s.Acked, n)
	}
	if s.Delivered+s.HeldAtEnd != n {
		t.Errorf("delivered %d + held_at_end %d = %d, want %d", s.Delivered, s.HeldAtEnd, s.Delivered+s.HeldAtEnd, n)
	}
	if s.Lost != 0 || s.Duplicates != 0 || s.DroppedByBroker != 0 {
		t.Errorf("lost %d duplicates %d dropped %d, want 0", s.Lost, s.Duplicates, s.DroppedByBroker)
	}
	if s.Persist.Saves < 1 {
		t.Errorf("persist.saves = %d, want >= 1", s.Persist.Saves)
	}
	want := expectedBytesPerHeld(t, readRun(t, dir))
	got := s.Persist.BytesPerHeldMessage
	if got < 220 || got > 245 || math.Abs(got-want) > 2 {
		t.Errorf("persist.bytes_per_held_message = %.2f, want %.2f +-2 (and within [220, 245])", got, want)
	}
	checkPNGs(t, dir, reports.PersistencePNG, reports.BacklogPNG, reports.LatencyPNG)
	report, err := os.ReadFile(filepath.Join(dir, reports.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), s.Scenario) {
		t.Errorf("report.md does not mention scenario %q", s.Scenario)
	}
	for _, row := range []string{dir, "acknowledged by broker", "held by broker at end", "bytes per held delivery", strconv.FormatInt(n, 10)} {
		if !strings.Contains(res.stdout, row) {
			t.Errorf("stdout summary table lacks %q:\n%s", row, res.stdout)
		}
	}
}

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

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// childPIDs lists the live children of pid from /proc.
func childPIDs(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := procStat(n); ok && ppid == pid && state != "Z" {
			out = append(out, n)
		}
	}
	return out
}

// procStat reads the parent PID and state of pid from /proc/PID/stat.
func procStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != "Z"
}

// startedRun is a `mqbench run` in progress, with the PID of its broker child.
type startedRun struct {
	cmd            *exec.Cmd
	waited         chan error
	brokerPID      int
	stdout, stderr *bytes.Buffer
}

// startRun starts `mqbench run ARGS --out dir` and returns once its broker
// child runs and the event file exists. The run is killed (as a process
// group) when the test ends, if it has not exited by then.
func startRun(t *testing.T, dir string, args ...string) *startedRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	cmd, stdout, stderr := newCmd(ctx, t, cliOpts{}, append(append([]string{"run"}, args...), "--out", dir, "--no-progress")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &startedRun{cmd: cmd, waited: make(chan error, 1), stdout: stdout, stderr: stderr}
	go func() { r.waited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-r.waited
		}
		if r.brokerPID != 0 && alive(r.brokerPID) {
			_ = syscall.Kill(r.brokerPID, syscall.SIGKILL) // our grandchild, left behind
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		pid := 0
		for _, c := range childPIDs(cmd.Process.Pid) {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c)); err == nil && bytes.Contains(b, []byte("broker")) {
				pid = c
			}
		}
		if _, err := os.Stat(filepath.Join(dir, bench.EventsFile)); err == nil && pid != 0 {
			r.brokerPID = pid
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no broker child and event file within 20 s\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	return nil
}

// wait waits for mqbench to exit; bound is a hang guard, not a speed assertion.
func (r *startedRun) wait(t *testing.T, bound time.Duration) error {
	t.Helper()
	select {
	case err := <-r.waited:
		return err
	case <-time.After(bound):
		t.Fatalf("mqbench did not exit within %s\nstderr:\n%s", bound, r.stderr)
		return nil
	}
}

// TestInterrupt stops a run from outside: SIGINT (Ctrl-C) to mqbench itself,
// not its process group, so mqbench alone must stop its broker, and SIGKILL,
// after which the kernel must take the broker down with it. Either way no
// broker is left running; after SIGINT the run is recorded as interrupted.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sig  syscall.Signal
	}{
		{"SIGINT", syscall.SIGINT},
		{"SIGKILL", syscall.SIGKILL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "run")
			r := startRun(t, dir, "persist-3s", "--time-scale", "0.2")
			time.Sleep(2 * time.Second) // let the backlog build
			if err := r.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			err := r.wait(t, 30*time.Second)
			brokerGone := func() bool { return !alive(r.brokerPID) }
			for deadline := time.Now().Add(10 * time.Second); !brokerGone() && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond) // SIGKILL: the kernel's parent-death signal is asynchronous
			}
			if !brokerGone() {
				t.Errorf("broker PID %d still running after mqbench exited", r.brokerPID)
			}
			run := readRun(t, dir)
			addr := strings.TrimPrefix(run.Header.BrokerAddr, "tcp://")
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Errorf("broker address %s still accepts connections", addr)
			}
			if tc.sig != syscall.SIGINT {
				return
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Errorf("exit: %v, want exit status 130 (interrupted)\nstderr:\n%s", err, r.stderr)
			}
			if !strings.Contains(r.stderr.String(), "interrupted") {
				t.Errorf("stderr does not say interrupted:\n%s", r.stderr)
			}
			if run.Footer == nil || run.Footer.Status != "interrupted" {
				t.Errorf("footer %+v, want status interrupted", run.Footer)
			}
			if s := readSummary(t, dir); s.Status != "interrupted" || s.Published == 0 {
				t.Errorf("summary status %q published %d, want interrupted with some messages", s.Status, s.Published)
			}
		})
	}
}

// TestCrash runs the shipped crash scenario (SIGKILL between two saves, then a
// restart) shortened, with each publisher client: the loss is measured and the
// planned kill does not taint the run (paho reports the publishes the kill
// broke only once the broker is back; that must not count as unexpected).
func TestCrash(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sets []string
	}{
		{"default client", nil},
		{"paho client", []string{"--set", "publishers.0.client=paho"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "run")
			args := append([]string{"run", "crash-3s", "--time-scale", "0.3", "--out", dir, "--no-progress"}, tc.sets...)
			res := runCLI(t, cliOpts{timeout: 90 * time.Second}, args...)
			if res.code != 0 {
				t.Fatalf("%s", res)
			}
			s := readSummary(t, dir)
			if s.Crash == nil {
				t.Fatalf("summary has no crash section\n%s", res)
			}
			if s.LostInCrash <= 0 || s.LostInCrash > s.Acked {
				t.Errorf("lost_in_crash %d, want in (0, acked %d]", s.LostInCrash, s.Acked)
			}
			if s.Tainted {
				t.Errorf("planned kill tainted the run: %v", s.TaintReasons)
			}
			if s.Status != "ok" {
				t.Errorf("status %q, want ok", s.Status)
			}
		})
	}
}

// TestBrokerCommand runs `mqbench broker -c CONF` as a user would: it reports
// its address, takes a retained message, saves it on SIGTERM, removes its pid
// file and exits 0; `mqbench inspect` then finds the message in the file.
func TestBrokerCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	confPath := filepath.Join(dir, "broker.conf")
	pidPath := filepath.Join(dir, "broker.pid")
	conf := fmt.Sprintf("listener 0 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\npid_file %s\nlog_dest none\n", dir, pidPath)
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b := testutil.StartBundled(t, mqbenchBin, confPath)
	addr := b.Addr
	if pid, err := os.ReadFile(pidPath); err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(b.PID) {
		t.Errorf("pid file %q (%v), want %d", pid, err, b.PID)
	}

	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("cli-test").SetConnectRetry(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connecting to %s: %v", addr, tok.Error())
	}
	if tok := c.Publish("cli/retained", 1, true, "kept"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publishing: %v", tok.Error())
	}
	c.Disconnect(100)

	if err := b.Stop(15 * time.Second); err != nil {
		t.Fatalf("broker exit after SIGTERM: %v", err)
	}
	if _, err := os.Stat(pidPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left behind (%v)", err)
	}
	res := runCLI(t, cliOpts{}, "inspect", "--json", filepath.Join(dir, "mosquitto.db"))
	if res.code != 0 {
		t.Fatalf("%s", res)
	}
	var st struct {
		Shutdown bool `json:"shutdown"`
		Chunks   struct {
			Retain   int `json:"retain"`
			MsgStore int `json:"msg_store"`
		} `json:"chunks"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, res.stdout)
	}
	if !st.Shutdown || st.Chunks.Retain != 1 || st.Chunks.MsgStore < 1 {
		t.Errorf("saved db: shutdown %v, %d RETAIN, %d MSG_STORE; want a clean shutdown with the retained message", st.Shutdown, st.Chunks.Retain, st.Chunks.MsgStore)
	}
}
