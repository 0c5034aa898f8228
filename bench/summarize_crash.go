package bench

import (
	"math/bits"
	"sort"
)

// CrashSummary accounts for a broker kill (SIGKILL action): what the last save
// before it could have kept, against what was really lost. Loss in a crash is
// the reason to tune autosave, so the prediction and the outcome sit side by
// side, each defined once, and their difference is split into its causes:
//
//	predicted_lost = unconsumed_at_kill - saved_unconsumed
//	actual_lost    = predicted_lost + difference
//	difference     = dropped_before_kill + unexplained
type CrashSummary struct {
	KillT int64 `json:"kill_t_ns"`
	// LastSaveT is the last save detected before the kill; SavedBeforeKill is
	// false when there was none (everything acked before the kill was at risk).
	LastSaveT       int64 `json:"last_save_t_ns"`
	SavedBeforeKill bool  `json:"saved_before_kill"`
	RestartT        int64 `json:"restart_t_ns,omitempty"` // first start action after the kill, 0 if none
	// AckedBeforeKill counts acknowledged publishes that some subscriber's
	// filter matched, acknowledged up to the kill. One acknowledged just
	// after the kill action began and never delivered is lost but not in the
	// crash: the report says how many (lost - lost_in_crash).
	AckedBeforeKill int64 `json:"acked_before_kill"`
	// UnconsumedAtKill counts those no subscriber had consumed at the kill:
	// everything the broker held, in memory or in its file.
	UnconsumedAtKill int64 `json:"unconsumed_at_kill"`
	// AckedSinceSave counts those acknowledged after the last save was
	// detected: what the save could not have held by its time.
	AckedSinceSave int64 `json:"acked_since_save"`
	// SavedUnconsumed is how many of the unconsumed messages the last save
	// held: its messages stored and held for a client (decoded) minus those
	// consumed between the save and the kill. Without a decoded save it is
	// UnconsumedAtKill minus the unconsumed ones acknowledged after the save.
	SavedUnconsumed int64 `json:"saved_unconsumed"`
	// PredictedFrom says how SavedUnconsumed was found: "decoded_save" (the
	// file's own contents), "save_time" (acknowledged before the save's
	// detection: the file was written slightly earlier, so this predicts a
	// little less loss), "no_save".
	PredictedFrom string `json:"predicted_from"`
	// PredictedLost is what only the broker's memory held at the kill:
	// UnconsumedAtKill - SavedUnconsumed.
	PredictedLost int64 `json:"predicted_lost"`
	// ActualLost counts messages in AckedBeforeKill that no subscriber ever
	// received (this is lost_in_crash).
	ActualLost int64 `json:"actual_lost"`
	// Difference is ActualLost - PredictedLost. DroppedBeforeKill (the
	// broker's drop counter up to the kill) is the part of it the broker
	// counted; Unexplained is the rest: messages the file held that the
	// restarted broker did not deliver (positive) or messages that survived
	// although the file did not hold them (negative).
	Difference        int64 `json:"difference"`
	DroppedBeforeKill int64 `json:"dropped_before_kill"`
	Unexplained       int64 `json:"unexplained"`
	// StoredConsumedMax bounds how many of the decoded save's stored messages
	// had already been consumed: a QoS 2 delivery whose handshake the
	// subscriber had not completed is consumed in the events and still stored
	// by the broker. It is the smaller of the save's in-flight deliveries and
	// the messages consumed before the save; an Unexplained of up to this many
	// is that, not a restore that lost messages.
	StoredConsumedMax int64 `json:"stored_consumed_max"`
}

// crashInput is what crashSummary needs from Summarize's passes.
type crashInput struct {
	killT, restartT int64
	saves           []SavePoint // sorted by time
	msgs            map[string]*pubMsgs
	relevant        map[string]bool
	dropped         []gaugePoint
	fromZero        bool // the drop counter started with the run
}

// crashSummary accounts for the first kill.
func crashSummary(in crashInput) *CrashSummary {
	c := &CrashSummary{KillT: in.killT, RestartT: in.restartT, PredictedFrom: "no_save"}
	var last *SavePoint
	for i := range in.saves {
		if in.saves[i].T <= in.killT {
			last = &in.saves[i]
		}
	}
	if last != nil {
		c.LastSaveT, c.SavedBeforeKill = last.T, true
		c.PredictedFrom = "save_time"
		if last.Decoded {
			c.PredictedFrom = "decoded_save"
		}
	}
	var consumedAfterSave int64 // acked by the save, first consumed between it and the kill
	var unconsumedSince int64   // unconsumed at the kill, acked after the save
	for pub, pm := range in.msgs {
		if in.relevant[pub] {
			crashCount(c, pm, last != nil, &consumedAfterSave, &unconsumedSince)
		}
	}
	if c.PredictedFrom != "decoded_save" {
		c.StoredConsumedMax = 0
	}
	switch c.PredictedFrom {
	case "decoded_save":
		// A message counts as saved for subscribers when the file stored it
		// and held a delivery of it: Mosquitto also stores messages still in
		// a publisher's QoS 2 handshake, not yet queued for anyone (and not
		// restored for a clean-session publisher). min(stored, held) is the
		// distinct messages with one subscriber and never above them with more.
		saved := min(last.Stored, last.Held)
		c.SavedUnconsumed = min(c.UnconsumedAtKill, max(0, saved-consumedAfterSave))
		c.StoredConsumedMax = min(c.StoredConsumedMax, last.Inflight)
	case "save_time":
		c.SavedUnconsumed = c.UnconsumedAtKill - unconsumedSince
	}
	c.PredictedLost = c.UnconsumedAtKill - c.SavedUnconsumed
	c.Difference = c.ActualLost - c.PredictedLost
	c.DroppedBeforeKill = int64(counterTotal(pointsUpTo(in.dropped, in.killT), in.fromZero))
	c.Unexplained = c.Difference - min(max(c.Difference, 0), c.DroppedBeforeKill)
	return c
}

// crashCount accounts for the acknowledged messages of a relevant publisher,
// 64 at a time, from the bits Add settled: acknowledged (first ack) by the
// kill and by the last save before it (saved: there was one), consumed ever,
// and first consumed by the kill and by that save.
func crashCount(c *CrashSummary, pm *pubMsgs, saved bool, consumedAfterSave, unconsumedSince *int64) {
	pop := func(w uint64) int64 { return int64(bits.OnesCount64(w)) }
	for base, k := range pm.ackedByKill.pages {
		s, g := pm.ackedBySave.page(base), pm.consumed.page(base)
		ck, cs := pm.consumedByKill.page(base), pm.consumedBySave.page(base)
		for i, kw := range k {
			afterSave := kw &^ s[i] // acknowledged after the save (all of them without one)
			unconsumed := kw &^ ck[i]
			c.AckedBeforeKill += pop(kw)
			c.ActualLost += pop(kw &^ g[i])
			c.AckedSinceSave += pop(afterSave)
			c.UnconsumedAtKill += pop(unconsumed)
			*unconsumedSince += pop(unconsumed & afterSave)
			*consumedAfterSave += pop(kw & s[i] & ck[i] &^ cs[i])
			if saved {
				c.StoredConsumedMax += pop(kw & cs[i])
			}
		}
	}
}

// pointsUpTo returns the samples taken at or before t (g is sorted by time).
func pointsUpTo(g []gaugePoint, t int64) []gaugePoint {
	n := sort.Search(len(g), func(i int) bool { return g[i].t > t })
	return g[:n]
}
