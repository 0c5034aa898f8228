package reports

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"github.com/mqbench/mqbench/bench"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot geometry: 16 x 9 inches at 100 dpi is 1600 x 900 pixels, a full 16:9
// slide, with type sized to be read from the back of a room.
const (
	plotWidth  = 16 * vg.Inch
	plotHeight = 9 * vg.Inch
	plotDPI    = 100

	titleSize  = 26
	labelSize  = 21
	tickSize   = 18
	legendSize = 18
	markSize   = 16
	lineWidth  = 2.5
)

// palette is the Okabe-Ito colour-blind safe set (without its yellow, which
// vanishes on white): the PNGs and report.html use it, so a series has one
// colour everywhere.
var palette = []color.RGBA{
	{0x00, 0x72, 0xB2, 0xff}, // blue
	{0xD5, 0x5E, 0x00, 0xff}, // vermillion
	{0x00, 0x9E, 0x73, 0xff}, // bluish green
	{0xCC, 0x79, 0xA7, 0xff}, // reddish purple
	{0xE6, 0x9F, 0x00, 0xff}, // orange
	{0x56, 0xB4, 0xE9, 0xff}, // sky blue
	{0x33, 0x33, 0x33, 0xff}, // near black
}

func paletteColor(i int) color.RGBA { return palette[((i%len(palette))+len(palette))%len(palette)] }

// compareDashes (in points) tell overlaid runs apart where their colours
// cross; compareWidth makes the first run thickest so later, thinner runs
// drawn over it leave it visible.
var compareDashes = [][]float64{{}, {14, 5}, {3, 4}, {14, 4, 3, 4}, {7, 4}, {1.5, 3}, {14, 4, 3, 4, 3, 4}}

func compareDash(i int) []float64 { return compareDashes[i%len(compareDashes)] }

func compareWidth(i, n int) float64 {
	if n <= 1 {
		return lineWidth
	}
	return 4.5 - 3*float64(i)/float64(n-1)
}

// markColors are the vertical lines of actions, by kind.
var markColors = map[string]color.RGBA{
	bench.ActKill:  {0xC0, 0x00, 0x00, 0xff},
	bench.ActStop:  {0xC0, 0x60, 0x00, 0xff},
	bench.ActStart: {0x00, 0x80, 0x30, 0xff},
}

func markColor(kind string) color.RGBA {
	if c, ok := markColors[kind]; ok {
		return c
	}
	return color.RGBA{0x55, 0x55, 0x99, 0xff}
}

// Phase strip fills (drawn at the top of a time chart) and the drain shading.
var (
	bandFill  = map[string]color.RGBA{"observation": {0xDC, 0xEA, 0xF6, 0xff}, "drain": {0xE4, 0xE4, 0xE4, 0xff}, "publishing": {0xFB, 0xE3, 0xCF, 0xff}}
	drainTint = color.RGBA{0, 0, 0, 0x0c}
	saveColor = color.RGBA{0x44, 0x44, 0x44, 0xff}
)

// persistencePlot, backlogPlot, latencyPlot and comparePlot are the PNGs of
// the shared chart definitions (plot.go), which report.html draws too.
func persistencePlot(r *runPlots, s *bench.Summary) (*plot.Plot, error) {
	return pngPlot(persistenceChart(r, s))
}

func backlogPlot(r *runPlots) (*plot.Plot, error) { return pngPlot(backlogChart(r)) }

func latencyPlot(r *runPlots) (*plot.Plot, error) { return pngPlot(latencyChart(r)) }

func memoryPlot(r *runPlots) (*plot.Plot, error) { return pngPlot(memoryChart(r)) }

func comparePlot(runs []compareRun) (*plot.Plot, error) { return pngPlot(compareChart(runs)) }

// pngPlot draws a chart with gonum. The legend is kept in p.Legend but drawn
// by savePNG beside the plot area, never over the data.
func pngPlot(ch chart) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = ch.Title
	p.Title.TextStyle.Font.Size = vg.Points(titleSize)
	p.Title.Padding = vg.Points(10)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = vg.Points(labelSize)
		a.Tick.Label.Font.Size = vg.Points(tickSize)
		a.Width, a.Tick.Width, a.Tick.Length = vg.Points(1), vg.Points(1), vg.Points(7)
	}
	p.X.Label.Text, p.Y.Label.Text = ch.XLabel, ch.YLabel
	p.Legend.TextStyle.Font.Size = vg.Points(legendSize)
	p.Legend.ThumbnailWidth = vg.Points(44)
	p.Legend.Padding = vg.Points(6)
	p.Legend.Top, p.Legend.Left = true, true

	drawn := 0
	for _, s := range ch.Series {
		if len(s.XY) > 0 {
			drawn++
		}
	}
	if drawn == 0 {
		// Nothing to scale the axes by; the chart's title says what is missing.
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
		p.Add(plotter.NewGrid())
		return p, nil
	}
	tm := &timeMarks{m: ch.Marks}
	if ch.X == axisSeconds {
		p.Add(&drainShade{m: ch.Marks})
	}
	grid := plotter.NewGrid()
	grid.Vertical.Color, grid.Horizontal.Color = color.Gray{0xd8}, color.Gray{0xd8}
	p.Add(grid)
	n := len(ch.Series)
	for i, s := range ch.Series {
		if len(s.XY) == 0 {
			continue
		}
		xy := lttb(s.XY, maxPlotPoints)
		if ch.Y == axisMillis {
			xy = log10Y(xy)
		}
		col := paletteColor(s.Style)
		if s.Kind == kindPoints {
			sc, err := plotter.NewScatter(xy)
			if err != nil {
				return nil, fmt.Errorf("plotting %s: %w", s.Label, err)
			}
			sc.Color, sc.Shape, sc.Radius = col, draw.CircleGlyph{}, vg.Points(5)
			p.Add(sc)
			p.Legend.Add(s.Label, sc)
			continue
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return nil, fmt.Errorf("plotting %s: %w", s.Label, err)
		}
		l.Color, l.Width = col, vg.Points(lineWidth)
		if s.Kind == kindStep {
			l.StepStyle = plotter.PostStep
		}
		if !ch.Compare {
			p.Add(l)
			p.Legend.Add(s.Label, l)
			continue
		}
		l.Width = vg.Points(compareWidth(i, n))
		for _, d := range compareDash(s.Style) {
			l.Dashes = append(l.Dashes, vg.Points(d))
		}
		mp := markerPoints(xy, s.Kind == kindStep, i, n)
		if len(xy) <= 12 && s.Kind == kindLine {
			// A few measured points (a trade-off sweep): mark the points
			// themselves, not evenly spaced positions along the line.
			mp = xy
		}
		m, err := plotter.NewScatter(mp)
		if err != nil {
			return nil, fmt.Errorf("plotting %s markers: %w", s.Label, err)
		}
		m.Color, m.Shape, m.Radius = col, compareShapes[s.Style%len(compareShapes)], vg.Points(5.5)
		p.Add(l, m)
		p.Legend.Add(s.Label, l, m)
	}
	if ch.X == axisSeconds {
		p.Add(tm)
		if len(ch.Marks.Saves) > 0 {
			p.Legend.Add("save detected", saveThumb{})
		}
	}
	switch ch.X {
	case axisInterval:
		p.X.Tick.Marker = valueTicks{kind: axisInterval}
		p.X.Min = 0
		p.X.Max *= 1.05
	case axisNines:
		p.X.Tick.Marker = ninesTicks{}
	case axisSeconds:
		p.X.Tick.Marker = valueTicks{kind: axisSeconds}
		if p.X.Min > 0 {
			p.X.Min = 0
		}
		for _, b := range ch.Marks.Bands {
			p.X.Max = math.Max(p.X.Max, b.To)
		}
	}
	switch ch.Y {
	case axisMillis:
		p.Y.Tick.Marker = log10Ticks{}
		p.Y.Min, p.Y.Max = math.Floor(p.Y.Min), math.Ceil(p.Y.Max)
	case axisBytes, axisCount, axisSecs:
		p.Y.Tick.Marker = valueTicks{kind: ch.Y}
		p.Y.Min = 0
		if p.Y.Max <= 0 {
			p.Y.Max = 1
		}
		if ch.X == axisSeconds {
			// Room at the top for the phase strips.
			p.Y.Max *= 1.18
		} else {
			p.Y.Max *= 1.05
		}
	}
	return p, nil
}

// compareShapes are the markers of overlaid runs, one shape per run.
var compareShapes = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{}, draw.RingGlyph{}, draw.PlusGlyph{}, draw.PyramidGlyph{}}

// markerPoints places a dozen markers along a series, shifted by run, so
// markers of overlaid runs do not sit on each other where the lines coincide.
func markerPoints(xy plotter.XYs, step bool, i, n int) plotter.XYs {
	const count = 12
	lo, hi := xy[0].X, xy[len(xy)-1].X
	if hi <= lo {
		return plotter.XYs{xy[0]}
	}
	var out plotter.XYs
	j := 0
	for k := 0; k < count; k++ {
		x := lo + (hi-lo)*(float64(k)+(float64(i)+0.5)/float64(n))/count
		for j+1 < len(xy) && xy[j+1].X <= x {
			j++
		}
		y := xy[j].Y
		if !step && j+1 < len(xy) && xy[j+1].X > xy[j].X {
			f := (x - xy[j].X) / (xy[j+1].X - xy[j].X)
			y += f * (xy[j+1].Y - xy[j].Y)
		}
		out = append(out, plotter.XY{X: x, Y: y})
	}
	return out
}

// valueTicks labels a linear axis from 0 in the unit it measures: sizes with
// HumanBytes (1000-based, as thresholds are written), counts with separators.
type valueTicks struct{ kind axisKind }

func (v valueTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := niceTicks(lo, hi, 6)
	for i := range ticks {
		if ticks[i].Label == "" {
			continue
		}
		switch val := ticks[i].Value; {
		case v.kind == axisBytes:
			ticks[i].Label = HumanBytes(val)
		case v.kind == axisSeconds:
		case val == math.Trunc(val):
			ticks[i].Label = groupInt(int64(val))
		}
	}
	return ticks
}

// niceTicks puts about want labelled ticks on [lo, hi] at a step of 1, 2, 2.5
// or 5 times a power of ten, with four minor ticks between labels: gonum's
// default labels as few as two values, too few to read a slide's axis by.
func niceTicks(lo, hi float64, want int) []plot.Tick {
	if !(hi > lo) || want < 1 {
		return []plot.Tick{{Value: lo, Label: strconv.FormatFloat(lo, 'g', -1, 64)}}
	}
	// A step a little under the even split is allowed, so a range just over
	// a round number (0 to 6.05 s) still gets a label per second.
	raw := 0.8 * (hi - lo) / float64(want)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	minor := step / 5
	decimals := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	if math.Abs(step/mag-2.5) < 1e-9 {
		decimals++
	}
	var t []plot.Tick
	for i := math.Ceil(lo / minor); i*minor <= hi+minor*1e-9; i++ {
		v := i * minor
		if math.Abs(v) < minor*1e-9 {
			v = 0
		}
		k := math.Round(v / step)
		if math.Abs(v-k*step) < minor*1e-6 {
			t = append(t, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
		} else {
			t = append(t, plot.Tick{Value: v})
		}
	}
	return t
}

// log10Y maps y to log10(y). The PNGs draw a log axis as a linear one over
// log10 values because gonum places a log axis's label by its linear midpoint,
// which pushes the plot area down.
func log10Y(xy plotter.XYs) plotter.XYs {
	out := make(plotter.XYs, len(xy))
	for i, p := range xy {
		out[i] = plotter.XY{X: p.X, Y: math.Log10(p.Y)}
	}
	return out
}

// log10Ticks labels a log10-mapped axis with the values: a major tick per
// decade, minor ticks at 2..9.
type log10Ticks struct{}

func (log10Ticks) Ticks(lo, hi float64) []plot.Tick {
	var t []plot.Tick
	for d := math.Floor(lo); d <= hi+1e-9; d++ {
		v := math.Pow(10, d)
		label := strconv.FormatFloat(v, 'f', max(0, int(-d)), 64)
		if d >= 0 {
			label = groupInt(int64(v))
		}
		t = append(t, plot.Tick{Value: d, Label: label})
		for k := 2.0; k <= 9; k++ {
			if m := d + math.Log10(k); m <= hi {
				t = append(t, plot.Tick{Value: m})
			}
		}
	}
	return t
}

// ninesTicks labels the nines axis in percent.
type ninesTicks struct{}

func (ninesTicks) Ticks(lo, hi float64) []plot.Tick {
	var t []plot.Tick
	for i := math.Ceil(lo); i <= hi+1e-9; i++ {
		t = append(t, plot.Tick{Value: i, Label: ninesLabel(i)})
	}
	return t
}

// ninesLabel is the percentile at x = -log10(1-p): 0, 90, 99, 99.9...
func ninesLabel(x float64) string {
	if x <= 0 {
		return "0"
	}
	return strconv.FormatFloat(100*(1-math.Pow(10, -x)), 'f', max(0, int(x)-2), 64)
}

// drainShade tints the drain phase over the whole plot height, behind the data.
type drainShade struct{ m marks }

func (d *drainShade) Plot(c draw.Canvas, p *plot.Plot) {
	for _, b := range d.m.Bands {
		if b.Label != "drain" {
			continue
		}
		x0, x1 := c.X(p.X.Norm(b.From)), c.X(p.X.Norm(b.To))
		c.SetColor(drainTint)
		c.Fill(rectPath(x0, c.Min.Y, x1, c.Max.Y))
	}
}

// timeMarks draws the phase strips along the top, action lines with their
// labels, and a tick along the bottom for every save.
type timeMarks struct{ m marks }

func (t *timeMarks) Plot(c draw.Canvas, p *plot.Plot) {
	sty := text.Style{Color: color.Black, Font: p.Legend.TextStyle.Font, Handler: p.Legend.TextStyle.Handler}
	sty.Font.Size = vg.Points(markSize)
	sty.YAlign = text.YCenter
	rowH := sty.Rectangle("Mg").Size().Y * 1.5
	pad := vg.Points(5)
	xOf := func(v float64) vg.Length { return c.X(p.X.Norm(v)) }
	clip := func(x vg.Length) vg.Length { return max(c.Min.X, min(c.Max.X, x)) }
	for _, b := range t.m.Bands {
		top := c.Max.Y - vg.Length(b.Row)*rowH
		x0, x1 := clip(xOf(b.From)), clip(xOf(b.To))
		c.SetColor(bandFill[b.Label])
		c.Fill(rectPath(x0, top-rowH+1, x1, top))
		// The label goes inside its strip; a phase too short for it is named
		// just after its strip, or just before it at the right edge.
		ls := sty
		x := x0 + pad
		if w := sty.Width(b.Label); x1-x0 < w+2*pad {
			x = x1 + pad
			if x1 >= c.Max.X-1 {
				ls.XAlign, x = text.XRight, x1-pad
			}
		}
		c.FillText(ls, vg.Point{X: x, Y: top - rowH/2}, b.Label)
	}
	// Action labels sit beside their line under the strips, horizontal so
	// they read on a slide; a label that would run into the previous one
	// drops a row.
	stripsBottom := c.Max.Y - 2*rowH
	var rowEnd []vg.Length
	for _, l := range t.m.Lines {
		x := xOf(l.X)
		if x < c.Min.X || x > c.Max.X {
			continue
		}
		ls := draw.LineStyle{Color: markColor(l.Kind), Width: vg.Points(2.5)}
		if _, ok := markColors[l.Kind]; !ok {
			ls.Dashes = []vg.Length{vg.Points(8), vg.Points(4)}
		}
		c.StrokeLine2(ls, x, c.Min.Y, x, stripsBottom)
		lt := sty
		lt.Color = markColor(l.Kind)
		w := lt.Width(l.Label)
		lx := x + pad
		if lx+w > c.Max.X {
			lt.XAlign, lx = text.XRight, x-pad
		}
		left := lx
		if lt.XAlign == text.XRight {
			left = lx - w
		}
		row := 0
		for row < len(rowEnd) && rowEnd[row] > left {
			row++
		}
		if row == len(rowEnd) {
			rowEnd = append(rowEnd, 0)
		}
		rowEnd[row] = left + w + pad
		y := stripsBottom - vg.Length(row)*rowH - rowH/2
		c.SetColor(color.NRGBA{0xff, 0xff, 0xff, 0xd8})
		c.Fill(rectPath(left-2, y-rowH/2+2, left+w+2, y+rowH/2-2))
		c.FillText(lt, vg.Point{X: lx, Y: y}, l.Label)
	}
	tick := vg.Points(11)
	for _, s := range t.m.Saves {
		x := xOf(s)
		if x < c.Min.X || x > c.Max.X {
			continue
		}
		c.StrokeLine2(draw.LineStyle{Color: saveColor, Width: vg.Points(2)}, x, c.Min.Y, x, c.Min.Y+tick)
	}
}

// saveThumb is the legend sample of the save ticks.
type saveThumb struct{}

func (saveThumb) Thumbnail(c *draw.Canvas) {
	x := (c.Min.X + c.Max.X) / 2
	c.StrokeLine2(draw.LineStyle{Color: saveColor, Width: vg.Points(2)}, x, c.Min.Y, x, c.Max.Y)
}

func rectPath(x0, y0, x1, y1 vg.Length) vg.Path {
	var r vg.Path
	r.Move(vg.Point{X: x0, Y: y0})
	r.Line(vg.Point{X: x1, Y: y0})
	r.Line(vg.Point{X: x1, Y: y1})
	r.Line(vg.Point{X: x0, Y: y1})
	r.Close()
	return r
}

// savePNG draws p at the slide geometry with its legend in a column to the
// right of the plot area, aligned with the data, and writes it atomically.
func savePNG(p *plot.Plot, path string) error {
	c := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI))
	dc := draw.New(c)
	margin := vg.Points(14)
	dc = draw.Crop(dc, margin, -margin, margin, -margin)
	leg := p.Legend
	p.Legend = plot.NewLegend()
	lw := leg.Rectangle(dc).Size().X
	gap := vg.Points(18)
	plotC := dc
	if lw > 0 {
		plotC = draw.Crop(dc, 0, -(lw + gap), 0, 0)
	}
	p.Draw(plotC)
	if lw > 0 {
		data := p.DataCanvas(plotC)
		legC := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: plotC.Max.X + gap, Y: data.Min.Y},
			Max: vg.Point{X: dc.Max.X, Y: data.Max.Y},
		}}
		leg.Draw(legC)
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeFileAtomic(path, buf.Bytes())
}
