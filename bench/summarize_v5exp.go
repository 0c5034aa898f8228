package bench

import (
	"time"

	mqtopic "github.com/mqbench/mqbench/mqtt/topic"

	"github.com/mqbench/mqbench/scenarios"
)

// The MQTT 5 persistence experiments (expiry-3s, session-expiry,
// shared-backlog) ask when something left the file or survived a restart:
// questions about time that the summary's totals cannot answer. This pass
// keeps the few facts their findings need, fed one event at a time (Add, then
// Close) like the rest of the analysis, with its input narrowed to
// acknowledgements, first deliveries and actions. It is a pass of its own,
// not part of Summary, so the report computes it beside the summary, in the
// same reads of the events; per message it keeps a few bits (see expEntry),
// sorted by the actions the first pass found (Instants).

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
	groupOf map[string]int    // publisher id -> index in exp
	topicOf map[string]string // publisher id -> topic
	exp     []ExpiringAcks
	ackSeen map[string]*SeqSet // publisher id -> acknowledged messages (the first ack counts)
	entryOf map[string]int     // subscriber id -> index in entries
	entries []expEntry         // one per subscriber or share
	expects map[string][]int   // publisher id -> the entries expecting its messages
	// restart and away are known before the messages, from the first pass's
	// actions, so each message is sorted at its events into a few bits.
	restart *RestartSplit // nil without a stop or kill followed by a start
	away    []AwaySession // the away sessions, their counts filled by Add
	// perMessage is false when no finding asks about messages (no restart
	// and no away session): then only an expiring group's acknowledgements
	// are told apart, and a plain run of millions of messages costs this pass
	// almost nothing.
	perMessage bool
}

// expEntry is a subscriber or share and what it got of each message.
type expEntry struct {
	name, filter string
	shared       bool
	members      []string
	awayExp      int64 // session expiry (ns) of a subscriber that can be away, else 0
	away         int   // index in ExperimentPass.away, -1 if none
	re           RestartEntry
	// By publisher id, a bit per message: received (the first receipt
	// counts), first received by the broker going down or from its start;
	// acknowledged while it was away (held for it), or before the restart,
	// while it was away after it, after it was back.
	got, gotByDown, gotFromStart       map[string]*SeqSet
	held, ackBefore, ackAway, ackAfter map[string]*SeqSet
}

// NewExperimentPass prepares the pass for a run of sc (nil: a run without a
// recorded scenario, which gives empty Experiments) and the first pass over
// the same events (required).
func NewExperimentPass(sc *scenarios.Scenario, in *Instants) *ExperimentPass {
	p := &ExperimentPass{
		groupOf: map[string]int{}, topicOf: map[string]string{},
		ackSeen: map[string]*SeqSet{}, entryOf: map[string]int{}, expects: map[string][]int{},
	}
	if sc == nil {
		return p
	}
	for _, g := range sc.Publishers {
		secs := int64(g.MessageExpirySeconds())
		if g.V5() && secs > 0 {
			p.exp = append(p.exp, ExpiringAcks{Group: g.ClientID, ExpiryNS: secs * int64(time.Second), FirstAckT: -1, LastAckT: -1})
		}
		for _, id := range g.IDs() {
			p.topicOf[id] = g.Topic
			if g.V5() && secs > 0 {
				p.groupOf[id] = len(p.exp) - 1
			}
		}
	}
	shares := map[string]int{}
	newEntry := func(name, filter string, shared bool) expEntry {
		return expEntry{name: name, filter: filter, shared: shared, away: -1,
			got: map[string]*SeqSet{}, gotByDown: map[string]*SeqSet{}, gotFromStart: map[string]*SeqSet{},
			held: map[string]*SeqSet{}, ackBefore: map[string]*SeqSet{}, ackAway: map[string]*SeqSet{}, ackAfter: map[string]*SeqSet{}}
	}
	for _, g := range sc.Subscribers {
		ids := g.IDs()
		if g.SharedGroup != "" {
			key := g.SubscribeFilter()
			i, ok := shares[key]
			if !ok {
				i = len(p.entries)
				shares[key] = i
				p.entries = append(p.entries, newEntry(key, g.Filter, true))
			}
			for _, id := range ids {
				p.entryOf[id] = i
				p.entries[i].members = append(p.entries[i].members, id)
			}
			continue
		}
		for _, id := range ids {
			p.entryOf[id] = len(p.entries)
			e := newEntry(id, g.Filter, false)
			e.members = []string{id}
			if secs := g.SessionExpirySeconds(); g.V5() && secs > 0 && secs < 1<<32-1 {
				e.awayExp = int64(secs) * int64(time.Second)
			}
			p.entries = append(p.entries, e)
		}
	}
	p.planAway(in.Actions)
	p.planRestart(in.Actions)
	p.perMessage = p.restart != nil || len(p.away) > 0
	return p
}

// planAway finds, for each subscriber with a finite session expiry, the
// first disconnect action and the next reconnect.
func (p *ExperimentPass) planAway(actions []Event) {
	for i := range p.entries {
		e := &p.entries[i]
		if e.shared || e.awayExp == 0 {
			continue
		}
		a := AwaySession{Client: e.name, ExpiryNS: e.awayExp, DisconnectT: -1, ReconnectT: -1}
		for _, ev := range actions {
			switch {
			case ev.Action == ActDisconnect && ev.Target == e.name && a.DisconnectT < 0:
				a.DisconnectT = ev.T
			case ev.Action == ActReconnect && ev.Target == e.name && a.DisconnectT >= 0 && a.ReconnectT < 0:
				a.ReconnectT = ev.T
			}
		}
		if a.DisconnectT >= 0 {
			e.away = len(p.away)
			p.away = append(p.away, a)
		}
	}
}

// planRestart finds the first stop or kill that a start follows, and when
// each entry's members first came back after it.
func (p *ExperimentPass) planRestart(actions []Event) {
	var r *RestartSplit
	for _, ev := range actions {
		switch {
		case r == nil && (ev.Action == ActStop || ev.Action == ActKill):
			r = &RestartSplit{DownT: ev.T, DownBy: ev.Action, StartT: -1}
		case r != nil && r.StartT < 0 && ev.Action == ActStart:
			r.StartT = ev.T
		}
	}
	if r == nil || r.StartT < 0 {
		return
	}
	p.restart = r
	for i := range p.entries {
		e := &p.entries[i]
		e.re = RestartEntry{Name: e.name, Shared: e.shared, Members: e.members, BackT: -1}
		for _, ev := range actions {
			for _, m := range e.members {
				if ev.Action == ActReconnect && ev.Target == m && ev.T > r.StartT && (e.re.BackT < 0 || ev.T < e.re.BackT) {
					e.re.BackT = ev.T
				}
			}
		}
	}
}

// expecting are the entries whose filter matches pub's topic.
func (p *ExperimentPass) expecting(pub string) []int {
	out, ok := p.expects[pub]
	if !ok {
		topic, known := p.topicOf[pub]
		for i := range p.entries {
			if known && mqtopic.Match(p.entries[i].filter, topic) {
				out = append(out, i)
			}
		}
		p.expects[pub] = out
	}
	return out
}

// Add takes one event; only acknowledgements and deliveries matter (the
// actions came from the first pass).
func (p *ExperimentPass) Add(e *Event) {
	switch e.Type {
	case EvAck:
		i, expiring := p.groupOf[e.Client]
		if !expiring && !p.perMessage {
			return
		}
		if bitsOf(p.ackSeen, e.Client).Add(e.Seq) {
			return // QoS 1 resends may ack twice: the first counts
		}
		if expiring {
			x := &p.exp[i]
			x.Acked++
			if x.FirstAckT < 0 || e.T < x.FirstAckT {
				x.FirstAckT = e.T
			}
			x.LastAckT = max(x.LastAckT, e.T)
		}
		if p.perMessage {
			for _, j := range p.expecting(e.Client) {
				p.sortAck(&p.entries[j], e.Client, e.Seq, e.T)
			}
		}
	case EvRecv:
		i, ok := p.entryOf[e.Client]
		if !ok || !p.perMessage {
			return
		}
		en := &p.entries[i]
		if bitsOf(en.got, e.Pub).Add(e.Seq) {
			return // the first receipt counts
		}
		if r := p.restart; r != nil {
			if e.T <= r.DownT {
				bitsOf(en.gotByDown, e.Pub).Add(e.Seq)
			} else if e.T >= r.StartT {
				bitsOf(en.gotFromStart, e.Pub).Add(e.Seq)
			}
		}
	}
}

// sortAck counts a message acknowledged at t for entry e and sorts it by
// when, against e's away session and the restart.
func (p *ExperimentPass) sortAck(e *expEntry, pub string, seq, t int64) {
	if e.away >= 0 {
		a := &p.away[e.away]
		if t >= a.DisconnectT && t < a.DisconnectT+a.ExpiryNS {
			a.HeldFor++
			bitsOf(e.held, pub).Add(seq)
		}
	}
	r := p.restart
	if r == nil {
		return
	}
	switch {
	case t <= r.DownT:
		e.re.Before++
		bitsOf(e.ackBefore, pub).Add(seq)
	case t < r.StartT:
		// acknowledged while the broker was going down: neither side
	case e.re.BackT >= 0 && t < e.re.BackT:
		e.re.Away++
		bitsOf(e.ackAway, pub).Add(seq)
	default:
		e.re.After++
		bitsOf(e.ackAfter, pub).Add(seq)
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
	both := func(a, b map[string]*SeqSet) int64 {
		var n int64
		for pub, s := range a {
			if o := b[pub]; o != nil {
				n += s.countAnd(o)
			}
		}
		return n
	}
	for i := range p.entries {
		e := &p.entries[i]
		if e.away >= 0 {
			p.away[e.away].ReceivedLater = both(e.held, e.got)
		}
		if p.restart != nil {
			e.re.BeforeReceived = both(e.ackBefore, e.gotByDown)
			e.re.BeforeSurvived = both(e.ackBefore, e.gotFromStart)
			e.re.AwayReceived = both(e.ackAway, e.got)
			e.re.AfterRecvd = both(e.ackAfter, e.got)
			p.restart.Entries = append(p.restart.Entries, e.re)
		}
	}
	x.Away = p.away
	x.Restart = p.restart
	return x
}

// RunExperiments runs the pass over a run read whole.
func RunExperiments(run *Run) Experiments {
	in := InstantsOf(run)
	p := NewExperimentPass(NewSummarizer(run.Header, in).Scenario(), in)
	for i := range run.Events {
		p.Add(&run.Events[i])
	}
	return p.Close()
}
