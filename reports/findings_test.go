package reports

import (
	"math"
	"strings"
	"testing"

	"github.com/mqbench/mqbench/bench"
)

// TestCrashFindingExplains: the crash finding states the prediction, the
// outcome and their difference with its cause, from one definition of each,
// and says why the run's lost count differs from the crash's.
func TestCrashFindingExplains(t *testing.T) {
	s := &bench.Summary{Lost: 62, LostInCrash: 60, Phases: map[string]int64{"run": 0}}
	s.Persist.AutosaveInterval = "3"
	s.Crash = &bench.CrashSummary{KillT: 5.5e9, LastSaveT: 3.7e9, SavedBeforeKill: true, PredictedFrom: "decoded_save",
		UnconsumedAtKill: 100, SavedUnconsumed: 50, PredictedLost: 50, ActualLost: 60, Difference: 10, DroppedBeforeKill: 4, Unexplained: 6}
	got := crashFinding(s)
	for _, w := range []string{
		"holding 100 acknowledged messages", "held 50 of them, so 50 were only in memory: predicted loss 50",
		"It lost 60 (+10 against the prediction: 4 dropped by the broker's queue limits before the kill ($SYS); 6 held by the save but not delivered after the restart)",
		"The run's lost count (62) differs from the crash's by +2",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("crash finding lacks %q:\n%s", w, got)
		}
	}
	s.Crash.ActualLost, s.Crash.Difference, s.Crash.DroppedBeforeKill, s.Crash.Unexplained = 50, 0, 0, 0
	s.LostInCrash, s.Lost = 50, 50
	if got := crashFinding(s); !strings.Contains(got, "It lost 50, exactly as predicted.") || strings.Contains(got, "differs") {
		t.Errorf("crash finding:\n%s", got)
	}
}

// TestTradeoffRows: the rows the trade-off table and plots are drawn from.
func TestTradeoffRows(t *testing.T) {
	known := bench.Summary{Scenario: "sweep-1", BrokerKind: "bundled"}
	known.Persist = bench.Persist{AutosaveInterval: "3", Saves: 10, MeanSavePeriodNS: 4e9, Sampled: true}
	bw, exp, loss, gap := int64(7e6), int64(4e9), int64(400), int64(4e9)
	perMin := 1e7
	known.Persist.BytesWritten, known.Persist.ExposureMaxNS, known.Persist.PredictedCrashLoss, known.Persist.MaxSaveGapNS = &bw, &exp, &loss, &gap
	known.Persist.BytesWrittenPerMin = &perMin
	unknown := bench.Summary{Scenario: "sweep-1", BrokerKind: "external"}
	unknown.Persist.AutosaveInterval = "unknown"
	rows := TradeoffRows([]bench.Summary{known, unknown})
	if len(rows) != 2 || rows[0].Label != "sweep-1" || rows[1].Label != "sweep-1 #2" {
		t.Fatalf("rows %+v", rows)
	}
	r := rows[0]
	if !r.Known || r.AutosaveSeconds != 3 || r.BytesWritten != bw || r.BytesWrittenPerMin != perMin || r.ExposureMaxNS != exp || r.PredictedCrashLoss != loss || r.LostInCrash != -1 {
		t.Errorf("known row %+v", r)
	}
	if u := rows[1]; u.Known || !math.IsNaN(u.AutosaveSeconds) {
		t.Errorf("unknown row %+v", u)
	}
	_, cells := tradeoffTable(rows)
	if got := strings.Join(cells[1], "|"); !strings.Contains(got, "unknown|unknown|unknown|unknown") {
		t.Errorf("unsampled row cells %q", got)
	}
}
