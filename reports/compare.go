package reports

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mqbench/mqbench/bench"
	"gonum.org/v1/plot/plotter"
)

// CompareFile is the Markdown comparison written by Compare.
const CompareFile = "compare.md"

// compareRun is one run in a comparison: its summary and the size series.
type compareRun struct {
	dir   string
	label string
	s     bench.Summary
	size  plotter.XYs
}

// Compare puts several runs side by side (typically one scenario with different
// autosave intervals): a table with one row per run and a plot of every run's
// file size on one time axis. It writes outDir/compare.md, compare.html and
// compare-persistence.png and returns the table as terminal text.
func Compare(dirs []string, outDir string) (string, error) {
	if len(dirs) == 0 {
		return "", errors.New("compare: no runs given")
	}
	if outDir == "" {
		return "", errors.New("compare: no output directory given")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", outDir, err)
	}
	runs := make([]compareRun, 0, len(dirs))
	labels := map[string]int{}
	for _, d := range dirs {
		run, s, plots, err := readRun(d)
		if err != nil {
			return "", err
		}
		label := s.Scenario
		if label == "" {
			label = filepath.Base(run.Dir)
		}
		labels[label]++
		if labels[label] > 1 {
			label = fmt.Sprintf("%s #%d", label, labels[label])
		}
		runs = append(runs, compareRun{
			dir: run.Dir, label: label, s: s,
			size: plots.gaugeSeries(bench.GaugePersistBytes, 1, false),
		})
	}
	header, rows := compareRows(runs)
	trade := compareTradeoff(runs)
	th, tc := tradeoffTable(trade)
	text := renderTable(false, header, rows) + "\nAutosave trade-off:\n" + renderTable(false, th, tc)

	p, err := comparePlot(runs)
	if err != nil {
		return "", err
	}
	if err := savePNG(p, filepath.Join(outDir, ComparePersistencePNG)); err != nil {
		return "", err
	}
	tradeCharts := tradeoffCharts(trade)
	for _, ch := range tradeCharts {
		tp, err := pngPlot(ch)
		if err != nil {
			return "", err
		}
		if err := savePNG(tp, filepath.Join(outDir, ch.ID+".png")); err != nil {
			return "", err
		}
	}

	var b strings.Builder
	b.WriteString("# mqbench comparison\n\n")
	for _, r := range runs {
		fmt.Fprintf(&b, "- %s: `%s` (run `%s`)\n", r.label, r.dir, r.s.RunID)
	}
	b.WriteString("\n")
	b.WriteString(renderTable(true, header, rows))
	b.WriteString("\n" + compareNote + "\n\n")
	b.WriteString("## Autosave trade-off\n\n")
	b.WriteString(renderTable(true, th, tc))
	b.WriteString("\n" + tradeoffNote + "\n\n")
	for _, ch := range tradeCharts {
		fmt.Fprintf(&b, "![%s](%s.png)\n\n", ch.Title, ch.ID)
	}
	fmt.Fprintf(&b, "![persistence file size, all runs](%s)\n", ComparePersistencePNG)
	for _, r := range runs {
		for _, w := range Warnings(&r.s) {
			fmt.Fprintf(&b, "\n> **%s**: %s\n", r.label, w)
		}
	}
	if err := writeFileAtomic(filepath.Join(outDir, CompareFile), []byte(b.String())); err != nil {
		return "", err
	}
	if err := writeCompareHTML(filepath.Join(outDir, CompareHTML), runs, header, rows); err != nil {
		return "", err
	}
	return text, nil
}

// compareNote explains the comparison table's less obvious columns.
const compareNote = "Bytes per held message is the slope of file size against the messages held in each decoded save. Dropped counts messages the broker discarded because of its queue limits: a run that dropped messages measured the limit, not the backlog."

// compareRows is the comparison table: the numbers that differ between runs of
// a persistence experiment, and the ones that explain the differences.
func compareRows(runs []compareRun) ([]string, [][]string) {
	header := []string{"run", "broker", "autosave", "saves", "max size", "final size", "bytes/held msg", "dropped", "lost", "status"}
	var rows [][]string
	for _, r := range runs {
		s := &r.s
		bph := "-"
		if s.Persist.BytesPerHeldMessage != 0 {
			bph = groupFloat(s.Persist.BytesPerHeldMessage, 1)
		}
		status := s.Status
		if s.Tainted {
			status += ", tainted"
		}
		lost := groupInt(s.Lost)
		if s.LostInCrash > 0 {
			lost += " (crash " + groupInt(s.LostInCrash) + ")"
		}
		maxSize, finalSize := groupInt(s.Persist.MaxBytes), groupInt(s.Persist.FinalBytes)
		if !s.Persist.Sampled {
			maxSize, finalSize = "unknown", "unknown"
		}
		dropped := groupInt(s.DroppedByBroker)
		if s.Drops.Source == "unknown" {
			dropped = "unknown"
		} else if s.Drops.Stale {
			dropped += " (may be stale)"
		}
		rows = append(rows, []string{
			r.label,
			strings.TrimSpace(s.BrokerKind + " " + s.BrokerVersion),
			formatAutosave(s.Persist.AutosaveInterval),
			groupInt(int64(s.Persist.Saves)),
			maxSize,
			finalSize,
			bph,
			dropped,
			lost,
			status,
		})
	}
	return header, rows
}

// compareTradeoff is the trade-off of the compared runs, under their labels.
func compareTradeoff(runs []compareRun) []TradeoffRow {
	sums := make([]bench.Summary, len(runs))
	for i, r := range runs {
		sums[i] = r.s
	}
	rows := TradeoffRows(sums)
	for i := range rows {
		rows[i].Label = runs[i].label
	}
	return rows
}
