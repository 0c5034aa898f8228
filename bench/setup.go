package bench

import "time"

// setup builds the clients from the scenario.
func (e *engine) setup() error {
	var ids []string
	for _, pc := range e.sc.Publishers {
		ids = append(ids, pc.IDs()...)
	}
	if len(ids) == 1 {
		e.defaultPub = ids[0]
	}
	seed := uint64(time.Now().UnixNano())
	rings := sendRingSizes(e.sc)
	for gi, pc := range e.sc.Publishers {
		// A global rate is the group's; on a shard, its share of it.
		var global *limiter
		if pc.RateScope == "global" {
			global = newLimiter(e.sc.LocalRate(gi))
		}
		// On a shard (--shard I/N) only this instance's share of the group runs,
		// under the ids the whole run gives them.
		for _, id := range e.sc.LocalPublisherIDs(gi) {
			if err := checkPubID(id); err != nil {
				return err
			}
			seed++
			gen, err := newPayloadGen(pc.Payload, id, len(ids) > 1, seed)
			if err != nil {
				return err
			}
			lim := global
			if pc.RateScope != "global" {
				lim = newLimiter(pc.Rate)
			}
			p := &publisher{e: e, id: id, cfg: pc, set: e.conns.pubs[gi], gen: gen, lim: lim, sends: newSendRing(rings[gi])}
			e.pubs[id] = p
			e.pubList = append(e.pubList, p)
		}
	}
	sources, err := newSourcePlan(e)
	if err != nil {
		return err
	}
	e.sources = sources
	for gi, scfg := range e.sc.Subscribers {
		connLim := newLimiter(scfg.ConnectRate) // shared by the group: its ramp
		for _, id := range e.sc.LocalSubscriberIDs(gi) {
			s := &subscriber{
				e: e, id: id, cfg: scfg, set: e.conns.subs[gi], connLim: connLim,
				subscribed: make(chan error, 1),
				seen:       map[string]*SeqSet{},
			}
			if !scfg.Lean() || !leanInline(scfg) {
				// Received, not yet consumed (1.5 MB of channel per subscriber):
				// the lean subscriber consumes on its reader unless it paces acks.
				s.queue = make(chan queued, 1<<16)
			}
			if scfg.V5() {
				s.v5 = &sub5{} // on the lean client too: checkProps keeps its state there
				s.firstConn = true
			}
			if scfg.Lean() {
				s.lean = &leanSub{s: s, v5: scfg.V5()}
				s.firstConn = true
			}
			e.subs = append(e.subs, s)
			e.subByID[id] = s
		}
	}
	return nil
}
