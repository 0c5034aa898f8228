package bench

import (
	"slices"
	"sort"
)

// The analysis reads a run twice. Its per-message questions are asked
// against a few instants that can come late in the file (the kill, the last
// save before it, the end of the recording, the actions of a restart): with
// those known before the messages are read, each message's times reduce, at
// their event, to which side of each instant they fell on, a bit per
// question, instead of being kept until Close (40 bytes a message did that:
// 12 M messages took 1.1 GB). This first pass finds the instants; it keeps
// nothing per message.

// Instants is what the first pass over a run finds: what the analysis
// (NewSummarizer, NewExperimentPass) must know before it reads the messages.
type Instants struct {
	// KillT is the first successful kill action, -1 if none.
	KillT int64
	// Saves are the times of the detected saves, sorted.
	Saves []int64
	// EndT is the end of the recording: the footer's time or the last
	// event's, whichever is later.
	EndT int64
	// PersistSampled: a persistence file size was sampled.
	PersistSampled bool
	// Subscribers are the clients that consumed something, in the order of
	// their first consumption (who "everyone" is when there is no scenario).
	Subscribers []string
	// NoPubT are, by publisher, the messages with an ack or a consumption
	// lacking pub_t_ns (acks before they carried it; deliveries older than
	// the publisher's ring of send times): for them alone the analysis keeps
	// the publish time.
	NoPubT map[string]*SeqSet
	// Actions are the successful actions, sorted by time.
	Actions []Event
}

// InstantPass is the first pass: Add every event in file order, then Close.
type InstantPass struct {
	in    Instants
	lastT int64
	subs  map[string]bool
	// primary is the first broker of a run with several: the instants are
	// its saves and actions, as the top level of the summary is its (see
	// summarize_brokers.go); "" for one broker.
	primary string
}

// NewInstantPass starts the first pass.
func NewInstantPass() *InstantPass {
	return &InstantPass{in: Instants{KillT: -1, NoPubT: map[string]*SeqSet{}}, subs: map[string]bool{}}
}

// Add takes one event; the event is not kept unless it is an action.
func (p *InstantPass) Add(e *Event) {
	p.lastT = max(p.lastT, e.T)
	if e.Broker != "" && p.primary != "" && e.Broker != p.primary {
		return // another broker's save, file size or action
	}
	in := &p.in
	switch e.Type {
	case EvAck:
		if e.PubT == 0 {
			bitsOf(in.NoPubT, e.Client).Add(e.Seq)
		}
	case EvRecv:
		if e.PubT == 0 {
			bitsOf(in.NoPubT, e.Pub).Add(e.Seq)
		}
		if !p.subs[e.Client] {
			p.subs[e.Client] = true
			in.Subscribers = append(in.Subscribers, e.Client)
		}
	case EvAction:
		if e.Err != "" {
			return
		}
		if e.Action == ActKill && in.KillT < 0 {
			in.KillT = e.T
		}
		in.Actions = append(in.Actions, *e)
	case EvSave:
		in.Saves = append(in.Saves, e.T)
	case EvGauge:
		if e.Name == GaugePersistBytes {
			in.PersistSampled = true
		}
	}
}

// Close ends the pass; f is the footer (nil when the recording was cut short).
func (p *InstantPass) Close(f *Footer) *Instants {
	in := p.in
	in.EndT = p.lastT
	if f != nil && f.T > in.EndT {
		in.EndT = f.T
	}
	slices.Sort(in.Saves)
	sort.SliceStable(in.Actions, func(i, j int) bool { return in.Actions[i].T < in.Actions[j].T })
	return &in
}

// InstantsOf is the first pass over a run read into memory.
func InstantsOf(run *Run) *Instants {
	p := NewInstantPass()
	p.primary = primaryBroker(run.Header)
	for i := range run.Events {
		p.Add(&run.Events[i])
	}
	return p.Close(run.Footer)
}

// ScanRun is the first pass over the run in a directory or events file.
func ScanRun(path string) (*Instants, error) {
	rr, err := OpenRun(path)
	if err != nil {
		return nil, err
	}
	defer rr.Close()
	p := NewInstantPass()
	p.primary = primaryBroker(rr.Run().Header)
	for e := rr.Next(); e != nil; e = rr.Next() {
		p.Add(e)
	}
	return p.Close(rr.Run().Footer), nil
}

// lastSaveBefore is the last save at or before t, -1 if none.
func (in *Instants) lastSaveBefore(t int64) int64 {
	i := sort.Search(len(in.Saves), func(i int) bool { return in.Saves[i] > t })
	if i == 0 {
		return -1
	}
	return in.Saves[i-1]
}

// exposureEnd is when a message acknowledged at a stopped being only in the
// broker's memory at the latest: the next save after a, the kill if a came
// before it, or the end of the recording.
func (in *Instants) exposureEnd(a int64) int64 {
	end := in.EndT
	if i := sort.Search(len(in.Saves), func(i int) bool { return in.Saves[i] > a }); i < len(in.Saves) {
		end = min(end, in.Saves[i])
	}
	if in.KillT >= a {
		end = min(end, in.KillT)
	}
	return end
}
