package bench

import (
	"sort"

	mqtopic "github.com/mqbench/mqbench/mqtt/topic"
	"github.com/mqbench/mqbench/runfile"
)

// The reconciliation at the end of the analysis: expected, held, dropped and
// lost per subscriber, the crash, persistence and process passes, status and
// taint, from what Add accumulated.

// Close ends the analysis: f is the footer (nil when the recording was cut
// short) and tail why reading stopped before one ("" if it did not).
func (z *Summarizer) Close(f *Footer, tail string) Summary {
	z.flushPending()
	s := &z.s
	sc := z.sc
	reasons := append(z.actionTaints, z.noteTaints...)
	taint := func(r string) { reasons = append(reasons, r) }
	note := z.note

	killT, restartT := z.killT, int64(0)
	if killT >= 0 {
		for _, t := range z.starts {
			if t >= killT && (restartT == 0 || t < restartT) {
				restartT = t
			}
		}
	}
	if z.kills > 1 {
		note("%d kill actions: crash accounting covers the first one", z.kills)
	}
	drainT, drained := z.drainT, z.drained
	subs, subOrder := z.subs, z.subOrder

	// Gauges and saves come from different goroutines; order them by time.
	gauges := z.gauges
	for _, g := range gauges {
		sort.SliceStable(g, func(i, j int) bool { return g[i].t < g[j].t })
	}
	persistBytes, dropped := gauges[GaugePersistBytes], gauges[GaugeDropped]
	saves := z.saves
	sort.SliceStable(saves, func(i, j int) bool { return saves[i].T < saves[j].T })

	// Counts and latency.
	firstPub, lastAck, lastT := z.firstPub, z.lastAck, z.lastT
	for _, pm := range z.msgs {
		s.Acked += pm.nAcked
	}
	s.Latency.PublishToAck = z.ackLat.latency()
	s.Latency.PublishToDelivery = z.dlvLat.latency()
	s.Latency.DrainDelivery = z.drainLat.latency()
	if firstPub >= 0 && lastAck > firstPub {
		s.Publish.DurationNS = lastAck - firstPub
		s.Publish.MsgsPerS = float64(s.Acked) / (float64(s.Publish.DurationNS) / 1e9)
	}

	// Expected per subscriber: acknowledged publishes whose topic its filter
	// matches and, with a security ACL, that the ACL lets through.
	acl, aclErr := z.acl, z.aclErr
	if aclErr != nil {
		note("the scenario's security.acl does not parse (%v): deliveries are judged without it", aclErr)
	}
	pubIDs := make([]string, 0, len(z.msgs))
	for p, pm := range z.msgs {
		if pm.nAcked > 0 {
			pubIDs = append(pubIDs, p)
		}
	}
	sort.Strings(pubIDs)
	unknownPubs := map[string]bool{}
	topicOf := func(pub string) (string, bool) { return z.topicOf(pub, unknownPubs) }
	relevant := map[string]bool{} // publisher whose topic some subscriber matches
	for _, p := range pubIDs {
		topic, ok := topicOf(p)
		acked := z.msgs[p].nAcked
		for _, id := range subOrder {
			st := subs[id]
			switch {
			case sc == nil:
				// No scenario to say who subscribed to what: assume everyone
				// wanted everything (the single-topic experiment).
				st.sum.Expected += acked
				relevant[p] = true
			case ok && st.known && mqtopic.Match(st.filter, topic):
				v := acl.verdict(p, id, topic)
				if acl != nil {
					s.ACL = append(s.ACL, ACLDecision{Publisher: p, Subscriber: id, Topic: topic, Verdict: v, Messages: acked})
				}
				if v != ACLAllowed {
					st.sum.DeniedByACL += acked
					continue
				}
				st.sum.Expected += acked
				relevant[p] = true
			}
		}
	}
	if sc == nil {
		note("no scenario in the header: every subscriber is assumed to expect every acknowledged publish")
	}
	if len(unknownPubs) > 0 {
		note("%d publisher ids are not in the scenario (e.g. %s): their messages are not expected by anyone", len(unknownPubs), firstKey(unknownPubs))
	}
	for _, id := range subOrder {
		if st := subs[id]; !st.known && sc != nil {
			note("subscriber %s is not in the scenario: nothing is expected for it", id)
		}
	}

	// Held at the end. With a drain phase it was counted from the deliveries
	// during the drain. Without one, the latest observation of the broker's
	// holdings (the last decoded save) is shared among subscribers like drops
	// are (see below).
	if !drained {
		var hT int64 = -1
		var hN int64
		src := ""
		for _, sp := range saves {
			if sp.Decoded && sp.T >= hT {
				hT, hN, src = sp.T, sp.Held, "the last decoded save"
			}
		}
		if hT >= 0 && hN > 0 {
			gaps := make([]int64, len(subOrder))
			for i, id := range subOrder {
				st := subs[id]
				gaps[i] = max(0, st.sum.Expected-st.sum.Delivered)
			}
			shares, excess := apportion(hN, gaps)
			for i, id := range subOrder {
				subs[id].sum.HeldAtEnd = shares[i]
			}
			note("no drain phase: held_at_end taken from %s (%d held at %s)", src, hN, fmtNS(hT))
			if excess > 0 {
				note("the broker held %d more messages than subscribers were missing (other clients, or not yet acknowledged)", excess)
			}
		} else if hT < 0 {
			note("no drain phase and no decoded save: held_at_end unknown (counted as lost)")
		}
	}

	// Dropped by the broker. The counter is global, so it is attributed to
	// subscribers in proportion to what each is still missing (expected -
	// delivered - held), never more than that. A broker started for this run
	// counts from zero; for an external broker only the increase during the run
	// counts. A drop in the counter is a broker restart: counting goes on from
	// the new value.
	endT := lastT
	if f != nil && f.T > endT {
		endT = f.T
	}
	s.DroppedByBroker = int64(counterTotal(dropped, s.BrokerConfigSource != "unknown"))
	s.Drops = dropCounter(gauges, dropped, lastAck, endT)
	if s.Drops.Source == "unknown" {
		note("no $SYS drop counter was received: dropped_by_broker is unknown, and lost includes any drops")
	} else if s.Drops.Stale {
		note("the broker's drop counter was last updated at %s, before the last acknowledgement at %s: drops after that are counted as lost", fmtNS(s.Drops.LastUpdateT), fmtNS(lastAck))
	}
	gaps := make([]int64, len(subOrder))
	for i, id := range subOrder {
		st := subs[id]
		st.gap = st.sum.Expected - st.sum.Delivered - st.sum.HeldAtEnd
		if st.gap < 0 {
			note("subscriber %s consumed %d more messages than were acknowledged for it (publishes acknowledged late or never)", id, -st.gap)
			st.gap = 0
		}
		gaps[i] = st.gap
	}
	shares, excess := apportion(s.DroppedByBroker, gaps)
	if excess > 0 {
		note("the broker dropped %d messages beyond what scenario subscribers were missing (drops for other clients)", excess)
	}
	for i, id := range subOrder {
		st := subs[id]
		st.sum.Dropped = shares[i]
		st.sum.Lost = st.gap - st.sum.Dropped
		if exp := expiredCandidates(st, z.msgs, topicOf); exp > 0 {
			st.sum.ExpiredOrLost = min(exp, st.sum.Lost)
			st.sum.Lost -= st.sum.ExpiredOrLost
			s.ExpiredOrLost += st.sum.ExpiredOrLost
		}
		s.Delivered += st.sum.Delivered
		s.Duplicates += st.sum.Duplicates
		s.Reordered += st.sum.Reordered
		s.HeldAtEnd += st.sum.HeldAtEnd
		s.Lost += st.sum.Lost
		s.Subscribers = append(s.Subscribers, st.sum)
	}
	if s.Subscribers == nil {
		s.Subscribers = []SubscriberSummary{}
	}
	if firstPub >= 0 && z.lastDelivered > firstPub {
		s.Deliver.DurationNS = z.lastDelivered - firstPub
		s.Deliver.MsgsPerS = float64(s.Delivered) / (float64(s.Deliver.DurationNS) / 1e9)
	}

	// Crash accounting.
	if killT >= 0 {
		c := crashSummary(crashInput{
			killT: killT, restartT: restartT, saves: saves, msgs: z.msgs,
			relevant: relevant, dropped: dropped, fromZero: s.BrokerConfigSource != "unknown",
		})
		s.Crash = c
		s.LostInCrash = c.ActualLost
		if c.ActualLost > 0 && s.DroppedByBroker > 0 {
			note("lost_in_crash may include some of the %d messages the broker dropped by queue limits", s.DroppedByBroker)
		}
	}

	// Persistence.
	s.Persist = persistSummary(persistInput{
		persist: s.Persist, sampled: z.h.PersistPath != "" || len(persistBytes) > 0 || len(saves) > 0,
		sizes: persistBytes, saves: saves, maxDupStores: z.maxDupStores, phases: s.Phases,
		lastT: lastT, endT: endT, drained: drained, drainT: drainT, stops: z.stops, starts: z.starts,
		killT: killT, firstPub: firstPub, lastAck: lastAck, backlog: z.backlog, rate: s.Publish.MsgsPerS, dropped: s.DroppedByBroker,
	})
	if z.backlog != nil && z.backlog.late {
		note("some events are out of time order by more than %s in the file: the largest backlog (which caps predicted_crash_loss) is approximate", fmtNS(backlogSlack))
	}

	// Processes.
	s.Bench.MaxRSSBytes = int64(maxOf(gauges[GaugeBenchRSSBytes]))
	z.conns.close(s)
	s.Bench.CPUSeconds = counterTotal(gauges[GaugeBenchCPUSecs], true)
	s.BrokerProcess.MaxRSSBytes = int64(maxOf(gauges[GaugeRSSBytes]))
	s.BrokerProcess.CPUSeconds = counterTotal(gauges[GaugeCPUSeconds], true)

	z.closeBrokers(endT)

	// Status and taint.
	if f != nil {
		s.Status = f.Status
		s.DurationNS = f.T
		s.Tainted = f.Tainted
		reasons = append(append([]string(nil), f.Reasons...), reasons...)
		if f.Error != "" && f.Status != runfile.StatusOK {
			note("run error: %s", f.Error)
		}
	} else {
		s.Status = runfile.StatusIncomplete
		s.DurationNS = lastT
		r := "no footer: the recording was cut short"
		if tail != "" {
			r += " (" + tail + ")"
		}
		taint(r)
	}
	if s.Status == "" {
		s.Status = runfile.StatusIncomplete
	}
	s.TaintReasons = capReasons(dedupe(reasons))
	if len(s.TaintReasons) > 0 {
		s.Tainted = true
	}
	return *s
}

// Summarize derives the summary from a run read into memory (see Summarizer
// for the rules); SummarizeFile streams a run from its file instead.
func Summarize(run *Run) Summary {
	if run == nil {
		return Summary{Status: runfile.StatusIncomplete}
	}
	z := NewSummarizer(run.Header, InstantsOf(run))
	for i := range run.Events {
		z.Add(&run.Events[i])
	}
	return z.Close(run.Footer, run.Tail)
}
