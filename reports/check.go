package reports

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/scenarios"
)

// DefaultTolerance is how much worse than the baseline (in percent) a gated
// metric may be before Check fails: persistence sizes move a little with ids and
// timing, a real regression moves them a lot.
const DefaultTolerance = 10

// CheckOptions says what a run is checked against.
type CheckOptions struct {
	// Baseline is a summary.json (or a run directory holding one) to compare with; "" for none.
	Baseline string
	// Tolerance in percent; 0 means DefaultTolerance (set Exact for none).
	Tolerance float64
	// Exact compares with zero tolerance.
	Exact bool
	// AllowTainted lets a disturbed or incomplete run pass; otherwise it fails,
	// because its numbers do not describe the broker.
	AllowTainted bool
	// Thresholds are added to the scenario's own.
	Thresholds []string
	// Metrics selects the baseline metrics to gate (see BaselineMetrics); empty
	// means DefaultBaselineMetrics. "default" expands to that list.
	Metrics []string
}

// Verdicts of a finding.
const (
	VerdictPass = "pass"
	VerdictFail = "FAIL"
	VerdictSkip = "skip"
	// VerdictWarn flags something the reader should know (a baseline from
	// another scenario) without failing the check by itself.
	VerdictWarn = "WARN"
)

// Finding is one row of a check: what was checked, the value, the limit or
// baseline it was held to, and the verdict.
type Finding struct {
	Kind    string `json:"kind"` // run, threshold, baseline
	Metric  string `json:"metric"`
	Value   string `json:"value"`
	Limit   string `json:"limit"` // the threshold or the baseline and allowed value
	Verdict string `json:"verdict"`
	Detail  string `json:"detail,omitempty"`
}

// CheckResult is the verdict for one run: Pass is false if any finding failed.
type CheckResult struct {
	Dir      string
	Summary  *bench.Summary
	Findings []Finding
	Pass     bool
}

// Failed counts the failing findings.
func (r *CheckResult) Failed() int {
	n := 0
	for _, f := range r.Findings {
		if f.Verdict == VerdictFail {
			n++
		}
	}
	return n
}

// Err is the verdict as an error: nil when the run passed, else one counting
// the failing findings, so every caller (the CLI's exit code 3, CI wrappers)
// words a failed check the same way.
func (r *CheckResult) Err() error {
	if r.Pass {
		return nil
	}
	n := r.Failed()
	return fmt.Errorf("check failed: %d failing %s", n, plural(int64(n), "finding", "findings"))
}

// Table renders the findings for the terminal.
func (r *CheckResult) Table() string {
	var rows [][]string
	for _, f := range r.Findings {
		v := f.Verdict
		if f.Detail != "" {
			v += " (" + f.Detail + ")"
		}
		rows = append(rows, []string{f.Kind, f.Metric, f.Value, f.Limit, v})
	}
	return renderTable(false, []string{"check", "metric", "value", "limit / baseline", "verdict"}, rows)
}

// direction says which way a metric gets worse.
type direction int

const (
	higherIsWorse direction = iota
	lowerIsWorse
)

// BaselineMetrics are the metrics a baseline comparison knows, with the
// direction in which each gets worse.
var BaselineMetrics = map[string]direction{
	"persist.max_bytes":                  higherIsWorse,
	"persist.final_bytes":                higherIsWorse,
	"persist.bytes_per_held_message":     higherIsWorse,
	"persist.duplicate_stores_seen":      higherIsWorse,
	"lost":                               higherIsWorse,
	"duplicates":                         higherIsWorse,
	"dropped_by_broker":                  higherIsWorse,
	"lost_in_crash":                      higherIsWorse,
	"latency.publish_to_ack.p99_ns":      higherIsWorse,
	"latency.publish_to_delivery.p99_ns": higherIsWorse,
	"publish.msgs_per_s":                 lowerIsWorse,
	"deliver.msgs_per_s":                 lowerIsWorse,
}

// DefaultBaselineMetrics are gated when no metrics are named: the deterministic
// persistence and correctness numbers. Latency and throughput depend on the
// machine, and CI machines are noisy, so they are gated only on request.
var DefaultBaselineMetrics = []string{
	"persist.max_bytes", "persist.final_bytes", "persist.bytes_per_held_message",
	"persist.duplicate_stores_seen", "lost", "duplicates", "dropped_by_broker",
}

// Check re-summarizes the run in dir and holds it to the scenario's thresholds,
// the extra ones in o, and a baseline. Bad thresholds, unknown metrics and
// unreadable inputs are errors (the check itself could not be done); a metric
// out of bounds is a failed finding in the result.
func Check(dir string, o CheckOptions) (*CheckResult, error) {
	if o.Tolerance < 0 {
		return nil, fmt.Errorf("tolerance %g%%: must not be negative", o.Tolerance)
	}
	tol := o.Tolerance
	if tol == 0 {
		tol = DefaultTolerance
	}
	if o.Exact {
		tol = 0
	}
	metrics, err := selectMetrics(o.Metrics)
	if err != nil {
		return nil, err
	}
	s, scenarioThresholds, err := loadForCheck(dir)
	if err != nil {
		return nil, err
	}
	doc, err := docFrom(s)
	if err != nil {
		return nil, fmt.Errorf("encoding summary of %s: %w", dir, err)
	}
	res := &CheckResult{Dir: dir, Summary: s}

	// The run itself: a disturbed or cut-short run does not measure the broker.
	runF := Finding{Kind: "run", Metric: "status", Value: s.Status, Limit: "ok, not tainted", Verdict: VerdictPass}
	if s.Tainted {
		runF.Value += ", tainted"
		if len(s.TaintReasons) > 0 {
			runF.Detail = strings.Join(s.TaintReasons, "; ")
		}
	}
	if s.Status != "ok" || s.Tainted {
		runF.Verdict = VerdictFail
		if o.AllowTainted {
			runF.Verdict = VerdictSkip
			runF.Detail = strings.TrimPrefix(runF.Detail+"; allowed by --allow-tainted", "; ")
		}
	}
	res.Findings = append(res.Findings, runF)

	exprs := append(slices.Clone(scenarioThresholds), o.Thresholds...)
	for i, e := range exprs {
		src := "threshold"
		if i < len(scenarioThresholds) {
			src = "scenario threshold"
		}
		t, err := scenarios.ParseThreshold(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		v, ok, err := doc.lookup(t.Metric)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", src, t.Expr, err)
		}
		if !ok && doc.isNull(t.Metric) {
			// A metric the run could not measure (null: e.g. the trade-off
			// of a run that sampled no persistence file) neither passes nor fails.
			res.Findings = append(res.Findings, Finding{Kind: "threshold", Metric: t.Metric, Value: "unknown", Limit: t.Op + " " + t.Raw,
				Verdict: VerdictSkip, Detail: "not measured in this run"})
			continue
		}
		if !ok {
			return nil, fmt.Errorf("%s %q: unknown metric %q (see the key column of `mqbench report` or summary.json)", src, t.Expr, t.Metric)
		}
		f := Finding{Kind: "threshold", Metric: t.Metric, Value: formatMetric(t.Metric, v), Limit: t.Op + " " + t.Raw, Verdict: VerdictPass}
		if !t.Holds(v) {
			f.Verdict = VerdictFail
		}
		res.Findings = append(res.Findings, f)
	}

	if o.Baseline != "" {
		base, err := loadBaseline(o.Baseline)
		if err != nil {
			return nil, err
		}
		if w := baselineMismatch(s, base); w != "" {
			res.Findings = append(res.Findings, Finding{Kind: "baseline", Metric: "scenario", Value: s.Scenario,
				Limit: "baseline " + baseString(base, "scenario"), Verdict: VerdictWarn, Detail: w})
		}
		found := 0
		for _, m := range metrics {
			f, inBase, err := compareMetric(m, doc, base, tol)
			if err != nil {
				return nil, fmt.Errorf("baseline %s: %w", o.Baseline, err)
			}
			if inBase {
				found++
			}
			res.Findings = append(res.Findings, f)
		}
		if found == 0 {
			return nil, fmt.Errorf("baseline %s has none of the gated metrics (%s): is it a summary.json?", o.Baseline, strings.Join(metrics, ", "))
		}
	}
	res.Pass = res.Failed() == 0
	return res, nil
}

// selectMetrics validates --metrics and expands "default".
func selectMetrics(names []string) ([]string, error) {
	if len(names) == 0 {
		return DefaultBaselineMetrics, nil
	}
	var out []string
	for _, n := range names {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			continue
		case n == "default":
			out = append(out, DefaultBaselineMetrics...)
		default:
			if _, ok := BaselineMetrics[n]; !ok {
				var known []string
				for k := range BaselineMetrics {
					known = append(known, k)
				}
				slices.Sort(known)
				return nil, fmt.Errorf("metric %q cannot be compared with a baseline (known: default, %s)", n, strings.Join(known, ", "))
			}
			out = append(out, n)
		}
	}
	var uniq []string
	for _, m := range out {
		if !slices.Contains(uniq, m) {
			uniq = append(uniq, m)
		}
	}
	return uniq, nil
}

// loadForCheck re-derives the run's summary from its events (so the check
// uses the current Summarize) together with the scenario's thresholds. A run
// without its event file is refused: summary.json is a rendering anyone can
// edit, and a gate that trusts it passes whatever it is handed.
func loadForCheck(dir string) (*bench.Summary, []string, error) {
	events := dir
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		events = filepath.Join(dir, bench.EventsFile)
	}
	if _, err := os.Stat(events); errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("checking run %s: no %s: a check re-derives every number from the recorded events, and a summary.json alone could say anything", dir, bench.EventsFile)
	}
	run, s, _, err := readRun(dir)
	if err != nil {
		return nil, nil, err
	}
	si, err := recordedScenario(&run.Header)
	if err != nil {
		return nil, nil, fmt.Errorf("reading run %s: %w", dir, err)
	}
	return &s, si.Thresholds, nil
}

// loadBaseline reads a baseline summary.json (or a run directory's).
func loadBaseline(path string) (summaryDoc, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, bench.SummaryFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading baseline: %w", err)
	}
	d, err := docFromJSON(b)
	if err != nil {
		return nil, fmt.Errorf("reading baseline %s: %w", path, err)
	}
	return d, nil
}

// compareMetric holds one metric to its baseline value. inBase reports whether
// the baseline had the metric at all.
func compareMetric(m string, cur, base summaryDoc, tol float64) (f Finding, inBase bool, err error) {
	f = Finding{Kind: "baseline", Metric: m}
	v, ok, err := cur.lookup(m)
	if err != nil || !ok {
		f.Value, f.Verdict, f.Detail = "-", VerdictSkip, "not in this run's summary"
		return f, false, nil
	}
	f.Value = formatMetric(m, v)
	b, ok, err := base.lookup(m)
	if err != nil {
		// A baseline whose value is not a number cannot gate anything: an
		// error, not a silent skip that lets every run pass.
		return f, false, err
	}
	if !ok {
		f.Limit, f.Verdict, f.Detail = "-", VerdictSkip, "not in baseline"
		return f, false, nil
	}
	dir := BaselineMetrics[m]
	f.Verdict = VerdictPass
	if m == "persist.bytes_per_held_message" && (b == 0 || v == 0) {
		// 0 means "could not be fitted", not "free".
		f.Limit, f.Verdict, f.Detail = "baseline "+formatMetric(m, b), VerdictSkip, "unknown in run or baseline"
		return f, true, nil
	}
	var limit float64
	// Counts and byte sizes are whole numbers: show the largest (smallest)
	// whole value still allowed rather than a fraction nobody can reach.
	shown := func(l float64, up bool) string {
		if b == math.Trunc(b) {
			if up {
				l = math.Floor(l)
			} else {
				l = math.Ceil(l)
			}
		}
		return formatMetric(m, l)
	}
	if dir == higherIsWorse {
		limit = b * (1 + tol/100)
		f.Limit = fmt.Sprintf("baseline %s, at most %s (+%g%%)", formatMetric(m, b), shown(limit, true), tol)
		if b == 0 {
			f.Limit = "baseline 0, any increase fails"
		}
		if v > limit {
			f.Verdict = VerdictFail
			f.Detail = worse(v, b)
		}
	} else {
		limit = b * (1 - tol/100)
		f.Limit = fmt.Sprintf("baseline %s, at least %s (-%g%%)", formatMetric(m, b), shown(limit, false), tol)
		if v < limit {
			f.Verdict = VerdictFail
			f.Detail = worse(v, b)
		}
	}
	return f, true, nil
}

// baselineMismatch warns when the baseline was recorded from another scenario
// or broker kind: its numbers describe another experiment, so a pass or a
// failure against it says little.
func baselineMismatch(s *bench.Summary, base summaryDoc) string {
	var diffs []string
	if b := baseString(base, "scenario"); b != "" && b != s.Scenario {
		diffs = append(diffs, fmt.Sprintf("the baseline is from scenario %q, this run is %q", b, s.Scenario))
	}
	if b := baseString(base, "broker_kind"); b != "" && b != s.BrokerKind {
		diffs = append(diffs, fmt.Sprintf("the baseline ran on %s, this run on %s", b, s.BrokerKind))
	}
	return strings.Join(diffs, "; ")
}

func baseString(base summaryDoc, key string) string {
	v, _ := base[key].(string)
	return v
}

func worse(v, b float64) string {
	if b == 0 {
		return "was 0"
	}
	return fmt.Sprintf("%+.1f%%", 100*(v-b)/b)
}
