package reports

import (
	"fmt"
	"math"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/runfile"
)

// Findings about where messages went, the persistence file and a crash, in
// words computed from the summary. Every number said traces to the events: a
// value the events cannot give (an external broker's settings, a file that
// was not sampled, a drop counter that never arrived) is said to be unknown.

// unknownConfigText heads the settings of an external broker: the scenario's
// broker section was not applied to it, and its own is not recorded.
const unknownConfigText = "The broker is external: mqbench did not start it and cannot apply the scenario's broker settings, so its real configuration (autosave, queue limits) is **unknown**."

// notSampledText replaces the persistence findings when no file was sampled,
// so a missing --db never reads as "the broker did not save".
const notSampledText = "The persistence file was not sampled (persistence off, or an external broker without --db): saves, file sizes and the autosave trade-off are unknown."

// configTitle names whose settings the config block shows.
func configTitle(s *bench.Summary) string {
	switch s.BrokerConfigSource {
	case runfile.ConfigUnknown:
		return "The scenario's broker section (not applied to this broker)"
	case runfile.ConfigFromFile:
		return "Broker configuration (from the broker's own file)"
	}
	return "Broker configuration"
}

// dropSource says where the drop count comes from and how fresh it is.
func dropSource(s *bench.Summary) string {
	if s.Drops.Source == "unknown" {
		return "no $SYS drop counter"
	}
	if s.Drops.Stale {
		return "$SYS, " + staleText(s)
	}
	return "$SYS"
}

// staleText says why a $SYS count may be short.
func staleText(s *bench.Summary) string {
	return fmt.Sprintf("may be stale: last update %.1f s before the end", float64(s.Drops.AgeAtEndNS)/1e9)
}

// droppedValue is dropped_by_broker as a table cell: unknown, or the count
// with its source.
func droppedValue(s *bench.Summary) string {
	if s.Drops.Source == "unknown" {
		return "unknown"
	}
	return groupInt(s.DroppedByBroker) + " (" + dropSource(s) + ")"
}

// accountingFinding is the reconciliation in one sentence.
func accountingFinding(s *bench.Summary, expected int64) string {
	were := func(n int64) string { return groupInt(n) + " " + plural(n, "was", "were") }
	are := func(n int64) string { return groupInt(n) + " " + plural(n, "is", "are") }
	dropped := fmt.Sprintf("%s dropped by it (%s)", were(s.DroppedByBroker), dropSource(s))
	lost := fmt.Sprintf("%s lost", were(s.Lost))
	switch {
	case s.Drops.Source == "unknown":
		dropped = "an unknown number were dropped by it"
		lost = fmt.Sprintf("%s unaccounted for (lost, or dropped uncounted)", are(s.Lost))
	case s.Drops.Stale && s.Lost > 0:
		lost = fmt.Sprintf("%s unaccounted for (lost, or dropped after the counter's last update)", are(s.Lost))
	}
	msg := fmt.Sprintf("Of %s %s expected by subscribers, %s delivered during the run, %s still held by the broker at the end, %s%s and %s.",
		groupInt(expected), plural(expected, "message", "messages"), were(s.Delivered), were(s.HeldAtEnd), dropped, expiredPart(s), lost)
	// MQTT 5: the expiry and the reason codes are part of where messages went.
	for _, more := range []string{expiredFinding(s), reasonFindings(s)} {
		if more != "" {
			msg += " " + more
		}
	}
	return msg
}

// expiredPart is the accounting's clause for messages that may have expired.
func expiredPart(s *bench.Summary) string {
	if s.ExpiredOrLost == 0 {
		return ""
	}
	return fmt.Sprintf(", %s %s expired or lost", groupInt(s.ExpiredOrLost), plural(s.ExpiredOrLost, "was", "were"))
}

// lostFinding explains the lost count, and what it may hide when the drop
// counter cannot be trusted to the end.
func lostFinding(s *bench.Summary) string {
	switch {
	case s.Drops.Source == "unknown":
		return fmt.Sprintf("%s %s not accounted for: acknowledged by the broker, never delivered and not held at the end. Without the broker's drop counter it cannot be told whether its queue limits dropped them or they were lost.",
			groupInt(s.Lost), plural(s.Lost, "message is", "messages are"))
	case s.Drops.Stale:
		return fmt.Sprintf("%s %s not accounted for: acknowledged by the broker, never delivered and not held at the end. The broker's $SYS drop counter was last updated %.1f s before the end, before the last publish (it may be stale), so they may have been dropped by its queue limits rather than lost.",
			groupInt(s.Lost), plural(s.Lost, "message is", "messages are"), float64(s.Drops.AgeAtEndNS)/1e9)
	}
	return fmt.Sprintf("%s %s lost: acknowledged by the broker but never delivered, not held at the end and not counted as dropped.",
		groupInt(s.Lost), plural(s.Lost, "message was", "messages were"))
}

// finalSourceText says which observation the final size is.
func finalSourceText(p *bench.Persist) string {
	switch p.FinalSource {
	case bench.FinalStop:
		return "the broker's final save after the clean stop"
	case bench.FinalWindowEnd:
		return "the file at the end of the observation window, before the drain"
	}
	return "the last sample"
}

// finalSourceShort is finalSourceText for a table label.
func finalSourceShort(p *bench.Persist) string {
	switch p.FinalSource {
	case bench.FinalStop:
		return "final save"
	case bench.FinalWindowEnd:
		return "window end"
	}
	return "last sample"
}

// tradeoffFinding is the autosave trade-off of the run in one sentence:
// what the saves cost the disk against how long acknowledged messages were
// only in memory.
func tradeoffFinding(s *bench.Summary) string {
	p := &s.Persist
	if !p.Sampled || p.BytesWritten == nil || p.ExposureMaxNS == nil {
		return ""
	}
	msg := fmt.Sprintf("Autosave trade-off: the saves wrote %s to disk", formatBytes(*p.BytesWritten))
	if p.BytesWrittenPerMin != nil {
		msg += fmt.Sprintf(" (%s per minute)", optBytesF(p.BytesWrittenPerMin))
	}
	msg += fmt.Sprintf("; an acknowledged message was held only in memory for up to %s", formatNS(*p.ExposureMaxNS))
	if p.PredictedCrashLoss != nil && p.MaxSaveGapNS != nil {
		msg += fmt.Sprintf(", so a crash at this run's rate (%s) at the end of the longest stretch of publishing without a save (%s) could lose up to %s %s",
			formatRate(s.Publish.MsgsPerS), formatNS(*p.MaxSaveGapNS), groupInt(*p.PredictedCrashLoss), plural(*p.PredictedCrashLoss, "message", "messages"))
	}
	return msg + "."
}

// crashFinding sets what a kill lost against what the last save predicted,
// with one definition of each and the cause of their difference, and says
// how the run's lost count relates to the crash's.
func crashFinding(s *bench.Summary) string {
	c := s.Crash
	if c == nil {
		if s.LostInCrash == 0 {
			return ""
		}
		return fmt.Sprintf("The crash lost %s %s: acknowledged before the kill, never received by anyone.",
			groupInt(s.LostInCrash), plural(s.LostInCrash, "message", "messages"))
	}
	var pred string
	switch c.PredictedFrom {
	case "decoded_save":
		pred = fmt.Sprintf("the last save before it (at %s) held %s of them, so %s were only in memory: predicted loss %s",
			formatSecs(c.LastSaveT, s), groupInt(c.SavedUnconsumed), groupInt(c.PredictedLost), groupInt(c.PredictedLost))
	case "save_time":
		pred = fmt.Sprintf("%s of them were acknowledged after the last save was detected (at %s): predicted loss %s",
			groupInt(c.UnconsumedAtKill-c.SavedUnconsumed), formatSecs(c.LastSaveT, s), groupInt(c.PredictedLost))
	default:
		pred = fmt.Sprintf("no save had happened before it: predicted loss %s", groupInt(c.PredictedLost))
	}
	msg := fmt.Sprintf("The broker was killed at %s (autosave_interval %s) holding %s acknowledged %s no subscriber had consumed yet; %s. It lost %s",
		formatSecs(c.KillT, s), formatAutosave(s.Persist.AutosaveInterval), groupInt(c.UnconsumedAtKill), plural(c.UnconsumedAtKill, "message", "messages"),
		pred, groupInt(c.ActualLost))
	switch d := c.Difference; {
	case d == 0:
		msg += ", exactly as predicted."
	default:
		msg += fmt.Sprintf(" (%+d against the prediction: %s).", d, differenceCause(c))
	}
	if other := s.Lost - s.LostInCrash; other != 0 {
		msg += fmt.Sprintf(" The run's lost count (%s) differs from the crash's by %+d: %s", groupInt(s.Lost), other, otherLossCause(s, other))
	}
	return msg
}

// differenceCause names what the events say about a crash's loss differing
// from its prediction.
func differenceCause(c *bench.CrashSummary) string {
	var parts []string
	if c.Difference > 0 && c.DroppedBeforeKill > 0 {
		parts = append(parts, fmt.Sprintf("%s dropped by the broker's queue limits before the kill ($SYS)", groupInt(min(c.Difference, c.DroppedBeforeKill))))
	}
	switch u := c.Unexplained; {
	case u > 0 && u <= c.StoredConsumedMax:
		parts = append(parts, fmt.Sprintf("the save counted up to %s already consumed %s (delivered, QoS 2 handshake with the subscriber not complete, so still stored), which cannot be lost again",
			groupInt(c.StoredConsumedMax), plural(c.StoredConsumedMax, "message", "messages")))
	case u > 0 && c.PredictedFrom == "save_time":
		parts = append(parts, fmt.Sprintf("%s acknowledged before the save was detected but after its snapshot was taken (the save was not decoded)", groupInt(u)))
	case u > 0:
		parts = append(parts, fmt.Sprintf("%s held by the save but not delivered after the restart", groupInt(u)))
	case u < 0:
		parts = append(parts, fmt.Sprintf("%s survived although the save did not hold them (acknowledged by the broker just before it died and written in its last moments, or resent by the publisher)", groupInt(-u)))
	}
	if len(parts) == 0 {
		return "no cause recorded"
	}
	out := parts[0]
	for _, p := range parts[1:] {
		out += "; " + p
	}
	return out
}

// otherLossCause explains lost - lost_in_crash: lost counts per subscriber
// over the whole run, the crash only messages acknowledged up to the kill.
func otherLossCause(s *bench.Summary, other int64) string {
	if other > 0 {
		return fmt.Sprintf("%s %s acknowledged after the kill began (or lost outside the crash) never arrived.", groupInt(other), plural(other, "message", "messages"))
	}
	return fmt.Sprintf("%s of the crash's lost %s counted as dropped by the broker instead.", groupInt(-other), plural(-other, "message is", "messages are"))
}

// Optional values of the summary (null in summary.json when unknown) as cells.
func optBytes(v *int64) string {
	if v == nil {
		return "unknown"
	}
	return formatBytes(*v)
}

func optBytesF(v *float64) string {
	if v == nil {
		return "unknown"
	}
	return formatBytes(int64(math.Round(*v)))
}

func optNS(v *int64) string {
	if v == nil {
		return "unknown"
	}
	return formatNS(*v)
}

func optInt(v *int64) string {
	if v == nil {
		return "unknown"
	}
	return groupInt(*v)
}
