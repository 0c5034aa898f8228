package reports

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/bench"
)

func TestSummaryDocLookup(t *testing.T) {
	d, err := docFromJSON([]byte(`{"lost": 3, "tainted": true, "persist": {"max_bytes": 228117, "path": "x"}, "subscribers": [{"lost": 7}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		want    float64
		found   bool
		wantErr bool
	}{
		{"lost", 3, true, false},
		{"tainted", 1, true, false},
		{"persist.max_bytes", 228117, true, false},
		{"subscribers.0.lost", 7, true, false},
		{"subscribers.1.lost", 0, false, false},
		{"persist.nope", 0, false, false},
		{"persist.path", 0, true, true},
		{"lost.deeper", 0, false, false},
	}
	for _, tc := range tests {
		v, ok, err := d.lookup(tc.path)
		if v != tc.want || ok != tc.found || (err != nil) != tc.wantErr {
			t.Errorf("lookup(%q) = %v, %v, %v; want %v, %v, err %v", tc.path, v, ok, err, tc.want, tc.found, tc.wantErr)
		}
	}
	if _, err := docFromJSON([]byte(`{"lost": 3,,}`)); err == nil || !strings.Contains(err.Error(), "byte offset 12") {
		t.Errorf("bad JSON error = %v, want the byte offset", err)
	}
}

func verdictOf(r *CheckResult, kind, metric string) string {
	for _, f := range r.Findings {
		if f.Kind == kind && f.Metric == metric {
			return f.Verdict
		}
	}
	return "missing"
}

// checkRun runs Check and settles what every table case shares: an expected
// error (it returns nil once the error matches) or a result whose Pass is
// wantPass and whose Err agrees with Pass.
func checkRun(t *testing.T, dir string, o CheckOptions, wantErr string, wantPass bool) *CheckResult {
	t.Helper()
	r, err := Check(dir, o)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want %q", err, wantErr)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if r.Pass != wantPass {
		t.Errorf("Pass = %v, want %v:\n%s", r.Pass, wantPass, r.Table())
	}
	if verdict := r.Err(); (verdict == nil) != wantPass {
		t.Errorf("Err() = %v with Pass %v", verdict, r.Pass)
	}
	return r
}

func TestCheckResultErr(t *testing.T) {
	fail := Finding{Kind: "threshold", Metric: "lost", Verdict: VerdictFail}
	ok := Finding{Kind: "threshold", Metric: "duplicates", Verdict: VerdictPass}
	tests := []struct {
		name     string
		findings []Finding
		want     string
	}{
		{"all pass", []Finding{ok, ok}, ""},
		{"one fails", []Finding{ok, fail}, "check failed: 1 failing finding"},
		{"two fail", []Finding{fail, ok, fail}, "check failed: 2 failing findings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &CheckResult{Findings: tc.findings}
			r.Pass = r.Failed() == 0
			got := ""
			if err := r.Err(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Err() = %q, want %q", got, tc.want)
			}
		})
	}
}

// checkFixture is a smaller run (fewer events, faster under -race) that still
// has drops and a backlog.
func checkFixture() fixture {
	f := defaultFixture()
	f.messages = 1100
	return f
}

func TestCheckThresholds(t *testing.T) {
	dir := writeFixture(t, t.TempDir(), checkFixture())
	tests := []struct {
		name     string
		th       []string
		wantPass bool
		wantErr  string
		failing  []string
		passing  []string
	}{
		{name: "scenario threshold only", wantPass: true, passing: []string{"lost"}},
		{name: "size within bound", th: []string{"persist.max_bytes <= 300kB", "persist.bytes_per_held_message < 229"}, wantPass: true, passing: []string{"persist.max_bytes", "persist.bytes_per_held_message"}},
		{name: "size over bound", th: []string{"persist.max_bytes <= 200kB"}, failing: []string{"persist.max_bytes"}},
		{name: "drops", th: []string{"dropped_by_broker == 0"}, failing: []string{"dropped_by_broker"}},
		{name: "latency", th: []string{"latency.publish_to_ack.p99_ns < 1ms", "latency.publish_to_delivery.p99_ns < 1s"}, passing: []string{"latency.publish_to_ack.p99_ns"}, failing: []string{"latency.publish_to_delivery.p99_ns"}},
		{name: "boolean", th: []string{"tainted == 0"}, wantPass: true, passing: []string{"tainted"}},
		{name: "unknown metric", th: []string{"lots == 0"}, wantErr: `unknown metric "lots"`},
		{name: "string metric", th: []string{"status == 0"}, wantErr: "not a number"},
		{name: "bad syntax", th: []string{"lost is 0"}, wantErr: `threshold "lost is 0"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := checkRun(t, dir, CheckOptions{Thresholds: tc.th}, tc.wantErr, tc.wantPass)
			if r == nil {
				return
			}
			for _, m := range tc.failing {
				if v := verdictOf(r, "threshold", m); v != VerdictFail {
					t.Errorf("%s verdict %s, want FAIL", m, v)
				}
			}
			for _, m := range tc.passing {
				if v := verdictOf(r, "threshold", m); v != VerdictPass {
					t.Errorf("%s verdict %s, want pass", m, v)
				}
			}
		})
	}
}

// doctor writes a copy of the summary.json in dir with edit applied.
func doctor(t *testing.T, src string, edit func(map[string]any)) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, _ := json.MarshalIndent(m, "", "  ")
	path := filepath.Join(t.TempDir(), "baseline.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckBaseline(t *testing.T) {
	dir := writeFixture(t, t.TempDir(), checkFixture())
	run, err := bench.ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := bench.Summarize(run)
	if err := writeSummaryJSON(filepath.Join(dir, bench.SummaryFile), &s); err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(dir, "summary.json")
	persist := func(key string, f func(float64) float64) func(map[string]any) {
		return func(m map[string]any) {
			p := m["persist"].(map[string]any)
			p[key] = f(p[key].(float64))
		}
	}
	top := func(key string, f func(float64) float64) func(map[string]any) {
		return func(m map[string]any) { m[key] = f(m[key].(float64)) }
	}
	tests := []struct {
		name     string
		edit     func(map[string]any)
		o        CheckOptions
		wantPass bool
		failing  string
		wantErr  string
	}{
		{name: "identical baseline passes", edit: func(map[string]any) {}, wantPass: true},
		{name: "max_bytes halved in baseline fails", edit: persist("max_bytes", func(v float64) float64 { return v / 2 }), failing: "persist.max_bytes"},
		{name: "5% smaller baseline within 10% tolerance", edit: persist("max_bytes", func(v float64) float64 { return v * 0.95 }), wantPass: true},
		{name: "5% smaller baseline exact fails", edit: persist("max_bytes", func(v float64) float64 { return v * 0.95 }), o: CheckOptions{Exact: true}, failing: "persist.max_bytes"},
		{name: "5% smaller baseline with 3% tolerance fails", edit: persist("final_bytes", func(v float64) float64 { return v * 0.95 }), o: CheckOptions{Tolerance: 3}, failing: "persist.final_bytes"},
		{name: "larger baseline passes", edit: persist("max_bytes", func(v float64) float64 { return v * 3 }), wantPass: true},
		{name: "zero drops in baseline fails on any", edit: top("dropped_by_broker", func(float64) float64 { return 0 }), failing: "dropped_by_broker"},
		{name: "throughput not gated by default", edit: func(m map[string]any) { m["publish"].(map[string]any)["msgs_per_s"] = 1e9 }, wantPass: true},
		{name: "throughput gated on request", edit: func(m map[string]any) { m["publish"].(map[string]any)["msgs_per_s"] = 1e9 }, o: CheckOptions{Metrics: []string{"default", "publish.msgs_per_s"}}, failing: "publish.msgs_per_s"},
		{name: "latency gated on request", edit: func(m map[string]any) {
			m["latency"].(map[string]any)["publish_to_ack"].(map[string]any)["p99_ns"] = 1.0
		}, o: CheckOptions{Metrics: []string{"latency.publish_to_ack.p99_ns"}}, failing: "latency.publish_to_ack.p99_ns"},
		{name: "unknown gate metric", edit: func(map[string]any) {}, o: CheckOptions{Metrics: []string{"persist.saves"}}, wantErr: `metric "persist.saves" cannot be compared`},
		{name: "not a summary", edit: func(m map[string]any) {
			for k := range m {
				delete(m, k)
			}
		}, wantErr: "has none of the gated metrics"},
		{name: "negative tolerance", edit: func(map[string]any) {}, o: CheckOptions{Tolerance: -1}, wantErr: "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Baseline = doctor(t, real, tc.edit)
			r := checkRun(t, dir, o, tc.wantErr, tc.wantPass)
			if r == nil {
				return
			}
			if tc.failing != "" {
				if v := verdictOf(r, "baseline", tc.failing); v != VerdictFail {
					t.Errorf("%s verdict %s, want FAIL:\n%s", tc.failing, v, r.Table())
				}
				if r.Failed() != 1 {
					t.Errorf("%d failing findings, want 1:\n%s", r.Failed(), r.Table())
				}
				if err := r.Err(); err == nil || err.Error() != "check failed: 1 failing finding" {
					t.Errorf("Err() = %v, want the one failing finding counted", err)
				}
			}
		})
	}
	// A baseline that is not JSON is an input error naming the file.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("{"), 0o644)
	if _, err := Check(dir, CheckOptions{Baseline: bad}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad baseline: err %v, want one naming %s", err, bad)
	}
}

func TestCheckTaintedAndIncomplete(t *testing.T) {
	tests := []struct {
		name     string
		fix      func(*fixture)
		allow    bool
		wantPass bool
	}{
		{"clean run passes", func(*fixture) {}, false, true},
		{"tainted fails", func(f *fixture) { f.tainted = true }, false, false},
		{"tainted allowed", func(f *fixture) { f.tainted = true }, true, true},
		{"incomplete fails", func(f *fixture) { f.noFooter = true }, false, false},
		{"incomplete allowed", func(f *fixture) { f.noFooter = true }, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := checkFixture()
			tc.fix(&f)
			dir := writeFixture(t, t.TempDir(), f)
			r := checkRun(t, dir, CheckOptions{AllowTainted: tc.allow}, "", tc.wantPass)
			if want := map[bool]string{true: VerdictPass, false: VerdictFail}[tc.wantPass]; !tc.allow && verdictOf(r, "run", "status") != want {
				t.Errorf("run finding %s, want %s", verdictOf(r, "run", "status"), want)
			}
		})
	}
}

// TestCheckNeedsEvents: a directory holding only a summary.json (edited to
// say anything) is refused, not checked.
func TestCheckNeedsEvents(t *testing.T) {
	dir := writeFixture(t, t.TempDir(), checkFixture())
	run, err := bench.ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := bench.Summarize(run)
	s.Lost = 500
	if err := writeSummaryJSON(filepath.Join(dir, bench.SummaryFile), &s); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "events.jsonl.gz"))
	if _, err := Check(dir, CheckOptions{}); err == nil || !strings.Contains(err.Error(), "no events.jsonl.gz") {
		t.Errorf("check of a summary-only run: err = %v, want a refusal naming the missing events", err)
	}
	if _, err := Check(t.TempDir(), CheckOptions{}); err == nil {
		t.Error("check of an empty directory succeeded")
	}
}

// TestCheckBaselineFromOtherScenario warns in the findings; a non-numeric
// baseline value is an error.
func TestCheckBaselineFromOtherScenario(t *testing.T) {
	dir := writeFixture(t, t.TempDir(), checkFixture())
	run, err := bench.ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := bench.Summarize(run)
	if err := writeSummaryJSON(filepath.Join(dir, bench.SummaryFile), &s); err != nil {
		t.Fatal(err)
	}
	other := doctor(t, filepath.Join(dir, bench.SummaryFile), func(m map[string]any) { m["scenario"] = "persist-30s" })
	r, err := Check(dir, CheckOptions{Baseline: other})
	if err != nil {
		t.Fatal(err)
	}
	if verdictOf(r, "baseline", "scenario") != VerdictWarn || !strings.Contains(r.Table(), "persist-30s") {
		t.Errorf("no warning for a baseline from another scenario:\n%s", r.Table())
	}
	bad := doctor(t, filepath.Join(dir, bench.SummaryFile), func(m map[string]any) { m["lost"] = "zero" })
	if _, err := Check(dir, CheckOptions{Baseline: bad}); err == nil || !strings.Contains(err.Error(), "not a number") {
		t.Errorf("non-numeric baseline value: err = %v, want an error", err)
	}
}

// TestCheckUnmeasuredMetricSkips: a run that sampled no persistence file has
// no autosave trade-off (null in summary.json); a threshold on it is skipped,
// neither passed nor failed, while a misspelt metric stays an error.
func TestCheckUnmeasuredMetricSkips(t *testing.T) {
	f := checkFixture()
	f.noDB = true
	dir := writeFixture(t, t.TempDir(), f)
	r := checkRun(t, dir, CheckOptions{Thresholds: []string{"persist.exposure_max_ns < 1s", "persist.predicted_crash_loss <= 10"}}, "", true)
	for _, m := range []string{"persist.exposure_max_ns", "persist.predicted_crash_loss"} {
		if v := verdictOf(r, "threshold", m); v != VerdictSkip {
			t.Errorf("%s verdict %s, want skip", m, v)
		}
	}
	checkRun(t, dir, CheckOptions{Thresholds: []string{"persist.exposure_max < 1000"}}, `unknown metric "persist.exposure_max"`, false)

	// With the file sampled the same thresholds are judged.
	r = checkRun(t, writeFixture(t, t.TempDir(), checkFixture()), CheckOptions{Thresholds: []string{"persist.exposure_max_ns < 1s"}}, "", true)
	if v := verdictOf(r, "threshold", "persist.exposure_max_ns"); v != VerdictPass {
		t.Errorf("sampled run: exposure verdict %s, want pass", v)
	}
}

// TestCheckUnknownDrops: without the broker's drop counter dropped_by_broker
// is null, so "dropped_by_broker == 0" is skipped instead of passing on a zero
// nobody measured.
func TestCheckUnknownDrops(t *testing.T) {
	f := checkFixture()
	f.messages, f.noSys = 500, true
	r := checkRun(t, writeFixture(t, t.TempDir(), f), CheckOptions{Thresholds: []string{"dropped_by_broker == 0"}}, "", true)
	if v := verdictOf(r, "threshold", "dropped_by_broker"); v != VerdictSkip {
		t.Errorf("dropped_by_broker verdict %s, want skip", v)
	}
}
