package reports

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mqbench/mqbench/bench"
	"gonum.org/v1/plot/plotter"
)

// A run with several brokers (an edge bridged to a core): the run's own
// charts and tables describe the first broker, as the summary's top level
// does; each broker gets its file-size chart (persistence-NAME.png) and a
// section, and the bridge its reconciliation.

// brokerPlots is one broker's file over time.
type brokerPlots struct {
	sizes []tpoint
	saves []bench.Event
}

// BrokerPersistencePNG is the file name of broker name's file-size chart.
func BrokerPersistencePNG(name string) string { return "persistence-" + name + ".png" }

// addBroker takes an event that names a broker: its file sizes and saves go
// to that broker's chart. It says whether the run's own charts take the event
// too: they draw the first broker's file and gauges, and every action.
func (p *runPlots) addBroker(e *bench.Event) bool {
	named := p.header.Named
	if len(named) == 0 {
		return true
	}
	if p.brokers == nil {
		p.brokers = map[string]*brokerPlots{}
	}
	b := p.brokers[e.Broker]
	if b == nil {
		b = &brokerPlots{}
		p.brokers[e.Broker] = b
	}
	switch {
	case e.Type == bench.EvGauge && e.Name == bench.GaugePersistBytes:
		b.sizes = append(b.sizes, tpoint{e.T, e.Value})
	case e.Type == bench.EvSave:
		b.saves = append(b.saves, *e)
	}
	return e.Type == bench.EvAction || e.Broker == named[0].Name
}

// brokerPersistenceChart: one broker's file size with its saves, on the
// run's time axis and with the run's marks, so the edge's growth lines up
// with the core's stop and start.
func brokerPersistenceChart(r *runPlots, name string, bs *bench.BrokerSummary) chart {
	b := r.brokers[name]
	if b == nil {
		b = &brokerPlots{}
	}
	var sizes, saves plotter.XYs
	for _, s := range b.sizes {
		sizes = append(sizes, plotter.XY{X: secs(s.t, r.zero), Y: s.v})
	}
	for _, e := range b.saves {
		saves = append(saves, plotter.XY{X: secs(e.T, r.zero), Y: float64(e.SizeBytes)})
	}
	autosave := "unknown"
	if bs != nil {
		autosave = bs.Persist.AutosaveInterval
	}
	m := runMarks(r)
	m.Saves = nil // the run's marks carry the first broker's saves: this broker's own instead
	for _, e := range b.saves {
		m.Saves = append(m.Saves, secs(e.T, r.zero))
	}
	c := chart{
		ID:     "persistence-" + name,
		Title:  "broker " + name + ": persistence file size (autosave_interval " + formatAutosave(autosave) + ")",
		XLabel: timeAxis, YLabel: "file size", X: axisSeconds, Y: axisBytes,
		Series: []series{
			{Label: "file size", XY: sizes, Kind: kindStep, Style: 0},
			{Label: "file size in save", XY: saves, Kind: kindPoints, Style: 1},
		},
		Marks: m,
	}
	if len(sizes) == 0 && len(saves) == 0 {
		c.Title += " (no file size sampled)"
	}
	return c
}

// writeBrokerPlots writes every broker's file-size chart into dir.
func writeBrokerPlots(dir string, r *runPlots, s *bench.Summary) error {
	for _, nb := range r.header.Named {
		pl, err := pngPlot(brokerPersistenceChart(r, nb.Name, s.Brokers[nb.Name]))
		if err != nil {
			return err
		}
		if err := savePNG(pl, filepath.Join(dir, BrokerPersistencePNG(nb.Name))); err != nil {
			return err
		}
	}
	return nil
}

// brokersMarkdown is the report's section on a run with several brokers:
// each broker's settings, file and drops, then the bridge reconciliation.
// Empty for one broker.
func brokersMarkdown(h *bench.Header, s *bench.Summary) string {
	if len(h.Named) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## Brokers\n\n")
	fmt.Fprintf(&b, "The tables and plots above describe broker %s, the first; every broker is here.\n", h.Named[0].Name)
	for _, nb := range h.Named {
		bs := s.Brokers[nb.Name]
		fmt.Fprintf(&b, "\n### %s: %s", nb.Name, strings.TrimSpace(nb.Kind+" "+nb.Version))
		if nb.Addr != "" {
			fmt.Fprintf(&b, " at `%s`", nb.Addr)
		}
		b.WriteString("\n\n")
		if len(nb.Config) > 0 {
			b.WriteString("```\n" + strings.Join(nb.Config, "\n") + "\n```\n\n")
		}
		if bs == nil {
			b.WriteString("No summary for this broker.\n")
			continue
		}
		rows := brokerRows(nb.Name, bs, s)
		b.WriteString(renderTable(true, []string{"metric", "value", "key"}, rows))
		fmt.Fprintf(&b, "\n![broker %s persistence file size](%s)\n", nb.Name, BrokerPersistencePNG(nb.Name))
	}
	if len(s.Bridge) > 0 {
		b.WriteString("\n### Across the bridge\n\n")
		b.WriteString("Messages the publishers on one broker had acknowledged for subscribers on another: acked = delivered + delivered in the drain + held at either end's last decoded save + dropped by either end + lost. What the subscribers did not get is explained in that order (held at the sending end, at the receiving end, dropped by the sending end, by the receiving end), never more than is missing; the rest is lost. Duplicates are second consumptions: what the bridge re-delivered after its link came back.\n\n")
		b.WriteString(renderTable(true, bridgeHeader, bridgeRows(s)))
	}
	return b.String()
}

// brokerRows are one broker's table in the report (markdown and HTML).
func brokerRows(name string, bs *bench.BrokerSummary, s *bench.Summary) [][]string {
	drops := groupInt(bs.DroppedByBroker) + " ($SYS)"
	if bs.Drops.Source != "$SYS" {
		drops = "unknown (no $SYS drop counter received)"
	}
	final := "unknown (no decoded save)"
	if fs := bs.FinalSave; fs != nil {
		final = fmt.Sprintf("%s held (%s queued, %s in flight), %s stored, %s, at %s",
			groupInt(fs.Held), groupInt(fs.Queued), groupInt(fs.Inflight), groupInt(fs.Stored), formatBytes(fs.SizeBytes), formatSecs(fs.T, s))
	}
	rows := [][]string{
		{"stops / starts / kills", fmt.Sprintf("%d / %d / %d", bs.Stops, bs.Starts, bs.Kills), ""},
		{"autosave interval", formatAutosave(bs.Persist.AutosaveInterval), "`persist.autosave_interval`"},
		{"saves detected", groupInt(int64(bs.Persist.Saves)), "`persist.saves`"},
		{"max file size", formatBytes(bs.Persist.MaxBytes), "`persist.max_bytes`"},
		{"deliveries held in a save, max", groupInt(bs.Persist.MaxHeldDeliveries), "`persist.max_held_deliveries`"},
		{"last decoded save", final, "`final_save`"},
		{"dropped by broker", drops, "`dropped_by_broker`"},
		{"broker max RSS", formatBytes(bs.MaxRSSBytes), "`max_rss_bytes`"},
	}
	for i := range rows {
		if rows[i][2] != "" {
			rows[i][2] = strings.Replace(rows[i][2], "`", "`brokers."+name+".", 1)
		}
	}
	return rows
}

// bridgeHeader and bridgeRows are the reconciliation across the bridges.
var bridgeHeader = []string{"bridge", "subscribers", "acked", "delivered", "in drain", "held from", "held to", "dropped from", "dropped to", "lost", "duplicates"}

func bridgeRows(s *bench.Summary) [][]string {
	var rows [][]string
	for _, f := range s.Bridge {
		rows = append(rows, []string{f.From + " → " + f.To, strings.Join(f.Subscribers, ", "),
			groupInt(f.Acked), groupInt(f.Delivered), groupInt(f.DeliveredInDrain), groupInt(f.HeldFrom), groupInt(f.HeldTo),
			groupInt(f.DroppedFrom), groupInt(f.DroppedTo), groupInt(f.Lost), groupInt(f.Duplicates)})
	}
	return rows
}

// bridgeNote says how the bridge table adds up.
const bridgeNote = "acked = delivered + in drain + held from + held to + dropped from + dropped to + lost"

// brokersHTML adds each broker's chart and table, and the bridge table, to
// report.html (nothing for one broker).
func brokersHTML(p *htmlPage, h *bench.Header, plots *runPlots, s *bench.Summary) {
	for _, nb := range h.Named {
		bs := s.Brokers[nb.Name]
		p.Charts = append(p.Charts, chartData(brokerPersistenceChart(plots, nb.Name, bs)))
		if bs == nil {
			continue
		}
		p.Tables = append(p.Tables, htmlTable{Caption: "Broker " + nb.Name + ": " + strings.TrimSpace(nb.Kind+" "+nb.Version),
			Header: []string{"metric", "value", "key"}, Rows: inlineRows(brokerRows(nb.Name, bs, s))})
	}
	if len(s.Bridge) > 0 {
		p.Tables = append(p.Tables, htmlTable{Caption: "Across the bridge", Note: bridgeNote, Header: bridgeHeader, Rows: inlineRows(bridgeRows(s))})
	}
}
