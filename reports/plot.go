package reports

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/mqbench/mqbench/bench"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot geometry: 8 x 4.5 inches at 96 dpi is 768 x 432 pixels, wide enough for a
// time axis and small enough to embed in Markdown without scaling.
const (
	plotWidth  = 8 * vg.Inch
	plotHeight = 4.5 * vg.Inch
	plotDPI    = 96
	// maxPlotPoints bounds each drawn series: a million-event run still renders
	// in a moment, and the eye cannot see more points than the plot has pixels.
	maxPlotPoints = 2000
)

// Plot file names written into a run directory (and compare's output directory).
const (
	PersistencePNG        = "persistence.png"
	BacklogPNG            = "backlog.png"
	LatencyPNG            = "latency.png"
	ComparePersistencePNG = "compare-persistence.png"
)

// runZero is the time plots are measured from: the "run" phase (publishers
// released), so runs with different connect times line up; 0 if absent.
func runZero(r *bench.Run) int64 {
	for _, e := range r.Events {
		if e.Type == bench.EvPhase && e.Msg == "run" {
			return e.T
		}
	}
	return 0
}

func secs(t, zero int64) float64 { return float64(t-zero) / 1e9 }

// gaugeSeries collects one gauge's samples, scaled, in time order.
func gaugeSeries(r *bench.Run, name string, zero int64, scale float64, offsetFirst bool) plotter.XYs {
	var xy plotter.XYs
	first, have := 0.0, false
	for _, e := range r.Events {
		if e.Type != bench.EvGauge || e.Name != name {
			continue
		}
		v := e.Value
		if offsetFirst {
			if !have {
				first, have = v, true
			}
			v -= first
		}
		xy = append(xy, plotter.XY{X: secs(e.T, zero), Y: v * scale})
	}
	return xy
}

// saveSeries is one point per detected save; held selects the decoded held
// count instead of the size (only decoded saves then).
func saveSeries(r *bench.Run, zero int64, held bool) plotter.XYs {
	var xy plotter.XYs
	for _, e := range r.Events {
		if e.Type != bench.EvSave {
			continue
		}
		if held {
			if e.Decoded {
				xy = append(xy, plotter.XY{X: secs(e.T, zero), Y: float64(e.Held)})
			}
			continue
		}
		xy = append(xy, plotter.XY{X: secs(e.T, zero), Y: float64(e.SizeBytes) / 1000})
	}
	return xy
}

// cumulative counts events of a type over time; recv counts unique deliveries
// only, so a duplicate does not look like progress.
func cumulative(r *bench.Run, typ string, zero int64) plotter.XYs {
	var xy plotter.XYs
	type key struct {
		c, p string
		s    int64
	}
	seen := map[key]bool{}
	n := 0.0
	for _, e := range r.Events {
		if e.Type != typ {
			continue
		}
		if typ == bench.EvRecv {
			k := key{e.Client, e.Pub, e.Seq}
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		n++
		xy = append(xy, plotter.XY{X: secs(e.T, zero), Y: n})
	}
	return xy
}

// thin keeps at most maxPlotPoints points, always including the last, so the
// shape survives and the final value is exact.
func thin(xy plotter.XYs) plotter.XYs {
	if len(xy) <= maxPlotPoints {
		return xy
	}
	step := (len(xy) + maxPlotPoints - 1) / maxPlotPoints
	out := make(plotter.XYs, 0, maxPlotPoints+1)
	for i := 0; i < len(xy); i += step {
		out = append(out, xy[i])
	}
	if out[len(out)-1] != xy[len(xy)-1] {
		out = append(out, xy[len(xy)-1])
	}
	return out
}

// addLine adds a labelled line in the i-th palette colour; empty series are
// skipped so the legend only names what is drawn.
func addLine(p *plot.Plot, xy plotter.XYs, label string, i int, step bool) error {
	if len(xy) == 0 {
		return nil
	}
	l, err := plotter.NewLine(thin(xy))
	if err != nil {
		return fmt.Errorf("plotting %s: %w", label, err)
	}
	l.Color = plotutil.Color(i)
	l.Dashes = plotutil.Dashes(i)
	l.Width = vg.Points(1.5)
	if step {
		// Gauges and counters hold their value until the next sample.
		l.StepStyle = plotter.PostStep
	}
	p.Add(l)
	p.Legend.Add(label, l)
	return nil
}

func addPoints(p *plot.Plot, xy plotter.XYs, label string, i int, shape int) error {
	if len(xy) == 0 {
		return nil
	}
	s, err := plotter.NewScatter(thin(xy))
	if err != nil {
		return fmt.Errorf("plotting %s: %w", label, err)
	}
	s.Color = plotutil.Color(i)
	s.Shape = plotutil.Shape(shape)
	s.Radius = vg.Points(3)
	p.Add(s)
	p.Legend.Add(label, s)
	return nil
}

// timeAxis labels the x axis of the plots over time, which are measured from runZero.
const timeAxis = "seconds since publishing started"

// newPlot starts a plot with the layout all mqbench plots share (grid, legend
// top left, out of the way of series that mostly grow), so they read alike.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	return p
}

// persistencePlot: file size over time with every detected save marked; the
// autosave interval is in the title because it is what explains the steps.
func persistencePlot(r *bench.Run, s *bench.Summary) (*plot.Plot, error) {
	zero := runZero(r)
	p := newPlot("persistence file size (autosave_interval "+formatAutosave(s.Persist.AutosaveInterval)+")", timeAxis, "file size (kB)")
	if err := addLine(p, gaugeSeries(r, bench.GaugePersistBytes, zero, 1.0/1000, false), "file size", 0, true); err != nil {
		return nil, err
	}
	if err := addPoints(p, saveSeries(r, zero, false), "save detected", 1, 0); err != nil {
		return nil, err
	}
	headroom(p)
	return p, nil
}

// backlogPlot: where the messages were over time: published, delivered, held by
// the broker and dropped by it, which is what the file size has to be read with.
func backlogPlot(r *bench.Run) (*plot.Plot, error) {
	zero := runZero(r)
	p := newPlot("backlog: published, delivered, held and dropped", timeAxis, "messages")
	steps := []struct {
		xy    plotter.XYs
		label string
	}{
		{cumulative(r, bench.EvPub, zero), "published"},
		{cumulative(r, bench.EvRecv, zero), "delivered"},
		{gaugeSeries(r, bench.GaugeHeld, zero, 1, false), "held by broker"},
		{gaugeSeries(r, bench.GaugeStoreCount, zero, 1, false), "broker store count ($SYS)"},
		{gaugeSeries(r, bench.GaugeDropped, zero, 1, true), "dropped by broker"},
	}
	for i, st := range steps {
		if err := addLine(p, st.xy, st.label, i, true); err != nil {
			return nil, err
		}
	}
	if err := addPoints(p, saveSeries(r, zero, true), "held in save (decoded)", 2, 1); err != nil {
		return nil, err
	}
	headroom(p)
	return p, nil
}

// latencies returns publish-to-ack and publish-to-delivery latencies in
// nanoseconds, sorted. Acks are joined to the first publish of (client, seq).
func latencies(r *bench.Run) (ack, del []int64) {
	type key struct {
		c string
		s int64
	}
	pubs := map[key]int64{}
	for _, e := range r.Events {
		switch e.Type {
		case bench.EvPub:
			k := key{e.Client, e.Seq}
			if _, ok := pubs[k]; !ok {
				pubs[k] = e.T
			}
		case bench.EvAck:
			if t, ok := pubs[key{e.Client, e.Seq}]; ok {
				ack = append(ack, e.T-t)
			}
		case bench.EvRecv:
			if e.PubT > 0 {
				del = append(del, e.T-e.PubT)
			}
		}
	}
	sort.Slice(ack, func(i, j int) bool { return ack[i] < ack[j] })
	sort.Slice(del, func(i, j int) bool { return del[i] < del[j] })
	return ack, del
}

// maxNines caps the percentile axis at 99.999.
const maxNines = 5

// percentileCurve samples sorted values along the "nines" axis
// x = -log10(1-p): 0 is p0, 1 is p90, 2 is p99, 3 is p99.9. It stops where the
// sample count stops supporting the percentile (x = log10(n)).
func percentileCurve(sorted []int64) plotter.XYs {
	n := len(sorted)
	if n == 0 {
		return nil
	}
	xmax := math.Min(math.Log10(float64(n)), maxNines)
	var xy plotter.XYs
	for x := 0.0; x <= xmax+1e-9; x += 0.02 {
		xy = append(xy, plotter.XY{X: x, Y: ms(percentileAt(sorted, 1-math.Pow(10, -x)))})
	}
	return xy
}

// percentileAt is the nearest-rank percentile (p in [0,1]) of sorted values.
func percentileAt(sorted []int64, p float64) int64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// ms converts nanoseconds to milliseconds, at least 1 µs so a log axis can draw it.
func ms(ns int64) float64 { return math.Max(float64(ns)/1e6, 1e-3) }

// ninesTicks labels the nines axis in percent.
type ninesTicks struct{}

func (ninesTicks) Ticks(lo, hi float64) []plot.Tick {
	var t []plot.Tick
	for i := math.Ceil(lo); i <= hi+1e-9; i++ {
		label := "0"
		if i > 0 {
			label = strconv.FormatFloat(100*(1-math.Pow(10, -i)), 'f', int(i)-2+boolInt(i < 2), 64)
		}
		t = append(t, plot.Tick{Value: i, Label: label})
	}
	return t
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// latencyPlot: latency by percentile, with the tail stretched ("nines" axis)
// and latency on a log scale, because a paced subscriber's delivery latency
// spans milliseconds to minutes.
func latencyPlot(r *bench.Run) (*plot.Plot, error) {
	ack, del := latencies(r)
	p := newPlot("latency by percentile", "percentile", "latency (ms, log scale)")
	if len(ack) == 0 && len(del) == 0 {
		p.Title.Text += " (no latency data recorded)"
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
		return p, nil
	}
	p.X.Tick.Marker = ninesTicks{}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	if err := addLine(p, percentileCurve(ack), "publish → ack", 0, false); err != nil {
		return nil, err
	}
	if err := addLine(p, percentileCurve(del), "publish → delivery", 1, false); err != nil {
		return nil, err
	}
	// A decade of room above the data for the legend.
	p.Y.Max *= 10
	return p, nil
}

// headroom starts a linear y axis at 0, so sizes and counts are read against
// zero, and leaves room above the data for the legend.
func headroom(p *plot.Plot) {
	p.Y.Min = 0
	if p.Y.Max <= 0 {
		p.Y.Max = 1
	}
	p.Y.Max *= 1.25
	if p.X.Min > 0 {
		p.X.Min = 0
	}
}

// savePNG draws p at the fixed geometry and writes it atomically (temp file and
// rename), so a failed render never leaves a half-written image behind.
func savePNG(p *plot.Plot, path string) error {
	c := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI))
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeFileAtomic(path, buf.Bytes())
}

// writeFileAtomic replaces path with data via a temp file in the same directory.
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
