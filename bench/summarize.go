package bench

import (
	"fmt"

	mqtopic "github.com/mqbench/mqbench/mqtt/topic"
	"github.com/mqbench/mqbench/runfile"
	"github.com/mqbench/mqbench/scenarios"
)

// SummarySchema is the version of the summary.json layout, so baselines
// written by older code can be recognised by `check`.
const SummarySchema = 1

// maxReasons caps the taint reasons kept in a summary: a run with thousands of
// disconnect notes needs the first few and a count, not all of them.
const maxReasons = 20

// subState is the per-subscriber bookkeeping of the analysis.
type subState struct {
	sum    SubscriberSummary
	filter string
	known  bool               // subscriber is in the scenario (has a filter)
	seen   map[string]*SeqSet // unique deliveries, by publisher
	maxSeq map[string]int64   // highest seq consumed per publisher
	wants  map[string]bool    // publishers whose messages it expects (see Summarizer.expecters)
	gap    int64              // expected - delivered - held (before drops), >= 0
	// shared: the members of a shared subscription, whose deliveries
	// interleave in the events, so order is not judged across them.
	shared bool
}

// gaugePoint is one gauge sample.
type gaugePoint struct {
	t int64
	v float64
}

// pendingRecv is a first consumption not yet classified as delivered or
// held at the end: see Summarizer.pending.
type pendingRecv struct {
	st   *subState
	t    int64
	sent int64 // publish time, -1 when unknown
}

// pendingRecvs bounds how many first consumptions wait for the drain phase
// event before they are classified. The recorder writes events in the order
// goroutines emit them, so a consumption stamped just after the drain began
// can be written just before the drain's phase event; a few thousand covers
// that race many times over.
const pendingRecvs = 4096

// Summarizer is the analysis of a recorded run as an accumulator, the second
// of two passes: NewSummarizer with the header and what the first pass found
// (Instants), Add every event in file order, then Close. It keeps no event:
// counts, HDR latency histograms, the gauges and saves (which grow with the
// run's duration, not its messages), a few bits per message (pubMsgs) and one
// per subscriber and message (SeqSet), and the ack time of the messages still
// open in the backlog accounting (backlogAcc), so summarizing a run of
// millions of messages takes memory that barely grows with them. Each concern
// owns its part of the state: counts and phases here, messages in pubMsgs and
// SeqSet, latency in latencyAcc, exposure and backlog in backlogAcc,
// persistence in persistSummary, the crash in crashSummary, the ACL in
// aclModel, MQTT 5 in countReason and expiredCandidates.
//
// The rules, where the events leave room for interpretation:
//
//   - A message is (publisher, seq). Published and acked count distinct ones.
//     A subscriber's first consumption of a message is a delivery (before the
//     "drain" phase) or held_at_end (during it); any later one is a duplicate;
//     a first consumption with a seq below the highest already consumed from
//     that publisher is also counted as reordered.
//   - expected: acknowledged publishes whose topic the subscriber's filter
//     matches (scenario in the header). lost = expected - delivered -
//     held_at_end - dropped, never below zero (a note says when it would be).
//   - Latency is from the publish time each ack and recv carries (pub_t_ns),
//     else from the pub event (older files' acks, deliveries older than the
//     publisher's ring of send times: for those messages alone the publish
//     time is kept, found by the first pass). Delivery latency
//     is over first consumptions: those before the drain in
//     publish_to_delivery, those during it (how long held messages waited)
//     in drain_delivery.
//   - A message is in the broker's backlog from its acknowledgement until the
//     last subscriber expecting it (as expected counts them) consumed it.
//   - The broker's settings are known only for a broker mqbench started; an
//     external broker's autosave and limits are "unknown", never the
//     scenario's values.
//   - Throughput: acked / (last ack - first pub); delivered / (last delivery
//     before the drain - first pub).
type Summarizer struct {
	h      Header
	sc     *scenarios.Scenario
	in     *Instants
	acl    *aclModel // nil without a security ACL, or one that does not parse (aclErr)
	aclErr error
	s      Summary
	// Taint reasons from events, in file order: failed actions first, then
	// warnings, as the summary has always listed them.
	actionTaints, noteTaints []string

	// phases and broker lifecycle
	brokerActs
	lastT   int64
	drainT  int64
	drained bool

	// publishers and subscribers
	pubTopic    map[string]string
	singleTopic string
	topicGroups int
	subs        map[string]*subState
	subOrder    []string

	// messages
	msgs          map[string]*pubMsgs // by publisher id
	expiry        map[string]int64    // MQTT 5 message expiry by publisher id
	lastSaveT     int64               // the last save at or before the first kill, -1 if none
	backlog       *backlogAcc         // nil when no persistence file was sampled
	firstPub      int64
	lastAck       int64
	lastDelivered int64
	pending       []pendingRecv // first consumptions waiting for the drain phase (before it began)

	ackLat, dlvLat, drainLat latencyAcc
	conns                    connPass

	gauges       map[string][]gaugePoint
	saves        []SavePoint
	maxDupStores int64

	// brokers: each broker of a run with several (nil for one).
	brokers *brokersPass
}

// NewSummarizer starts the analysis of a run with its header and the first
// pass over the same events (ScanRun, InstantsOf; required).
func NewSummarizer(h Header, in *Instants) *Summarizer {
	z := &Summarizer{
		h: h, in: in, brokerActs: brokerActs{killT: -1}, firstPub: -1, lastSaveT: -1,
		pubTopic: map[string]string{}, subs: map[string]*subState{},
		msgs: map[string]*pubMsgs{}, gauges: map[string][]gaugePoint{},
	}
	s := &z.s
	s.Schema = SummarySchema
	s.RunID = h.RunID
	s.Scenario = h.ScenarioName
	s.BrokerKind = h.BrokerKind
	s.BrokerVersion = h.BrokerVersion
	s.Persist.Path = h.PersistPath
	s.Phases = map[string]int64{}

	z.sc = decodeScenario(h, z.note)
	z.brokers = newBrokersPass(h)
	s.BrokerConfigSource = h.ConfigSource()
	s.Persist.AutosaveInterval = autosaveText(h.ResolvedBroker())
	z.acl, z.aclErr = newACLModel(z.sc)
	z.expiry = messageExpiries(z.sc)
	if in.KillT >= 0 {
		z.lastSaveT = in.lastSaveBefore(in.KillT)
	}
	if h.PersistPath != "" || in.PersistSampled || len(in.Saves) > 0 {
		z.backlog = newBacklogAcc(in)
	}

	// Publishers and subscribers of the scenario: ids, topics and filters.
	if sc := z.sc; sc != nil {
		for _, p := range sc.Publishers {
			z.topicGroups++
			z.singleTopic = p.Topic
			for _, id := range p.IDs() {
				z.pubTopic[id] = p.Topic
			}
		}
		for _, g := range sc.Subscribers {
			if g.SharedGroup != "" {
				addShare(z.subs, g, z.addSub)
				continue
			}
			for _, id := range g.IDs() {
				if _, dup := z.subs[id]; !dup {
					z.addSub(id, g.Filter, true)
				}
			}
		}
	}
	// The subscribers outside the scenario, in the order they first
	// consumed, as Add would meet them: known now, so that without a
	// scenario everyone (who expects every message) is known from the start.
	for _, id := range in.Subscribers {
		if z.subs[id] == nil {
			z.addSub(id, "", false)
		}
	}
	return z
}

// Scenario is the recorded scenario as the header holds it, decoded once
// for every pass over the run; nil when there is none or it is unreadable.
func (z *Summarizer) Scenario() *scenarios.Scenario { return z.sc }

func (z *Summarizer) note(format string, a ...any) {
	z.s.Notes = append(z.s.Notes, fmt.Sprintf(format, a...))
}

func (z *Summarizer) addSub(id, filter string, known bool) *subState {
	st := &subState{
		sum:    SubscriberSummary{Client: id},
		filter: filter,
		known:  known,
		seen:   map[string]*SeqSet{},
		maxSeq: map[string]int64{},
		wants:  map[string]bool{},
	}
	z.subs[id] = st
	z.subOrder = append(z.subOrder, id)
	return st
}

func (z *Summarizer) table(pub string) *pubMsgs {
	pm := z.msgs[pub]
	if pm == nil {
		pm = &pubMsgs{expiry: z.expiry[pub], wanted: z.expecters(pub)}
		if need := z.in.NoPubT[pub]; need != nil {
			pm.pubT, pm.needPubT = &seqTimes{}, need
		}
		for _, st := range pm.wanted {
			st.wants[pub] = true
		}
		if z.backlog != nil && len(pm.wanted) > 0 {
			z.backlog.track(pm)
		}
		z.msgs[pub] = pm
	}
	return pm
}

// expecters are the subscribers (or shares) expecting pub's messages, as
// Close counts them: without a scenario everyone; otherwise the scenario's
// subscribers whose filter matches its topic and that the ACL lets receive it.
func (z *Summarizer) expecters(pub string) []*subState {
	topic, ok := z.topicOf(pub, nil)
	var out []*subState
	for _, id := range z.subOrder {
		st := z.subs[id]
		switch {
		case z.sc == nil:
			out = append(out, st)
		case ok && st.known && mqtopic.Match(st.filter, topic) && z.acl.verdict(pub, id, topic) == ACLAllowed:
			out = append(out, st)
		}
	}
	return out
}

// Add feeds one event, in file order. The event is not kept.
func (z *Summarizer) Add(e *Event) {
	s := &z.s
	if e.T > z.lastT {
		z.lastT = e.T
		if z.backlog != nil {
			z.backlog.advance(z.lastT)
		}
	}
	if e.Broker != "" && z.brokers != nil && !z.brokers.add(e) {
		return // another broker's than the first: see summarize_brokers.go
	}
	if e.Reason != "" {
		countReason(s, e)
	}
	switch e.Type {
	case EvPub:
		pm := z.table(e.Client)
		if !pm.published.Add(e.Seq) {
			if pm.pubT != nil && pm.needPubT.Has(e.Seq) {
				pm.pubT.put(e.Seq, e.T)
			}
			s.Published++
			if z.firstPub < 0 || e.T < z.firstPub {
				z.firstPub = e.T
			}
		}
	case EvAck:
		z.ack(e)
	case EvRecv:
		z.recv(e)
	case EvPhase:
		if _, ok := s.Phases[e.Msg]; !ok && e.Msg != "" {
			s.Phases[e.Msg] = e.T
			if e.Msg == "drain" {
				z.drainT, z.drained = e.T, true
				z.flushPending()
			}
		}
	case EvAction:
		if e.Err != "" {
			z.actionTaints = append(z.actionTaints, fmt.Sprintf("action %s %s failed at %s: %s", e.Action, e.Target, fmtNS(e.T), e.Err))
			return
		}
		z.brokerActs.add(e)
	case EvGauge:
		z.gauges[e.Name] = append(z.gauges[e.Name], gaugePoint{e.T, e.Value})
		z.conns.gauge(e)
	case EvConn:
		z.conns.add(e)
	case EvSave:
		z.saves = append(z.saves, SavePoint{
			T: e.T, SizeBytes: e.SizeBytes, Held: e.Held, Queued: e.Queued,
			Inflight: e.Inflight, Stored: e.Stored, Decoded: e.Decoded, MsgBytes: e.MsgBytes,
		})
		z.maxDupStores = max(z.maxDupStores, e.DupStores)
	case EvNote:
		if e.Level == runfile.LevelWarn {
			z.noteTaints = append(z.noteTaints, e.Msg)
		}
	}
}

// ack accounts for one acknowledgement: the first of a message counts, and
// settles what its time answers (before the kill, the last save before it,
// its expiry before the end) and its latency.
func (z *Summarizer) ack(e *Event) {
	pm := z.table(e.Client)
	if pm.acked.Add(e.Seq) {
		return // QoS 1 resends may ack twice: the first counts
	}
	pm.nAcked++
	z.lastAck = max(z.lastAck, e.T)
	if pm.published.Has(e.Seq) {
		if pt := e.PubT; pt != 0 {
			z.ackLat.add(e.T - pt)
		} else if pt, ok := pm.pubTime(e.Seq); ok {
			z.ackLat.add(e.T - pt)
		}
	}
	if killT := z.in.KillT; killT >= 0 {
		pm.ackedByKill.setIf(e.T <= killT, e.Seq)
		pm.ackedBySave.setIf(e.T <= z.lastSaveT, e.Seq)
	}
	pm.expiring.setIf(pm.expiry > 0 && e.T+pm.expiry <= z.in.EndT, e.Seq)
	if pm.open != nil {
		z.backlog.ack(pm, e.Seq, e.T, pm.complete(e.Client, e.Seq))
	}
}

// recv accounts for one consumption.
func (z *Summarizer) recv(e *Event) {
	st := z.subs[e.Client]
	if st == nil {
		st = z.addSub(e.Client, "", false)
	}
	seen := st.seen[e.Pub]
	if seen == nil {
		seen = &SeqSet{}
		st.seen[e.Pub] = seen
	}
	if seen.Add(e.Seq) {
		st.sum.Duplicates++
		return
	}
	if e.Seq < st.maxSeq[e.Pub] && !st.shared {
		st.sum.Reordered++
	} else {
		st.maxSeq[e.Pub] = e.Seq
	}
	pm := z.table(e.Pub)
	pm.consumed.Add(e.Seq)
	if killT := z.in.KillT; killT >= 0 {
		pm.consumedByKill.setIf(e.T <= killT, e.Seq)
		pm.consumedBySave.setIf(e.T <= z.lastSaveT, e.Seq)
	}
	if pm.open != nil && st.wants[e.Pub] && pm.complete(e.Pub, e.Seq) {
		z.backlog.done(pm, e.Seq, e.T, pm.acked.Has(e.Seq))
	}
	sent := e.PubT
	if sent == 0 {
		sent = -1
		if t, ok := pm.pubTime(e.Seq); ok {
			sent = t
		}
	}
	p := pendingRecv{st: st, t: e.T, sent: sent}
	if z.drained {
		z.classify(p)
		return
	}
	if len(z.pending) == pendingRecvs {
		z.classify(z.pending[0])
		copy(z.pending, z.pending[1:])
		z.pending = z.pending[:len(z.pending)-1]
	}
	z.pending = append(z.pending, p)
}

// classify counts a first consumption as delivered or, from the drain phase
// on, held at the end, with its latency.
func (z *Summarizer) classify(p pendingRecv) {
	held := z.drained && p.t >= z.drainT
	if held {
		p.st.sum.HeldAtEnd++
	} else {
		p.st.sum.Delivered++
		z.lastDelivered = max(z.lastDelivered, p.t)
	}
	switch {
	case p.sent < 0:
	case held:
		z.drainLat.add(p.t - p.sent)
	default:
		z.dlvLat.add(p.t - p.sent)
	}
}

// flushPending classifies the consumptions waiting for the drain phase.
func (z *Summarizer) flushPending() {
	for _, p := range z.pending {
		z.classify(p)
	}
	z.pending = z.pending[:0]
}

// topicOf is the topic a publisher's messages went to, from the scenario.
func (z *Summarizer) topicOf(pub string, unknown map[string]bool) (string, bool) {
	if t, ok := z.pubTopic[pub]; ok {
		return t, true
	}
	if z.topicGroups == 1 {
		return z.singleTopic, true // one publisher group: its id template was expanded differently
	}
	if unknown != nil {
		unknown[pub] = true
	}
	return "", false
}
