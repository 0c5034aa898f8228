package bench

import (
	mqtopic "github.com/mqbench/mqbench/mqtt/topic"
	"sort"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

// The MQTT 5 persistence experiments (expiry-3s, session-expiry,
// shared-backlog) ask when something left the file or survived a restart:
// questions about time that the summary's totals cannot answer. This pass
// keeps the few facts their findings need, fed one event at a time (Add, then
// Close) like the rest of the analysis, with its input narrowed to
// acknowledgements, first deliveries and actions. It is a pass of its own,
// not part of Summary, so the report computes it beside the summary, in the
// same single read of the events; per message it keeps the acknowledgement
// time and each subscriber's first receipt in dense pages (seqTimes).

// Experiments is what the experiment findings read.
type Experiments struct {
	// Expiring has one entry per publisher group with a message expiry.
	Expiring []ExpiringAcks `json:"expiring,omitempty"`
	// Away has one entry per subscriber with a finite session expiry that a
	// disconnect action took away.
	Away []AwaySession `json:"away,omitempty"`
	// Restart is the first stop or kill followed by a start; nil if none.
	Restart *RestartSplit `json:"restart,omitempty"`
}

// ExpiringAcks is when a group's expiring messages were acknowledged: they
// expire ExpiryNS after that (the broker counts in whole seconds, so up to
// one second later).
type ExpiringAcks struct {
	Group     string `json:"group"` // the group's client_id (template)
	ExpiryNS  int64  `json:"expiry_ns"`
	Acked     int64  `json:"acked"`
	FirstAckT int64  `json:"first_ack_t_ns"`
	LastAckT  int64  `json:"last_ack_t_ns"`
}

// AwaySession is a subscriber whose session expires, taken away by a
// disconnect action: its session expires ExpiryNS after the disconnect
// unless it reconnects first.
type AwaySession struct {
	Client      string `json:"client"`
	ExpiryNS    int64  `json:"expiry_ns"`
	DisconnectT int64  `json:"disconnect_t_ns"`
	ReconnectT  int64  `json:"reconnect_t_ns"` // -1: never reconnected by an action
	// HeldFor is how many messages it expected, acknowledged after the
	// disconnect and before the expiry: what its session held.
	HeldFor int64 `json:"held_for"`
	// ReceivedLater counts those it received after all (it came back in time).
	ReceivedLater int64 `json:"received_later"`
}

// RestartSplit sorts each subscriber's (or share's) expected messages by
// when they were acknowledged against a broker restart, and says which
// arrived.
type RestartSplit struct {
	DownT  int64  `json:"down_t_ns"` // the stop or kill
	DownBy string `json:"down_by"`   // "stop" or "kill"
	StartT int64  `json:"start_t_ns"`
	// Entries are in scenario order: a subscriber id, or for a shared
	// group its $share/GROUP/FILTER.
	Entries []RestartEntry `json:"entries"`
}

// RestartEntry is one subscriber's (or share's) messages around the restart.
type RestartEntry struct {
	Name   string `json:"name"`
	Shared bool   `json:"shared,omitempty"`
	// Members are the subscriber ids of a share (the id itself otherwise).
	Members []string `json:"members,omitempty"`
	// Acknowledged before the broker went down: received before it, or
	// first received after the start (they survived in the broker).
	Before         int64 `json:"before"`
	BeforeReceived int64 `json:"before_received"`
	BeforeSurvived int64 `json:"before_survived"`
	// BackT is when the first of its members came back by a reconnect
	// action after the start (the action's start: a share reaches no member
	// before it); -1 when no action brought them back.
	BackT int64 `json:"back_t_ns"`
	// Acknowledged after the start while it was away (before BackT), and
	// after it was back; with how many of each it received.
	Away         int64 `json:"away"`
	AwayReceived int64 `json:"away_received"`
	After        int64 `json:"after"`
	AfterRecvd   int64 `json:"after_received"`
}

// ExperimentPass accumulates Experiments.
type ExperimentPass struct {
	expiry  map[string]int64  // publisher id -> message expiry ns
	groupOf map[string]int    // publisher id -> index in exp
	topicOf map[string]string // publisher id -> topic
	exp     []ExpiringAcks
	ack     map[string]*seqTimes // publisher id -> first ack time of each acknowledged message
	entryOf map[string]int       // subscriber id -> index in entries
	entries []expEntry           // one per subscriber or share
	actions []Event              // successful actions, in time order
	away    map[string]string    // subscriber id with a finite session expiry -> its filter
	awayExp map[string]int64
	// perMessage is false when no finding can use per-message times (no
	// expiring session and no broker stop or kill in the scenario): then
	// only an expiring group's acknowledgements are told apart (one bit
	// each, in ackSeen) and nothing else is kept per message, so a plain run
	// of millions of messages costs this pass almost nothing.
	perMessage bool
	ackSeen    map[string]*SeqSet
}

// expEntry is a subscriber or share and the first receipt of each message.
type expEntry struct {
	name, filter string
	shared       bool
	members      []string
	first        map[string]*seqTimes // publisher id -> first receipt of each message
}

// NewExperimentPass prepares the pass for a run of sc (nil: a run without a
// recorded scenario, which gives empty Experiments).
func NewExperimentPass(sc *scenarios.Scenario) *ExperimentPass {
	p := &ExperimentPass{
		expiry: map[string]int64{}, groupOf: map[string]int{}, topicOf: map[string]string{},
		ack: map[string]*seqTimes{}, entryOf: map[string]int{},
		away: map[string]string{}, awayExp: map[string]int64{},
	}
	p.ackSeen = map[string]*SeqSet{}
	if sc == nil {
		return p
	}
	for _, a := range sc.Actions {
		if a.Do == "stop" || a.Do == "kill" {
			p.perMessage = true
		}
	}
	for _, g := range sc.Publishers {
		secs := int64(g.MessageExpirySeconds())
		if g.V5() && secs > 0 {
			p.exp = append(p.exp, ExpiringAcks{Group: g.ClientID, ExpiryNS: secs * int64(time.Second), FirstAckT: -1, LastAckT: -1})
		}
		for _, id := range g.IDs() {
			p.topicOf[id] = g.Topic
			if g.V5() && secs > 0 {
				p.expiry[id] = secs * int64(time.Second)
				p.groupOf[id] = len(p.exp) - 1
			}
		}
	}
	shares := map[string]int{}
	for _, g := range sc.Subscribers {
		ids := g.IDs()
		if g.SharedGroup != "" {
			key := g.SubscribeFilter()
			i, ok := shares[key]
			if !ok {
				i = len(p.entries)
				shares[key] = i
				p.entries = append(p.entries, expEntry{name: key, filter: g.Filter, shared: true, first: map[string]*seqTimes{}})
			}
			for _, id := range ids {
				p.entryOf[id] = i
				p.entries[i].members = append(p.entries[i].members, id)
			}
			continue
		}
		for _, id := range ids {
			p.entryOf[id] = len(p.entries)
			p.entries = append(p.entries, expEntry{name: id, filter: g.Filter, members: []string{id}, first: map[string]*seqTimes{}})
			if secs := g.SessionExpirySeconds(); g.V5() && secs > 0 && secs < 1<<32-1 {
				p.away[id] = g.Filter
				p.awayExp[id] = int64(secs) * int64(time.Second)
				p.perMessage = true
			}
		}
	}
	return p
}

// Add takes one event; only acknowledgements, deliveries and actions matter.
func (p *ExperimentPass) Add(e *Event) {
	switch e.Type {
	case EvAck:
		i, expiring := p.groupOf[e.Client]
		switch {
		case p.perMessage:
			a := p.ack[e.Client]
			if a == nil {
				a = &seqTimes{}
				p.ack[e.Client] = a
			}
			if a.put(e.Seq, e.T) {
				return // QoS 1 resends may ack twice: the first counts
			}
		case expiring:
			seen := p.ackSeen[e.Client]
			if seen == nil {
				seen = &SeqSet{}
				p.ackSeen[e.Client] = seen
			}
			if seen.Add(e.Seq) {
				return
			}
		default:
			return
		}
		if expiring {
			x := &p.exp[i]
			x.Acked++
			if x.FirstAckT < 0 || e.T < x.FirstAckT {
				x.FirstAckT = e.T
			}
			x.LastAckT = max(x.LastAckT, e.T)
		}
	case EvRecv:
		i, ok := p.entryOf[e.Client]
		if !ok || !p.perMessage {
			return
		}
		f := p.entries[i].first[e.Pub]
		if f == nil {
			f = &seqTimes{}
			p.entries[i].first[e.Pub] = f
		}
		f.put(e.Seq, e.T)
	case EvAction:
		if e.Err == "" {
			p.actions = append(p.actions, *e)
		}
	}
}

// Close computes the Experiments.
func (p *ExperimentPass) Close() Experiments {
	var x Experiments
	for _, g := range p.exp {
		if g.Acked > 0 {
			x.Expiring = append(x.Expiring, g)
		}
	}
	sort.SliceStable(p.actions, func(i, j int) bool { return p.actions[i].T < p.actions[j].T })
	x.Away = p.awaySessions()
	x.Restart = p.restart()
	return x
}

// expects reports whether entry e expects the messages of publisher pub
// (its filter matches the publisher's topic).
func (p *ExperimentPass) expects(e *expEntry, pub string) bool {
	topic, ok := p.topicOf[pub]
	return ok && mqtopic.Match(e.filter, topic)
}

// eachAck calls f for every acknowledged message entry e expects, with its
// first ack time and when e first received it (ok false: never).
func (p *ExperimentPass) eachAck(e *expEntry, f func(t, got int64, ok bool)) {
	for pub, acks := range p.ack {
		if !p.expects(e, pub) {
			continue
		}
		first := e.first[pub]
		acks.each(func(seq, t int64) {
			var got int64
			ok := false
			if first != nil {
				got, ok = first.get(seq)
			}
			f(t, got, ok)
		})
	}
}

// awaySessions finds, for each subscriber with a finite session expiry, the
// first disconnect action and the next reconnect.
func (p *ExperimentPass) awaySessions() []AwaySession {
	var out []AwaySession
	for _, e := range p.entries {
		if e.shared {
			continue
		}
		id := e.name
		exp, ok := p.awayExp[id]
		if !ok {
			continue
		}
		a := AwaySession{Client: id, ExpiryNS: exp, DisconnectT: -1, ReconnectT: -1}
		for _, ev := range p.actions {
			switch {
			case ev.Action == "disconnect" && ev.Target == id && a.DisconnectT < 0:
				a.DisconnectT = ev.T
			case ev.Action == "reconnect" && ev.Target == id && a.DisconnectT >= 0 && a.ReconnectT < 0:
				a.ReconnectT = ev.T
			}
		}
		if a.DisconnectT < 0 {
			continue
		}
		end := a.DisconnectT + exp
		p.eachAck(&e, func(t, _ int64, got bool) {
			if t < a.DisconnectT || t >= end {
				return
			}
			a.HeldFor++
			if got {
				a.ReceivedLater++
			}
		})
		out = append(out, a)
	}
	return out
}

// restart splits each entry's messages around the first stop or kill that
// a start follows.
func (p *ExperimentPass) restart() *RestartSplit {
	var r *RestartSplit
	for _, ev := range p.actions {
		switch {
		case r == nil && (ev.Action == "stop" || ev.Action == "kill"):
			r = &RestartSplit{DownT: ev.T, DownBy: ev.Action, StartT: -1}
		case r != nil && r.StartT < 0 && ev.Action == "start":
			r.StartT = ev.T
		}
	}
	if r == nil || r.StartT < 0 {
		return nil
	}
	for i := range p.entries {
		e := &p.entries[i]
		re := RestartEntry{Name: e.name, Shared: e.shared, Members: e.members, BackT: -1}
		for _, ev := range p.actions {
			for _, m := range e.members {
				if ev.Action == "reconnect" && ev.Target == m && ev.T > r.StartT && (re.BackT < 0 || ev.T < re.BackT) {
					re.BackT = ev.T
				}
			}
		}
		p.eachAck(e, func(t, got int64, ok bool) {
			switch {
			case t <= r.DownT:
				re.Before++
				if ok && got <= r.DownT {
					re.BeforeReceived++
				} else if ok && got >= r.StartT {
					re.BeforeSurvived++
				}
			case t < r.StartT:
				// acknowledged while the broker was going down: neither side
			case re.BackT >= 0 && t < re.BackT:
				re.Away++
				if ok {
					re.AwayReceived++
				}
			default:
				re.After++
				if ok {
					re.AfterRecvd++
				}
			}
		})
		r.Entries = append(r.Entries, re)
	}
	return r
}

// RunExperiments runs the pass over a run read whole.
func RunExperiments(run *Run) Experiments {
	p := NewExperimentPass(NewSummarizer(run.Header).Scenario())
	for i := range run.Events {
		p.Add(&run.Events[i])
	}
	return p.Close()
}
