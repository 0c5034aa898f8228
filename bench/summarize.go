package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// SummarySchema is the version of the summary.json layout, so baselines
// written by older code can be recognised by `check`.
const SummarySchema = 1

// maxReasons caps the taint reasons kept in a summary: a run with thousands of
// disconnect notes needs the first few and a count, not all of them.
const maxReasons = 20

// msgKey names one message: publisher id and sequence number.
type msgKey struct {
	pub string
	seq int64
}

// subState is the per-subscriber bookkeeping of Summarize.
type subState struct {
	sum    SubscriberSummary
	filter string
	known  bool                // subscriber is in the scenario (has a filter)
	seen   map[msgKey]struct{} // unique deliveries
	maxSeq map[string]int64    // highest seq consumed per publisher
	gap    int64               // expected - delivered - held (before drops), >= 0
	// shared: the members of a shared subscription, whose deliveries
	// interleave in the events, so order is not judged across them.
	shared bool
}

// gaugePoint is one gauge sample.
type gaugePoint struct {
	t int64
	v float64
}

// Summarize derives the summary from a recorded run, and from nothing else:
// re-running it on an old run with newer code gives the newer analysis. The
// rules, where the events leave room for interpretation:
//
//   - A message is (publisher, seq). Published and acked count distinct ones.
//     A subscriber's first consumption of a message is a delivery (before the
//     "drain" phase) or held_at_end (during it); any later one is a duplicate;
//     a first consumption with a seq below the highest already consumed from
//     that publisher is also counted as reordered.
//   - expected: acknowledged publishes whose topic the subscriber's filter
//     matches (scenario in the header). lost = expected - delivered -
//     held_at_end - dropped, never below zero (a note says when it would be).
//   - Latency pairs pub and ack by (client, seq); delivery latency uses the
//     recv's pub_t_ns, else the pub event, over first consumptions: those
//     before the drain in publish_to_delivery, those during it (how long held
//     messages waited) in drain_delivery.
//   - The broker's settings are known only for a broker mqbench started; an
//     external broker's autosave and limits are "unknown", never the
//     scenario's values.
//   - Throughput: acked / (last ack - first pub); delivered / (last delivery
//     before the drain - first pub).
func Summarize(run *Run) Summary {
	var s Summary
	if run == nil {
		s.Status = "incomplete"
		return s
	}
	h := run.Header
	s.Schema = SummarySchema
	s.RunID = h.RunID
	s.Scenario = h.ScenarioName
	s.BrokerKind = h.BrokerKind
	s.BrokerVersion = h.BrokerVersion
	s.Persist.Path = h.PersistPath

	note := func(format string, a ...any) { s.Notes = append(s.Notes, fmt.Sprintf(format, a...)) }
	var reasons []string
	taint := func(r string) { reasons = append(reasons, r) }

	sc := decodeScenario(h, note)
	s.BrokerConfigSource = configSource(h)
	s.Persist.AutosaveInterval = "unknown"
	switch s.BrokerConfigSource {
	case "unknown":
	case "file":
		// The broker's own file: the scenario's broker section does not apply.
		s.Persist.AutosaveInterval = autosaveSetting(nil, h.BrokerConfig)
	default:
		s.Persist.AutosaveInterval = autosaveSetting(sc, h.BrokerConfig)
	}

	// Pass 1: phases and broker lifecycle actions, which classify everything else.
	s.Phases = map[string]int64{}
	var killT, restartT int64 = -1, 0
	kills := 0
	var stops, starts []int64 // successful stop and start actions
	var lastT int64
	var nPub, nAck, nRecv int // map size hints for pass 2
	for i := range run.Events {
		e := &run.Events[i]
		if e.T > lastT {
			lastT = e.T
		}
		switch e.Type {
		case EvPub:
			nPub++
		case EvAck:
			nAck++
		case EvRecv:
			nRecv++
		case EvPhase:
			if _, ok := s.Phases[e.Msg]; !ok && e.Msg != "" {
				s.Phases[e.Msg] = e.T
			}
		case EvAction:
			if e.Err != "" {
				taint(fmt.Sprintf("action %s %s failed at %s: %s", e.Action, e.Target, fmtNS(e.T), e.Err))
				continue
			}
			switch e.Action {
			case "stop":
				stops = append(stops, e.T)
			case "start":
				starts = append(starts, e.T)
			}
			if e.Action == "kill" {
				kills++
				if killT < 0 {
					killT = e.T
				}
			}
		}
	}
	if killT >= 0 {
		for i := range run.Events {
			e := &run.Events[i]
			if e.Type == EvAction && e.Action == "start" && e.Err == "" && e.T >= killT && (restartT == 0 || e.T < restartT) {
				restartT = e.T
			}
		}
	}
	if kills > 1 {
		note("%d kill actions: crash accounting covers the first one", kills)
	}
	drainT, drained := s.Phases["drain"]

	// Publishers and subscribers of the scenario: ids, topics and filters.
	pubTopic := map[string]string{}
	singleTopic, topicGroups := "", 0
	subs := map[string]*subState{}
	var subOrder []string
	addSub := func(id, filter string, known bool) *subState {
		st := &subState{
			sum:    SubscriberSummary{Client: id},
			filter: filter,
			known:  known,
			seen:   map[msgKey]struct{}{},
			maxSeq: map[string]int64{},
		}
		subs[id] = st
		subOrder = append(subOrder, id)
		return st
	}
	if sc != nil {
		for _, p := range sc.Publishers {
			topicGroups++
			singleTopic = p.Topic
			for _, id := range p.IDs() {
				pubTopic[id] = p.Topic
			}
		}
		for _, g := range sc.Subscribers {
			if g.SharedGroup != "" {
				addShare(subs, g, addSub)
				continue
			}
			for _, id := range g.IDs() {
				if _, dup := subs[id]; !dup {
					addSub(id, g.Filter, true)
				}
			}
		}
	}
	unknownPubs := map[string]bool{}
	topicOf := func(pub string) (string, bool) {
		if t, ok := pubTopic[pub]; ok {
			return t, true
		}
		if topicGroups == 1 {
			return singleTopic, true // one publisher group: its id template was expanded differently
		}
		unknownPubs[pub] = true
		return "", false
	}

	// Pass 2: everything else.
	pubT := make(map[msgKey]int64, nPub)
	ackT := make(map[msgKey]int64, nAck)
	recvs := make(map[msgKey]msgRecv, min(nRecv, nPub)) // first consumptions by subscribers
	ackLat := make([]int64, 0, nAck)
	dlvLat := make([]int64, 0, nRecv)
	var drainLat []int64
	var firstPub int64 = -1
	var lastAck int64
	var lastDelivered int64
	gauges := map[string][]gaugePoint{} // by gauge name
	var saves []SavePoint
	var maxDupStores int64
	for i := range run.Events {
		e := &run.Events[i]
		if e.Reason != "" {
			countReason(&s, e)
		}
		switch e.Type {
		case EvPub:
			k := msgKey{e.Client, e.Seq}
			if _, ok := pubT[k]; !ok {
				pubT[k] = e.T
				if firstPub < 0 || e.T < firstPub {
					firstPub = e.T
				}
			}
		case EvAck:
			k := msgKey{e.Client, e.Seq}
			if _, ok := ackT[k]; ok {
				continue
			}
			ackT[k] = e.T
			if e.T > lastAck {
				lastAck = e.T
			}
			if pt, ok := pubT[k]; ok {
				ackLat = append(ackLat, e.T-pt)
			}
		case EvRecv:
			st := subs[e.Client]
			if st == nil {
				st = addSub(e.Client, "", false)
			}
			k := msgKey{e.Pub, e.Seq}
			if _, dup := st.seen[k]; dup {
				st.sum.Duplicates++
				continue
			}
			st.seen[k] = struct{}{}
			if e.Seq < st.maxSeq[e.Pub] && !st.shared {
				st.sum.Reordered++
			} else {
				st.maxSeq[e.Pub] = e.Seq
			}
			if drained && e.T >= drainT {
				st.sum.HeldAtEnd++
			} else {
				st.sum.Delivered++
				if e.T > lastDelivered {
					lastDelivered = e.T
				}
			}
			recvs[k] = recvs[k].add(e.T)
			sent := e.PubT
			if sent == 0 {
				if pt, ok := pubT[k]; ok {
					sent = pt
				} else {
					sent = -1
				}
			}
			switch {
			case sent < 0:
			case drained && e.T >= drainT:
				drainLat = append(drainLat, e.T-sent)
			default:
				dlvLat = append(dlvLat, e.T-sent)
			}
		case EvGauge:
			gauges[e.Name] = append(gauges[e.Name], gaugePoint{e.T, e.Value})
		case EvSave:
			saves = append(saves, SavePoint{
				T: e.T, SizeBytes: e.SizeBytes, Held: e.Held, Queued: e.Queued,
				Inflight: e.Inflight, Stored: e.Stored, Decoded: e.Decoded, MsgBytes: e.MsgBytes,
			})
			if e.DupStores > maxDupStores {
				maxDupStores = e.DupStores
			}
		case EvNote:
			if e.Level == "warn" {
				taint(e.Msg)
			}
		}
	}
	// Gauges and saves come from different goroutines; order them by time.
	for _, g := range gauges {
		sort.SliceStable(g, func(i, j int) bool { return g[i].t < g[j].t })
	}
	persistBytes, dropped, held := gauges[GaugePersistBytes], gauges[GaugeDropped], gauges[GaugeHeld]
	sort.SliceStable(saves, func(i, j int) bool { return saves[i].T < saves[j].T })

	// Counts and latency.
	s.Published = int64(len(pubT))
	s.Acked = int64(len(ackT))
	s.Latency.PublishToAck = latencyOf(ackLat)
	s.Latency.PublishToDelivery = latencyOf(dlvLat)
	s.Latency.DrainDelivery = latencyOf(drainLat)
	if firstPub >= 0 && lastAck > firstPub {
		s.Publish.DurationNS = lastAck - firstPub
		s.Publish.MsgsPerS = float64(s.Acked) / (float64(s.Publish.DurationNS) / 1e9)
	}

	// Expected per subscriber: acknowledged publishes whose topic its filter
	// matches and, with a security ACL, that the ACL lets through.
	acl, aclErr := newACLModel(sc)
	if aclErr != nil {
		note("the scenario's security.acl does not parse (%v): deliveries are judged without it", aclErr)
	}
	ackedBy := map[string]int64{}
	for k := range ackT {
		ackedBy[k.pub]++
	}
	pubIDs := make([]string, 0, len(ackedBy))
	for p := range ackedBy {
		pubIDs = append(pubIDs, p)
	}
	sort.Strings(pubIDs)
	relevant := map[string]bool{} // publisher whose topic some subscriber matches
	wanted := map[string]int32{}  // subscribers expecting each publisher's messages
	for _, p := range pubIDs {
		topic, ok := topicOf(p)
		for _, id := range subOrder {
			st := subs[id]
			switch {
			case sc == nil:
				// No scenario to say who subscribed to what: assume everyone
				// wanted everything (the single-topic experiment).
				st.sum.Expected += ackedBy[p]
				relevant[p] = true
				wanted[p]++
			case ok && st.known && MatchTopic(st.filter, topic):
				v := acl.verdict(p, id, topic)
				if acl != nil {
					s.ACL = append(s.ACL, ACLDecision{Publisher: p, Subscriber: id, Topic: topic, Verdict: v, Messages: ackedBy[p]})
				}
				if v != ACLAllowed {
					st.sum.DeniedByACL += ackedBy[p]
					continue
				}
				st.sum.Expected += ackedBy[p]
				relevant[p] = true
				wanted[p]++
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
	// holdings (a decoded save or the broker.held gauge, whichever is later) is
	// shared among subscribers like drops are (see below).
	if !drained {
		var hT int64 = -1
		var hN int64
		src := ""
		for _, sp := range saves {
			if sp.Decoded && sp.T >= hT {
				hT, hN, src = sp.T, sp.Held, "the last decoded save"
			}
		}
		if len(held) > 0 && held[len(held)-1].t >= hT {
			hT, hN, src = held[len(held)-1].t, int64(held[len(held)-1].v), "the last broker.held gauge"
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
			note("no drain phase and no decoded save or broker.held gauge: held_at_end unknown (counted as lost)")
		}
	}

	// Dropped by the broker. The counter is global, so it is attributed to
	// subscribers in proportion to what each is still missing (expected -
	// delivered - held), never more than that. A broker started for this run
	// counts from zero; for an external broker only the increase during the run
	// counts. A drop in the counter is a broker restart: counting goes on from
	// the new value.
	endT := lastT
	if run.Footer != nil && run.Footer.T > endT {
		endT = run.Footer.T
	}
	s.DroppedByBroker = int64(counterTotal(dropped, s.BrokerConfigSource != "unknown"))
	s.Drops = dropCounter(gauges, dropped, lastAck, endT)
	if s.Drops.Source == "unknown" {
		note("no $SYS drop counter was received: dropped_by_broker is unknown, and lost includes any drops")
	} else if s.Drops.Stale {
		note("the broker's drop counter was last updated at %s, before the last acknowledgement at %s: drops after that are counted as lost", fmtNS(s.Drops.LastUpdateT), fmtNS(lastAck))
	}
	expiry := messageExpiries(sc)
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
		if exp := expiredCandidates(expiry, st, ackT, topicOf, endT); exp > 0 {
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
	if firstPub >= 0 && lastDelivered > firstPub {
		s.Deliver.DurationNS = lastDelivered - firstPub
		s.Deliver.MsgsPerS = float64(s.Delivered) / (float64(s.Deliver.DurationNS) / 1e9)
	}

	// Crash accounting.
	if killT >= 0 {
		c := crashSummary(crashInput{
			killT: killT, restartT: restartT, saves: saves, ackT: ackT, recvs: recvs,
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
		persist: s.Persist, sampled: h.PersistPath != "" || len(persistBytes) > 0 || len(saves) > 0,
		sizes: persistBytes, saves: saves, maxDupStores: maxDupStores, phases: s.Phases,
		lastT: lastT, endT: endT, drained: drained, drainT: drainT, stops: stops, starts: starts,
		killT: killT, firstPub: firstPub, lastAck: lastAck, ackT: ackT, recvs: recvs, wanted: wanted, rate: s.Publish.MsgsPerS, dropped: s.DroppedByBroker,
	})

	// Processes.
	s.Bench.MaxRSSBytes = int64(maxOf(gauges[GaugeBenchRSSBytes]))
	s.Bench.CPUSeconds = counterTotal(gauges[GaugeBenchCPUSecs], true)
	s.BrokerProcess.MaxRSSBytes = int64(maxOf(gauges[GaugeRSSBytes]))
	s.BrokerProcess.CPUSeconds = counterTotal(gauges[GaugeCPUSeconds], true)

	// Status and taint.
	if f := run.Footer; f != nil {
		s.Status = f.Status
		s.DurationNS = f.T
		s.Tainted = f.Tainted
		reasons = append(append([]string(nil), f.Reasons...), reasons...)
		if f.Error != "" && f.Status != "ok" {
			note("run error: %s", f.Error)
		}
	} else {
		s.Status = "incomplete"
		s.DurationNS = lastT
		r := "no footer: the recording was cut short"
		if run.Tail != "" {
			r += " (" + run.Tail + ")"
		}
		taint(r)
	}
	if s.Status == "" {
		s.Status = "incomplete"
	}
	s.TaintReasons = capReasons(dedupe(reasons))
	if len(s.TaintReasons) > 0 {
		s.Tainted = true
	}
	return s
}

// WriteSummary summarizes the run in dir and writes dir/summary.json. The file
// is replaced atomically (temporary file, then rename), so a reader never sees
// half a summary and an interrupted write leaves the old one.
func WriteSummary(dir string) (*Summary, error) {
	run, err := ReadRun(dir)
	if err != nil {
		return nil, err
	}
	s := Summarize(run)
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding summary of %s: %w", run.Dir, err)
	}
	data = append(data, '\n')
	if err := writeFileAtomic(filepath.Join(run.Dir, SummaryFile), data); err != nil {
		return nil, err
	}
	return &s, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory and a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, werr)
	}
	return nil
}

// msgRecv is what subscribers did with one message: when the first and the
// latest first consumption happened, and by how many subscribers.
type msgRecv struct {
	first, last int64
	subs        int32
}

// add records one subscriber's first consumption at t.
func (m msgRecv) add(t int64) msgRecv {
	if m.subs == 0 || t < m.first {
		m.first = t
	}
	m.last = max(m.last, t)
	m.subs++
	return m
}
