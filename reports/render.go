package reports

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/runfile"
)

// ReportFile is the Markdown report written into a run directory.
const ReportFile = "report.md"

// Render re-derives everything from the run's event file and writes
// summary.json, report.md, report.html and the three plots next to it. dir is a run
// directory or an events file. It is idempotent: rendering an old run with
// newer code replaces only these generated files.
func Render(dir string) (*bench.Summary, error) {
	run, s, plots, err := readRun(dir)
	if err != nil {
		return nil, err
	}
	out := run.Dir
	if err := writeSummaryJSON(filepath.Join(out, bench.SummaryFile), &s); err != nil {
		return nil, err
	}
	pp, err := persistencePlot(plots, &s)
	if err != nil {
		return nil, err
	}
	bp, err := backlogPlot(plots)
	if err != nil {
		return nil, err
	}
	lp, err := latencyPlot(plots)
	if err != nil {
		return nil, err
	}
	mp, err := memoryPlot(plots)
	if err != nil {
		return nil, err
	}
	if err := savePNG(mp, filepath.Join(out, MemoryPNG)); err != nil {
		return nil, err
	}
	if err := savePNG(pp, filepath.Join(out, PersistencePNG)); err != nil {
		return nil, err
	}
	if err := savePNG(bp, filepath.Join(out, BacklogPNG)); err != nil {
		return nil, err
	}
	if err := savePNG(lp, filepath.Join(out, LatencyPNG)); err != nil {
		return nil, err
	}
	if err := writeBrokerPlots(out, plots, &s); err != nil {
		return nil, err
	}
	md, err := reportMarkdown(run, plots.exp, &s)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(out, ReportFile), []byte(md)); err != nil {
		return nil, err
	}
	if err := writeReportHTML(filepath.Join(out, ReportHTML), run, plots, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// writeSummaryJSON writes the summary indented, the form baselines are kept in.
func writeSummaryJSON(path string, s *bench.Summary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// reportMarkdown builds report.md: what ran, with which settings, what it
// found in words, the numbers, and the plots.
func reportMarkdown(run *bench.Run, x bench.Experiments, s *bench.Summary) (string, error) {
	si, err := recordedScenario(&run.Header)
	if err != nil {
		return "", err
	}
	h := &run.Header
	lines := configLines(h, si)
	var b strings.Builder
	name := s.Scenario
	if name == "" {
		name = si.Name
	}
	fmt.Fprintf(&b, "# mqbench report: %s\n\n", name)
	if si.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(si.Description))
	}
	fmt.Fprintf(&b, "- Run: `%s`, started %s, status **%s**", h.RunID, h.Start.UTC().Format("2006-01-02 15:04:05 UTC"), s.Status)
	if s.Tainted {
		b.WriteString(" (**tainted**)")
	}
	b.WriteString("\n")
	broker := strings.TrimSpace(h.BrokerKind + " " + h.BrokerVersion)
	if broker == "" {
		broker = "unknown"
	}
	fmt.Fprintf(&b, "- Broker: %s", broker)
	if h.BrokerAddr != "" {
		fmt.Fprintf(&b, " at `%s`", h.BrokerAddr)
	}
	b.WriteString("\n")
	for _, l := range []string{clusterLine(h), shardLine(h), mergedLine(h)} {
		if l != "" {
			b.WriteString("- " + l + "\n")
		}
	}
	fmt.Fprintf(&b, "- Recorded by mqbench %s (%s) on %s", h.MQBench, h.GoVersion, h.Host)
	if h.TimeScale != 0 && h.TimeScale != 1 {
		fmt.Fprintf(&b, ", time scale %g", h.TimeScale)
	}
	b.WriteString("\n\n")

	b.WriteString("## Settings\n\n")
	if s.BrokerConfigSource == runfile.ConfigUnknown {
		b.WriteString(unknownConfigText + "\n\n")
	}
	if len(lines) > 0 {
		b.WriteString(configTitle(s) + ":\n\n```\n")
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		b.WriteString("```\n\n")
	} else {
		b.WriteString("Broker configuration: none recorded (broker defaults).\n\n")
	}
	if pl := publishersLine(si); len(pl) > 0 {
		b.WriteString("Publishers:\n\n")
		for _, l := range pl {
			b.WriteString("- " + l + "\n")
		}
		b.WriteString("\n")
	}
	if sl := subscribersLine(si); len(sl) > 0 {
		b.WriteString("Subscribers:\n\n")
		for _, l := range sl {
			b.WriteString("- " + l + "\n")
		}
		b.WriteString("\n")
	}

	b.WriteString("## Findings\n\n")
	for _, f := range findings(run, s, x) {
		b.WriteString("- " + f + "\n")
	}
	if len(s.Notes) > 0 {
		b.WriteString("\nNotes from the summary (how the numbers were derived):\n\n")
		for _, n := range s.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	b.WriteString("\n## Summary\n\n")
	b.WriteString(summaryMarkdown(s))
	if len(s.Subscribers) > 0 {
		b.WriteString("\nPer subscriber (expected = delivered + held at end + dropped + lost):\n\n")
		b.WriteString(subscriberMarkdown(s))
		b.WriteString(aclMarkdown(s))
	}
	b.WriteString(brokersMarkdown(h, s))
	b.WriteString("\n## Plots\n\n")
	fmt.Fprintf(&b, "![persistence file size](%s)\n\n", PersistencePNG)
	fmt.Fprintf(&b, "![backlog](%s)\n\n", BacklogPNG)
	fmt.Fprintf(&b, "![latency](%s)\n\n", LatencyPNG)
	fmt.Fprintf(&b, "![memory](%s)\n", MemoryPNG)
	return b.String(), nil
}

func subscriberMarkdown(s *bench.Summary) string {
	// The ACL column appears only in runs whose ACL held something back.
	acl := false
	for _, sub := range s.Subscribers {
		acl = acl || sub.DeniedByACL > 0
	}
	var rows [][]string
	for _, sub := range s.Subscribers {
		row := []string{"`" + sub.Client + "`", groupInt(sub.Expected), groupInt(sub.Delivered),
			groupInt(sub.HeldAtEnd), groupInt(sub.Dropped), groupInt(sub.Lost), groupInt(sub.Duplicates), groupInt(sub.Reordered)}
		if acl {
			row = append(row, groupInt(sub.DeniedByACL))
		}
		rows = append(rows, row)
	}
	head := []string{"subscriber", "expected", "delivered", "held at end", "dropped", "lost", "duplicates", "reordered"}
	if acl {
		head = append(head, "denied by ACL")
	}
	return renderTable(true, head, rows)
}

// findings turns the summary into sentences a reader can act on. Every
// sentence is computed from the numbers and only said when it is true.
func findings(run *bench.Run, s *bench.Summary, x bench.Experiments) []string {
	var f []string
	if s.Status != "" && s.Status != "ok" {
		why := ""
		if run.Footer != nil && run.Footer.Error != "" {
			why = ": " + run.Footer.Error
		}
		f = append(f, fmt.Sprintf("The run ended with status %q%s; the numbers cover only what was recorded.", s.Status, why))
	}
	if s.Tainted {
		reason := "unexpected disconnects or client errors"
		if len(s.TaintReasons) > 0 {
			reason = strings.Join(s.TaintReasons, "; ")
		}
		f = append(f, "The run was disturbed: "+reason+". Its numbers may not describe the broker alone.")
	}
	expected := int64(0)
	for _, sub := range s.Subscribers {
		expected += sub.Expected
	}
	if expected == 0 {
		expected = s.Acked
	}
	switch {
	case s.Drops.Source == "unknown" && s.Acked > 0:
		f = append(f, "How many messages the broker dropped is unknown: no $SYS drop counter was received.")
	case s.DroppedByBroker > 0:
		f = append(f, dropFinding(s, expected, limitsFor(&run.Header)))
	case s.Acked > 0 && s.Drops.Stale:
		f = append(f, fmt.Sprintf("The broker's $SYS drop counter showed no drop, but it was last updated %.1f s before the end, before the last publish (it may be stale): drops after that are unknown.", float64(s.Drops.AgeAtEndNS)/1e9))
	case s.Acked > 0:
		f = append(f, "The broker dropped no message (its $SYS counter).")
	}
	if s.Acked > 0 {
		f = append(f, accountingFinding(s, expected))
	}
	if s.Lost > 0 {
		f = append(f, lostFinding(s))
	}
	if s.Duplicates > 0 {
		f = append(f, fmt.Sprintf("Subscribers received %s duplicate %s.", groupInt(s.Duplicates), plural(s.Duplicates, "delivery", "deliveries")))
	}
	if c := crashFinding(s); c != "" {
		f = append(f, c)
	}
	f = append(f, persistFindings(s)...)
	// The MQTT 5 persistence experiments: a pass of its own over the events
	// (bench.Experiments, x), not part of the summary.
	f = append(f, experimentFindings(run, s, x)...)
	return f
}

// dropFinding names the limit that caused the drops: the configured value or
// Mosquitto's default, because the drops are what the file size really measures.
func dropFinding(s *bench.Summary, expected int64, q queueLimits) string {
	head := fmt.Sprintf("The broker dropped %s of %s messages (%.1f%%, %s)", groupInt(s.DroppedByBroker), groupInt(expected), percentOf(s.DroppedByBroker, expected), dropSource(s))
	if !q.Known {
		return head + ", because of its queue limits, whose values are unknown (an external broker's configuration is not recorded)."
	}
	def := func(d bool) string {
		if d {
			return " (Mosquitto's default)"
		}
		return ""
	}
	if q.MaxQueued == 0 && !q.QueuedBytesSet {
		return head + "; max_queued_messages is 0 (unlimited), so the drops come from another limit."
	}
	msg := fmt.Sprintf("%s because of max_queued_messages %d%s", head, q.MaxQueued, def(q.QueuedDefault))
	if q.QueuedBytesSet {
		msg += fmt.Sprintf(" and max_queued_bytes %d", q.MaxQueuedBytes)
	}
	if q.MaxQueued > 0 && q.MaxInflight > 0 {
		msg += fmt.Sprintf(": with max_inflight_messages %d%s a subscriber is held at most %s messages (%s in flight + %s queued) and every further message is dropped for it",
			q.MaxInflight, def(q.InflightDefault), groupInt(q.MaxQueued+q.MaxInflight), groupInt(q.MaxInflight), groupInt(q.MaxQueued))
	}
	return msg + "."
}

// persistFindings says how the file behaved: how often it was saved, and
// whether its size is explained by the backlog with no message stored twice.
func persistFindings(s *bench.Summary) []string {
	var f []string
	p := &s.Persist
	if !p.Sampled && p.Saves == 0 && p.MaxBytes == 0 {
		return []string{notSampledText}
	}
	if p.Saves == 0 {
		msg := fmt.Sprintf("No save was detected during the run (autosave_interval %s).", formatAutosave(p.AutosaveInterval))
		if p.MaxBytes > 0 {
			msg = fmt.Sprintf("No save was detected during the run (autosave_interval %s); the file stayed at most %s.", formatAutosave(p.AutosaveInterval), formatBytes(p.MaxBytes))
		}
		if t := tradeoffFinding(s); t != "" {
			return []string{msg, t}
		}
		return []string{msg}
	}
	msg := fmt.Sprintf("The broker saved %s %s", groupInt(int64(p.Saves)), plural(int64(p.Saves), "time", "times"))
	if p.MeanSavePeriodNS > 0 {
		msg += ", on average every " + formatNS(p.MeanSavePeriodNS)
	}
	msg += fmt.Sprintf(" (autosave_interval %s); the file peaked at %s and its final size was %s (%s).", formatAutosave(p.AutosaveInterval), formatBytes(p.MaxBytes), formatBytes(p.FinalBytes), finalSourceText(p))
	f = append(f, msg)
	if t := tradeoffFinding(s); t != "" {
		f = append(f, t)
	}
	if p.MaxHeldDeliveries > p.MaxStoredMessages && p.MaxStoredMessages > 0 {
		f = append(f, fmt.Sprintf("A save held at most %s distinct %s (stored once) and %s %s for clients (one per subscriber and message).",
			groupInt(p.MaxStoredMessages), plural(p.MaxStoredMessages, "message", "messages"), groupInt(p.MaxHeldDeliveries), plural(p.MaxHeldDeliveries, "delivery", "deliveries")))
	}
	if p.FirstMinuteGrowthBytes >= 0 {
		// The seed experiment's measure, so its 27,842 bytes can be set against this run.
		f = append(f, fmt.Sprintf("In the first minute after publishing started the file grew by %s (the seed experiment reported 27,842 bytes on Mosquitto 1.4.15, whose queue limit kept only 120 messages).", formatBytes(p.FirstMinuteGrowthBytes)))
	}
	if p.DuplicateStoresSeen > 0 {
		f = append(f, fmt.Sprintf("A save stored %s %s twice: the file did contain duplicated data.",
			groupInt(p.DuplicateStoresSeen), plural(p.DuplicateStoresSeen, "message", "messages")))
		return f
	}
	if slope, ok := linearInHeld(p); ok {
		fixed := ""
		if p.FixedBytes != 0 {
			fixed = ", " + groupFloat(p.FixedBytes, 0) + " fixed"
		}
		f = append(f, fmt.Sprintf("Each save rewrote the whole file: the size tracks the backlog (%s bytes per held delivery%s), no message was stored twice.",
			groupFloat(slope, 0), fixed))
	}
	return f
}

// linearInHeld reports whether every decoded save's size is the fixed part plus
// a constant per held message (within 5% or 256 bytes), over at least two
// different backlog sizes: the evidence that a save is a full snapshot.
func linearInHeld(p *bench.Persist) (float64, bool) {
	slope, fixed := p.BytesPerHeldMessage, p.FixedBytes
	if slope <= 0 {
		return 0, false
	}
	held := map[int64]bool{}
	for _, sp := range p.SavePoints {
		if !sp.Decoded {
			continue
		}
		held[sp.Held] = true
		want := fixed + slope*float64(sp.Held)
		if math.Abs(float64(sp.SizeBytes)-want) > math.Max(0.05*want, 256) {
			return 0, false
		}
	}
	return slope, len(held) >= 2
}

// formatSecs renders an event time as seconds since publishing started, the
// time axis of the plots.
func formatSecs(t int64, s *bench.Summary) string {
	zero := s.Phases["run"]
	return fmt.Sprintf("%.1f s", float64(t-zero)/1e9)
}
