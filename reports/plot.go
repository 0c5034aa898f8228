package reports

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/mqbench/mqbench/bench"
	"gonum.org/v1/plot/plotter"
)

// maxPlotPoints bounds each drawn series (PNG and HTML): a million-event run
// still renders in a moment and report.html stays small, and the eye cannot see
// more points than a chart has pixels.
const maxPlotPoints = 2000

// Plot file names written into a run directory (and compare's output directory).
const (
	PersistencePNG        = "persistence.png"
	BacklogPNG            = "backlog.png"
	LatencyPNG            = "latency.png"
	MemoryPNG             = "memory.png"
	ComparePersistencePNG = "compare-persistence.png"
)

// chart is one plot independent of how it is drawn, so the PNGs (gonum) and
// report.html (uPlot) show the same series, marks and units by construction.
type chart struct {
	ID, Title, XLabel, YLabel string
	X                         axisKind
	Y                         axisKind
	Series                    []series
	Marks                     marks
	// Compare styles the series as overlaid runs: distinct dashes and markers,
	// the first drawn thickest so the later, thinner ones stay visible on top.
	Compare bool
}

// axisKind is what an axis measures, which decides its ticks and labels.
type axisKind string

const (
	axisSeconds axisKind = "seconds" // time since publishing started
	axisNines   axisKind = "nines"   // percentile, -log10(1-p)
	axisCount   axisKind = "count"   // messages, from 0
	axisBytes   axisKind = "bytes"   // 1000-based sizes, from 0
	axisMillis  axisKind = "ms-log"  // milliseconds on a log scale
)

// seriesKind is how a series is drawn.
type seriesKind string

const (
	kindLine   seriesKind = "line"   // straight segments between points
	kindStep   seriesKind = "step"   // gauges and counters hold their value until the next sample
	kindPoints seriesKind = "points" // individual events, e.g. saves
)

type series struct {
	Label string
	XY    plotter.XYs
	Kind  seriesKind
	Style int // palette index: colour, dashes and marker shape
}

// marks are what explains a time chart beyond its data: the phases of the run,
// when the broker saved, and the scenario's actions (kill, restart...).
type marks struct {
	Bands []band
	Lines []vline
	Saves []float64
}

// band is a labelled phase [From, To] in seconds; Row 0 is drawn above row 1.
type band struct {
	From, To float64
	Label    string
	Row      int
}

// vline is a labelled instant, an action; Kind picks its colour.
type vline struct {
	X     float64
	Label string
	Kind  string
}

// timeAxis labels the x axis of the plots over time, which are measured from runPlots.zero.
const timeAxis = "seconds since publishing started"

func secs(t, zero int64) float64 { return float64(t-zero) / 1e9 }

// saveKind says what saveSeries plots for each detected save.
type saveKind int

const (
	saveSize   saveKind = iota // the file size in bytes (every save)
	saveHeld                   // deliveries held, one per client and message (decoded saves)
	saveStored                 // distinct messages stored (decoded saves)
)

// saveSeries is one point per detected save: its size, or a decoded count.
// Held and stored are drawn apart: with several subscribers one stored
// message is held once per subscriber, so held can exceed what was published.
func saveSeries(r *runPlots, kind saveKind) plotter.XYs {
	var xy plotter.XYs
	for _, e := range r.saves {
		switch {
		case kind == saveSize:
			xy = append(xy, plotter.XY{X: secs(e.T, r.zero), Y: float64(e.SizeBytes)})
		case !e.Decoded:
		case kind == saveHeld:
			xy = append(xy, plotter.XY{X: secs(e.T, r.zero), Y: float64(e.Held)})
		case kind == saveStored:
			xy = append(xy, plotter.XY{X: secs(e.T, r.zero), Y: float64(e.Stored)})
		}
	}
	return xy
}

// runMarks derives the phases, saves and actions of a run from its events:
// publishing is first to last publish, observation is publishing start to the
// drain start (or the scenario duration, or the end, for runs without a drain),
// drain is the drain start to the end.
func runMarks(r *runPlots) marks {
	var m marks
	zero := r.zero
	firstPub, lastPub := r.firstPub, r.lastPub
	drainT, doneT, lastT := r.drainT, r.doneT, max(zero, r.lastT)
	downs := 0
	for _, e := range r.saves {
		m.Saves = append(m.Saves, secs(e.T, zero))
	}
	for _, e := range r.actions {
		l := vline{X: secs(e.T, zero), Label: e.Action, Kind: e.Action}
		switch e.Action {
		case bench.ActKill, bench.ActStop:
			downs++
		case bench.ActStart:
			if downs > 0 {
				l.Label = "restart"
			}
		}
		if e.Target != "" {
			l.Label += " " + e.Target
		}
		if e.Err != "" {
			l.Label += " (failed)"
		}
		m.Lines = append(m.Lines, l)
	}
	end := lastT
	if doneT >= 0 {
		end = doneT
	}
	obsEnd := end
	if drainT >= 0 {
		obsEnd = drainT
	} else if d, ok := scenarioDuration(r.header); ok {
		obsEnd = min(end, zero+d)
	}
	m.Bands = append(m.Bands, band{From: 0, To: secs(obsEnd, zero), Label: "observation", Row: 0})
	if drainT >= 0 && end > drainT {
		m.Bands = append(m.Bands, band{From: secs(drainT, zero), To: secs(end, zero), Label: "drain", Row: 0})
	}
	if firstPub >= 0 {
		m.Bands = append(m.Bands, band{From: secs(firstPub, zero), To: secs(lastPub, zero), Label: "publishing", Row: 1})
	}
	return m
}

// scenarioDuration is the recorded scenario's observation window (already time
// scaled when recorded), for runs whose drain phase never began.
func scenarioDuration(h *bench.Header) (int64, bool) {
	sc, err := h.DecodeScenario()
	if err != nil || sc == nil || sc.Duration <= 0 {
		return 0, false
	}
	return int64(sc.Duration), true
}

// persistenceChart: file size over time with every detected save marked; the
// autosave interval is in the title because it is what explains the steps.
func persistenceChart(r *runPlots, s *bench.Summary) chart {
	c := chart{
		ID:     "persistence",
		Title:  "persistence file size (autosave_interval " + formatAutosave(s.Persist.AutosaveInterval) + ")",
		XLabel: timeAxis, YLabel: "file size", X: axisSeconds, Y: axisBytes,
		Series: []series{
			{Label: "file size", XY: r.gaugeSeries(bench.GaugePersistBytes, 1, false), Kind: kindStep, Style: 0},
			{Label: "file size in save", XY: saveSeries(r, saveSize), Kind: kindPoints, Style: 1},
		},
		Marks: runMarks(r),
	}
	if len(c.Series[0].XY) == 0 && len(c.Series[1].XY) == 0 {
		// An external broker run without --db: say so rather than draw an
		// empty axis that reads as a file of size zero.
		c.Title += " (no file size sampled)"
	}
	return c
}

// backlogChart: where the messages were over time: published, delivered, held
// by the broker and dropped by it, which is what the file size has to be read with.
func backlogChart(r *runPlots) chart {
	return chart{
		ID:     "backlog",
		Title:  "backlog: published, delivered, held and dropped",
		XLabel: timeAxis, YLabel: "messages", X: axisSeconds, Y: axisCount,
		Series: []series{
			{Label: "published", XY: r.cumulative(&r.published), Kind: kindStep, Style: 0},
			{Label: "delivered", XY: r.cumulative(&r.delivered), Kind: kindStep, Style: 1},
			{Label: "broker store count ($SYS)", XY: r.gaugeSeries(bench.GaugeStoreCount, 1, false), Kind: kindStep, Style: 3},
			{Label: "dropped by broker", XY: r.gaugeSeries(bench.GaugeDropped, 1, true), Kind: kindStep, Style: 4},
			{Label: "deliveries held in save (per client)", XY: saveSeries(r, saveHeld), Kind: kindPoints, Style: 2},
			{Label: "messages stored in save (distinct)", XY: saveSeries(r, saveStored), Kind: kindPoints, Style: 3},
		},
		Marks: runMarks(r),
	}
}

// memoryChart: the resident memory of mqbench and of the broker process over
// the run, the soak question: does either grow with the run rather than with
// what it holds? A broker mqbench did not start has no process to sample, and
// its series is left out rather than drawn as zero.
func memoryChart(r *runPlots) chart {
	c := chart{
		ID:     "memory",
		Title:  "resident memory: mqbench and the broker",
		XLabel: timeAxis, YLabel: "resident memory", X: axisSeconds, Y: axisBytes,
		Marks: runMarks(r),
	}
	if xy := r.gaugeSeries(bench.GaugeRSSBytes, 1, false); len(xy) > 0 {
		c.Series = append(c.Series, series{Label: "broker process", XY: xy, Kind: kindStep, Style: 0})
	} else {
		c.Title += " (broker process not sampled)"
	}
	c.Series = append(c.Series, series{Label: "mqbench", XY: r.gaugeSeries(bench.GaugeBenchRSSBytes, 1, false), Kind: kindStep, Style: 1})
	return c
}

// latencyChart: latency by percentile, with the tail stretched ("nines" axis)
// and latency on a log scale, because a paced subscriber's delivery latency
// spans milliseconds to minutes.
func latencyChart(r *runPlots) chart {
	ack, del := r.ackLat, r.deliveryLat
	c := chart{
		ID:     "latency",
		Title:  "latency by percentile",
		XLabel: "percentile", YLabel: "latency (ms, log scale)", X: axisNines, Y: axisMillis,
		Series: []series{
			{Label: "publish → ack", XY: percentileCurve(ack), Kind: kindLine, Style: 0},
			{Label: "publish → delivery", XY: percentileCurve(del), Kind: kindLine, Style: 1},
		},
	}
	if ack.Count() == 0 && del.Count() == 0 {
		c.Title += " (no latency data recorded)"
	}
	return c
}

// compareChart overlays every run's file size on one time axis; the autosave
// interval is in each label because it is usually what the runs differ in.
func compareChart(runs []compareRun) chart {
	c := chart{
		ID: "compare-persistence", Title: "persistence file size, all runs",
		XLabel: timeAxis, YLabel: "file size", X: axisSeconds, Y: axisBytes, Compare: true,
	}
	for i, r := range runs {
		c.Series = append(c.Series, series{
			Label: r.label + " (autosave " + formatAutosave(r.s.Persist.AutosaveInterval) + ")",
			XY:    r.size, Kind: kindStep, Style: i,
		})
	}
	return c
}

// maxNines caps the percentile axis at 99.999.
const maxNines = 5

// percentileCurve samples a latency distribution along the "nines" axis
// x = -log10(1-p): 0 is p0, 1 is p90, 2 is p99, 3 is p99.9. It stops where the
// sample count stops supporting the percentile (x = log10(n)).
func percentileCurve(d *bench.Distribution) plotter.XYs {
	n := d.Count()
	if n == 0 {
		return nil
	}
	xmax := math.Min(math.Log10(float64(n)), maxNines)
	var xy plotter.XYs
	for x := 0.0; x <= xmax+1e-9; x += 0.02 {
		xy = append(xy, plotter.XY{X: x, Y: ms(d.Quantile(1 - math.Pow(10, -x)))})
	}
	return xy
}

// ms converts nanoseconds to milliseconds, at least 1 µs so a log axis can draw it.
func ms(ns int64) float64 { return math.Max(float64(ns)/1e6, 1e-3) }

// writeFileAtomic replaces path with data via a temp file in the same directory,
// so a failed render never leaves a half-written file behind.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, werr)
	}
	return nil
}
