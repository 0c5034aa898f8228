package reports

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/mqbench/mqbench/bench"
)

// Findings of the MQTT 5 persistence experiments: when expired messages and
// an expired session's backlog leave the file, and what a restart keeps of a
// shared subscription's backlog. Each is computed from the saves the sampler
// decoded and the experiment pass (bench.Experiments), and only said when the
// run holds what it needs: a run without a save on each side of the instant
// says so rather than guess.

// brokerClock is the slack of Mosquitto's whole-second clock: an expiry set
// at second s with interval n is checked against later whole seconds, so
// it takes effect up to a second after the nominal instant.
const brokerClock = int64(time.Second)

// experimentFindings are the experiment findings for this run, if any.
func experimentFindings(run *bench.Run, s *bench.Summary, x bench.Experiments) []string {
	var f []string
	for _, g := range x.Expiring {
		if m := messageExpiryFinding(s, g, x.Away); m != "" {
			f = append(f, m)
		}
	}
	for _, a := range x.Away {
		if m := sessionExpiryFinding(s, a); m != "" {
			f = append(f, m)
		}
	}
	if x.Restart != nil {
		if m := restartFinding(s, x.Restart); m != "" {
			f = append(f, m)
		}
		if m := savedSharesFinding(run, x.Restart); m != "" {
			f = append(f, m)
		}
	}
	return f
}

// decodedSaves are the saves whose contents were decoded, in time order.
func decodedSaves(s *bench.Summary) []bench.SavePoint {
	var out []bench.SavePoint
	for _, sp := range s.Persist.SavePoints {
		if sp.Decoded {
			out = append(out, sp)
		}
	}
	return out
}

// lastSaveBefore is the last decoded save before t.
func lastSaveBefore(saves []bench.SavePoint, t int64) (bench.SavePoint, bool) {
	var best bench.SavePoint
	ok := false
	for _, sp := range saves {
		if sp.T < t {
			best, ok = sp, true
		}
	}
	return best, ok
}

// firstSaveFrom is the first decoded save at or after t for which keep holds.
func firstSaveFrom(saves []bench.SavePoint, t int64, keep func(bench.SavePoint) bool) (bench.SavePoint, bool) {
	for _, sp := range saves {
		if sp.T >= t && keep(sp) {
			return sp, true
		}
	}
	return bench.SavePoint{}, false
}

// saveText describes a save: when, and what it held.
func saveText(sp bench.SavePoint, s *bench.Summary) string {
	return fmt.Sprintf("at %s: %s %s, %s %s stored, %s", formatSecs(sp.T, s),
		groupInt(sp.Held), plural(sp.Held, "delivery", "deliveries"), groupInt(sp.Stored), plural(sp.Stored, "message", "messages"), formatBytes(sp.SizeBytes))
}

// messageExpiryFinding says whether the file shrank at the first save after
// group g's messages expired, and when the held count first fell by them.
func messageExpiryFinding(s *bench.Summary, g bench.ExpiringAcks, away []bench.AwaySession) string {
	saves := decodedSaves(s)
	if len(saves) == 0 {
		return ""
	}
	head := fmt.Sprintf("Message expiry in the file: %s's %s %s with a %s expiry were acknowledged from %s to %s, so they expired from %s and all had by %s (the broker's whole-second clock adds up to 1 s).",
		g.Group, groupInt(g.Acked), plural(g.Acked, "message", "messages"), secsText(g.ExpiryNS), formatSecs(g.FirstAckT, s), formatSecs(g.LastAckT, s),
		formatSecs(g.FirstAckT+g.ExpiryNS, s), formatSecs(g.LastAckT+g.ExpiryNS+brokerClock, s))
	allGone := g.LastAckT + g.ExpiryNS + brokerClock
	before, okB := lastSaveBefore(saves, g.FirstAckT+g.ExpiryNS)
	if !okB || before.T < g.LastAckT {
		return head + " No decoded save between their acknowledgement and their expiry: whether the file held them is unknown."
	}
	after, okA := firstSaveFrom(saves, allGone, func(bench.SavePoint) bool { return true })
	if !okA {
		return head + fmt.Sprintf(" The last save before the expiry (%s); no save came after it: whether the file shrank is unknown.", saveText(before, s))
	}
	msg := head + fmt.Sprintf(" The last save before the expiry (%s) and the first after it (%s): ", saveText(before, s), saveText(after, s))
	switch {
	case after.Held <= before.Held-g.Acked:
		msg += fmt.Sprintf("the file shrank by %s at the first save after the expiry.", formatBytes(before.SizeBytes-after.SizeBytes))
	case after.SizeBytes < before.SizeBytes:
		msg += fmt.Sprintf("the file shrank by %s, but by fewer deliveries than expired (%s fewer).", formatBytes(before.SizeBytes-after.SizeBytes), groupInt(before.Held-after.Held))
	default:
		msg += "the file did not shrink at the first save after the expiry: the broker still held the expired messages."
		fell, ok := firstSaveFrom(saves, allGone, func(sp bench.SavePoint) bool { return sp.Held <= before.Held-g.Acked })
		if ok {
			msg += fmt.Sprintf(" The held count first fell by at least the %s expiring messages at the save %s", groupInt(g.Acked), saveText(fell, s))
			if back := returnedBetween(s, away, after.T, fell.T); back != "" {
				msg += ", after " + back
			}
			msg += "."
		} else {
			msg += " No later save held fewer deliveries by that many."
		}
	}
	if s.ExpiredOrLost > 0 {
		msg += fmt.Sprintf(" %s %s never delivered and counted expired or lost.", groupInt(s.ExpiredOrLost), plural(s.ExpiredOrLost, "message was", "messages were"))
	}
	return msg
}

// returnedBetween names the subscribers that reconnected between two
// instants ("away reconnected at 13.0 s"), "" if none.
func returnedBetween(s *bench.Summary, away []bench.AwaySession, from, to int64) string {
	var parts []string
	for _, a := range away {
		if a.ReconnectT > from && a.ReconnectT <= to {
			parts = append(parts, fmt.Sprintf("%s reconnected at %s", a.Client, formatSecs(a.ReconnectT, s)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, " and ")
}

// sessionExpiryFinding says when an expired session's backlog left the file.
func sessionExpiryFinding(s *bench.Summary, a bench.AwaySession) string {
	expiry := a.DisconnectT + a.ExpiryNS
	if a.ReconnectT >= 0 && a.ReconnectT < expiry+brokerClock {
		return "" // back before it could expire: nothing to say
	}
	saves := decodedSaves(s)
	if len(saves) == 0 || s.DurationNS < expiry {
		return ""
	}
	msg := fmt.Sprintf("Session expiry in the file: %s went away at %s with a %s Session Expiry Interval, so its session expired at %s (up to 1 s later on the broker's whole-second clock); %s %s acknowledged for it after it left.",
		a.Client, formatSecs(a.DisconnectT, s), secsText(a.ExpiryNS), formatSecs(expiry, s), groupInt(a.HeldFor), plural(a.HeldFor, "message was", "messages were"))
	before, ok := lastSaveBefore(saves, expiry)
	if !ok {
		return msg + " No decoded save before the expiry: what the file held for it is unknown."
	}
	msg += fmt.Sprintf(" The last save before the expiry (%s)", saveText(before, s))
	gone, ok := firstSaveFrom(saves, expiry, func(sp bench.SavePoint) bool { return sp.Held <= before.Held-a.HeldFor })
	if !ok {
		return msg + fmt.Sprintf("; no later save held %s fewer deliveries: its backlog did not leave the file during the run.", groupInt(a.HeldFor))
	}
	// The broker may expire the session up to a second after the nominal
	// instant, so a save in that second may rightly still hold it: the
	// question is whether the first save once it had certainly expired did.
	settled, okS := firstSaveFrom(saves, expiry+brokerClock, func(bench.SavePoint) bool { return true })
	if !okS || gone.T <= settled.T {
		msg += fmt.Sprintf("; the first save after the expiry no longer held its backlog (%s), %s after the expiry.", saveText(gone, s), secsText(gone.T-expiry))
	} else {
		msg += fmt.Sprintf("; the save %s, after the expiry, still held it; the first save without it (%s) came %s after the expiry.", saveText(settled, s), saveText(gone, s), secsText(gone.T-expiry))
	}
	if st, ok := firstSaveFrom(saves, expiry, func(sp bench.SavePoint) bool { return sp.Stored <= before.Stored-a.HeldFor }); ok && st.T != gone.T {
		msg += fmt.Sprintf(" Its messages left the stored records only at the save at %s.", formatSecs(st.T, s))
	}
	if a.ReceivedLater == 0 && a.HeldFor > 0 {
		msg += fmt.Sprintf(" None of the %s reached it: the broker discarded them with the session (counted lost).", groupInt(a.HeldFor))
	}
	return msg
}

// restartFinding says what the file held when the broker went down and, for
// each subscriber or share, which of its messages survived the restart.
func restartFinding(s *bench.Summary, r *bench.RestartSplit) string {
	// Only for runs whose subscribers were away across the restart or that
	// hold a share: a crash's loss has its own finding.
	show := false
	for _, e := range r.Entries {
		show = show || e.Shared || e.BackT >= 0
	}
	if !show {
		return ""
	}
	msg := fmt.Sprintf("Restart: the broker was %s at %s and started at %s.", map[string]string{bench.ActStop: "stopped", bench.ActKill: "killed"}[r.DownBy], formatSecs(r.DownT, s), formatSecs(r.StartT, s))
	if saves := decodedSaves(s); len(saves) > 0 {
		if sp, ok := lastSaveBefore(saves, r.StartT); ok {
			kind := "its last save before the restart"
			if r.DownBy == bench.ActStop && sp.T >= r.DownT {
				kind = "its final save on the stop"
			}
			msg += fmt.Sprintf(" The file at %s (%s) held %s %s for the sessions, %s %s stored, %s.", kind, formatSecs(sp.T, s),
				groupInt(sp.Held), plural(sp.Held, "delivery", "deliveries"), groupInt(sp.Stored), plural(sp.Stored, "message", "messages"), formatBytes(sp.SizeBytes))
		}
	}
	var lostShare, keptPlain []string
	for _, e := range r.Entries {
		if e.Before+e.Away+e.After == 0 {
			continue
		}
		msg += fmt.Sprintf(" %s: of %s acknowledged before the broker went down, %s %s received before it, %s after the restart and %s never",
			e.Name, groupInt(e.Before), groupInt(e.BeforeReceived), plural(e.BeforeReceived, "was", "were"), groupInt(e.BeforeSurvived), groupInt(e.Before-e.BeforeReceived-e.BeforeSurvived))
		if e.BackT >= 0 {
			msg += fmt.Sprintf("; of %s acknowledged after the start while it was away (until %s), %s %s received", groupInt(e.Away), formatSecs(e.BackT, s), groupInt(e.AwayReceived), plural(e.AwayReceived, "was", "were"))
			switch {
			case e.Away > 0 && e.AwayReceived == 0:
				lostShare = append(lostShare, e.Name)
			case e.Away > 0 && e.AwayReceived == e.Away:
				keptPlain = append(keptPlain, e.Name)
			}
		}
		msg += fmt.Sprintf("; of %s acknowledged after that, %s %s received.", groupInt(e.After), groupInt(e.AfterRecvd), plural(e.AfterRecvd, "was", "were"))
	}
	if len(lostShare) > 0 && len(keptPlain) > 0 {
		msg += fmt.Sprintf(" Messages published after the restart while everyone was away reached %s but not %s: the broker restored %s subscription from its file and not %s, whose members had to subscribe again.",
			strings.Join(keptPlain, ", "), strings.Join(lostShare, ", "), possessive(keptPlain), possessive(lostShare))
	}
	return msg
}

// secsText is a duration in seconds as the findings write it: "4 s", "1.29 s".
func secsText(ns int64) string {
	return strconv.FormatFloat(math.Round(float64(ns)/1e7)/100, 'f', -1, 64) + " s"
}

// possessive is "audit's" or "a's and b's".
func possessive(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + "'s"
	}
	return strings.Join(out, " and ")
}
