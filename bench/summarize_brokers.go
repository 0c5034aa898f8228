package bench

import (
	"sort"

	mqtopic "github.com/mqbench/mqbench/mqtt/topic"
	"github.com/mqbench/mqbench/runfile"
	"github.com/mqbench/mqbench/scenarios"
)

// The analysis of a run with several brokers (the scenario's brokers list):
// each broker's persistence file, drops and process on their own, and the
// reconciliation across a bridge. The top-level summary stays what it is for
// one broker, judged on the first broker's events (its file, its $SYS drop
// counter, its stop and kill actions); every broker's events also feed a
// brokerPass here, the first's included, so each broker is described the same
// way.

// BrokerSummary is one broker of a run with several.
type BrokerSummary struct {
	Kind         string `json:"kind"`
	Version      string `json:"version"`
	Addr         string `json:"addr"`
	ConfigSource string `json:"config_source,omitempty"`
	// Persist is the broker's file as the top-level persist describes the
	// first broker's, except for the autosave trade-off numbers that join
	// saves with messages (exposure, save gap, predicted crash loss): a
	// message crosses brokers, so they are unknown (null) here.
	Persist Persist `json:"persist"`
	// FinalSave is the last decoded save of the file (what the broker held
	// when it was last seen saving); nil when none was decoded.
	FinalSave       *SavePoint  `json:"final_save,omitempty"`
	DroppedByBroker int64       `json:"dropped_by_broker"`
	Drops           DropCounter `json:"drops"`
	MaxRSSBytes     int64       `json:"max_rss_bytes"`
	CPUSeconds      float64     `json:"cpu_seconds"`
	Stops           int         `json:"stops"`
	Starts          int         `json:"starts"`
	Kills           int         `json:"kills"`
}

// BridgeFlow reconciles the messages publishers on broker From had
// acknowledged for subscribers on broker To: acked = delivered +
// delivered_in_drain + held_from + held_to + dropped_from + dropped_to + lost.
// What subscribers did not get is explained in that order, each never more
// than what is still missing: held in From's last decoded save (the bridge's
// queue), in To's (the subscribers' sessions), then dropped by From's $SYS
// counter, then by To's; the rest is lost.
type BridgeFlow struct {
	From        string   `json:"from"`
	To          string   `json:"to"`
	Subscribers []string `json:"subscribers"`
	Acked       int64    `json:"acked"`
	Delivered   int64    `json:"delivered"`
	// DeliveredInDrain were first consumed in the drain phase: held somewhere
	// when the observation window ended (held_at_end of the top level).
	DeliveredInDrain int64 `json:"delivered_in_drain"`
	HeldFrom         int64 `json:"held_from"`
	HeldTo           int64 `json:"held_to"`
	DroppedFrom      int64 `json:"dropped_from"`
	DroppedTo        int64 `json:"dropped_to"`
	Lost             int64 `json:"lost"`
	// Duplicates are second and later consumptions (a bridge re-delivering
	// after the link came back, a QoS 1 resend).
	Duplicates int64 `json:"duplicates"`
}

// brokerPass collects one broker's events.
type brokerPass struct {
	gauges       map[string][]gaugePoint
	saves        []SavePoint
	maxDupStores int64
	brokerActs
}

// brokerActs are a broker's actions that took effect (stops, starts and
// kills, the first kill's time or -1): what its outages, final save and crash
// accounting are judged against.
type brokerActs struct {
	stops, starts []int64
	kills         int
	killT         int64
}

// add records one successful action event.
func (a *brokerActs) add(e *Event) {
	switch e.Action {
	case ActStop:
		a.stops = append(a.stops, e.T)
	case ActStart:
		a.starts = append(a.starts, e.T)
	case ActKill:
		a.kills++
		if a.killT < 0 {
			a.killT = e.T
		}
	}
}

// brokersPass is the analysis of every broker of a run with several; nil for
// one broker.
type brokersPass struct {
	primary string
	order   []string
	byName  map[string]*brokerPass
}

// primaryBroker is the first broker of a run with several, "" for one.
func primaryBroker(h Header) string {
	if len(h.Named) == 0 {
		return ""
	}
	return h.Named[0].Name
}

func newBrokersPass(h Header) *brokersPass {
	if len(h.Named) == 0 {
		return nil
	}
	p := &brokersPass{primary: h.Named[0].Name, byName: map[string]*brokerPass{}}
	for _, nb := range h.Named {
		p.order = append(p.order, nb.Name)
		p.byName[nb.Name] = &brokerPass{gauges: map[string][]gaugePoint{}, brokerActs: brokerActs{killT: -1}}
	}
	return p
}

// add feeds one event that names a broker; it says whether the top-level
// analysis takes it too (the first broker's events, and every failed action,
// which taints the run whichever broker it was for).
func (p *brokersPass) add(e *Event) bool {
	b := p.byName[e.Broker]
	if b != nil {
		switch e.Type {
		case EvGauge:
			b.gauges[e.Name] = append(b.gauges[e.Name], gaugePoint{e.T, e.Value})
		case EvSave:
			b.saves = append(b.saves, SavePoint{
				T: e.T, SizeBytes: e.SizeBytes, Held: e.Held, Queued: e.Queued,
				Inflight: e.Inflight, Stored: e.Stored, Decoded: e.Decoded, MsgBytes: e.MsgBytes,
			})
			b.maxDupStores = max(b.maxDupStores, e.DupStores)
		case EvAction:
			if e.Err == "" {
				b.brokerActs.add(e)
			}
		}
	}
	return e.Broker == p.primary || (e.Type == EvAction && e.Err != "")
}

// closeBrokers fills Brokers and Bridge once the top level is done.
func (z *Summarizer) closeBrokers(endT int64) {
	p := z.brokers
	if p == nil {
		return
	}
	s := &z.s
	s.Brokers = map[string]*BrokerSummary{}
	for _, nb := range z.h.Named {
		b := p.byName[nb.Name]
		for _, g := range b.gauges {
			sort.SliceStable(g, func(i, j int) bool { return g[i].t < g[j].t })
		}
		sort.SliceStable(b.saves, func(i, j int) bool { return b.saves[i].T < b.saves[j].T })
		fromZero := nb.ConfigSource != runfile.ConfigUnknown
		bs := &BrokerSummary{Kind: nb.Kind, Version: nb.Version, Addr: nb.Addr, ConfigSource: nb.ConfigSource,
			Stops: len(b.stops), Starts: len(b.starts), Kills: b.kills}
		sizes := b.gauges[GaugePersistBytes]
		in := persistInput{
			persist: Persist{Path: nb.PersistPath, AutosaveInterval: autosaveText(nb.ResolvedSettings())},
			sampled: nb.PersistPath != "" || len(sizes) > 0 || len(b.saves) > 0,
			sizes:   sizes, saves: b.saves, maxDupStores: b.maxDupStores, phases: s.Phases,
			lastT: z.lastT, endT: endT, drained: z.drained, drainT: z.drainT, stops: b.stops, starts: b.starts,
			killT: b.killT, firstPub: z.firstPub, lastAck: z.lastAck,
		}
		bs.Persist = persistSummary(in)
		bs.Persist.ExposureMaxNS, bs.Persist.MaxSaveGapNS, bs.Persist.PredictedCrashLoss = nil, nil, nil
		for i := len(b.saves) - 1; i >= 0; i-- {
			if b.saves[i].Decoded {
				sp := b.saves[i]
				bs.FinalSave = &sp
				break
			}
		}
		dropped := b.gauges[GaugeDropped]
		bs.DroppedByBroker = int64(counterTotal(dropped, fromZero))
		bs.Drops = dropCounter(b.gauges, dropped, z.lastAck, endT)
		bs.MaxRSSBytes = int64(maxOf(b.gauges[GaugeRSSBytes]))
		bs.CPUSeconds = counterTotal(b.gauges[GaugeCPUSeconds], true)
		s.Brokers[nb.Name] = bs
	}
	z.note("%d brokers (%v): the top-level persistence, drops and crash are broker %s's, lost across a bridge is the bridge's; brokers has each broker and bridge reconciles across them", len(p.order), p.order, p.primary)
	s.Bridge = bridgeFlows(z.sc, s, z.drained, z.note)
}

// bridgeFlows reconciles every subscriber whose expected messages all came
// from publishers on one other broker; a subscriber expecting messages from
// several brokers is left out, with a note.
func bridgeFlows(sc *scenarios.Scenario, s *Summary, drained bool, note func(string, ...any)) []BridgeFlow {
	if sc == nil {
		return nil
	}
	subBroker, subFilter := map[string]string{}, map[string]string{}
	for g, sub := range sc.Subscribers {
		for _, id := range sub.IDs() {
			subBroker[id], subFilter[id] = sc.SubscriberBroker(g), sub.Filter
		}
	}
	type member struct {
		flow *BridgeFlow
		gap  int64
		sub  int // index in s.Subscribers
	}
	var flows []*BridgeFlow
	var members []*member
	byPair := map[[2]string]*BridgeFlow{}
	for si := range s.Subscribers {
		ss := &s.Subscribers[si]
		to, ok := subBroker[ss.Client]
		if !ok || ss.Expected == 0 {
			continue
		}
		from := map[string]bool{}
		for g, p := range sc.Publishers {
			if mqtopic.Match(subFilter[ss.Client], p.Topic) {
				from[sc.PublisherBroker(g)] = true
			}
		}
		if len(from) != 1 {
			if len(from) > 1 {
				note("subscriber %s expects messages from %d brokers: not reconciled across a bridge", ss.Client, len(from))
			}
			continue
		}
		var src string
		for b := range from {
			src = b
		}
		if src == to {
			continue // publishers on its own broker: the top level reconciles it
		}
		f := byPair[[2]string{src, to}]
		if f == nil {
			f = &BridgeFlow{From: src, To: to}
			byPair[[2]string{src, to}] = f
			flows = append(flows, f)
		}
		f.Subscribers = append(f.Subscribers, ss.Client)
		drainedN := int64(0)
		if drained {
			drainedN = ss.HeldAtEnd
		}
		f.Acked += ss.Expected
		f.Delivered += ss.Delivered
		f.DeliveredInDrain += drainedN
		f.Duplicates += ss.Duplicates
		members = append(members, &member{flow: f, gap: max(0, ss.Expected-ss.Delivered-drainedN), sub: si})
	}
	if len(flows) == 0 {
		return nil
	}
	// Each broker's held and dropped counts are shared among the subscribers
	// of the flows it is an end of, in proportion to what each still misses.
	explain := func(broker string, n int64, isFrom bool, into func(*BridgeFlow, int64)) {
		if n <= 0 {
			return
		}
		var idx []int
		var weights []int64
		for i, m := range members {
			if (isFrom && m.flow.From == broker) || (!isFrom && m.flow.To == broker) {
				idx = append(idx, i)
				weights = append(weights, m.gap)
			}
		}
		shares, _ := apportion(n, weights)
		for k, i := range idx {
			members[i].gap -= shares[k]
			into(members[i].flow, shares[k])
		}
	}
	held := func(b string) int64 {
		if bs := s.Brokers[b]; bs != nil && bs.FinalSave != nil {
			return bs.FinalSave.Held
		}
		return 0
	}
	dropped := func(b string) int64 {
		if bs := s.Brokers[b]; bs != nil {
			return bs.DroppedByBroker
		}
		return 0
	}
	ends := map[string]bool{}
	for _, f := range flows {
		ends[f.From], ends[f.To] = true, true
	}
	names := make([]string, 0, len(ends))
	for b := range ends {
		names = append(names, b)
	}
	sort.Strings(names)
	for _, b := range names {
		explain(b, held(b), true, func(f *BridgeFlow, n int64) { f.HeldFrom += n })
	}
	for _, b := range names {
		explain(b, held(b), false, func(f *BridgeFlow, n int64) { f.HeldTo += n })
	}
	for _, b := range names {
		explain(b, dropped(b), true, func(f *BridgeFlow, n int64) { f.DroppedFrom += n })
	}
	for _, b := range names {
		explain(b, dropped(b), false, func(f *BridgeFlow, n int64) { f.DroppedTo += n })
	}
	for _, m := range members {
		m.flow.Lost += m.gap
		// The top level judged this subscriber by the first broker's
		// file and counter alone; what the other end held or dropped is
		// not lost, so its lost (and the run's) is the bridge's.
		ss := &s.Subscribers[m.sub]
		lost := max(0, m.gap-ss.ExpiredOrLost)
		s.Lost += lost - ss.Lost
		ss.Lost = lost
	}
	out := make([]BridgeFlow, len(flows))
	for i, f := range flows {
		out[i] = *f
		if bs := s.Brokers[f.From]; bs != nil && bs.Drops.Source != "$SYS" {
			note("broker %s sent no $SYS drop counter: bridge %s -> %s counts its drops as lost", f.From, f.From, f.To)
		}
		if bs := s.Brokers[f.To]; bs != nil && bs.Drops.Source != "$SYS" {
			note("broker %s sent no $SYS drop counter: bridge %s -> %s counts its drops as lost", f.To, f.From, f.To)
		}
	}
	return out
}
