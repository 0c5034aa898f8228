package reports

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/runfile"
)

// HTML files written beside report.md and compare.md.
const (
	ReportHTML  = "report.html"
	CompareHTML = "compare.html"
)

// uplotVersion is the embedded uPlot (reports/assets/uplot/README.md says how
// it was obtained); the page footer names it because the file carries it.
const uplotVersion = "1.6.32"

// The pages are single files that work offline: the charting library, the
// page script, the styles and the data are all inlined, nothing is fetched.
//
//go:embed assets/uplot/uPlot.iife.min.js assets/uplot/uPlot.min.css assets/report.js assets/report.css assets/page.html.tmpl
var assetFS embed.FS

type htmlAssets struct {
	uplotJS, uplotCSS, js, css string
	tmpl                       *template.Template
}

// pageAssets reads the embedded files and parses the template once, on first
// use, so a broken asset is an error of the render, not a panic at start-up.
var pageAssets = sync.OnceValues(func() (*htmlAssets, error) {
	a := &htmlAssets{}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"uplot/uPlot.iife.min.js", &a.uplotJS}, {"uplot/uPlot.min.css", &a.uplotCSS}, {"report.js", &a.js}, {"report.css", &a.css}} {
		b, err := assetFS.ReadFile("assets/" + f.name)
		if err != nil {
			return nil, fmt.Errorf("reading embedded %s: %w", f.name, err)
		}
		*f.dst = string(b)
	}
	t, err := template.ParseFS(assetFS, "assets/page.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("parsing the embedded page template: %w", err)
	}
	a.tmpl = t
	return a, nil
})

// htmlPage is what page.html.tmpl renders. Every string is escaped by
// html/template; only inline() builds markup, and only from escaped text.
type htmlPage struct {
	Title, Heading, Intro string
	Facts                 []template.HTML
	Warnings              []string
	Findings              []string
	Notes                 []string
	Charts                []chartJSON
	Tables                []htmlTable
	Sections              []htmlSection
	Data                  pageData
	UPlotVersion          string
	UPlotJS, JS           template.JS
	UPlotCSS, CSS         template.CSS
}

type htmlTable struct {
	Caption, Note string
	Header        []string
	Rows          [][]template.HTML
}

type htmlSection struct {
	Title, PreTitle string
	Intro           template.HTML
	Pre             []string
	Items           []template.HTML
}

// pageData is inlined as JSON and drawn by report.js. FormatSamples are values
// formatted by the Go formatters: report.js checks its own formatters against
// them and reports a mismatch as a page error, so the page cannot label an
// axis differently from report.md (HumanBytes stays the owner of byte units).
type pageData struct {
	Charts        []chartJSON         `json:"charts"`
	FormatSamples map[string][][2]any `json:"formatSamples"`
}

type chartJSON struct {
	ID     string       `json:"id"`
	Title  string       `json:"title"`
	XLabel string       `json:"xLabel"`
	YLabel string       `json:"yLabel"`
	X      axisKind     `json:"x"`
	Y      axisKind     `json:"y"`
	Series []seriesJSON `json:"series"`
	Marks  marksJSON    `json:"marks"`
}

type seriesJSON struct {
	Label string     `json:"label"`
	Color string     `json:"color"`
	Width float64    `json:"width"`
	Dash  []float64  `json:"dash,omitempty"`
	Kind  seriesKind `json:"kind"`
	X     []float64  `json:"x"`
	Y     []float64  `json:"y"`
}

type marksJSON struct {
	Bands     []bandJSON `json:"bands"`
	Lines     []lineJSON `json:"lines"`
	Saves     []float64  `json:"saves"`
	SaveColor string     `json:"saveColor"`
	DrainTint string     `json:"drainTint"`
}

type bandJSON struct {
	From  float64 `json:"from"`
	To    float64 `json:"to"`
	Label string  `json:"label"`
	Row   int     `json:"row"`
	Color string  `json:"color"`
}

type lineJSON struct {
	X      float64 `json:"x"`
	Label  string  `json:"label"`
	Color  string  `json:"color"`
	Dashed bool    `json:"dashed"`
}

// chartData converts a chart for the page: each series downsampled with LTTB
// and rounded (milliseconds of time, whole bytes and messages), because the
// page is meant to stay small for a long run.
func chartData(ch chart) chartJSON {
	// Series is [] rather than null when nothing was sampled: the page
	// iterates it.
	out := chartJSON{ID: ch.ID, Title: ch.Title, XLabel: ch.XLabel, YLabel: ch.YLabel, X: ch.X, Y: ch.Y, Series: []seriesJSON{}}
	n := len(ch.Series)
	for i, s := range ch.Series {
		if len(s.XY) == 0 {
			continue
		}
		xy := lttb(s.XY, maxPlotPoints)
		sj := seriesJSON{Label: s.Label, Color: hexColor(paletteColor(s.Style)), Width: 2, Kind: s.Kind,
			X: make([]float64, len(xy)), Y: make([]float64, len(xy))}
		if ch.Compare {
			sj.Width = math.Round((1+compareWidth(i, n)*0.6)*10) / 10
			sj.Dash = compareDash(s.Style)
		}
		for j, p := range xy {
			sj.X[j], sj.Y[j] = roundAxis(ch.X, p.X), roundAxis(ch.Y, p.Y)
		}
		out.Series = append(out.Series, sj)
	}
	m := ch.Marks
	out.Marks = marksJSON{Bands: []bandJSON{}, Lines: []lineJSON{}, Saves: []float64{},
		SaveColor: hexColor(saveColor), DrainTint: cssColor(drainTint)}
	for _, b := range m.Bands {
		out.Marks.Bands = append(out.Marks.Bands, bandJSON{From: roundAxis(axisSeconds, b.From), To: roundAxis(axisSeconds, b.To),
			Label: b.Label, Row: b.Row, Color: hexColor(bandFill[b.Label])})
	}
	for _, l := range m.Lines {
		_, solid := markColors[l.Kind]
		out.Marks.Lines = append(out.Marks.Lines, lineJSON{X: roundAxis(axisSeconds, l.X), Label: l.Label, Color: hexColor(markColor(l.Kind)), Dashed: !solid})
	}
	for _, s := range m.Saves {
		out.Marks.Saves = append(out.Marks.Saves, roundAxis(axisSeconds, s))
	}
	return out
}

// roundAxis keeps the precision an axis can show: time to the millisecond,
// nines to 1/1000, sizes and counts whole, latency to four significant digits.
func roundAxis(k axisKind, v float64) float64 {
	switch k {
	case axisSeconds, axisNines:
		return math.Round(v*1000) / 1000
	case axisBytes, axisCount:
		return math.Round(v)
	}
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 4, 64), 64)
	if err != nil {
		return v
	}
	return r
}

func hexColor(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// cssColor writes a premultiplied colour as CSS rgba().
func cssColor(c color.RGBA) string {
	if c.A == 0 {
		return "rgba(0,0,0,0)"
	}
	un := func(v uint8) int { return int(math.Round(float64(v) * 255 / float64(c.A))) }
	return fmt.Sprintf("rgba(%d,%d,%d,%.3f)", un(c.R), un(c.G), un(c.B), float64(c.A)/255)
}

// formatSamples are the Go formatters' outputs for values report.js formats
// too (see pageData).
func formatSamples() map[string][][2]any {
	out := map[string][][2]any{}
	for _, v := range []float64{0, 999, 1000, 1500, 228117, 1e6, 1.5e6, 2_345_678, 3e9} {
		out["bytes"] = append(out["bytes"], [2]any{v, HumanBytes(v)})
	}
	for _, v := range []float64{0, 999, 1000, 1_234_567} {
		out["count"] = append(out["count"], [2]any{v, groupInt(int64(v))})
	}
	for _, v := range []float64{0, 1, 2, 3, 4, 5} {
		out["nines"] = append(out["nines"], [2]any{v, ninesLabel(v)})
	}
	return out
}

// inline renders the Markdown spans report.md's lines use (`code`, **bold**)
// as HTML, escaping everything else.
func inline(s string) template.HTML {
	var b strings.Builder
	for i, part := range strings.Split(s, "`") {
		if i%2 == 1 {
			b.WriteString("<code>" + template.HTMLEscapeString(part) + "</code>")
			continue
		}
		for j, bp := range strings.Split(part, "**") {
			if j%2 == 1 {
				b.WriteString("<strong>" + template.HTMLEscapeString(bp) + "</strong>")
			} else {
				b.WriteString(template.HTMLEscapeString(bp))
			}
		}
	}
	return template.HTML(b.String())
}

func inlineRows(rows [][]string) [][]template.HTML {
	out := make([][]template.HTML, len(rows))
	for i, r := range rows {
		for _, c := range r {
			out[i] = append(out[i], inline(c))
		}
	}
	return out
}

// writePage renders a page with the embedded assets and writes it atomically.
func writePage(path string, p *htmlPage) error {
	a, err := pageAssets()
	if err != nil {
		return err
	}
	p.UPlotVersion = uplotVersion
	p.UPlotJS, p.JS = template.JS(a.uplotJS), template.JS(a.js)
	p.UPlotCSS, p.CSS = template.CSS(a.uplotCSS), template.CSS(a.css)
	p.Data.FormatSamples = formatSamples()
	var buf bytes.Buffer
	if err := a.tmpl.Execute(&buf, p); err != nil {
		return fmt.Errorf("rendering %s: %w", path, err)
	}
	return writeFileAtomic(path, buf.Bytes())
}

// writeReportHTML writes report.html: report.md's facts, findings and tables
// with the three charts drawn interactively from the same chart definitions
// as the PNGs.
func writeReportHTML(path string, run *bench.Run, plots *runPlots, s *bench.Summary) error {
	si, err := recordedScenario(&run.Header)
	if err != nil {
		return err
	}
	h := &run.Header
	lines := configLines(h, si)
	name := s.Scenario
	if name == "" {
		name = si.Name
	}
	p := &htmlPage{Title: "mqbench report: " + name, Heading: "mqbench report: " + name, Intro: strings.TrimSpace(si.Description)}
	status := "Run `" + h.RunID + "`, started " + h.Start.UTC().Format("2006-01-02 15:04:05 UTC") + ", status **" + s.Status + "**"
	if s.Tainted {
		status += " (**tainted**)"
	}
	broker := strings.TrimSpace(h.BrokerKind + " " + h.BrokerVersion)
	if broker == "" {
		broker = "unknown"
	}
	if h.BrokerAddr != "" {
		broker += " at `" + h.BrokerAddr + "`"
	}
	rec := "Recorded by mqbench " + h.MQBench + " (" + h.GoVersion + ") on " + h.Host
	if h.TimeScale != 0 && h.TimeScale != 1 {
		rec += fmt.Sprintf(", time scale %g", h.TimeScale)
	}
	p.Facts = []template.HTML{inline(status), inline("Broker: " + broker), inline(rec)}
	for _, l := range []string{clusterLine(h), shardLine(h), mergedLine(h)} {
		if l != "" {
			p.Facts = append(p.Facts, inline(l))
		}
	}
	p.Warnings = Warnings(s)
	p.Findings = findings(run, s, plots.exp)
	p.Notes = s.Notes
	for _, ch := range []chart{persistenceChart(plots, s), backlogChart(plots), latencyChart(plots), memoryChart(plots)} {
		p.Charts = append(p.Charts, chartData(ch))
	}
	p.Tables = append(p.Tables, htmlTable{Caption: "Summary", Header: []string{"metric", "value", "key"}, Rows: inlineRows(summaryCells(s))})
	if len(s.Subscribers) > 0 {
		var rows [][]string
		for _, sub := range s.Subscribers {
			rows = append(rows, []string{"`" + sub.Client + "`", groupInt(sub.Expected), groupInt(sub.Delivered),
				groupInt(sub.HeldAtEnd), groupInt(sub.Dropped), groupInt(sub.Lost), groupInt(sub.Duplicates), groupInt(sub.Reordered)})
		}
		p.Tables = append(p.Tables, htmlTable{Caption: "Per subscriber", Note: "expected = delivered + held at end + dropped + lost",
			Header: []string{"subscriber", "expected", "delivered", "held at end", "dropped", "lost", "duplicates", "reordered"}, Rows: inlineRows(rows)})
	}
	brokersHTML(p, h, plots, s)
	p.Data.Charts = p.Charts
	// The same words as report.md's settings, from the same helpers.
	settings := htmlSection{Title: "Settings", PreTitle: configTitle(s), Pre: lines}
	if s.BrokerConfigSource == runfile.ConfigUnknown {
		settings.Intro = inline(unknownConfigText)
	}
	if len(lines) == 0 {
		settings.Items = append(settings.Items, "Broker configuration: none recorded (broker defaults).")
	}
	for _, l := range publishersLine(si) {
		settings.Items = append(settings.Items, inline("Publishers: "+l))
	}
	for _, l := range subscribersLine(si) {
		settings.Items = append(settings.Items, inline("Subscribers: "+l))
	}
	p.Sections = []htmlSection{settings}
	return writePage(path, p)
}

// writeCompareHTML writes compare.html: compare.md's tables and the runs'
// file sizes overlaid in one interactive chart.
func writeCompareHTML(path string, runs []compareRun, header []string, rows [][]string) error {
	p := &htmlPage{Title: "mqbench comparison", Heading: "mqbench comparison"}
	for _, r := range runs {
		p.Facts = append(p.Facts, inline(r.label+": `"+r.dir+"` (run `"+r.s.RunID+"`)"))
		for _, w := range Warnings(&r.s) {
			p.Warnings = append(p.Warnings, r.label+": "+w)
		}
	}
	p.Charts = []chartJSON{chartData(compareChart(runs))}
	for _, ch := range tradeoffCharts(compareTradeoff(runs)) {
		p.Charts = append(p.Charts, chartData(ch))
	}
	p.Data.Charts = p.Charts
	th, tc := tradeoffTable(compareTradeoff(runs))
	p.Tables = []htmlTable{
		{Caption: "Runs", Header: header, Rows: inlineRows(rows), Note: compareNote},
		{Caption: "Autosave trade-off", Header: th, Rows: inlineRows(tc), Note: tradeoffNote},
	}
	return writePage(path, p)
}
