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
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
