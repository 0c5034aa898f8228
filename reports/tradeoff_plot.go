package reports

import (
	"math"
	"sort"

	"gonum.org/v1/plot/plotter"
)

// The autosave trade-off drawn: the autosave interval on the x axis against
// what it costs in disk writes and what it risks in unsaved messages, one line
// per broker, so an operator reads the interval off a slide.
const (
	CompareTradeoffDiskPNG     = "compare-tradeoff-disk.png"
	CompareTradeoffExposurePNG = "compare-tradeoff-exposure.png"
)

// Axis kinds of the trade-off charts.
const (
	axisInterval axisKind = "interval" // an autosave interval, seconds
	axisSecs     axisKind = "secs"     // a duration in seconds, from 0
)

// tradeoffCharts are the two trade-off charts, or none when fewer than two
// runs have a known trade-off at a timed autosave interval (a comparison of
// other things, or of external brokers without a sampled file).
func tradeoffCharts(rows []TradeoffRow) []chart {
	type point struct{ x, disk, exposure float64 }
	byBroker := map[string][]point{}
	n := 0
	for _, r := range rows {
		if !r.Known || math.IsNaN(r.AutosaveSeconds) {
			continue
		}
		byBroker[r.Broker] = append(byBroker[r.Broker], point{r.AutosaveSeconds, r.BytesWrittenPerMin, float64(r.ExposureMaxNS) / 1e9})
		n++
	}
	if n < 2 {
		return nil
	}
	brokers := make([]string, 0, len(byBroker))
	for b := range byBroker {
		brokers = append(brokers, b)
	}
	sort.Strings(brokers)
	disk := chart{ID: "compare-tradeoff-disk", Title: "autosave trade-off: disk written per minute",
		XLabel: "autosave interval (s)", YLabel: "bytes written per minute", X: axisInterval, Y: axisBytes, Compare: true}
	exp := chart{ID: "compare-tradeoff-exposure", Title: "autosave trade-off: longest time an acknowledged message was only in memory",
		XLabel: "autosave interval (s)", YLabel: "exposure (s)", X: axisInterval, Y: axisSecs, Compare: true}
	for i, b := range brokers {
		pts := byBroker[b]
		sort.Slice(pts, func(i, j int) bool { return pts[i].x < pts[j].x })
		var d, e plotter.XYs
		for _, p := range pts {
			d = append(d, plotter.XY{X: p.x, Y: p.disk})
			e = append(e, plotter.XY{X: p.x, Y: p.exposure})
		}
		disk.Series = append(disk.Series, series{Label: b, XY: d, Kind: kindLine, Style: i})
		exp.Series = append(exp.Series, series{Label: b, XY: e, Kind: kindLine, Style: i})
	}
	return []chart{disk, exp}
}
