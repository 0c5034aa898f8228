package reports

import (
	"fmt"
	"strings"

	"github.com/mqbench/mqbench/bench"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// summaryRow is one line of the summary table. Key is the summary.json path of
// the value, shown so people learn the names thresholds and baselines use.
type summaryRow struct {
	Label, Value, Key string
}

// summaryRows lists what a run measured, in reading order: what ran, where the
// messages went, how fast, what the persistence file did, what it cost.
func summaryRows(s *bench.Summary) []summaryRow {
	status := s.Status
	if s.Tainted {
		status += " (TAINTED)"
	}
	broker := strings.TrimSpace(s.BrokerKind + " " + s.BrokerVersion)
	rows := []summaryRow{
		{"scenario", s.Scenario, "scenario"},
		{"broker", broker, "broker_kind"},
		{"status", status, "status"},
		{"duration", formatNS(s.DurationNS), "duration_ns"},
		{"published", groupInt(s.Published), "published"},
		{"acknowledged by broker", groupInt(s.Acked), "acked"},
		{"delivered", groupInt(s.Delivered), "delivered"},
		{"held by broker at end", groupInt(s.HeldAtEnd), "held_at_end"},
		{"dropped by broker", droppedValue(s), "dropped_by_broker"},
		{"lost", groupInt(s.Lost), "lost"},
		{"duplicates", groupInt(s.Duplicates), "duplicates"},
		{"reordered", groupInt(s.Reordered), "reordered"},
	}
	if s.LostInCrash != 0 {
		rows = append(rows, summaryRow{"lost in crash", groupInt(s.LostInCrash), "lost_in_crash"})
	}
	rows = append(rows,
		summaryRow{"publish rate", formatRate(s.Publish.MsgsPerS), "publish.msgs_per_s"},
		summaryRow{"delivery rate", formatRate(s.Deliver.MsgsPerS), "deliver.msgs_per_s"},
		summaryRow{"publish→ack p50 / p99 / max", latencyTriple(s.Latency.PublishToAck), "latency.publish_to_ack.p99_ns"},
		summaryRow{"publish→delivery (window) p50 / p99 / max", latencyTriple(s.Latency.PublishToDelivery), "latency.publish_to_delivery.p99_ns"},
	)
	if s.Latency.DrainDelivery.Count > 0 {
		rows = append(rows, summaryRow{"publish→delivery (drain) p50 / p99 / max", latencyTriple(s.Latency.DrainDelivery), "latency.drain_delivery.p99_ns"})
	}
	rows = append(rows, summaryRow{"autosave interval", formatAutosave(s.Persist.AutosaveInterval), "persist.autosave_interval"})
	if !s.Persist.Sampled {
		rows = append(rows, summaryRow{"persistence file", "not sampled", "persist.sampled"})
		return append(rows, processRows(s)...)
	}
	rows = append(rows, summaryRow{"saves detected", groupInt(int64(s.Persist.Saves)), "persist.saves"})
	if s.Persist.MeanSavePeriodNS > 0 {
		rows = append(rows, summaryRow{"mean save period", formatNS(s.Persist.MeanSavePeriodNS), "persist.mean_save_period_ns"})
	}
	rows = append(rows,
		summaryRow{"max file size", formatBytes(s.Persist.MaxBytes), "persist.max_bytes"},
		summaryRow{"final file size (" + finalSourceShort(&s.Persist) + ")", formatBytes(s.Persist.FinalBytes), "persist.final_bytes"},
	)
	if s.Persist.MaxStoredMessages > 0 || s.Persist.MaxHeldDeliveries > 0 {
		rows = append(rows,
			summaryRow{"messages stored in a save (distinct), max", groupInt(s.Persist.MaxStoredMessages), "persist.max_stored_messages"},
			summaryRow{"deliveries held in a save (per client), max", groupInt(s.Persist.MaxHeldDeliveries), "persist.max_held_deliveries"},
		)
	}
	if s.Persist.BytesPerHeldMessage != 0 {
		rows = append(rows,
			summaryRow{"bytes per held delivery", groupFloat(s.Persist.BytesPerHeldMessage, 1), "persist.bytes_per_held_message"},
			summaryRow{"fixed bytes", groupFloat(s.Persist.FixedBytes, 0), "persist.fixed_bytes"},
		)
	}
	rows = append(rows, summaryRow{"messages stored twice in a save", groupInt(s.Persist.DuplicateStoresSeen), "persist.duplicate_stores_seen"})
	if g := s.Persist.FirstMinuteGrowthBytes; g >= 0 {
		rows = append(rows, summaryRow{"file growth in the first minute", formatBytes(g), "persist.first_minute_growth_bytes"})
	}
	p := &s.Persist
	rows = append(rows,
		summaryRow{"bytes written by saves", optBytes(p.BytesWritten), "persist.bytes_written"},
		summaryRow{"bytes written per minute", optBytesF(p.BytesWrittenPerMin), "persist.bytes_written_per_min"},
		summaryRow{"longest publishing without a save", optNS(p.MaxSaveGapNS), "persist.max_save_gap_ns"},
		summaryRow{"exposure (longest only in memory)", optNS(p.ExposureMaxNS), "persist.exposure_max_ns"},
		summaryRow{"predicted worst-case crash loss", optInt(p.PredictedCrashLoss), "persist.predicted_crash_loss"},
	)
	rows = append(rows, connRows(s)...)
	return append(rows, processRows(s)...)
}

// connRows are the connection rows: how fast the clients connected and what
// each connection cost (absent for runs recorded before connects were timed).
func connRows(s *bench.Summary) []summaryRow {
	c := s.Connections
	if c == nil {
		return nil
	}
	perConn := func(v *float64) string {
		if v == nil {
			return "unknown"
		}
		return formatBytes(int64(*v)) + " per connection"
	}
	return []summaryRow{
		{"connections open at once (peak)", groupInt(c.Peak), "connections.peak"},
		{"connect rate", groupFloat(c.PerS, 0) + " /s", "connections.per_s"},
		{"connect p50 / p99 / max", latencyTriple(c.Connect), "connections.connect_p99_ns"},
		{"mqbench memory per connection", perConn(s.Bench.BytesPerConnection), "bench.bytes_per_connection"},
		{"broker memory per connection", perConn(s.BrokerProcess.BytesPerConnection), "broker_process.bytes_per_connection"},
	}
}

// processRows are the resource rows: the broker process and mqbench itself.
func processRows(s *bench.Summary) []summaryRow {
	var rows []summaryRow
	if s.BrokerProcess.MaxRSSBytes > 0 || s.BrokerProcess.CPUSeconds > 0 {
		rows = append(rows,
			summaryRow{"broker max RSS", formatBytes(s.BrokerProcess.MaxRSSBytes), "broker_process.max_rss_bytes"},
			summaryRow{"broker CPU", fmt.Sprintf("%.2f s", s.BrokerProcess.CPUSeconds), "broker_process.cpu_seconds"},
		)
	}
	if s.Bench.MaxRSSBytes > 0 || s.Bench.CPUSeconds > 0 {
		rows = append(rows,
			summaryRow{"mqbench max RSS", formatBytes(s.Bench.MaxRSSBytes), "bench.max_rss_bytes"},
			summaryRow{"mqbench CPU", fmt.Sprintf("%.2f s", s.Bench.CPUSeconds), "bench.cpu_seconds"},
		)
	}
	return rows
}

func latencyTriple(l bench.Latency) string {
	if l.Count == 0 {
		return "-"
	}
	return formatNS(l.P50) + " / " + formatNS(l.P99) + " / " + formatNS(l.Max)
}

// SummaryTable is the run's summary as a terminal table: one row per metric with
// its summary.json key, so the numbers people read are the names they check.
func SummaryTable(s *bench.Summary) string {
	return renderTable(false, []string{"metric", "value", "key"}, summaryCells(s))
}

// summaryMarkdown is the same table for report.md.
func summaryMarkdown(s *bench.Summary) string {
	return renderTable(true, []string{"metric", "value", "key"}, summaryCells(s))
}

func summaryCells(s *bench.Summary) [][]string {
	var out [][]string
	for _, r := range summaryRows(s) {
		out = append(out, []string{r.Label, r.Value, "`" + r.Key + "`"})
	}
	return out
}

// renderTable draws a table with tablewriter, as text or Markdown. Header cells
// are kept as written (no auto upper-casing) so keys stay copy-pasteable.
func renderTable(markdown bool, header []string, rows [][]string) string {
	var b strings.Builder
	opts := []tablewriter.Option{
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
	}
	if markdown {
		opts = append(opts, tablewriter.WithRenderer(renderer.NewMarkdown()))
	}
	t := tablewriter.NewTable(&b, opts...)
	t.Header(header)
	for _, r := range rows {
		if !markdown {
			r = stripBackticks(r)
		}
		// Append only fails on rows it cannot convert; ours are strings.
		_ = t.Append(r)
	}
	_ = t.Render()
	return b.String()
}

func stripBackticks(r []string) []string {
	out := make([]string, len(r))
	for i, c := range r {
		out[i] = strings.ReplaceAll(c, "`", "")
	}
	return out
}

// Warnings lists what must not be missed about a run, loudly and in plain words:
// messages the broker dropped, messages lost or duplicated, a save that stored a
// message twice, a disturbed or unfinished run. Empty means nothing alarming.
func Warnings(s *bench.Summary) []string {
	var w []string
	if s.Status != "" && s.Status != "ok" {
		w = append(w, fmt.Sprintf("run status %q: the run did not finish normally, its numbers are partial", s.Status))
	}
	if s.Tainted {
		reason := "unexpected disturbance"
		if len(s.TaintReasons) > 0 {
			reason = strings.Join(s.TaintReasons, "; ")
		}
		w = append(w, "run TAINTED: "+reason)
	}
	if s.DroppedByBroker > 0 {
		w = append(w, fmt.Sprintf("the broker DROPPED %s of %s acknowledged messages (queue limits, its $SYS counter): the file size measures the limit, not the backlog",
			groupInt(s.DroppedByBroker), groupInt(s.Acked)))
	}
	switch {
	case s.Lost > 0 && (s.Drops.Source == "unknown" || s.Drops.Stale):
		w = append(w, fmt.Sprintf("%s %s UNACCOUNTED FOR: acknowledged by the broker, never delivered, not held; the broker's drop counter is %s, so they may have been dropped rather than lost",
			groupInt(s.Lost), plural(s.Lost, "message", "messages"), map[bool]string{true: "missing", false: "stale"}[s.Drops.Source == "unknown"]))
	case s.Lost > 0:
		w = append(w, fmt.Sprintf("%s %s LOST: acknowledged by the broker, never delivered, not held, not counted as dropped",
			groupInt(s.Lost), plural(s.Lost, "message", "messages")))
	}
	if s.LostInCrash > 0 {
		w = append(w, fmt.Sprintf("%s %s acknowledged before the broker was killed never reached any subscriber",
			groupInt(s.LostInCrash), plural(s.LostInCrash, "message", "messages")))
	}
	if s.Duplicates > 0 {
		w = append(w, fmt.Sprintf("%s duplicate %s delivered", groupInt(s.Duplicates), plural(s.Duplicates, "delivery", "deliveries")))
	}
	if s.Persist.DuplicateStoresSeen > 0 {
		w = append(w, fmt.Sprintf("a save stored %s %s twice", groupInt(s.Persist.DuplicateStoresSeen), plural(s.Persist.DuplicateStoresSeen, "message", "messages")))
	}
	return w
}
