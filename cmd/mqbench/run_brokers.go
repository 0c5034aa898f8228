package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/mqbench/mqbench/bench"
	"github.com/mqbench/mqbench/broker/launch"
	"github.com/mqbench/mqbench/scenarios"
)

// A scenario with a brokers list (an edge bridged to a core) starts each of
// its brokers: --broker bundled or mosquitto applies to all of them,
// --broker edge=bundled,core=mosquitto pairs them up.

// brokerKinds resolves --broker for the scenario's brokers: one kind for
// all, or NAME=KIND for each, where KIND may also be the address of a broker
// mqbench does not run (core=tcp://HOST:PORT): its address fills the other
// brokers' @NAME bridge addresses, nothing is applied to it, its file is not
// sampled and actions on it fail, as for a one-broker run's external broker.
func brokerKinds(flag string, names []string) (map[string]string, error) {
	out := map[string]string{}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	checkKind := func(kind, what string, perBroker bool) error {
		if kind == "" || kind == launch.KindBundled || kind == launch.KindMosquitto {
			return nil
		}
		scheme, _, isAddr := strings.Cut(kind, "://")
		switch {
		case isAddr && perBroker && (scheme == "ws" || scheme == "wss"):
			// A bridge speaks MQTT over TCP (or TLS): it cannot reach a
			// websockets listener in the place of @NAME.
			return fmt.Errorf("--broker %s: a broker of several is reached by the others' bridges over TCP or TLS, not websockets", what)
		case isAddr && perBroker:
			return nil
		case isAddr:
			return fmt.Errorf("--broker %s: an address is one broker; name it (edge=bundled,core=%s) for a scenario with several brokers (%s)", what, kind, strings.Join(names, ", "))
		}
		return fmt.Errorf("--broker %s: a scenario with several brokers (%s) runs bundled or mosquitto brokers, for all or per broker (edge=bundled,core=mosquitto), or an address per broker (core=tcp://HOST:PORT)", what, strings.Join(names, ", "))
	}
	if !strings.Contains(flag, "=") {
		if err := checkKind(flag, flag, false); err != nil {
			return nil, err
		}
		for _, n := range names {
			out[n] = flag
		}
		return out, nil
	}
	for _, part := range strings.Split(flag, ",") {
		name, kind, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("--broker %s: want NAME=KIND for every broker (edge=bundled,core=mosquitto), got %q", flag, part)
		}
		if !known[name] {
			return nil, fmt.Errorf("--broker %s: the scenario has no broker %q (brokers: %s)", flag, name, strings.Join(names, ", "))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--broker %s: broker %s named twice", flag, name)
		}
		if err := checkKind(kind, part, true); err != nil {
			return nil, err
		}
		out[name] = kind
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			out[n] = launch.KindBundled
		}
	}
	return out, nil
}

// perBrokerFlag says whether --broker is the NAME=KIND form, which only a
// scenario with a brokers list can take.
func perBrokerFlag(flag string) bool { return strings.Contains(flag, "=") }

// allBundled says whether every broker the flag starts is the bundled one
// (which takes a fractional autosave_interval when a time scale makes one).
func allBundled(flag string) bool {
	if !perBrokerFlag(flag) {
		return flag == "" || flag == launch.KindBundled
	}
	for _, part := range strings.Split(flag, ",") {
		if _, kind, _ := strings.Cut(part, "="); kind != launch.KindBundled && kind != "" {
			return false
		}
	}
	return true
}

// startBrokers starts the scenario's brokers in dependency order (a broker
// after those its bridge addresses name, whose listener ports are then known)
// each in DIR/broker/NAME. On error every broker started is stopped.
func startBrokers(ctx context.Context, sc *scenarios.Scenario, dir, exe string, errw io.Writer) ([]bench.NamedTarget, func(), error) {
	if runFlags.db != "" || runFlags.conf != "" {
		return nil, nil, errors.New("--db and --conf describe one external broker; a scenario with several brokers starts its own")
	}
	kinds, err := brokerKinds(runFlags.broker, sc.BrokerNames())
	if err != nil {
		return nil, nil, err
	}
	order, err := sc.BrokerOrder()
	if err != nil {
		return nil, nil, err
	}
	started := map[string]*launch.Instance{}
	closeAll := func() {
		// The reverse of the start order: an edge stops before the core its
		// bridge feeds, so the edge's final save holds what it still had.
		for i := len(order) - 1; i >= 0; i-- {
			if inst := started[order[i]]; inst != nil {
				_ = inst.Close()
			}
		}
	}
	addrs := map[string]string{}
	for _, name := range order {
		settings, err := sc.BrokerSettings(name, addrs)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		inst, err := launch.Start(ctx, launch.Options{
			Kind:           kinds[name],
			Settings:       settings,
			DataDir:        filepath.Join(dir, "broker", name),
			BundledCommand: []string{exe, "broker"},
		})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("starting broker %s: %w", name, err)
		}
		started[name] = inst
		addrs[name] = inst.Addr()
		for _, n := range inst.Notices() {
			fmt.Fprintf(errw, "broker %s: %s\n", name, n)
		}
	}
	var out []bench.NamedTarget
	for _, name := range sc.BrokerNames() {
		out = append(out, bench.NamedTarget{Name: name, Target: started[name]})
	}
	return out, closeAll, nil
}
