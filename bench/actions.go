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
	switch a.Do {
	case "save":
		err = e.target.Save(ctx)
	case "stop":
		e.brokerDown.Store(true)
		err = e.target.Stop(ctx)
	case "kill":
		e.brokerDown.Store(true)
		err = e.target.Kill(ctx)
	case "start":
		err = e.target.Start(ctx)
		if err == nil {
			if e.brokerDown.Load() {
				e.backUpT.Store(e.rec.Since())
			}
			e.brokerDown.Store(false)
		}
	case "disconnect":
		if s := e.subByID[a.Target]; s != nil {
			s.disconnect()
		} else {
			err = fmt.Errorf("no subscriber %q", a.Target)
		}
	case "reconnect":
		if s := e.subByID[a.Target]; s != nil {
			err = s.reconnect()
		} else {
			err = fmt.Errorf("no subscriber %q", a.Target)
		}
	default:
		err = fmt.Errorf("unknown action %q", a.Do)
	}
	ev := Event{T: t0, Type: EvAction, Action: a.Do, Target: a.Target}
	if err != nil {
		ev.Err = err.Error()
	}
	e.emit(ev)
}
