package reports

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/internal/testutil"
)

// updateSummaries rewrites the golden summaries. It is its own flag, not
// -update: these files hold what the analysis said before it was rewritten to
// stream, and must not be refreshed along with the report goldens by accident.
var updateSummaries = flag.Bool("update-summaries", false, "rewrite testdata/*/summary.golden.json and testdata/summaries/*.golden.json")

// TestSummaryGoldens re-summarizes every recorded run committed under
// testdata, and the synthetic fixtures the report tests use, and compares each
// with the summary the analysis gave when the golden file was written. Every
// count, size, time and note must be equal; latency percentiles may differ by
// testutil.LatencyRelTolerance (0.1 %, the precision of a 3-significant-digit
// HDR histogram), and count, max and mean must be exact.
func TestSummaryGoldens(t *testing.T) {
	type tcase struct {
		name string // golden file under testdata
		dir  string // run directory
	}
	var cases []tcase
	// Every recorded run: a run committed without a golden summary fails here.
	recorded, err := filepath.Glob(filepath.Join("testdata", "*", bench.EventsFile))
	if err != nil || len(recorded) == 0 {
		t.Fatalf("no recorded runs under testdata (%v)", err)
	}
	for _, ev := range recorded {
		d := filepath.Base(filepath.Dir(ev))
		cases = append(cases, tcase{d + "/summary.golden.json", filepath.Join("testdata", d)})
	}
	fixtures := map[string]func(*fixture){
		"default":  func(*fixture) {},
		"dups":     func(f *fixture) { f.dupStores = 3 },
		"nodrops":  func(f *fixture) { f.messages = 500 },
		"external": func(f *fixture) { f.kind = "external" },
		"nodb":     func(f *fixture) { f.kind, f.noDB = "external", true },
		"stale":    func(f *fixture) { f.sysUntil = time.Second },
		"nosys":    func(f *fixture) { f.noSys = true },
		"tainted":  func(f *fixture) { f.tainted = true },
		"nofooter": func(f *fixture) { f.noFooter = true },
	}
	for name, fix := range fixtures {
		f := defaultFixture()
		fix(&f)
		cases = append(cases, tcase{"summaries/" + name + ".golden.json", writeFixture(t, filepath.Join(t.TempDir(), name), f)})
	}
	for _, tc := range cases {
		t.Run(strings.TrimSuffix(tc.name, ".golden.json"), func(t *testing.T) {
			run, err := bench.ReadRun(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			s := bench.Summarize(run)
			got, err := json.MarshalIndent(s, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", tc.name)
			if *updateSummaries {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden summary (go test ./reports -run TestSummaryGoldens -update-summaries): %v", err)
			}
			diffs, err := testutil.SummaryDiff(got, want)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range diffs {
				t.Error(d)
			}
		})
	}
}
