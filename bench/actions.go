package bench

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/mqbench/mqbench/scenarios"
)

// actions runs the scenario's timed actions in order.
func (e *engine) actions(runStart time.Time) {
	acts := append([]scenarios.Action(nil), e.sc.Actions...)
	sort.SliceStable(acts, func(i, j int) bool { return acts[i].At < acts[j].At })
	for _, a := range acts {
		if !e.sc.RunsAction(a) {
			continue // another shard's (see scenarios.Shard)
		}
		if !e.waitUntil(runStart.Add(a.At.D())) {
			return
		}
		e.doAction(a)
	}
}

func (e *engine) doAction(a scenarios.Action) {
	ctx, cancel := context.WithTimeout(context.Background(), actionTimeout)
	defer cancel()
	t0 := e.rec.Since()
	var err error
	// With several brokers a broker action's target names its broker.
	b := e.brokers[0]
	do := a.Do
	if scenarios.IsBrokerAction(a) {
		if b = e.brokerNamed(e.sc.ActionBroker(a)); b == nil {
			b, do = e.brokers[0], ""
			err = fmt.Errorf("no broker %q", a.Target)
		}
	}
	switch do {
	case "": // failed above
	case ActSave:
		err = b.target.Save(ctx)
	case ActStop:
		b.down.Store(true)
		err = b.target.Stop(ctx)
	case ActKill:
		b.down.Store(true)
		err = b.target.Kill(ctx)
	case ActStart:
		err = b.target.Start(ctx)
		if err == nil {
			if b.down.Load() {
				b.backUpT.Store(e.rec.Since())
			}
			b.down.Store(false)
		}
	case ActDisconnect:
		if s := e.subByID[a.Target]; s != nil {
			s.disconnect()
		} else {
			err = fmt.Errorf("no subscriber %q", a.Target)
		}
	case ActReconnect:
		if s := e.subByID[a.Target]; s != nil {
			err = s.reconnect()
		} else {
			err = fmt.Errorf("no subscriber %q", a.Target)
		}
	default:
		err = fmt.Errorf("unknown action %q", a.Do)
	}
	ev := Event{T: t0, Type: EvAction, Action: a.Do, Target: a.Target}
	if scenarios.IsBrokerAction(a) {
		ev = b.tag(ev)
	}
	if err != nil {
		ev.Err = err.Error()
	}
	e.emit(ev)
}
