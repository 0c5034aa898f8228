package reports

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mqbench/mqbench/bench"
)

// TradeoffRow is one run's autosave trade-off: what the saves cost the disk
// against how long acknowledged messages were only in memory. It is the row
// an operator picks an autosave interval from, and the data of its plots.
type TradeoffRow struct {
	Label    string // the run's scenario name (sweeps name each value), "#n" added when repeated
	Broker   string // kind and version
	Autosave string // as configured: "3" (seconds), "on_changes 100", "unknown" (external broker), "" (not set)
	// AutosaveSeconds is Autosave as a number of seconds, NaN when it is not
	// one: the x axis of a trade-off plot.
	AutosaveSeconds  float64
	Saves            int
	MeanSavePeriodNS int64
	// Known is false when the run sampled no persistence file: the values
	// below are then unknown (zero here, null in summary.json).
	Known              bool
	BytesWritten       int64
	BytesWrittenPerMin float64
	MaxSaveGapNS       int64
	ExposureMaxNS      int64
	PredictedCrashLoss int64
	// LostInCrash is the measured loss when the run killed the broker, -1
	// when it did not: the prediction's check.
	LostInCrash int64
}

// TradeoffRows extracts the autosave trade-off of each run, in order.
func TradeoffRows(sums []bench.Summary) []TradeoffRow {
	rows := make([]TradeoffRow, 0, len(sums))
	seen := map[string]int{}
	for i := range sums {
		s := &sums[i]
		label := s.Scenario
		if label == "" {
			label = s.RunID
		}
		seen[label]++
		if seen[label] > 1 {
			label = fmt.Sprintf("%s #%d", label, seen[label])
		}
		p := &s.Persist
		r := TradeoffRow{
			Label:            label,
			Broker:           strings.TrimSpace(s.BrokerKind + " " + s.BrokerVersion),
			Autosave:         p.AutosaveInterval,
			AutosaveSeconds:  math.NaN(),
			Saves:            p.Saves,
			MeanSavePeriodNS: p.MeanSavePeriodNS,
			LostInCrash:      -1,
		}
		if v, err := strconv.ParseFloat(p.AutosaveInterval, 64); err == nil {
			r.AutosaveSeconds = v
		}
		if p.Sampled && p.BytesWritten != nil && p.ExposureMaxNS != nil && p.PredictedCrashLoss != nil {
			r.Known = true
			r.BytesWritten = *p.BytesWritten
			r.ExposureMaxNS = *p.ExposureMaxNS
			r.PredictedCrashLoss = *p.PredictedCrashLoss
			if p.BytesWrittenPerMin != nil {
				r.BytesWrittenPerMin = *p.BytesWrittenPerMin
			}
			if p.MaxSaveGapNS != nil {
				r.MaxSaveGapNS = *p.MaxSaveGapNS
			}
		}
		if s.Crash != nil {
			r.LostInCrash = s.LostInCrash
		}
		rows = append(rows, r)
	}
	return rows
}

// tradeoffTable renders trade-off rows: autosave interval | saves | bytes
// written | bytes/min | exposure max | predicted crash loss, plus the run and
// broker so rows from several brokers can share a table.
func tradeoffTable(rows []TradeoffRow) ([]string, [][]string) {
	header := []string{"run", "broker", "autosave interval", "saves", "save period", "bytes written", "bytes/min", "exposure max", "predicted crash loss"}
	crash := false
	for _, r := range rows {
		crash = crash || r.LostInCrash >= 0
	}
	if crash {
		header = append(header, "lost in crash")
	}
	var cells [][]string
	for _, r := range rows {
		period := "-"
		if r.MeanSavePeriodNS > 0 {
			period = formatNS(r.MeanSavePeriodNS)
		}
		c := []string{r.Label, r.Broker, formatAutosave(r.Autosave), groupInt(int64(r.Saves)), period}
		if r.Known {
			c = append(c, groupInt(r.BytesWritten), groupInt(int64(math.Round(r.BytesWrittenPerMin))), formatNS(r.ExposureMaxNS), groupInt(r.PredictedCrashLoss))
		} else {
			c = append(c, "unknown", "unknown", "unknown", "unknown")
		}
		if crash {
			lost := "-"
			if r.LostInCrash >= 0 {
				lost = groupInt(r.LostInCrash)
			}
			c = append(c, lost)
		}
		cells = append(cells, c)
	}
	return header, cells
}

// tradeoffNote defines the trade-off columns for the comparison.
const tradeoffNote = "Bytes written sums the sizes of every save (each save rewrites the whole file), per minute from the start of publishing to the end of the run. Exposure max is the longest an acknowledged message was held only in memory: from its acknowledgement until the next save, its consumption, or the end. Predicted crash loss is the run's acknowledgement rate times the longest stretch of publishing without a save, capped by the most messages held at once (less the broker's drops)."
