package bench

import (
	"fmt"
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

// Summarizer is the analysis of a recorded run as an accumulator: NewSummarizer
// with the header, Add every event in file order, then Close. It keeps no
// event: counts, HDR latency histograms, the gauges and saves (which grow with
// the run's duration, not its messages), and per message what the crash and
// autosave joins need (msgState, 40 bytes) plus one bit per subscriber, so
// summarizing a run of millions of messages does not hold its events in
// memory. Each concern owns its part of the state: counts and phases here,
// messages in msgTable and SeqSet, latency in latencyAcc, persistence in
// persistSummary, the crash in crashSummary, the ACL in aclModel, MQTT 5 in
// countReason and expiredCandidates.
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
//   - Latency pairs pub and ack by (client, seq); delivery latency uses the
//     recv's pub_t_ns, else the pub event, over first consumptions: those
//     before the drain in publish_to_delivery, those during it (how long held
//     messages waited) in drain_delivery.
//   - The broker's settings are known only for a broker mqbench started; an
//     external broker's autosave and limits are "unknown", never the
//     scenario's values.
//   - Throughput: acked / (last ack - first pub); delivered / (last delivery
//     before the drain - first pub).
type Summarizer struct {
	h  Header
	sc *scenarios.Scenario
	s  Summary
	// Taint reasons from events, in file order: failed actions first, then
	// warnings, as the summary has always listed them.
	actionTaints, noteTaints []string

	// phases and broker lifecycle
	killT         int64
	kills         int
	stops, starts []int64
	lastT         int64
	drainT        int64
	drained       bool

	// publishers and subscribers
	pubTopic    map[string]string
	singleTopic string
	topicGroups int
	subs        map[string]*subState
	subOrder    []string

	// messages
	msgs          map[string]*msgTable // by publisher id
	firstPub      int64
	lastAck       int64
	lastDelivered int64
	pending       []pendingRecv // first consumptions waiting for the drain phase (before it began)

	ackLat, dlvLat, drainLat latencyAcc
	conns                    connPass

	gauges       map[string][]gaugePoint
	saves        []SavePoint
	maxDupStores int64
}

// NewSummarizer starts the analysis of a run with its header.
func NewSummarizer(h Header) *Summarizer {
	z := &Summarizer{
		h: h, killT: -1, firstPub: -1,
		pubTopic: map[string]string{}, subs: map[string]*subState{},
		msgs: map[string]*msgTable{}, gauges: map[string][]gaugePoint{},
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
	s.BrokerConfigSource = h.ConfigSource()
	s.Persist.AutosaveInterval = autosaveText(h.ResolvedBroker())

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
	}
	z.subs[id] = st
	z.subOrder = append(z.subOrder, id)
	return st
}

func (z *Summarizer) table(pub string) *msgTable {
	t := z.msgs[pub]
	if t == nil {
		t = &msgTable{}
		z.msgs[pub] = t
	}
	return t
}

// Add feeds one event, in file order. The event is not kept.
func (z *Summarizer) Add(e *Event) {
	s := &z.s
	if e.T > z.lastT {
		z.lastT = e.T
	}
	if e.Reason != "" {
		countReason(s, e)
	}
	switch e.Type {
	case EvPub:
		m := z.table(e.Client).get(e.Seq, true)
		if m.flags&msgPublished == 0 {
			m.flags |= msgPublished
			m.pubT = e.T
			s.Published++
			if z.firstPub < 0 || e.T < z.firstPub {
				z.firstPub = e.T
			}
		}
	case EvAck:
		t := z.table(e.Client)
		m := t.get(e.Seq, true)
		if m.flags&msgAcked != 0 {
			return
		}
		m.flags |= msgAcked
		m.ackT = e.T
		t.acked++
		if e.T > z.lastAck {
			z.lastAck = e.T
		}
		if m.flags&msgPublished != 0 {
			z.ackLat.add(e.T - m.pubT)
		}
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
		switch e.Action {
		case "stop":
			z.stops = append(z.stops, e.T)
		case "start":
			z.starts = append(z.starts, e.T)
		case "kill":
			z.kills++
			if z.killT < 0 {
				z.killT = e.T
			}
		}
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
	m := z.table(e.Pub).get(e.Seq, true)
	m.addRecv(e.T)
	sent := e.PubT
	if sent == 0 {
		if m.flags&msgPublished != 0 {
			sent = m.pubT
		} else {
			sent = -1
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
